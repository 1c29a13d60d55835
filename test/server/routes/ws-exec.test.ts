// /ws/exec against a real ExecService: output streamed as produced, exit codes, stdin, cancel and
// Ctrl-C, a closed tab killing its commands, admin-only access, and backpressure both ways.
import { afterEach, describe, expect, it } from 'vitest';
import { ExecService } from '../../../backends/exec/exec-service.js';
import { encodeExecData, decodeExecData } from '../../../protocol/exec-messages.js';
import { StdinWindows } from '../../../server/routes/ws-exec.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { EXEC_SECRET, closeAll, startGateway, track, waitFor, type TestSocket } from './ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function setup(limits: Record<string, number> = {}) {
  const service = track(new ExecService({ port: 0, secret: EXEC_SECRET, killGraceMs: 200 }));
  const { port } = await service.start();
  const gw = await startGateway({ exec: `tcp://127.0.0.1:${port}` }, limits);
  const root = await gw.open('/ws/exec', await gw.login('root', 'root-password'));
  expect(await root.json((m) => m['cmd'] === 'ready')).toMatchObject({ cmd: 'ready' });
  return { gw, root, service };
}

/** stdout (or stderr) bytes of command `id` until its exit event; returns the text and the exit. */
async function outputUntilExit(socket: TestSocket, id: string, stream: 'stdout' | 'stderr' = 'stdout') {
  const exit = await socket.json((m) => m['cmd'] === 'exit' && m['id'] === id, 10_000);
  let text = '';
  for (const m of socket.messages.filter((x) => x.binary)) {
    const data = decodeExecData(m.data);
    if (data && data.id === id && data.stream === stream) text += Buffer.from(data.payload).toString('utf8');
  }
  return { text, exit };
}

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('/ws/exec', () => {
  it('runs echo: started with a pid, stdout as binary, exit code 0; a failing command reports its code', async () => {
    const { root } = await setup();
    root.send({ cmd: 'run', id: 'e1', argv: ['echo', 'hello'] });
    const started = await root.json((m) => m['cmd'] === 'started');
    expect(started).toMatchObject({ id: 'e1', pid: expect.any(Number) });
    const { text, exit } = await outputUntilExit(root, 'e1');
    expect(text).toBe('hello\n');
    expect(exit).toMatchObject({ code: 0 });

    root.send({ cmd: 'run', id: 'e2', command: 'echo oops >&2; exit 3' });
    const failed = await outputUntilExit(root, 'e2', 'stderr');
    expect(failed.text).toBe('oops\n');
    expect(failed.exit).toMatchObject({ code: 3 });
  });

  it('streams output as it is produced, before the command ends', async () => {
    const { root } = await setup();
    root.send({ cmd: 'run', id: 's', command: 'echo one; read wait; echo two' });
    const first = decodeExecData(await root.binary())!;
    expect(Buffer.from(first.payload).toString()).toBe('one\n');
    // the command is blocked on stdin: "one" arrived while it was still running
    expect(root.messages.some((m) => !m.binary && m.data.toString().includes('"exit"'))).toBe(false);
    root.send(encodeExecData('stdin', 's', Buffer.from('go\n')));
    const { text, exit } = await outputUntilExit(root, 's');
    expect(text).toBe('two\n');
    expect(exit).toMatchObject({ code: 0 });
  });

  it('feeds stdin to cat and closes it with eof', async () => {
    const { root } = await setup();
    root.send({ cmd: 'run', id: 'c', argv: ['cat'] });
    await root.json((m) => m['cmd'] === 'started');
    root.send(encodeExecData('stdin', 'c', Buffer.from('abc\n')));
    expect(Buffer.from(decodeExecData(await root.binary())!.payload).toString()).toBe('abc\n');
    root.send(encodeExecData('stdin', 'c', Buffer.from('déf')));
    root.send({ cmd: 'stdin', id: 'c', eof: true });
    const { text, exit } = await outputUntilExit(root, 'c');
    expect(text).toBe('déf');
    expect(exit).toMatchObject({ code: 0 });
  });

  it('cancel ends a running command', async () => {
    const { root } = await setup();
    root.send({ cmd: 'run', id: 'z', argv: ['sleep', '30'] });
    const { pid } = await root.json<{ pid: number }>((m) => m['cmd'] === 'started');
    root.send({ cmd: 'cancel', id: 'z' });
    const exit = await root.json((m) => m['cmd'] === 'exit' && m['id'] === 'z');
    expect(exit['code'] === 0).toBe(false);
    await waitFor(() => !processAlive(pid), 5000, 'sleep to be gone');
  });

  it('Ctrl-C as stdin byte 0x03 interrupts a command in a pty', async () => {
    const { root } = await setup();
    // `read` is a shell builtin: no child process races the signal
    root.send({ cmd: 'run', id: 'p', command: 'echo ready; read line', pty: true, cols: 80, rows: 24 });
    const { pid } = await root.json<{ pid: number }>((m) => m['cmd'] === 'started');
    await root.binary((d) => Buffer.from(decodeExecData(d)!.payload).toString().includes('ready'));
    root.send(encodeExecData('stdin', 'p', Buffer.from([0x03])));
    const exit = await root.json((m) => m['cmd'] === 'exit' && m['id'] === 'p', 10_000);
    // SIGINT from the terminal's line discipline: the shell dies of it or exits 130
    expect(exit['signal'] === 'SIGINT' || exit['code'] === 130).toBe(true);
    await waitFor(() => !processAlive(pid), 5000, 'shell to be gone');
  });

  it('closing the browser socket kills its commands', async () => {
    const { root, gw } = await setup();
    root.send({ cmd: 'run', id: 'k', command: 'sleep 30 & echo $!; wait' });
    const { pid: shellPid } = await root.json<{ pid: number }>((m) => m['cmd'] === 'started');
    const sleepPid = Number(Buffer.from(decodeExecData(await root.binary())!.payload).toString().trim());
    expect(processAlive(sleepPid)).toBe(true);
    await root.close();
    await waitFor(() => !processAlive(sleepPid) && !processAlive(shellPid), 8000, 'sleep to be killed');
    // and the gateway still serves the next tab
    const next = await gw.open('/ws/exec', await gw.login('root', 'root-password'));
    await next.json((m) => m['cmd'] === 'ready');
  });

  it('an exec service that refuses the gateway\'s secret shows exec down and closes the socket with 1011', async () => {
    const service = track(new ExecService({ port: 0, secret: 'a-different-secret-0123456789' }));
    const { port } = await service.start();
    const gw = await startGateway({ exec: `tcp://127.0.0.1:${port}` });
    const root = await gw.open('/ws/exec', await gw.login('root', 'root-password'));
    expect((await root.closed).code).toBe(1011);
    expect(gw.app.healthRegistry.get('exec')).toMatchObject({ status: 'down', reason: expect.stringContaining('secret') });
  });

  it('a user account is refused with 403 before any upgrade', async () => {
    const { gw } = await setup();
    await expect(gw.open('/ws/exec', await gw.login('alice', 'alice-password'))).rejects.toMatchObject({ status: 403 });
  });

  it('a browser-sent auth or a stdout message closes the socket', async () => {
    const { root, gw } = await setup();
    root.send({ cmd: 'auth', secret: 'guess-guess-guess' });
    expect(await root.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_CMD_RESERVED' });
    expect((await root.closed).code).toBe(1008);
    const again = await gw.open('/ws/exec', await gw.login('root', 'root-password'));
    await again.json((m) => m['cmd'] === 'ready');
    again.send(encodeExecData('stdout', 'x', Buffer.from('spoof')));
    expect(await again.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_BINARY_INVALID' });
    expect((await again.closed).code).toBe(1003);
  });

  it('a browser that stops reading pauses the command output: the gateway buffers about highWater, not everything', async () => {
    const highWater = 64 * 1024;
    const total = 16 * 1024 * 1024;
    const { root, gw } = await setup({ wsHighWaterBytes: highWater });
    root.ws.pause();
    root.send({ cmd: 'run', id: 'big', command: `head -c ${total} /dev/zero` });
    const [serverSide] = [...gw.app.websocketServer.clients];
    // let the output run into the paused browser
    await new Promise((r) => setTimeout(r, 700));
    // one relayed chunk may overshoot the mark; without backpressure this is megabytes
    expect(serverSide!.bufferedAmount).toBeLessThan(highWater + 512 * 1024);
    root.ws.resume();
    let received = 0;
    await waitFor(() => {
      for (const m of root.messages.splice(0)) {
        if (m.binary) received += decodeExecData(m.data)!.payload.length;
        else if (m.data.toString().includes('"exit"')) return true;
      }
      return false;
    }, 15_000, 'exit');
    for (const m of root.messages.splice(0)) if (m.binary) received += decodeExecData(m.data)!.payload.length;
    expect(received).toBe(total);
  });

  // Regression: the gateway wrote stdin without the service's window, so a paste into a command that
  // never reads its stdin made the service stop reading the whole connection.
  describe('stdin window (StartedEvent.stdinWindow)', () => {
    const chunk = Buffer.alloc(60 * 1024, 0x61);

    /** Runs `sleep 30` as `nr` and pastes 6 MB into it, far past its window and the gateway's queue. */
    async function pasteIntoSleep(root: TestSocket) {
      root.send({ cmd: 'run', id: 'nr', argv: ['sleep', '30'] });
      const { pid } = await root.json<{ pid: number }>((m) => m['cmd'] === 'started' && m['id'] === 'nr');
      for (let i = 0; i < 100; i++) root.send(encodeExecData('stdin', 'nr', chunk));
      // what does not fit is refused, not buffered: the browser hears it for that command
      expect(await root.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_EXEC_STDIN_FULL', id: 'nr' });
      return pid;
    }

    it('a command that ignores its stdin: excess stdin is refused, while other commands and cancel still work', async () => {
      const { root } = await setup();
      const pid = await pasteIntoSleep(root);
      root.send({ cmd: 'run', id: 'other', argv: ['echo', 'still here'] });
      const { text, exit } = await outputUntilExit(root, 'other');
      expect(text).toBe('still here\n');
      expect(exit).toMatchObject({ code: 0 });
      root.send({ cmd: 'cancel', id: 'nr' });
      expect(await root.json((m) => m['cmd'] === 'exit' && m['id'] === 'nr')).toMatchObject({ reason: 'cancelled' });
      await waitFor(() => !processAlive(pid), 5000, 'sleep to be gone');
      // the browser socket was never paused for it: the gateway read every message
      expect(root.ws.bufferedAmount).toBe(0);
    });

    it('closing the tab while a command ignores its stdin still kills it', async () => {
      const { root } = await setup();
      const pid = await pasteIntoSleep(root);
      await root.close();
      await waitFor(() => !processAlive(pid), 5000, 'sleep to be killed');
    });

    it('limits.execMaxQueuedStdinBytes bounds what waits in the gateway (default 4 MiB)', async () => {
      const refusals = async (limits: Record<string, number>) => {
        const { root } = await setup(limits);
        root.send({ cmd: 'run', id: 'nr', argv: ['sleep', '30'] });
        await root.json((m) => m['cmd'] === 'started' && m['id'] === 'nr');
        // 1.3 MB: one 1 MiB window in flight (plus the ~64 KiB pipe the service can hand on), the rest waiting
        for (let i = 0; i < 22; i++) root.send(encodeExecData('stdin', 'nr', chunk));
        // the gateway handles a socket's messages in order: any refusal precedes this run's exit
        root.send({ cmd: 'run', id: 'after', argv: ['true'] });
        await root.json((m) => m['cmd'] === 'exit' && m['id'] === 'after');
        root.send({ cmd: 'cancel', id: 'nr', signal: 'SIGKILL' });
        return root.messages.filter((m) => !m.binary && m.data.toString().includes('SB_ERR_EXEC_STDIN_FULL')).length;
      };
      expect(await refusals({})).toBe(0);
      expect(await refusals({ execMaxQueuedStdinBytes: 64 * 1024 })).toBeGreaterThan(0);
    });

    it('stdin past one window waits for stdin-ack and reaches the command whole and in order, eof last', async () => {
      const { root } = await setup();
      root.send({ cmd: 'run', id: 'wc', argv: ['wc', '-c'] });
      // sent before `started`: it waits in the gateway until the window is known
      const count = 34; // 34 × 60 KiB ≈ 2 MiB: one window in flight and one waiting, never refused
      for (let i = 0; i < count; i++) root.send(encodeExecData('stdin', 'wc', chunk));
      root.send({ cmd: 'stdin', id: 'wc', eof: true });
      const { text, exit } = await outputUntilExit(root, 'wc');
      expect(text.trim()).toBe(String(count * chunk.length));
      expect(exit).toMatchObject({ code: 0 });
      expect(root.messages.some((m) => !m.binary && m.data.toString().includes('SB_ERR_EXEC_STDIN_FULL'))).toBe(false);
    });
  });
});

describe('StdinWindows', () => {
  /** Records what would be sent to the service, as `id:bytes` and `id:eof`. */
  function windows(maxQueued = 4 * 1024 * 1024) {
    const sent: string[] = [];
    const w = new StdinWindows((frame, body) => sent.push(frame.eof ? `${frame.id}:eof` : `${frame.id}:${body?.length ?? 0}`), maxQueued);
    return { w, sent };
  }
  const bytes = (n: number) => new Uint8Array(n);

  it('sends nothing before started, then up to the window; each ack lets as much more through; eof after the bytes', () => {
    const { w, sent } = windows();
    w.onRun('a');
    expect(w.write('a', bytes(70))).toBeUndefined();
    expect(w.write('a', undefined, true)).toBeUndefined();
    expect(sent).toEqual([]);
    w.onStarted('a', 50);
    expect(sent).toEqual(['a:50']);
    w.onAck('a', 10);
    expect(sent).toEqual(['a:50', 'a:10']);
    w.onAck('a', 40);
    expect(sent).toEqual(['a:50', 'a:10', 'a:10', 'a:eof']);
  });

  it('refuses a whole message past one more window, keeps the command\'s order, and accepts again after acks', () => {
    const { w, sent } = windows();
    w.onRun('a');
    w.onStarted('a', 100);
    expect(w.write('a', bytes(100))).toBeUndefined(); // in flight
    expect(w.write('a', bytes(60))).toBeUndefined(); // waits
    expect(w.write('a', bytes(41))?.code).toBe('SB_ERR_EXEC_STDIN_FULL'); // 60 + 41 > one window
    expect(w.write('a', bytes(40))).toBeUndefined(); // 100 waiting: exactly one window
    expect(sent).toEqual(['a:100']);
    w.onAck('a', 100);
    expect(sent).toEqual(['a:100', 'a:60', 'a:40']);
  });

  it('bounds what waits per socket, and drops what waited for a command that exited or was refused', () => {
    const { w, sent } = windows(100);
    for (const id of ['a', 'b', 'c']) w.onRun(id);
    expect(w.write('a', bytes(80))).toBeUndefined();
    expect(w.write('b', bytes(30))?.code).toBe('SB_ERR_EXEC_STDIN_FULL');
    w.onError('a'); // the run was refused before it started: its 80 bytes are gone
    expect(w.write('b', bytes(30))).toBeUndefined();
    w.onStarted('b', 1000);
    w.onGone('b');
    expect(w.write('c', bytes(100))).toBeUndefined();
    expect(sent).toEqual(['b:30']);
  });

  it('a service that announces no window gets no limit; an id the gateway never ran goes straight through', () => {
    const { w, sent } = windows(10);
    w.onRun('a');
    w.onStarted('a', undefined);
    expect(w.write('a', bytes(5000))).toBeUndefined();
    expect(w.write('stranger', bytes(3))).toBeUndefined();
    expect(sent).toEqual(['a:5000', 'stranger:3']);
  });
});
