// `sockbridge serve` before a service is chosen: --help is help (stdout, exit 0), and a missing or
// unknown service is named in the usage error (exit 2). Runs the built CLI (`npm run build:server`).
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.js';

describe('sockbridge serve', () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: sockbridge serve chat\|exec\|files\|time /);
    expect(stderr).toBe('');
  });

  it('names an unknown service, and says when none was given, with exit 2', async () => {
    const unknown = await runCli(['serve', 'bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^sockbridge: unknown service "bogus"\nusage: sockbridge serve /);
    const none = await runCli(['serve']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^sockbridge: which service\?\nusage: sockbridge serve /);
  });
});
