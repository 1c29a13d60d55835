// `sockbridge serve time [--host H] [--port P] [--no-text] [--stratum N] [--reference-id ID] …`:
// the UDP time service (NTP + the seed's text request) in the foreground.

import { TimeService, timeOptionsSchema, type TimeOptions } from '../../../backends/time/time-service.js';
import { loadConfig } from '../../config.js';
import { defaultLogger } from '../../logger.js';
import { parseCommandLine, rejectPositionals } from '../args.js';
import { checkFlagValues } from '../flag-values.js';
import { formatAddress, runUntilSignal } from '../run-service.js';

const USAGE =
  'sockbridge serve time [--host H] [--port P] [--no-text] [--stratum N] [--reference-id ID] ' +
  '[--ntp-rate R] [--ntp-burst B] [--text-rate R] [--text-burst B] [--max-sources N] [--config FILE]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      'no-text': { type: 'boolean' },
      stratum: { type: 'string' },
      'reference-id': { type: 'string' },
      'ntp-rate': { type: 'string' },
      'ntp-burst': { type: 'string' },
      'text-rate': { type: 'string' },
      'text-burst': { type: 'string' },
      'max-sources': { type: 'string' },
    },
    USAGE,
  );
  rejectPositionals(positionals, USAGE);
  const { noText, ...cli } = values;
  if (noText) cli['text'] = false;
  const options = loadConfig<TimeOptions>(timeOptionsSchema, { cli: checkFlagValues(timeOptionsSchema, cli), configFile });
  const service = new TimeService(options, { logger: defaultLogger() });
  return runUntilSignal('time', service, () => [`sockbridge time listening on ${formatAddress('udp', service.address())}`]);
}
