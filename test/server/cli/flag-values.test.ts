// Errors about a flag's value name the flag as typed and say in words what it expects (regression:
// `relay --origin bad` was reported under the config key `--origins`, and `--line-port abc` as
// ajv's type list "must be integer,null").
import { afterEach, describe, expect, it } from 'vitest';
import { isSockbridgeError } from '../../../protocol/errors.js';
import { checkFlagValues, flagValuesWithDefaults } from '../../../server/cli/flag-values.js';
import { chatOptionsSchema } from '../../../backends/chat/chat-service.js';
import { timeOptionsSchema } from '../../../backends/time/time-service.js';
import { gatewayOptionsSchema } from '../../../server/gateway-options.js';
import { runCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

afterEach(async () => {
  await stopAllCli();
  await removeTempDirs();
});

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isSockbridgeError(err, 'SB_ERR_USAGE')) return err.message;
    throw err;
  }
  throw new Error('no usage error');
}

describe('checkFlagValues', () => {
  it('names the flag a renamed key came from', () => {
    expect(usageMessage(() => checkFlagValues(gatewayOptionsSchema, { origins: ['https://ok', 'bad'] }, { origins: '--origin' }))).toBe(
      '--origin must start with http:// or https:// (got "bad")',
    );
    expect(usageMessage(() => checkFlagValues(gatewayOptionsSchema, { raw: { vnc: 'nohost' } }))).toBe('--raw must be HOST:PORT (e.g. 127.0.0.1:5900) (got "nohost")');
  });

  it('says "must be an integer" with the value typed, never a type list', () => {
    expect(usageMessage(() => checkFlagValues(chatOptionsSchema, { linePort: 'abc' }))).toBe('--line-port must be an integer (got "abc")');
    expect(usageMessage(() => checkFlagValues(chatOptionsSchema, { maxConnections: '1.5' }))).toBe('--max-connections must be an integer (got "1.5")');
    expect(usageMessage(() => checkFlagValues(timeOptionsSchema, { ntpRate: 'fast' }))).toBe('--ntp-rate must be a number (got "fast")');
  });

  it('returns the values coerced to their types and passes unknown keys on', () => {
    expect(checkFlagValues(chatOptionsSchema, { linePort: '7005', rateCapacity: '3', other: 'x' })).toEqual({ linePort: 7005, rateCapacity: 3, other: 'x' });
    expect(checkFlagValues(timeOptionsSchema, { ntpRate: '0.5', text: false })).toEqual({ ntpRate: 0.5, text: false });
  });
});

describe('flagValuesWithDefaults', () => {
  it('fills in the defaults of what was not given, and checks what was', () => {
    const schema = { properties: { samples: { type: 'integer', minimum: 1, default: 4 }, port: { type: 'integer' } } };
    expect(flagValuesWithDefaults(schema, { samples: undefined, port: undefined })).toEqual({ samples: 4, port: undefined });
    expect(flagValuesWithDefaults(schema, { samples: '9', port: '80' })).toEqual({ samples: 9, port: 80 });
    expect(usageMessage(() => flagValuesWithDefaults(schema, { samples: 'x' }))).toBe('--samples must be an integer (got "x")');
  });
});

describe('flag errors from the command line', () => {
  it('exit 2 with one line naming the flag the user typed', async () => {
    const dir = await tempDir();
    const cases: Array<[string[], string]> = [
      [['relay', '--origin', 'bad', '127.0.0.1:0', '127.0.0.1:1'], '--origin must start with http:// or https:// (got "bad")'],
      [['relay', '--max-connections', 'abc', '127.0.0.1:0', '127.0.0.1:1'], '--max-connections must be an integer (got "abc")'],
      [['gateway', '--port', '0', '--data', dir, '--origin', 'bad'], '--origin must start with http:// or https:// (got "bad")'],
      [['gateway', '--port', '0', '--data', dir, '--raw', 'vnc=nohost'], '--raw must be HOST:PORT (e.g. 127.0.0.1:5900) (got "nohost")'],
      [['serve', 'chat', '--port', '0', '--line-port', 'abc', '--data', dir], '--line-port must be an integer (got "abc")'],
      [['serve', 'chat', '--port', '0', '--data', ''], '--data must not be empty'],
      [['serve', 'files', '--port', '0', '--root', dir, '--max-file-size', '1.5'], '--max-file-size must be an integer (got "1.5")'],
      [['serve', 'files', '--port', '70000', '--root', dir], '--port must be <= 65535 (got 70000)'],
      [['serve', 'time', '--port', '0', '--ntp-rate', 'x'], '--ntp-rate must be a number (got "x")'],
      [['time', '127.0.0.1:1', '--samples', 'abc'], '--samples must be an integer (got "abc")'],
      [['time', '127.0.0.1:1', '--timeout', '0'], '--timeout must be >= 1 (got 0)'],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`sockbridge: ${message}\n`);
    }
  });
});
