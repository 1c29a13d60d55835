// `sockbridge serve exec --secret-file F [--host H] [--port P] [--allow ls,df,…] [--timeout-ms N] …`
// The secret comes from a file or SOCKBRIDGE_EXEC_SECRET, never from the command line (where `ps`
// would show it to every local user).
import { ExecService, execOptionsSchema, type ExecOptions } from '../../../backends/exec/exec-service.js';
import { loadExecSecret, secretFileWarning } from '../../../backends/exec/secret.js';
import { loadConfig } from '../../config.js';
import { defaultLogger } from '../../logger.js';
import { parseCommandLine, rejectPositionals, splitList } from '../args.js';
import { checkFlagValues } from '../flag-values.js';
import { formatAddress, runUntilSignal } from '../run-service.js';

const USAGE =
  'sockbridge serve exec --secret-file FILE [--host H] [--port P] [--allow PROG,…] [--timeout-ms MS] [--max-output-bytes N] ' +
  '[--max-concurrent N] [--auth-timeout-ms MS] [--kill-grace-ms MS] [--max-stdin-frame-bytes N] [--data-wait-ms MS] ' +
  '[--shell PATH] [--cwd DIR] [--no-pty] [--config FILE]\n' +
  '  the secret may instead come from the environment variable SOCKBRIDGE_EXEC_SECRET';

// The service's schema, with the secret replaced by where to find it. Every other option of
// execOptionsSchema has a flag of the same name in kebab-case (--no-pty for `pty: false`).
const { secret: _secret, ...serviceProperties } = execOptionsSchema.properties;
const serveExecSchema = {
  ...execOptionsSchema,
  required: [],
  properties: { ...serviceProperties, secretFile: { type: 'string', minLength: 1 } },
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      'secret-file': { type: 'string' },
      allow: { type: 'string', multiple: true },
      'timeout-ms': { type: 'string' },
      'max-output-bytes': { type: 'string' },
      'max-concurrent': { type: 'string' },
      'auth-timeout-ms': { type: 'string' },
      'kill-grace-ms': { type: 'string' },
      'max-stdin-frame-bytes': { type: 'string' },
      'data-wait-ms': { type: 'string' },
      shell: { type: 'string' },
      cwd: { type: 'string' },
      'no-pty': { type: 'boolean' },
    },
    USAGE,
  );
  rejectPositionals(positionals, USAGE);
  const { noPty, allow, ...cli } = values;
  const config = loadConfig<Omit<ExecOptions, 'secret'> & { secretFile?: string }>(serveExecSchema, {
    configFile,
    cli: checkFlagValues(serveExecSchema, { ...cli, allow: splitList(allow), pty: noPty ? false : undefined }, { pty: '--no-pty' }),
  });
  const { secretFile, ...options } = config;
  const loaded = await loadExecSecret(secretFile);
  const warning = secretFileWarning(loaded);
  if (warning) process.stderr.write(`sockbridge: ${warning}\n`);
  const service = new ExecService({ ...options, allow: options.allow ? [...options.allow] : null, secret: loaded.secret }, { logger: defaultLogger('warn') });
  return runUntilSignal('exec', service, () => [
    `sockbridge exec listening on ${formatAddress('tcp', service.address())}`,
    options.allow ? `allowed programs: ${options.allow.join(', ') || '(none)'}` : 'any command may run (no --allow list)',
  ]);
}
