// `sockbridge serve chat --data DIR [--host H] [--port P] [--line-port P|off] [--gateway-token-file F] [--config F]`
import { ChatService, chatOptionsSchema, type ChatOptions } from '../../../backends/chat/chat-service.js';
import { readSecretFile, secretFileWarning } from '../../../backends/exec/secret.js';
import { sbError } from '../../../protocol/errors.js';
import { loadConfig } from '../../config.js';
import { defaultLogger } from '../../logger.js';
import { parseCommandLine, rejectPositionals } from '../args.js';
import { checkFlagValues } from '../flag-values.js';
import { formatAddress, runUntilSignal } from '../run-service.js';

const USAGE =
  'sockbridge serve chat --data DIR [--host H] [--port P] [--line-host H] [--line-port P|off] [--gateway-token-file F] ' +
  '[--max-connections N] [--max-connections-per-nick N] [--rate-capacity N] [--rate-interval-ms MS] [--config FILE]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      'line-host': { type: 'string' },
      'line-port': { type: 'string' },
      data: { type: 'string' },
      'data-dir': { type: 'string' },
      'gateway-token-file': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-nick': { type: 'string' },
      'rate-capacity': { type: 'string' },
      'rate-interval-ms': { type: 'string' },
      'hello-timeout-ms': { type: 'string' },
    },
    USAGE,
  );
  rejectPositionals(positionals, USAGE);
  const { data, gatewayTokenFile, ...cli } = values;
  if (data !== undefined) cli['dataDir'] = data;
  if (cli['linePort'] === 'off' || cli['linePort'] === 'none') cli['linePort'] = null;
  if (typeof gatewayTokenFile === 'string') {
    // The same rules as the exec secret file: at least 16 characters, a warning when others may read it.
    const loaded = { ...(await readSecretFile(gatewayTokenFile)), source: gatewayTokenFile };
    const warning = secretFileWarning(loaded);
    if (warning) process.stderr.write(`sockbridge: ${warning}\n`);
    cli['gatewayToken'] = loaded.secret;
  }
  if (cli['dataDir'] === undefined && configFile === undefined) {
    throw sbError('SB_ERR_USAGE', `--data DIR is required (where chat.sqlite is kept)\nusage: ${USAGE}`);
  }
  const flagNames = { gatewayToken: '--gateway-token-file', ...(data !== undefined ? { dataDir: '--data' } : {}) };
  const options = loadConfig<ChatOptions>(chatOptionsSchema, { cli: checkFlagValues(chatOptionsSchema, cli, flagNames), configFile });
  const service = new ChatService(options, { logger: defaultLogger('warn') });
  return runUntilSignal('chat', service, () => {
    const line = service.lineAddress();
    return [
      `sockbridge chat listening on ${formatAddress('tcp', service.address())}`,
      line ? `sockbridge chat line mode on ${formatAddress('tcp', line)} (nc, telnet)` : 'sockbridge chat line mode off',
    ];
  });
}
