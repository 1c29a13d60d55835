// RelayServer (sockbridge relay's engine) end to end: a real ws client, the real relay, real TCP targets.
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { RelayServer, type RelayOptions } from '../../../server/relay/relay-server.js';
import { MAX_READ_BYTES } from '../../../server/relay/websocket-tcp-bridge.js';
import {
  collectUntilClose,
  onCleanup,
  openClient,
  patternBytes,
  receiveBytes,
  refusalCode,
  runCleanups,
  settled,
  sha256,
  startEchoTarget,
  startTarget,
  target,
  type TestTarget,
} from './relay-targets.js';

afterEach(async () => {
  await runCleanups();
});

async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function relayTo(target: TestTarget | number, options: Partial<RelayOptions> = {}) {
  const port = typeof target === 'number' ? target : target.port;
  const relay = new RelayServer({ port: 0, target: `127.0.0.1:${port}`, ...options });
  const address = await relay.start();
  onCleanup(() => relay.close());
  return { relay, url: `ws://127.0.0.1:${address.port}/` };
}

async function client(url: string, options: Parameters<typeof openClient>[1] = {}): Promise<WebSocket> {
  const ws = await openClient(url, options);
  onCleanup(() => ws.terminate());
  return ws;
}

describe('RelayServer', () => {
  it('echoes several MB byte for byte, with the binary subprotocol', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo);
    const ws = await client(url);
    expect(ws.protocol).toBe('binary');
    const payload = patternBytes(6 * 1024 * 1024);
    const received = receiveBytes(ws, payload.length);
    for (let off = 0; off < payload.length; off += 100_000) ws.send(payload.subarray(off, off + 100_000));
    const back = await received;
    expect(back.length).toBe(payload.length);
    expect(sha256(back)).toBe(sha256(payload));
  });

  it('serves a client offering no subprotocol (binary, as websockify) and picks binary from a list', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo);
    const plain = await client(url, { protocols: [] });
    expect(plain.protocol).toBe('');
    const both = await client(url, { protocols: ['base64', 'binary'] });
    expect(both.protocol).toBe('binary');
    const got = receiveBytes(plain, 3);
    plain.send(Buffer.from('abc'));
    expect((await got).toString()).toBe('abc');
  });

  it('refuses a client offering only base64 before connecting to the target', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo);
    const err = await openClient(url, { protocols: ['base64'] }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(400);
    expect(refusalCode(err)).toBe('SB_ERR_RAW_SUBPROTOCOL');
    expect(echo.accepted).toBe(0);
  });

  it('delivers every byte the target sent before it closed, then closes 1000 (the tail websockify 0.10 drops)', async () => {
    const payload = patternBytes(1024 * 1024, 7);
    const source = await target(() => startTarget((socket) => socket.end(payload)));
    const { url } = await relayTo(source);
    const ws = await client(url);
    const { data, code } = await collectUntilClose(ws);
    expect(data.length).toBe(payload.length);
    expect(sha256(data)).toBe(sha256(payload));
    expect(code).toBe(1000);
  });

  it('ends the target after the browser closes, with everything the browser sent written first', async () => {
    const got: Buffer[] = [];
    let ended!: () => void;
    const targetEnded = new Promise<void>((r) => (ended = r));
    const sink = await target(() =>
      startTarget((socket) => {
        socket.on('data', (d: Buffer) => got.push(d));
        socket.on('end', () => ended());
      }),
    );
    const { url } = await relayTo(sink);
    const ws = await client(url);
    const payload = patternBytes(2 * 1024 * 1024, 3);
    for (let off = 0; off < payload.length; off += 256 * 1024) ws.send(payload.subarray(off, off + 256 * 1024));
    ws.close(1000);
    await targetEnded;
    expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
  });

  it('keeps reading the target bounded when the browser reads slowly, and loses nothing', async () => {
    const total = 96 * 1024 * 1024;
    const chunk = patternBytes(256 * 1024, 11);
    let written = 0;
    const source = await target(() =>
      startTarget((socket) => {
        const pump = () => {
          while (written < total) {
            written += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
          socket.end();
        };
        pump();
      }),
    );
    const { url, relay } = await relayTo(source, { highWaterBytes: 256 * 1024 });
    const ws = await client(url);
    ws.pause(); // a browser that stops reading
    const stalledAt = await settled(() => written);
    // Only kernel socket buffers and the relay's high-water mark may hold data: far less than the total.
    expect(stalledAt).toBeLessThan(total / 2);
    // What the relay itself holds: the high-water mark, plus the one read that crossed it, plus frame headers.
    expect(relay.bufferedAmounts()).toHaveLength(1);
    expect(relay.bufferedAmounts()[0]).toBeLessThanOrEqual(256 * 1024 + MAX_READ_BYTES + 64);
    let have = 0;
    let ok = true;
    ws.on('message', (d: Buffer) => {
      for (let i = 0; i < d.length; i += 4096) if (d[i] !== chunk[(have + i) % chunk.length]) ok = false;
      have += d.length;
    });
    const closed = once(ws, 'close');
    ws.resume();
    const [code] = (await closed) as [number];
    expect(have).toBe(total);
    expect(ok).toBe(true);
    expect(code).toBe(1000);
  });

  it('stops reading the browser while the target does not read, and loses nothing', async () => {
    const got: Buffer[] = [];
    let have = 0;
    let accepted!: (socket: import('node:net').Socket) => void;
    const targetSocket = new Promise<import('node:net').Socket>((r) => (accepted = r));
    const sink = await target(() =>
      startTarget((socket) => {
        socket.pause(); // a target that does not read
        socket.on('data', (d: Buffer) => {
          got.push(d);
          have += d.length;
        });
        accepted(socket);
      }),
    );
    const { url } = await relayTo(sink, { highWaterBytes: 64 * 1024 });
    const ws = await client(url);
    const socket = await targetSocket;
    const total = 48 * 1024 * 1024;
    const payload = patternBytes(total, 5);
    for (let off = 0; off < total; off += 256 * 1024) ws.send(payload.subarray(off, off + 256 * 1024));
    await settled(() => ws.bufferedAmount);
    // The relay paused its WebSocket: most of the payload is still queued in the client, not the relay.
    expect(ws.bufferedAmount).toBeGreaterThan(total / 2);
    const all = new Promise<void>((resolve) => socket.on('data', () => have >= total && resolve()));
    socket.resume();
    await all;
    expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
  });

  it('closes 1009 on a message over maxMessageBytes and keeps serving others', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo, { maxMessageBytes: 4096 });
    const big = await client(url);
    const closed = collectUntilClose(big);
    big.send(Buffer.alloc(4097));
    expect((await closed).code).toBe(1009);
    const ok = await client(url);
    const got = receiveBytes(ok, 4096);
    ok.send(Buffer.alloc(4096, 1));
    expect((await got).length).toBe(4096);
  });

  it('ignores a path or query naming another target: the fixed target is the only one reached', async () => {
    const echo = await target(startEchoTarget);
    const other = await target(() => startTarget());
    const { url } = await relayTo(echo);
    for (const path of [`?target=127.0.0.1:${other.port}`, `?host=127.0.0.1&port=${other.port}`, `127.0.0.1:${other.port}`, `ws/raw/other`]) {
      const ws = await client(url + path);
      const got = receiveBytes(ws, 2);
      ws.send(Buffer.from('hi'));
      expect((await got).toString()).toBe('hi');
    }
    expect(other.accepted).toBe(0);
    expect(echo.accepted).toBe(4);
  });

  it('closes 1011 with SB_ERR_CONNECT when the target refuses', async () => {
    const gone = await startTarget();
    const port = gone.port;
    await gone.close();
    const { url } = await relayTo(port);
    const ws = await client(url);
    const { code, reason } = await collectUntilClose(ws);
    expect(code).toBe(1011);
    expect(reason).toBe('SB_ERR_CONNECT');
  });

  it('closes the browser socket when the target closes, and the target when the browser goes', async () => {
    const echo = await target(startEchoTarget);
    const { url, relay } = await relayTo(echo);
    const ws = await client(url);
    await settled(() => echo.sockets.size, 2, 20);
    const ended = once([...echo.sockets][0]!, 'end');
    ws.close();
    await ended;
    const ws2 = await client(url);
    const closed = collectUntilClose(ws2);
    await settled(() => echo.sockets.size, 2, 20);
    for (const s of echo.sockets) s.end();
    expect((await closed).code).toBe(1000);
    await settled(() => relay.connectionCount, 2, 20);
    expect(relay.connectionCount).toBe(0);
  });

  it('refuses an Origin not in --origin, and connections over maxConnections', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo, { origins: ['http://good.example'], maxConnections: 1 });
    const bad = await openClient(url, { headers: { origin: 'http://evil.example' } }).catch((e: unknown) => e);
    expect((bad as { status: number }).status).toBe(403);
    expect(refusalCode(bad)).toBe('SB_ERR_ORIGIN_REJECTED');
    await client(url, { headers: { origin: 'http://good.example' } });
    const over = await openClient(url, { headers: { origin: 'http://good.example' } }).catch((e: unknown) => e);
    expect(refusalCode(over)).toBe('SB_ERR_RATE_LIMITED');
    expect(echo.accepted).toBe(1);
  });

  it('drops a browser that stops answering pings, and ends its target connection', async () => {
    let targetClosed!: () => void;
    const closed = new Promise<void>((r) => (targetClosed = r));
    const sink = await target(() => startTarget((s) => s.on('close', () => targetClosed()).resume()));
    const { url } = await relayTo(sink, { heartbeatMs: 1000 });
    const ws = new WebSocket(url, ['binary'], { autoPong: false });
    onCleanup(() => ws.terminate());
    const { code } = await collectUntilClose(ws);
    expect(code).toBe(1006); // terminated, no closing handshake
    await closed;
  });

  it('close() ends each relay with 1001 "server shutting down" and a closing handshake, as the gateway does, and ends its target', async () => {
    let targetClosed!: () => void;
    const closed = new Promise<void>((r) => (targetClosed = r));
    const sink = await target(() => startTarget((s) => s.on('close', () => targetClosed()).resume()));
    const { relay, url } = await relayTo(sink);
    const ws = await client(url);
    const seen = collectUntilClose(ws);
    await relay.close();
    expect(await seen).toMatchObject({ code: 1001, reason: 'server shutting down' });
    await closed;
  });

  it('close() stays prompt: a client that never answers the 1001 is dropped after a short grace', async () => {
    const echo = await target(startEchoTarget);
    const { relay, url } = await relayTo(echo);
    const ws = await client(url);
    // A client that reads nothing never sees the close frame, so never answers it.
    (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const started = Date.now();
    await relay.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
    expect(relay.connectionCount).toBe(0);
  });

  it('close() resolves and frees the port when a client answers the 1001 with a bad frame (an invalid opcode)', async () => {
    const echo = await target(startEchoTarget);
    const { relay, url } = await relayTo(echo);
    const port = Number(new URL(url).port);
    const socket = net.connect(port, '127.0.0.1');
    onCleanup(() => void socket.destroy());
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await until(() => received.includes('\r\n\r\n'), 'the 101');
    expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
    const closing = relay.close();
    // the relay's Close frame (RFC 6455 §5.5.1: opcode 0x8), then the client's answer: a frame with
    // opcode 0x3, reserved (§5.2), which the relay's ws receiver rejects with an 'error'
    await until(() => received.includes(Buffer.from([0x88])), 'the 1001 Close frame');
    socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    await expect(closing).resolves.toBeUndefined();
    expect(relay.connectionCount).toBe(0);
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => again.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((r) => again.close(r));
  });

  it('closes 1011 SB_ERR_TIMEOUT when connecting to the target takes longer than connectTimeoutMs', async () => {
    // A listener that never accepts, its accept queue filled: the kernel drops further SYNs, so a
    // connection attempt hangs (as to a firewalled host) instead of being refused.
    const stalled = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)']);
    onCleanup(() => void stalled.kill());
    const [line] = (await once(stalled.stdout, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    const fillers = Array.from({ length: 4 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
    onCleanup(() => fillers.forEach((f) => f.destroy()));
    const { url } = await relayTo(port, { connectTimeoutMs: 500 });
    const ws = await client(url);
    const { code, reason } = await collectUntilClose(ws);
    expect(code).toBe(1011);
    expect(reason).toBe('SB_ERR_TIMEOUT');
  });

  it('closes an idle relay after idleTimeoutMs', async () => {
    const echo = await target(startEchoTarget);
    const { url } = await relayTo(echo, { idleTimeoutMs: 1000 });
    const ws = await client(url);
    const { code, reason } = await collectUntilClose(ws);
    expect(code).toBe(1011);
    expect(reason).toBe('SB_ERR_TIMEOUT');
  });
});
