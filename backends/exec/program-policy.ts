// What a command may run and with which environment. The seed ran anything through a shell for
// anyone; here an allow-list (when set) names the programs, shell strings are refused under it,
// and children get a minimal environment: never the service's own (its secret, SOCKBRIDGE_*).

import { homedir } from 'node:os';
import { sbError } from '../../protocol/errors.js';

export interface Program {
  file: string;
  args: string[];
}

/**
 * Resolves a run request to the program to start, or throws SB_ERR_EXEC_NOT_ALLOWED.
 * With an allow-list: argv only; argv[0]'s basename must be listed, and a path (containing "/")
 * only when that exact path is listed, so `./ls` or `/tmp/x/ls` cannot pass as `ls`.
 */
export function resolveProgram(
  request: { command?: string; argv?: string[] },
  allow: readonly string[] | null,
  shell: string,
): Program {
  if (request.command !== undefined) {
    if (allow) throw sbError('SB_ERR_EXEC_NOT_ALLOWED', 'a shell command string', allowed(allow));
    return { file: shell, args: ['-c', request.command] };
  }
  const [file, ...args] = request.argv!;
  if (allow && !isAllowed(file!, allow)) throw sbError('SB_ERR_EXEC_NOT_ALLOWED', JSON.stringify(file!.slice(0, 256)), allowed(allow));
  return { file: file!, args };
}

// A bare name is looked up in PATH (the service's, see childEnvironment), so it must be listed as is.
const isAllowed = (program: string, allow: readonly string[]): boolean => allow.includes(program);

const allowed = (allow: readonly string[]) => (allow.length ? allow.join(', ') : '(none)');

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The whole environment a child sees. */
export function childEnvironment(pty: boolean, source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {
    PATH: source['PATH'] || DEFAULT_PATH,
    HOME: source['HOME'] || homedir(),
    LANG: source['LANG'] || 'C.UTF-8',
  };
  if (source['USER']) env['USER'] = source['USER'];
  if (source['TZ']) env['TZ'] = source['TZ'];
  if (pty) env['TERM'] = 'xterm-256color';
  return env;
}
