// `sockbridge time HOST:PORT [--samples N] [--interval MS] [--timeout MS] [--text]`: asks a time
// service for the time. NTP by default, printed as `ntpdate -q` prints it (a line per sample,
// then a summary with the best sample's offset); `--text` sends the seed's `time` request.

import { sbError } from '../../../protocol/errors.js';
import { queryText, sampleNtp, type NtpSample } from '../../../backends/time/ntp-client.js';
import { parseCommandLine, parseHostPort } from '../args.js';
import { flagValuesWithDefaults } from '../flag-values.js';

const USAGE = 'sockbridge time HOST:PORT [--samples N] [--interval MS] [--timeout MS] [--text]';

/** The query's own flags, checked like every other flag value (flag-values.ts). */
const QUERY_FLAGS = {
  properties: {
    samples: { type: 'integer', minimum: 1, maximum: 64, default: 4 },
    interval: { type: 'integer', minimum: 1, maximum: 60_000, default: 250 },
    timeout: { type: 'integer', minimum: 1, maximum: 60_000, default: 2000 },
  },
} as const;

const signed = (seconds: number, digits: number) => `${seconds < 0 ? '-' : '+'}${Math.abs(seconds).toFixed(digits)}`;

/** `server 127.0.0.1, stratum 10, offset +0.000123, delay 0.00031`, as ntpdate -q. */
export function formatSample(server: string, s: NtpSample): string {
  return `server ${server}, stratum ${s.stratum}, offset ${signed(s.offsetMs / 1000, 6)}, delay ${(s.delayMs / 1000).toFixed(5)}`;
}

/** ntpdate's summary line: `25 Nov 11:50:22 …`, local time. */
function stamp(date: Date): string {
  const month = date.toLocaleString('en-US', { month: 'short' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getDate())} ${month} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { samples: { type: 'string' }, interval: { type: 'string' }, timeout: { type: 'string' }, text: { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length !== 1) throw sbError('SB_ERR_USAGE', `expected one HOST:PORT\nusage: ${USAGE}`);
  const { host, port } = parseHostPort(positionals[0], USAGE, '127.0.0.1:7004');
  const flags = flagValuesWithDefaults(QUERY_FLAGS, { samples: values['samples'], interval: values['interval'], timeout: values['timeout'] });
  const timeoutMs = flags['timeout'] as number;

  if (values['text']) {
    process.stdout.write(`${await queryText(host, port, { timeoutMs })}\n`);
    return 0;
  }
  const samples = flags['samples'] as number;
  const intervalMs = flags['interval'] as number;
  const result = await sampleNtp(host, port, { samples, intervalMs, timeoutMs });
  for (const sample of result.samples) process.stdout.write(`${formatSample(host, sample)}\n`);
  for (const failure of result.failures) process.stderr.write(`server ${host}: ${failure.message}\n`);
  const best = result.best;
  process.stdout.write(
    `${stamp(new Date())} sockbridge time: server ${host} offset ${signed(best.offsetMs / 1000, 6)} sec, ` +
      `delay ${(best.delayMs / 1000).toFixed(5)} sec (best of ${result.samples.length})\n`,
  );
  return 0;
}
