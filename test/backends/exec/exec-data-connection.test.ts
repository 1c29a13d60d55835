// stdout over a data connection (RunRequest.stdout = 'connection'): real service, real sockets,
// real processes. The child writes straight into the data socket; these tests check that the bytes
// arrive whole, that every limit of a normal run still holds, and that a data connection can only
// be opened by an authenticated peer holding a fresh token of a run that is still waiting.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DATA_CONNECTION_MIN_OUTPUT_BYTES } from '../../../backends/exec/exec-session.js';
import { openDataConnection } from '../../../backends/exec/data-connection.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { alive, closeAll, collect, connect, rawConnect, SECRET, sha256, startExec, waitGone, type RawPeer } from './exec-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const MB = 1024 * 1024;

/** A raw control connection, authenticated, that asked for a data-connection run of `command`. */
async function rawRun(port: number, command: string, id = 'j1'): Promise<{ control: RawPeer; token: string }> {
  const control = await rawConnect(port);
  control.socket.write(encodeFrame({ cmd: 'auth', secret: SECRET }));
  await control.next('ready');
  control.socket.write(encodeFrame({ cmd: 'run', id, command, stdout: 'connection' }));
  const frame = await control.next('data-token');
  return { control, token: String(frame.header['dataToken']) };
}

describe('stdout over a data connection', () => {
  it('carries 20 MB byte-exactly, while stderr and the exit code still come framed on the control connection', async () => {
    const dir = await tempDir();
    const file = join(dir, 'data');
    const { port } = await startExec();
    const client = await connect(port);
    const r = await collect(client.run({ command: `head -c ${20 * MB} /dev/urandom | tee ${file}; echo to-stderr >&2; exit 3`, stdout: 'connection' }));
    expect(r.exit).toMatchObject({ code: 3, signal: null });
    expect(r.stdout.length).toBe(20 * MB);
    expect(sha256(r.stdout)).toBe(sha256(await readFile(file)));
    expect(r.stderr.toString()).toBe('to-stderr\n');
  });

  it('issues a token of at least 128 bits and starts the command only once the data connection attached', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'marker');
    const { port } = await startExec();
    const { control, token } = await rawRun(port, `touch ${marker}; echo hi`);
    expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(marker)).toBe(false);
    const { socket, head } = await openDataConnection({ host: '127.0.0.1', port, secret: SECRET }, token);
    const chunks = [head];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.resume();
    await new Promise((r) => socket.once('close', r));
    expect(Buffer.concat(chunks).toString()).toBe('hi\n');
    expect((await control.next('started')).header['pid']).toEqual(expect.any(Number));
    expect((await control.next('exit')).header).toMatchObject({ code: 0 });
    expect(existsSync(marker)).toBe(true);
  });

  it('refuses an unknown, a reused and a malformed token, and spawns nothing for them', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'marker');
    const { port, service } = await startExec();
    const endpoint = { host: '127.0.0.1', port, secret: SECRET };
    await expect(openDataConnection(endpoint, Buffer.alloc(16, 7).toString('base64url'))).rejects.toMatchObject({ code: 'SB_ERR_EXEC_DATA_TOKEN' });
    await expect(openDataConnection(endpoint, 'not a token!')).rejects.toMatchObject({ code: 'SB_ERR_BAD_REQUEST' });
    const { token } = await rawRun(port, `echo once >> ${marker}`);
    const first = await openDataConnection(endpoint, token);
    first.socket.resume();
    await new Promise((r) => first.socket.once('close', r));
    await expect(openDataConnection(endpoint, token)).rejects.toMatchObject({ code: 'SB_ERR_EXEC_DATA_TOKEN' });
    expect(await readFile(marker, 'utf8')).toBe('once\n');
    expect(service.runningCount).toBe(0);
  });

  it('refuses attach before auth, and attach on a connection that runs commands', async () => {
    const { port } = await startExec();
    const { token } = await rawRun(port, 'echo hi');
    const unauthenticated = await rawConnect(port);
    unauthenticated.socket.write(encodeFrame({ cmd: 'attach', token }));
    expect((await unauthenticated.next('error')).header['code']).toBe('SB_ERR_EXEC_AUTH_REQUIRED');
    await unauthenticated.closed;
    // The token survived the refused attempt, and a control connection cannot take it either.
    const other = await rawRun(port, 'true', 'other');
    other.control.socket.write(encodeFrame({ cmd: 'attach', token }));
    expect((await other.control.next('error')).header['code']).toBe('SB_ERR_BAD_REQUEST');
    const { socket } = await openDataConnection({ host: '127.0.0.1', port, secret: SECRET }, token);
    socket.destroy();
  });

  it('fails the run when no data connection comes in time, and spawns nothing', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'marker');
    const { port } = await startExec({ dataWaitMs: 150 });
    const { control, token } = await rawRun(port, `touch ${marker}`);
    expect((await control.next('error')).header).toMatchObject({ code: 'SB_ERR_EXEC_DATA_TIMEOUT', id: 'j1' });
    await expect(openDataConnection({ host: '127.0.0.1', port, secret: SECRET }, token)).rejects.toMatchObject({ code: 'SB_ERR_EXEC_DATA_TOKEN' });
    expect(existsSync(marker)).toBe(false);
    // The id is free again and the control connection still serves.
    const client = await connect(port);
    await expect(client.run({ command: `touch ${marker}`, stdout: 'connection', id: 'x' }).done).resolves.toMatchObject({ code: 0 });
  });

  it('cancel kills the whole process group, and the data connection closes', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ command: 'sleep 100 & echo $!; wait', stdout: 'connection' });
    const firstLine = new Promise<string>((resolve) => job.once('stdout', (c: Buffer) => resolve(c.toString())));
    const background = Number((await firstLine).trim());
    job.cancel();
    await expect(job.done).resolves.toMatchObject({ reason: 'cancelled', signal: 'SIGTERM' });
    expect(await waitGone(background)).toBe(true);
  });

  it('a cancel before the data connection came ends the run, and its token is dead', async () => {
    const { port } = await startExec();
    const { control, token } = await rawRun(port, 'echo hi');
    control.socket.write(encodeFrame({ cmd: 'cancel', id: 'j1' }));
    expect((await control.next('exit')).header).toMatchObject({ reason: 'cancelled' });
    await expect(openDataConnection({ host: '127.0.0.1', port, secret: SECRET }, token)).rejects.toMatchObject({ code: 'SB_ERR_EXEC_DATA_TOKEN' });
  });

  it('closing the control connection kills the command and closes the data connection', async () => {
    const { port, service } = await startExec();
    const { control, token } = await rawRun(port, 'echo $$; exec sleep 100');
    const { socket, head } = await openDataConnection({ host: '127.0.0.1', port, secret: SECRET }, token);
    const dataClosed = new Promise((r) => socket.once('close', r));
    let text = head.toString();
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.resume();
    const started = await control.next('started');
    const pid = Number(started.header['pid']);
    await expect.poll(() => text).toBe(`${pid}\n`);
    control.socket.destroy();
    await dataClosed;
    expect(await waitGone(pid)).toBe(true);
    await expect.poll(() => service.runningCount).toBe(0);
  });

  it('a slow reader slows the command (TCP backpressure), and nothing is lost', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ argv: ['head', '-c', String(8 * MB), '/dev/zero'], stdout: 'connection' });
    let bytes = 0;
    job.on('stdout', (c: Buffer) => (bytes += c.length));
    const pid = await new Promise<number>((resolve) => job.once('started', resolve));
    client.pause();
    await new Promise((r) => setTimeout(r, 300));
    // 8 MB cannot all fit in loopback socket buffers: the child is still blocked on its write.
    expect(alive(pid)).toBe(true);
    expect(bytes).toBeLessThan(8 * MB);
    client.resume();
    await expect(job.done).resolves.toMatchObject({ code: 0 });
    expect(bytes).toBe(8 * MB);
  });

  it('keeps the allow-list, refuses pty and refuses the mode when the output cap is lowered', async () => {
    const { port } = await startExec({ allow: ['echo'] });
    const client = await connect(port);
    await expect(client.run({ argv: ['cat', '/etc/passwd'], stdout: 'connection' }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
    expect((await collect(client.run({ argv: ['echo', 'ok'], stdout: 'connection' }))).stdout.toString()).toBe('ok\n');
    const raw = await rawConnect(port);
    raw.socket.write(encodeFrame({ cmd: 'auth', secret: SECRET }));
    await raw.next('ready');
    raw.socket.write(encodeFrame({ cmd: 'run', id: 'p', argv: ['echo'], pty: true, stdout: 'connection' }));
    expect((await raw.next('error')).header['code']).toBe('SB_ERR_BAD_REQUEST');
    const capped = await startExec({ maxOutputBytes: DATA_CONNECTION_MIN_OUTPUT_BYTES - 1 });
    const cappedClient = await connect(capped.port);
    await expect(cappedClient.run({ argv: ['echo'], stdout: 'connection' }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
  });

  // Regression: a process that left the command's group (setsid) and inherited the data connection
  // kept it open after the command exited, so the client (which reports the exit once the data
  // connection ended) never did. Framed runs were already bounded by the pipes' 1 s linger.
  describe('a process that left the group holding stdout does not hold the run open', () => {
    const escaped: number[] = [];
    afterEach(() => {
      for (const pid of escaped.splice(0)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });

    it.each([
      { mode: 'framed', stdout: undefined, holds: 'stdout and stderr', stderrRedirect: '' },
      { mode: 'framed', stdout: undefined, holds: 'stdout only', stderrRedirect: ' 2>/dev/null' },
      { mode: 'data connection', stdout: 'connection', holds: 'stdout and stderr', stderrRedirect: '' },
      { mode: 'data connection', stdout: 'connection', holds: 'stdout only', stderrRedirect: ' 2>/dev/null' },
    ] as const)('$mode, the escaped process holding $holds', async ({ stdout, stderrRedirect }) => {
      const { port } = await startExec();
      const client = await connect(port);
      // Not a group leader, so setsid(1) does not fork: $! is the escaped sleep. The shell waits until
      // it has its own session (field 6 of /proc/PID/stat), or the group kill at exit could beat setsid().
      const escape = `setsid sleep 30${stderrRedirect} & p=$!; until [ "$(cut -d' ' -f6 /proc/$p/stat)" = $p ]; do sleep 0.01; done; echo $p`;
      const job = client.run({ command: escape, ...(stdout ? { stdout } : {}) });
      let text = '';
      job.on('stdout', (c: Buffer) => (text += c.toString()));
      const tooLate = new Promise<'still running'>((r) => setTimeout(() => r('still running'), 4000).unref());
      const outcome = await Promise.race([job.done, tooLate]);
      const pid = Number(text.trim());
      if (pid > 0) escaped.push(pid);
      expect(outcome).toMatchObject({ code: 0, signal: null });
      expect(text).toMatch(/^\d+\n$/);
      expect(alive(pid)).toBe(true); // it really escaped the group kill; only its hold on the output was cut
    });
  });

  it('the per-command timeout still applies', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    await expect(client.run({ command: 'sleep 100', stdout: 'connection', timeoutMs: 200 }).done).resolves.toMatchObject({ reason: 'timeout' });
  });
});
