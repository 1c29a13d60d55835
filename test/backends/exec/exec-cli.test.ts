// `sockbridge serve exec` and `sockbridge exec` as a user runs them (bin/sockbridge → dist/,
// built by `npm run build:server`).
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { execOptionsSchema } from '../../../backends/exec/exec-service.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import { closeAll, rawConnect, SECRET } from './exec-fixture.js';

afterEach(async () => {
  await closeAll();
  await stopAllCli();
  await removeTempDirs();
});

async function secretFile(mode = 0o600): Promise<string> {
  const file = join(await tempDir(), 'exec.secret');
  await writeFile(file, `${SECRET}\n`);
  await chmod(file, mode);
  return file;
}

async function serve(args: string[] = []): Promise<{ address: string; secret: string; stderr: () => string }> {
  const secret = await secretFile();
  const proc = startCli(['serve', 'exec', '--port', '0', '--secret-file', secret, ...args]);
  const m = await proc.waitFor(/sockbridge exec listening on tcp:\/\/(\S+)/);
  return { address: m[1]!, secret, stderr: proc.stderr };
}

describe('sockbridge exec', () => {
  it("streams output, forwards stdin and exits with the command's code", async () => {
    const { address, secret } = await serve();
    const r = await runCli(['exec', address, '--secret-file', secret, '--', 'sh', '-c', 'cat; echo oops >&2; exit 7'], { input: 'hello\n' });
    expect(r).toMatchObject({ code: 7, stdout: 'hello\n', stderr: 'oops\n' });
  });

  it('runs a --shell string and reports a signal as 128 + its number', async () => {
    const { address, secret } = await serve();
    const r = await runCli(['exec', address, '--secret-file', secret, '--shell', 'kill -TERM $$']);
    expect(r.code).toBe(143);
  });

  it('runs on a pseudo-terminal with --tty', async () => {
    const { address, secret } = await serve();
    const r = await runCli(['exec', address, '--secret-file', secret, '--tty', '--', 'tty']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
  });

  it('carries stdout over a data connection with --data-connection, stdin and stderr as usual', async () => {
    const { address, secret } = await serve();
    const script = 'cat; seq 1 100000; echo oops >&2; exit 5';
    const r = await runCli(['exec', address, '--secret-file', secret, '--data-connection', '--', 'sh', '-c', script], { input: 'hello\n' });
    const lines = Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join('');
    expect(r).toMatchObject({ code: 5, stderr: 'oops\n' });
    expect(r.stdout).toBe(`hello\n${lines}`);
  });

  it('refuses --data-connection with --tty', async () => {
    const { address, secret } = await serve();
    const r = await runCli(['exec', address, '--secret-file', secret, '--tty', '--data-connection', '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--data-connection/);
  });

  it.each([
    ['framed stdout', []],
    ['--data-connection', ['--data-connection']],
  ])('ends the command when its reader goes away (EPIPE), without a stack trace (%s)', async (_, flags) => {
    const { address, secret } = await serve();
    const proc = startCli(['exec', address, '--secret-file', secret, ...flags, '--', 'yes']);
    proc.child.stdin.end();
    await new Promise((resolve) => proc.child.stdout.once('data', resolve));
    proc.child.stdout.destroy();
    expect(await proc.exited).toBe(143);
    expect(proc.stderr()).toBe('');
  });

  it('reads the secret from SOCKBRIDGE_EXEC_SECRET', async () => {
    const { address } = await serve();
    const r = await runCli(['exec', address, '--', 'echo', 'via env'], { env: { SOCKBRIDGE_EXEC_SECRET: SECRET } });
    expect(r).toMatchObject({ code: 0, stdout: 'via env\n' });
  });

  it('exits 127 for a program that cannot start and 126 for one that is not allowed', async () => {
    const { address, secret } = await serve(['--allow', 'echo,true']);
    expect((await runCli(['exec', address, '--secret-file', secret, '--', 'ls'])).code).toBe(126);
    const { address: open } = await serve();
    expect((await runCli(['exec', open, '--secret-file', secret, '--', '/nonexistent'])).code).toBe(127);
    const onTty = await runCli(['exec', open, '--secret-file', secret, '--tty', '--', '/nonexistent']);
    expect(onTty).toMatchObject({ code: 127, stdout: '' });
    expect(onTty.stderr).toMatch(/cannot start "\/nonexistent": no such file/);
  });

  it('fails with one line on a wrong secret, and with exit 2 on bad usage', async () => {
    const { address } = await serve();
    const wrong = await runCli(['exec', address, '--', 'true'], { env: { SOCKBRIDGE_EXEC_SECRET: 'another-secret-0123456789' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^sockbridge: wrong exec secret\n$/);
    expect((await runCli(['exec', address, '--secret-file', '/nonexistent'])).code).toBe(2);
    expect((await runCli(['exec', address], { env: { SOCKBRIDGE_EXEC_SECRET: SECRET } })).code).toBe(2);
  });
});

describe('sockbridge serve exec', () => {
  it('refuses to start without a secret', async () => {
    const r = await runCli(['serve', 'exec', '--port', '0'], { env: { SOCKBRIDGE_EXEC_SECRET: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--secret-file');
  });

  it('warns about a secret file other users can read', async () => {
    const secret = await secretFile(0o644);
    const proc = startCli(['serve', 'exec', '--port', '0', '--secret-file', secret]);
    await proc.waitFor(/listening on/);
    expect(proc.stderr()).toContain('chmod 600');
  });

  it('has a flag for every option of the service but the secret (regression: no --data-wait-ms)', async () => {
    const help = await runCli(['serve', 'exec', '--help']);
    expect(help.code).toBe(0);
    const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const flags = Object.keys(execOptionsSchema.properties).filter((key) => key !== 'secret').map((key) => (key === 'pty' ? '--no-pty' : `--${kebab(key)}`));
    for (const flag of flags) expect(help.stdout).toContain(`[${flag}`);
  });

  it('passes --data-wait-ms, --kill-grace-ms and --max-stdin-frame-bytes to the service, checked by its schema', async () => {
    for (const flag of ['--data-wait-ms', '--kill-grace-ms', '--max-stdin-frame-bytes']) {
      const bad = await runCli(['serve', 'exec', '--port', '0', '--secret-file', await secretFile(), `${flag}=-1`]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(`${flag} must be >= `);
    }
    const typo = await runCli(['serve', 'exec', '--port', 'abc', '--secret-file', await secretFile()]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe('sockbridge: --port must be an integer (got "abc")\n');
    const { address } = await serve(['--data-wait-ms', '200']);
    const peer = await rawConnect(Number(address.split(':').at(-1)));
    peer.socket.write(Buffer.concat([encodeFrame({ cmd: 'auth', secret: SECRET }), encodeFrame({ cmd: 'run', id: 'bulk', argv: ['true'], stdout: 'connection' })]));
    await peer.next('data-token');
    const startedWaiting = Date.now();
    expect((await peer.next('error')).header).toMatchObject({ code: 'SB_ERR_EXEC_DATA_TIMEOUT', id: 'bulk' });
    expect(Date.now() - startedWaiting).toBeLessThan(5000); // the default is 10 s
  });

  it('prints its allow-list', async () => {
    const secret = await secretFile();
    const proc = startCli(['serve', 'exec', '--port', '0', '--secret-file', secret, '--allow', 'ls,df', '--allow', 'uptime']);
    expect((await proc.waitFor(/allowed programs: (.*)/))[1]).toBe('ls, df, uptime');
  });
});
