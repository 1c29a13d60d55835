// `sockbridge COMMAND …`: one module per command, loaded on demand so `sockbridge time` never loads
// Fastify or SQLite. Every command module exports `run(argv): Promise<number>` (the exit code).

import { isSockbridgeError } from '../../protocol/errors.js';
import { sanitizeForTerminal } from '../../backends/chat/terminal-text.js';
import { wrongServiceHint } from './wrong-service-hint.js';

export interface Command {
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, { load: () => Promise<Command>; summary: string }> = {
  start: { load: () => import('./commands/start.js'), summary: 'run the four backends and the gateway in one process' },
  serve: { load: () => import('./commands/serve.js'), summary: 'run one backend: serve chat|exec|files|time' },
  gateway: { load: () => import('./commands/gateway.js'), summary: 'run the HTTP/WebSocket gateway alone' },
  relay: { load: () => import('./commands/relay.js'), summary: 'websockify-compatible relay: relay LISTEN TARGET' },
  user: { load: () => import('./commands/user.js'), summary: 'manage accounts: user add|remove|passwd|role NAME, user list' },
  chat: { load: () => import('./commands/chat.js'), summary: 'chat in a terminal: chat HOST:PORT --nick N' },
  exec: { load: () => import('./commands/exec.js'), summary: 'run a remote command: exec HOST:PORT --secret-file F -- CMD' },
  put: { load: () => import('./commands/files.js').then((m) => ({ run: m.put })), summary: 'upload: put HOST:PORT FILE [NAME]' },
  get: { load: () => import('./commands/files.js').then((m) => ({ run: m.get })), summary: 'download, resuming an interrupted one: get [--no-resume] HOST:PORT NAME [FILE]' },
  ls: { load: () => import('./commands/files.js').then((m) => ({ run: m.ls })), summary: 'list files: ls HOST:PORT' },
  time: { load: () => import('./commands/time.js'), summary: 'query a time service: time HOST:PORT [--samples N] [--text]' },
};

function help(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: sockbridge COMMAND [options]\n\ncommands:\n${lines.join('\n')}\n\nEvery command takes --help and --config FILE (JSON).\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sockbridge: unknown command "${name}"; run \`sockbridge --help\` for the list\n`);
    return 2;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (err) {
    return reportFailure(err);
  }
}

/**
 * One clear line, never a stack trace, for the failures a user causes; exit 2 for usage and config.
 * Error messages may carry what a service sent (its refusal's message), so none reaches the
 * terminal with a control character or a line break of its own (terminal-text.ts).
 */
export function reportFailure(err: unknown): number {
  if (isSockbridgeError(err)) {
    if ((err as { help?: boolean }).help) {
      process.stdout.write(`${err.message}\n`);
      return 0;
    }
    // Usage messages are ours, built from the arguments ("…\nusage: …"); any other may be a service's words.
    const message = err.code === 'SB_ERR_USAGE' ? eachLineSanitized(err.message) : sanitizeForTerminal(err.message) + wrongServiceHint(err);
    process.stderr.write(`sockbridge: ${message}\n`);
    return err.code === 'SB_ERR_USAGE' || err.code.startsWith('SB_ERR_CONFIG') || err.code === 'SB_ERR_SECRET_FILE' ? 2 : 1;
  }
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e && e.code === 'EADDRINUSE' && e.syscall === 'listen') {
    const where = e.address ? `${e.address}:${e.port ?? ''}` : 'the address';
    process.stderr.write(`sockbridge: ${where} is already in use (is sockbridge already running?); stop what holds it or choose another port (0 = any free port)\n`);
    return 1;
  }
  if (e && typeof e.code === 'string' && e.syscall) {
    process.stderr.write(`${sanitizeForTerminal(`sockbridge: ${e.syscall} ${e.code}${e.address ? ` ${e.address}${e.port ? `:${e.port}` : ''}` : ''}: ${e.message}`)}\n`);
    return 1;
  }
  // A stack keeps its lines; its message may hold a service's words (a JSON.parse error quotes them).
  process.stderr.write(`sockbridge: unexpected error: ${eachLineSanitized((err as Error)?.stack ?? String(err))}\n`);
  return 1;
}

const eachLineSanitized = (text: string) => text.split('\n').map(sanitizeForTerminal).join('\n');
