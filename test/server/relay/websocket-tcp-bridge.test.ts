// bridgeWebSocketToTcp on its own: a real ws server and client, a real TCP target, the byte counts it resolves with.
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { silentLogger } from '../../../backends/lib/tcp-service.js';
import { DEFAULT_RELAY_LIMITS } from '../../../server/relay/relay-limits.js';
import { bridgeWebSocketToTcp, type RelayStats } from '../../../server/relay/websocket-tcp-bridge.js';
import { patternBytes, sha256, startTarget, type TestTarget } from './relay-targets.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A WebSocket server whose every connection is bridged to `target`; `relays` resolve with their stats. */
async function bridgeServer(target: TestTarget) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  const relays: Promise<RelayStats>[] = [];
  wss.on('connection', (ws) => relays.push(bridgeWebSocketToTcp(ws, { host: '127.0.0.1', port: target.port }, DEFAULT_RELAY_LIMITS, silentLogger)));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => resolve());
  }));
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, relays };
}

/** A target that keeps what it receives and resolves `ended` with it on FIN. */
async function sinkTarget() {
  let ended!: (data: Buffer) => void;
  const received = new Promise<Buffer>((r) => (ended = r));
  const target = await startTarget((socket) => {
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('end', () => {
      ended(Buffer.concat(got));
      socket.end();
    });
  });
  cleanups.push(() => target.close());
  return { target, received };
}

describe('bridgeWebSocketToTcp', () => {
  it('writes a burst of small browser messages to the target in a few coalesced writes, in order', async () => {
    const { target, received } = await sinkTarget();
    const { url, relays } = await bridgeServer(target);
    const ws = new WebSocket(url, 'binary');
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    const messages = 2000;
    const payload = patternBytes(messages * 100, 7);
    // Sent in one go: the relay reads them in a few socket reads within one event-loop turn or so.
    for (let i = 0; i < messages; i++) ws.send(payload.subarray(i * 100, (i + 1) * 100));
    ws.send(Buffer.alloc(0)); // an empty message writes nothing
    ws.close(1000);
    const data = await received;
    expect(sha256(data)).toBe(sha256(payload));
    const stats = await relays[0]!;
    expect(stats.up).toBe(payload.length);
    // One write() per message would be 2000; coalescing per event-loop turn leaves a handful.
    expect(stats.upWrites).toBeGreaterThanOrEqual(1);
    expect(stats.upWrites).toBeLessThan(messages / 20);
  });

  it('relays each message at once when they come one at a time (the echo round trip is not held back)', async () => {
    const echo = await startTarget((socket) => socket.pipe(socket));
    cleanups.push(() => echo.close());
    const { url, relays } = await bridgeServer(echo);
    const ws = new WebSocket(url, 'binary');
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    for (let i = 0; i < 20; i++) {
      const message = patternBytes(64, i);
      const reply = once(ws, 'message') as Promise<[Buffer]>;
      ws.send(message);
      const [back] = await reply;
      expect(sha256(back)).toBe(sha256(message));
    }
    ws.close(1000);
    const stats = await relays[0]!;
    expect(stats.up).toBe(20 * 64);
    expect(stats.upWrites).toBe(20);
  });
});
