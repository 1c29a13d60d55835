// File names are checked before any file system call, so `..`, absolute paths, separators and NUL
// never reach a path join. The rule itself is protocol/file-name-rule.ts, shared with the web client.

import { sbError } from '../../protocol/errors.js';
import { fileNameProblem } from '../../protocol/file-name-rule.js';

/** Returns the name if it is valid, else throws SB_ERR_FILE_NAME_INVALID. */
export function validateFileName(name: unknown): string {
  if (typeof name !== 'string') throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name ?? null), 'must be a string');
  const problem = fileNameProblem(name);
  if (problem) throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name.slice(0, 64)), problem);
  return name;
}
