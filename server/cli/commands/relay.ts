// `sockbridge relay [SOURCE_ADDR:]SOURCE_PORT TARGET_ADDR:TARGET_PORT`: websockify's command line,
// served by RelayServer. One fixed target, no login (like websockify); unlike websockify, a bare
// SOURCE_PORT listens on 127.0.0.1, not every interface: say 0.0.0.0:PORT to publish it.

import { parseCommandLine, parseHostPort, splitList } from '../args.js';
import { formatAddress, runUntilSignal } from '../run-service.js';
import { RelayServer, relayOptionsSchema } from '../../relay/relay-server.js';
import { checkFlagValues } from '../flag-values.js';
import { sbError } from '../../../protocol/errors.js';
import { readConfigFile } from '../../config.js';
import { defaultLogger } from '../../logger.js';

const USAGE =
  'sockbridge relay [--origin URL]... [--max-connections N] [--max-message-bytes N] [--high-water-bytes N]\n' +
  '       [--connect-timeout-ms N] [--idle-timeout-ms N] [--linger-ms N] [--heartbeat-ms N] [SOURCE_ADDR:]SOURCE_PORT TARGET_ADDR:TARGET_PORT';

const OPTIONS = {
  origin: { type: 'string', multiple: true },
  'max-connections': { type: 'string' },
  'max-message-bytes': { type: 'string' },
  'high-water-bytes': { type: 'string' },
  'connect-timeout-ms': { type: 'string' },
  'idle-timeout-ms': { type: 'string' },
  'linger-ms': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(argv, OPTIONS, USAGE);
  if (positionals.length !== 2) throw sbError('SB_ERR_USAGE', `expected LISTEN and TARGET, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}\nusage: ${USAGE}`);
  const listen = parseHostPort(positionals[0], USAGE, '127.0.0.1:6080');
  parseHostPort(positionals[1], USAGE, '127.0.0.1:5900'); // a clear usage error before the schema's
  const { origin, ...rest } = values;
  // Numbers arrive as strings: checked and coerced here under their flags' names, range-checked again
  // with the config file's values by RelayServer's loadConfig.
  const cli = checkFlagValues(relayOptionsSchema, { ...rest, ...(origin !== undefined ? { origins: splitList(origin) } : {}) }, { origins: '--origin' });
  const server = new RelayServer(
    {
      ...(configFile ? readConfigFile(configFile) : {}),
      ...(cli as Record<string, never>),
      host: listen.host,
      port: listen.port,
      target: positionals[1]!,
    },
    { logger: defaultLogger('warn') }, // errors on stderr; SOCKBRIDGE_LOG_LEVEL=info adds each refusal
  );
  return runUntilSignal('relay', server, () => {
    // websockify's default, kept for drop-in use, but said aloud: without --origin any web page a
    // visitor of this machine opens can reach the target through their browser.
    if (server.options.origins.length === 0) {
      process.stderr.write(`sockbridge relay: warning: no --origin, so any web page can connect; set --origin URL to the page that uses this relay\n`);
    }
    return [`sockbridge relay listening on ${formatAddress('http', server.address()).replace(/^http/, 'ws')} → ${server.options.target}`];
  });
}
