// The codebase is strict TypeScript end to end: a type error anywhere fails the suite,
// not just an editor squiggle. (Vitest itself strips types without checking them.)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

async function check(command: string, args: string[]): Promise<string> {
  try {
    await run(command, args, { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    return '';
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message;
  }
}

describe('typecheck', () => {
  it('server, backends, protocol, tests and benchmarks pass tsc --strict', async () => {
    expect(await check(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'])).toBe('');
  }, 180_000);

  it('the Svelte web client passes svelte-check', async () => {
    expect(await check(process.execPath, ['node_modules/svelte-check/bin/svelte-check', '--tsconfig', 'web/tsconfig.json', '--output', 'machine'])).toBe('');
  }, 180_000);
});
