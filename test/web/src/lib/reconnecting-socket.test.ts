// The web client's ReconnectingSocket (the real class, runes stubbed as plain fields) against a real
// gateway: a chat service that is down makes the gateway accept each upgrade and close it at once
// with 1011. Such a cycle must back off like a failed connect, and start over only once a connection
// works (it stays open, or the backend greets it).
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatService } from '../../../../backends/chat/chat-service.js';
import type { ReconnectingSocket as ReconnectingSocketClass } from '../../../../web/src/lib/reconnecting-socket.svelte.js';
import { removeTempDirs, tempDir } from '../../../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, startGateway, track } from '../../../server/routes/ws-kit.js';

let ReconnectingSocket: typeof ReconnectingSocketClass;
const globals = globalThis as unknown as Record<string, unknown>;
const saved = { $state: globals['$state'], WebSocket: globals['WebSocket'] };

beforeAll(async () => {
  // Outside Svelte's compiler a rune is just its initial value.
  globals['$state'] = (value: unknown) => value;
  ({ ReconnectingSocket } = await import('../../../../web/src/lib/reconnecting-socket.svelte.js'));
});
afterAll(() => Object.assign(globals, saved));
afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A port nobody listens on, for now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The browser's WebSocket, as `ws` with the session cookie and Origin a page would send; counts opens. */
function browserWebSocket(origin: string, cookie: string, opens: number[]) {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { Origin: origin, Cookie: `sb_session=${cookie}` } });
      this.on('open', () => opens.push(Date.now()));
      this.on('error', () => {});
    }
  };
}

async function gatewayWithChatAt(chatPort: number) {
  const gw = await startGateway({ chat: `tcp://127.0.0.1:${chatPort}` });
  const cookie = await gw.login('alice', 'alice-password');
  return { url: `${gw.origin.replace('http', 'ws')}/ws/chat`, origin: gw.origin, cookie };
}

describe('ReconnectingSocket', () => {
  it('regression: backs off across upgrades that the gateway closes at once (backend down, 1011)', async () => {
    const chatPort = await freePort();
    const gw = await gatewayWithChatAt(chatPort);
    const opens: number[] = [];
    globals['WebSocket'] = browserWebSocket(gw.origin, gw.cookie, opens);
    const closes: number[] = [];
    const socket = new ReconnectingSocket({
      url: () => gw.url,
      onMessage: () => {},
      onClose: (event) => closes.push(event.code),
      minDelayMs: 100,
      maxDelayMs: 1600,
    });
    track({ close: async () => socket.close() });
    await expect.poll(() => opens.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    socket.close();
    expect(new Set(closes)).toEqual(new Set([1011]));
    // every upgrade succeeded, and yet the waits grew: 50-100, 100-200, 200-400, 400-800 ms
    const gaps = opens.slice(1).map((t, i) => t - opens[i]!);
    expect(gaps[3]!).toBeGreaterThanOrEqual(400);
    expect(gaps[3]!).toBeGreaterThan(gaps[0]! * 2);
    expect(socket.attempts).toBeGreaterThanOrEqual(4);
  });

  it('starts the backoff over once the backend answers, and after a connection stayed open stableAfterMs', async () => {
    const chatPort = await freePort();
    const gw = await gatewayWithChatAt(chatPort);
    const opens: number[] = [];
    globals['WebSocket'] = browserWebSocket(gw.origin, gw.cookie, opens);
    let welcomed = false;
    const socket = new ReconnectingSocket({
      url: () => gw.url,
      onMessage: (data) => (welcomed ||= typeof data === 'string' && data.includes('"welcome"')),
      minDelayMs: 50,
      maxDelayMs: 400,
      stableAfterMs: 300,
    });
    track({ close: async () => socket.close() });
    await expect.poll(() => socket.attempts, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);

    // the chat service comes up: the next upgrade stays open, and after stableAfterMs the backoff is reset
    await track(new ChatService({ port: chatPort, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN })).start();
    await expect.poll(() => welcomed, { timeout: 10_000 }).toBe(true);
    expect(socket.status).toBe('up');
    await expect.poll(() => socket.attempts, { timeout: 2000 }).toBe(0);

    // markHealthy() resets it at once
    socket.attempts = 5;
    socket.markHealthy();
    expect(socket.attempts).toBe(0);
  });
});
