// `sockbridge serve chat|exec|files|time …`: runs one backend in the foreground until SIGINT/SIGTERM.
import { sbError } from '../../../protocol/errors.js';
import { helpRequested } from '../args.js';
import type { Command } from '../main.js';

const USAGE = 'sockbridge serve chat|exec|files|time [--host H] [--port P] [options]  (`serve SERVICE --help` lists its options)';

const SERVICES: Record<string, () => Promise<Command>> = {
  chat: () => import('./serve-chat.js'),
  exec: () => import('./serve-exec.js'),
  files: () => import('./serve-files.js'),
  time: () => import('./serve-time.js'),
};

export async function run(argv: string[]): Promise<number> {
  const [service, ...rest] = argv;
  const load = service ? SERVICES[service] : undefined;
  if (service === '--help' || service === '-h') throw helpRequested(USAGE);
  if (!load) throw sbError('SB_ERR_USAGE', `${service ? `unknown service "${service}"` : 'which service?'}\nusage: ${USAGE}`);
  return (await load()).run(rest);
}
