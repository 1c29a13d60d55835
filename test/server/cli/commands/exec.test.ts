// `sockbridge exec`'s own errors before it connects (the exec service itself: test/backends/exec/exec-cli.test.ts).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../../helpers/tmp.js';

afterEach(removeTempDirs);

describe('sockbridge exec --secret-file', () => {
  it('a secret file that does not exist is named as a secret file, the reason in words: one line, exit 2', async () => {
    const missing = join(await tempDir(), 'nope.secret');
    const { code, stdout, stderr } = await runCli(['exec', '127.0.0.1:1', '--secret-file', missing, '--', 'true']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`sockbridge: cannot read secret file ${missing}: no such file\n`);
  });
});
