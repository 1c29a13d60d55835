// The command line's own errors (server/cli/args.ts), as a user sees them from the real CLI:
// one line naming the problem, then the usage line, exit 2.
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { removeTempDirs } from '../../helpers/tmp.js';

afterEach(removeTempDirs);

/** The first stderr line; asserts there is exactly one more, the usage. */
function problemLine(stderr: string, command: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines[1]).toMatch(new RegExp(`^usage: sockbridge ${command}`));
  return lines[0]!;
}

describe('a flag parseArgs refuses', () => {
  it.each([
    [['start', '--bogus'], 'start', 'sockbridge: unknown option --bogus for "start"; run sockbridge start --help'],
    [['start', '--bogus=1'], 'start', 'sockbridge: unknown option --bogus for "start"; run sockbridge start --help'],
    [['serve', 'files', '-x'], 'serve files', 'sockbridge: unknown option -x for "serve files"; run sockbridge serve files --help'],
    [['ls', '--long', '127.0.0.1:7003'], 'ls', 'sockbridge: unknown option --long for "ls"; run sockbridge ls --help'],
    [['user', 'list', '--dat', 'x'], 'user', 'sockbridge: unknown option --dat for "user"; run sockbridge user --help'],
    [['start', '--port'], 'start', 'sockbridge: --port needs a value; run sockbridge start --help'],
    [['start', '--data', '--port', '0'], 'start', 'sockbridge: --data needs a value (write --data=VALUE if it starts with "-"); run sockbridge start --help'],
    [['time', '127.0.0.1:7004', '--text=yes'], 'time', 'sockbridge: --text takes no value; run sockbridge time --help'],
  ])('%j: one clean line, then the usage, exit 2', async (argv, command, line) => {
    const { code, stdout, stderr } = await runCli(argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(problemLine(stderr, command)).toBe(line);
  });
});

describe('a HOST:PORT that is not one', () => {
  it.each([
    ['time', '127.0.0.1:7004'],
    ['ls', '127.0.0.1:7003'],
    ['chat', '127.0.0.1:7001'],
    ['exec', '127.0.0.1:7002'],
  ])("%s's example is its own service's default port (%s)", async (command, example) => {
    const { code, stderr } = await runCli([command, '127.0.0.1', ...(command === 'exec' ? ['--', 'true'] : [])]);
    expect(code).toBe(2);
    expect(problemLine(stderr, command)).toBe(`sockbridge: "127.0.0.1" is not HOST:PORT (e.g. ${example})`);
  });
});
