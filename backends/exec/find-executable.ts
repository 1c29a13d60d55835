// Why a program could not be started, known before anything is spawned. node-pty forks first and
// reports a failed execvp(3) only as text on the terminal ("execvp(3) failed.: …") and exit code 1,
// indistinguishable from a program that printed that; child_process reports it as an 'error' a
// tick after spawn() returned. Looking the program up here, as execvp does, gives both paths the
// same refusal (SB_ERR_EXEC_SPAWN before `started`) with the reason in words.

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * Undefined when `file` names something execvp(3) would run from `cwd` with this PATH; otherwise why
 * not. A name with a "/" is a path (relative to `cwd`); a bare name is searched in PATH, an empty
 * entry meaning `cwd`, and an entry that exists but is not executable is skipped, as execvp does
 * (EACCES only if nothing else was found).
 */
export function whyNotExecutable(file: string, path: string, cwd: string): string | undefined {
  if (file.includes('/')) return problemWith(isAbsolute(file) ? file : join(cwd, file));
  let found: string | undefined;
  for (const dir of path.split(delimiter)) {
    const problem = problemWith(join(dir === '' ? cwd : isAbsolute(dir) ? dir : join(cwd, dir), file));
    if (problem === undefined) return undefined;
    if (problem !== NOT_FOUND) found ??= problem;
  }
  return found ?? `not found in PATH (${path})`;
}

const NOT_FOUND = 'no such file';

function problemWith(candidate: string): string | undefined {
  try {
    if (statSync(candidate).isDirectory()) return 'is a directory';
    accessSync(candidate, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return NOT_FOUND;
    return code === 'EACCES' || code === 'EPERM' ? 'not executable (permission denied)' : `cannot be run (${code ?? 'unknown error'})`;
  }
}
