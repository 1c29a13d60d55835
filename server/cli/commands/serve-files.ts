// `sockbridge serve files --root DIR [--host H] [--port P] [--max-file-size N] [--quota-bytes N] [--config F]`
import { FilesService, filesOptionsSchema, type FilesOptions } from '../../../backends/files/files-service.js';
import { loadConfig } from '../../config.js';
import { defaultLogger } from '../../logger.js';
import { parseCommandLine, rejectPositionals } from '../args.js';
import { checkFlagValues } from '../flag-values.js';
import { formatAddress, runUntilSignal } from '../run-service.js';

const USAGE =
  'sockbridge serve files --root DIR [--host H] [--port P] [--max-file-size BYTES] [--quota-bytes BYTES] [--partial-ttl-ms MS] [--config FILE]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(
    argv,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      root: { type: 'string' },
      'max-file-size': { type: 'string' },
      'quota-bytes': { type: 'string' },
      'partial-ttl-ms': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
    },
    USAGE,
  );
  rejectPositionals(positionals, USAGE);
  const options = loadConfig<FilesOptions>(filesOptionsSchema, { cli: checkFlagValues(filesOptionsSchema, values), configFile });
  const service = new FilesService(options, { logger: defaultLogger('warn') });
  return runUntilSignal('files', service, () => [`sockbridge files listening on ${formatAddress('tcp', service.address())}`]);
}
