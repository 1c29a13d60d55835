// The exec service end to end: real sockets on 127.0.0.1, real processes.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { STDIN_WINDOW_BYTES } from '../../../backends/exec/exec-session.js';
import { ExecService } from '../../../backends/exec/exec-service.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { alive, closeAll, collect, connect, rawConnect, SECRET, sha256, startExec, waitGone } from './exec-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('options', () => {
  it('refuses a missing or short secret', () => {
    expect(() => new ExecService({ port: 0 })).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
    expect(() => new ExecService({ port: 0, secret: 'short' })).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
  });

  it('refuses a cwd that is not a directory, and runs commands in the one given', async () => {
    expect(() => new ExecService({ port: 0, secret: SECRET, cwd: '/nonexistent/dir' })).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
    const dir = await tempDir();
    const { port } = await startExec({ cwd: dir });
    const client = await connect(port);
    expect((await collect(client.run({ argv: ['pwd'] }))).stdout.toString()).toBe(`${dir}\n`);
  });

  it('has safe defaults', () => {
    const { options } = new ExecService({ secret: SECRET });
    expect(options).toMatchObject({ host: '127.0.0.1', port: 7002, allow: null, maxConcurrent: 8, timeoutMs: 600_000, authTimeoutMs: 10_000 });
    expect(options).toMatchObject({ killGraceMs: 2000, maxStdinFrameBytes: 1024 * 1024, dataWaitMs: 10_000, pty: true, cwd: null, shell: '/bin/sh' });
    expect(options.maxOutputBytes).toBe(1024 ** 3);
  });
});

describe('authentication', () => {
  it('refuses a run sent before auth, and nothing runs', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'marker');
    const { port } = await startExec();
    const peer = await rawConnect(port);
    peer.socket.write(encodeFrame({ cmd: 'run', id: 'x', command: `touch ${marker}` }));
    expect((await peer.next('error')).header['code']).toBe('SB_ERR_EXEC_AUTH_REQUIRED');
    await peer.closed;
    // A well-behaved client is served, and by the time its own command has run, the refused one never did.
    const client = await connect(port);
    const r = await collect(client.run({ command: `sleep 0.2; test -e ${marker}; echo $?` }));
    expect(r.stdout.toString()).toBe('1\n');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a wrong secret', async () => {
    const { port } = await startExec();
    await expect(connect(port, 'wrong-secret-0123456789abcdef')).rejects.toMatchObject({ code: 'SB_ERR_EXEC_AUTH_FAILED' });
    await expect(connect(port, SECRET.slice(0, -1))).rejects.toMatchObject({ code: 'SB_ERR_EXEC_AUTH_FAILED' });
  });

  it('closes a connection that does not authenticate in time', async () => {
    const { port } = await startExec({ authTimeoutMs: 100 });
    const peer = await rawConnect(port);
    expect((await peer.next('error')).header['code']).toBe('SB_ERR_EXEC_AUTH_REQUIRED');
    await peer.closed;
  });

  it('never logs the secret, a wrong guess or a command line', async () => {
    let log = '';
    const logger = pino({ level: 'trace' }, new Writable({ write: (chunk, _enc, done) => ((log += String(chunk)), done()) }));
    const service = new ExecService({ port: 0, secret: SECRET }, { logger });
    const { port: logged } = await service.start();
    try {
      await expect(connect(logged, 'a-wrong-guess-0123456789')).rejects.toMatchObject({ code: 'SB_ERR_EXEC_AUTH_FAILED' });
      const client = await connect(logged);
      await collect(client.run({ command: 'echo private-argument' }));
      await client.close();
    } finally {
      await service.close();
    }
    expect(log).toContain('exec started'); // the logger was used…
    expect(log).not.toContain(SECRET); // …and kept these out
    expect(log).not.toContain('a-wrong-guess');
    expect(log).not.toContain('private-argument');
  });

  it('accepts auth and run in one write (pipelined)', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    peer.socket.write(Buffer.concat([encodeFrame({ cmd: 'auth', secret: SECRET }), encodeFrame({ cmd: 'run', id: 'a', argv: ['echo', 'ok'] })]));
    expect((await peer.next('ready')).header).toMatchObject({ allow: null, pty: true });
    expect((await peer.next('stdout')).body.toString()).toBe('ok\n');
    expect((await peer.next('exit')).header).toMatchObject({ id: 'a', code: 0, signal: null });
  });
});

describe('running commands', () => {
  it('streams stdout and stderr in order, as produced, before the exit', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ command: 'printf a; sleep 0.2; printf b >&2; sleep 0.2; printf c; sleep 0.2; printf d >&2' });
    const first = new Promise<boolean>((resolve) => job.once('stdout', () => resolve(alive(job.pid!))));
    let exited = false;
    job.on('exit', () => (exited = true));
    const r = collect(job);
    expect(await first).toBe(true); // the command was still running when its first bytes arrived
    expect(exited).toBe(false);
    expect((await r).events).toEqual([
      { stream: 'stdout', text: 'a' },
      { stream: 'stderr', text: 'b' },
      { stream: 'stdout', text: 'c' },
      { stream: 'stderr', text: 'd' },
    ]);
  });

  it('passes 50 MB of output byte-exact', async () => {
    const dir = await tempDir();
    const copy = join(dir, 'copy');
    const { port } = await startExec();
    const client = await connect(port);
    const r = await collect(client.run({ command: `head -c 52428800 /dev/urandom | tee ${copy}` }));
    expect(r.exit.code).toBe(0);
    expect(r.stdout.length).toBe(52_428_800);
    expect(sha256(r.stdout)).toBe(sha256(await readFile(copy)));
  });

  it('feeds stdin (cat round trip, then eof)', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ argv: ['cat'] });
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const r = collect(job);
    for (let i = 0; i < data.length; i += 100_000) job.write(data.subarray(i, i + 100_000));
    job.end();
    const out = await r;
    expect(out.exit.code).toBe(0);
    expect(sha256(out.stdout)).toBe(sha256(data));
  });

  it('reports exit codes and signals', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    expect((await client.run({ command: 'exit 3' }).done)).toMatchObject({ code: 3, signal: null });
    const killed = await client.run({ command: 'kill -USR1 $$' }).done;
    expect(killed).toMatchObject({ code: null, signal: 'SIGUSR1' });
    expect(killed.reason).toBeUndefined();
  });

  it('reports a program that cannot be started, and keeps the connection', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    await expect(client.run({ argv: ['/nonexistent/program'] }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_SPAWN' });
    expect((await collect(client.run({ argv: ['echo', 'still'] }))).stdout.toString()).toBe('still\n');
  });

  // Regression: under a pty, node-pty reported a missing program as terminal output
  // ("execvp(3) failed.: No such file or directory") after `started`, and exit code 1.
  it.each([false, true])('refuses a program that cannot start (pty: %s) with SB_ERR_EXEC_SPAWN before `started`, naming it and why', async (pty) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'not-executable'), '#!/bin/sh\n', { mode: 0o644 });
    const { port } = await startExec({ cwd: dir });
    const peer = await rawConnect(port);
    const run = (id: string, argv: string[]) => encodeFrame({ cmd: 'run', id, argv, ...(pty ? { pty: true } : {}) });
    peer.socket.write(Buffer.concat([
      encodeFrame({ cmd: 'auth', secret: SECRET }),
      run('missing-path', ['/nonexistent/program']),
      run('missing-name', ['sockbridge-no-such-program']),
      run('not-executable', ['./not-executable']),
      run('directory', [dir]),
      run('after', ['true']),
    ]));
    await peer.next('exit');
    const byId = (id: string) => peer.frames.filter((f) => f.header['id'] === id).map((f) => f.header);
    for (const [id, reason] of [['missing-path', /"\/nonexistent\/program": no such file/], ['missing-name', /"sockbridge-no-such-program": not found in PATH/], ['not-executable', /"\.\/not-executable": not executable/], ['directory', /is a directory/]] as const) {
      expect(byId(id)).toEqual([{ cmd: 'error', code: 'SB_ERR_EXEC_SPAWN', message: expect.stringMatching(reason), id }]);
    }
    expect(byId('after').map((h) => h.cmd)).toEqual(['started', 'exit']);
  });

  it('runs several commands at once on one connection, each with its own output', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const runs = ['a', 'b', 'c'].map((x) => collect(client.run({ id: `id-${x}`, command: `for i in 1 2 3; do echo ${x}$i; sleep 0.05; done` })));
    const results = await Promise.all(runs);
    expect(results.map((r) => r.stdout.toString())).toEqual(['a1\na2\na3\n', 'b1\nb2\nb3\n', 'c1\nc2\nc3\n']);
  });

  it('refuses a duplicate id while the first runs', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const first = client.run({ id: 'same', command: 'sleep 5' });
    const peer = await rawConnect(port);
    peer.socket.write(Buffer.concat([
      encodeFrame({ cmd: 'auth', secret: SECRET }),
      encodeFrame({ cmd: 'run', id: 'dup', command: 'sleep 5' }),
      encodeFrame({ cmd: 'run', id: 'dup', command: 'true' }),
    ]));
    expect((await peer.next('error')).header).toMatchObject({ code: 'SB_ERR_EXEC_DUPLICATE_ID', id: 'dup' });
    first.cancel();
    expect((await first.done).reason).toBe('cancelled');
  });

  it('gives children a minimal environment, never the service secret', async () => {
    process.env['SOCKBRIDGE_EXEC_SECRET'] = SECRET;
    process.env['SOCKBRIDGE_SOMETHING'] = 'private-value';
    try {
      const { port } = await startExec();
      const client = await connect(port);
      const env = (await collect(client.run({ argv: ['env'] }))).stdout.toString();
      expect(env).toMatch(/^PATH=/m);
      expect(env).not.toContain(SECRET);
      expect(env).not.toContain('SOCKBRIDGE');
      expect(env).not.toContain('private-value');
    } finally {
      delete process.env['SOCKBRIDGE_EXEC_SECRET'];
      delete process.env['SOCKBRIDGE_SOMETHING'];
    }
  });
});

describe('ending commands', () => {
  /** Starts `sh` with a background grandchild, returns the job and the grandchild's pid. */
  async function withGrandchild(client: Awaited<ReturnType<typeof connect>>) {
    const job = client.run({ command: 'sleep 300 & echo $!; wait' });
    const pid = await new Promise<number>((resolve) => job.once('stdout', (c) => resolve(Number(c.toString().trim()))));
    expect(alive(pid)).toBe(true);
    return { job, pid };
  }

  it('cancel kills the whole process group (SIGTERM by default)', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const { job, pid } = await withGrandchild(client);
    job.cancel();
    expect(await job.done).toMatchObject({ reason: 'cancelled', signal: 'SIGTERM', code: null });
    expect(await waitGone(pid)).toBe(true);
  });

  it('cancel with a signal sends that signal', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const { job, pid } = await withGrandchild(client);
    job.cancel('SIGKILL');
    expect(await job.done).toMatchObject({ reason: 'cancelled', signal: 'SIGKILL' });
    expect(await waitGone(pid)).toBe(true);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const { port } = await startExec({ killGraceMs: 100 });
    const client = await connect(port);
    const job = client.run({ command: "trap '' TERM; echo armed; while :; do sleep 0.05; done" });
    await new Promise((resolve) => job.once('stdout', resolve));
    job.cancel();
    expect(await job.done).toMatchObject({ reason: 'cancelled', signal: 'SIGKILL' });
  });

  it('kills a command at its timeout', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    expect(await client.run({ command: 'sleep 30', timeoutMs: 200 }).done).toMatchObject({ reason: 'timeout', signal: 'SIGTERM' });
  });

  it("caps a command's timeout at the service's", async () => {
    const { port } = await startExec({ timeoutMs: 200 });
    const client = await connect(port);
    expect(await client.run({ command: 'sleep 30', timeoutMs: 3_600_000 }).done).toMatchObject({ reason: 'timeout' });
  });

  it('kills a command at its output limit, having sent exactly the limit', async () => {
    const { port } = await startExec({ maxOutputBytes: 100_000 });
    const client = await connect(port);
    const r = await collect(client.run({ argv: ['yes'] }));
    expect(r.exit).toMatchObject({ reason: 'output-limit', signal: 'SIGKILL' });
    expect(r.stdout.length).toBe(100_000);
  });

  it('reports the exit while a background process holds the pipes, and kills what the command left behind', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ command: 'sleep 300 & echo $!' });
    const pid = new Promise<number>((resolve) => job.once('stdout', (c) => resolve(Number(c.toString().trim()))));
    expect(await job.done).toMatchObject({ code: 0, signal: null });
    expect(await waitGone(await pid)).toBe(true);
  });

  it('keeps the output a slow client has not read yet when the main process exits', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    client.pause();
    // The shell exits at once; its background head holds the pipe and is blocked by backpressure.
    const r = collect(client.run({ command: 'head -c 16777216 /dev/zero & exit 0' }));
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the service waits for lingering pipes
    client.resume();
    const out = await r;
    expect(out.exit.code).toBe(0);
    expect(out.stdout.length).toBe(16_777_216);
  });

  it('kills running commands when the connection closes', async () => {
    const { service, port } = await startExec();
    const client = await connect(port);
    const { pid } = await withGrandchild(client);
    expect(service.runningCount).toBe(1);
    await client.close();
    expect(await waitGone(pid)).toBe(true);
    for (let i = 0; i < 200 && service.runningCount > 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(service.runningCount).toBe(0);
  });

  it('close() kills every command and waits for them', async () => {
    const { service, port } = await startExec();
    const client = await connect(port);
    const { pid } = await withGrandchild(client);
    await service.close();
    expect(service.runningCount).toBe(0);
    expect(await waitGone(pid)).toBe(true);
  });
});

describe('allow-list', () => {
  it('refuses shell strings and unlisted programs, runs listed ones', async () => {
    const { port } = await startExec({ allow: ['echo'] });
    const client = await connect(port);
    expect(client.ready.allow).toEqual(['echo']);
    await expect(client.run({ command: 'echo hi' }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
    await expect(client.run({ argv: ['ls', '/'] }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
    // A path is not its basename: /bin/echo, ./echo or /tmp/x/echo are other programs.
    await expect(client.run({ argv: ['/bin/echo', 'hi'] }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
    await expect(client.run({ argv: ['./echo'] }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
    expect((await collect(client.run({ argv: ['echo', 'hi'] }))).stdout.toString()).toBe('hi\n');
  });

  it('accepts a path when the allow-list names that exact path', async () => {
    const { port } = await startExec({ allow: ['/bin/echo'] });
    const client = await connect(port);
    expect((await collect(client.run({ argv: ['/bin/echo', 'ok'] }))).stdout.toString()).toBe('ok\n');
    await expect(client.run({ argv: ['echo', 'ok'] }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
  });
});

describe('backpressure', () => {
  it('pauses the command while the client does not read', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'finished');
    const { port } = await startExec();
    const client = await connect(port);
    client.pause();
    const job = client.run({ command: `head -c 33554432 /dev/zero; touch ${marker}` });
    const r = collect(job);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Without backpressure the service would have read all 32 MB into memory and the command finished.
    expect(existsSync(marker)).toBe(false);
    client.resume();
    const out = await r;
    expect(out.stdout.length).toBe(33_554_432);
    expect(existsSync(marker)).toBe(true);
  });

  it('keeps stdin within its window, so a command that does not read it blocks nothing else', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ command: 'sleep 30' });
    await new Promise((resolve) => job.once('started', resolve));
    const chunk = Buffer.alloc(256 * 1024);
    let written = 0;
    let stalled = false;
    while (!stalled && written < 64 * 1024 * 1024) {
      written += chunk.length;
      if (job.write(chunk)) continue;
      stalled = !(await Promise.race([
        new Promise<boolean>((resolve) => job.once('drain', () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      ]));
    }
    expect(stalled).toBe(true);
    // The window (1 MiB) stopped it, not the kernel's socket buffers (several MB).
    expect(written).toBeLessThanOrEqual(STDIN_WINDOW_BYTES + chunk.length);
    // The connection itself still flows: another command runs, and the cancel gets through.
    expect((await collect(client.run({ argv: ['echo', 'meanwhile'] }))).stdout.toString()).toBe('meanwhile\n');
    job.cancel();
    expect((await job.done).reason).toBe('cancelled');
  });

  it('stops reading the connection of a client that ignores the stdin window', async () => {
    const { service, port } = await startExec();
    const peer = await rawConnect(port);
    peer.socket.write(Buffer.concat([encodeFrame({ cmd: 'auth', secret: SECRET }), encodeFrame({ cmd: 'run', id: 's', command: 'sleep 30' })]));
    await peer.next('started');
    const frame = encodeFrame({ cmd: 'stdin', id: 's' }, Buffer.alloc(512 * 1024));
    // Write up to 64 MB, waiting for 'drain' whenever the socket is full: with the service no longer
    // reading, the kernel's buffers fill and a drain stops coming. Without the pause the service would
    // read everything into memory and every drain would come at once.
    let stalled = false;
    for (let i = 0; i < 128 && !stalled; i++) {
      if (peer.socket.write(frame)) continue;
      stalled = !(await Promise.race([
        new Promise<boolean>((resolve) => peer.socket.once('drain', () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000)),
      ]));
    }
    expect(stalled).toBe(true);
    expect(service.runningCount).toBe(1);
  });
});

describe('pseudo-terminal', () => {
  it('runs on a pty', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const r = await collect(client.run({ argv: ['tty'], pty: true, cols: 80, rows: 24 }));
    expect(r.exit.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^\/dev\/pts\/\d+\r?\n/);
  });

  it('resize changes the terminal size', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ command: 'stty size; read x; stty size', pty: true, cols: 80, rows: 24 });
    let text = '';
    const seen = (re: RegExp) => new Promise<void>((resolve) => {
      const check = () => re.test(text) && (job.off('stdout', on), resolve());
      const on = (c: Buffer) => ((text += c.toString()), check());
      job.on('stdout', on);
      check();
    });
    job.on('stdout', () => {});
    await seen(/24 80/);
    job.resize(100, 40);
    job.write('\n');
    await seen(/40 100/);
    expect((await job.done).code).toBe(0);
  });

  it('runs an interactive shell', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const job = client.run({ argv: ['sh'], pty: true });
    const r = collect(job);
    job.write('echo $((6*7))\n');
    job.write('exit 5\n');
    const out = await r;
    expect(out.stdout.toString()).toMatch(/42\r\n/); // the shell computed it: the input only holds "6*7"
    expect(out.exit.code).toBe(5);
  });

  it('delivers all of a pty\'s output before its exit', async () => {
    const { port } = await startExec();
    const client = await connect(port);
    const r = await collect(client.run({ argv: ['seq', '1', '20000'], pty: true }));
    const lines = r.stdout.toString().trim().split('\r\n');
    expect(lines).toHaveLength(20000);
    expect(lines.at(-1)).toBe('20000');
  });

  it('refuses a pty when the service disables it', async () => {
    const { port } = await startExec({ pty: false });
    const client = await connect(port);
    expect(client.ready.pty).toBe(false);
    await expect(client.run({ argv: ['tty'], pty: true }).done).rejects.toMatchObject({ code: 'SB_ERR_EXEC_NOT_ALLOWED' });
  });
});
