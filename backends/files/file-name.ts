// What a file name may be: exactly one path component of the store's flat namespace. Checked before
// any file system call, so `..`, absolute paths, separators and NUL never reach a path join.
// Names are taken literally: `%2e%2e%2f` is a (strange but harmless) name, never decoded.

import { Buffer } from 'node:buffer';
import { sbError } from '../../protocol/errors.js';
import { FILE_NAME_MAX_BYTES } from '../../protocol/files-messages.js';

// A lone surrogate does not survive the UTF-8 round trip: such a name could not be stored as given.
// C0 controls, DEL and C1 controls: invisible in listings and terminals, and NUL truncates C paths.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Returns the name if it is valid, else throws SB_ERR_FILE_NAME_INVALID. */
export function validateFileName(name: unknown): string {
  if (typeof name !== 'string') throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name ?? null), 'must be a string');
  const shown = JSON.stringify(name.slice(0, 64));
  if (name.length === 0) throw sbError('SB_ERR_FILE_NAME_INVALID', shown, 'must not be empty');
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) throw sbError('SB_ERR_FILE_NAME_INVALID', shown, 'must be valid Unicode');
  if (Buffer.byteLength(name, 'utf8') > FILE_NAME_MAX_BYTES) {
    throw sbError('SB_ERR_FILE_NAME_INVALID', shown, `must be at most ${FILE_NAME_MAX_BYTES} UTF-8 bytes`);
  }
  if (name.includes('/') || name.includes('\\')) throw sbError('SB_ERR_FILE_NAME_INVALID', shown, 'must not contain / or \\');
  if (CONTROL.test(name)) throw sbError('SB_ERR_FILE_NAME_INVALID', shown, 'must not contain NUL or control characters');
  // Also excludes `.` and `..`, and keeps the store's own `.partial/` and `.meta/` out of reach.
  if (name.startsWith('.')) throw sbError('SB_ERR_FILE_NAME_INVALID', shown, 'must not start with "."');
  return name;
}
