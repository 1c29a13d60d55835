// The web client's ReconnectingSocket (the real class, runes stubbed as plain fields) against a real
// gateway: a chat service that is down makes the gateway accept each upgrade and close it at once
// with 1011. Such a cycle must back off like a failed connect, and start over only once a connection
// works (it stays open, or the backend greets it).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatService } from '../../../../backends/chat/chat-service.js';
import { removeTempDirs, tempDir } from '../../../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, startGateway, track } from '../../../server/routes/ws-kit.js';

// A path in a variable: the server's tsc would otherwise type-check a Svelte module (web/tsconfig.json does that).
const MODULE = '../../../../web/src/lib/reconnecting-socket.svelte.js';
/** What this test uses of the class. */
interface Socket {
  status: string;
  attempts: number;
  lastError: string | null;
  gaveUp: boolean;
  tooManySockets: boolean;
  markHealthy(): void;
  retryNow(): void;
  start(): void;
  stop(): void;
  close(): void;
}
type SocketOptions = {
  url: () => string;
  onMessage: (data: string | ArrayBuffer) => void;
  onClose?: (event: { code: number; reason: string }) => void;
  minDelayMs?: number;
  maxDelayMs?: number;
  stableAfterMs?: number;
  startNow?: boolean;
};
let ReconnectingSocket: new (options: SocketOptions) => Socket;
const globals = globalThis as unknown as Record<string, unknown>;
const saved = { $state: globals['$state'], WebSocket: globals['WebSocket'] };

beforeAll(async () => {
  // Outside Svelte's compiler a rune is just its initial value.
  globals['$state'] = (value: unknown) => value;
  ({ ReconnectingSocket } = (await import(MODULE)) as { ReconnectingSocket: typeof ReconnectingSocket });
});
afterAll(() => Object.assign(globals, saved));
afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const startChat = async (port: number) =>
  track(new ChatService({ port, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN })).start();

/** The port of a chat service that ran and stopped: nothing listens there now. */
async function stoppedChatPort(): Promise<number> {
  const service = new ChatService({ port: 0, linePort: null, dataDir: await tempDir() });
  const { port } = await service.start();
  await service.close();
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
    const chatPort = await stoppedChatPort();
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
    const chatPort = await stoppedChatPort();
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
    await startChat(chatPort);
    await expect.poll(() => welcomed, { timeout: 10_000 }).toBe(true);
    expect(socket.status).toBe('up');
    await expect.poll(() => socket.attempts, { timeout: 2000 }).toBe(0);

    // markHealthy() resets it at once
    socket.attempts = 5;
    socket.markHealthy();
    expect(socket.attempts).toBe(0);
  });

  it('a socket refused for the account socket limit says so in words and retries slowly, not as an outage', async () => {
    const gw = await startGateway({}, { maxSocketsPerUser: 1 });
    const cookie = await gw.login('alice', 'alice-password');
    const holder = await gw.open('/ws/time', cookie);
    await holder.json((m) => m['cmd'] === 'status');
    const opens: number[] = [];
    globals['WebSocket'] = browserWebSocket(gw.origin, cookie, opens);
    const closes: { code: number; reason: string }[] = [];
    const socket = new ReconnectingSocket({
      url: () => `${gw.origin.replace('http', 'ws')}/ws/time`,
      onMessage: () => {},
      onClose: (event) => closes.push({ code: event.code, reason: event.reason }),
      minDelayMs: 50,
      maxDelayMs: 100,
    });
    track({ close: async () => socket.close() });
    await expect.poll(() => closes.length, { timeout: 5000 }).toBe(1);
    expect(closes[0]).toEqual({ code: 1013, reason: 'SB_ERR_TOO_MANY_SOCKETS' });
    expect(socket.status).toBe('down');
    expect(socket.tooManySockets).toBe(true);
    expect(socket.gaveUp).toBe(false);
    expect(socket.lastError).toBe('too many open connections for this account (close other tabs)');
    // the backoff alone would have retried within 100 ms; only another tab closing helps, so it waits 15 s or more
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(opens).toHaveLength(1);

    // the other tab closes; Retry gets in at once, and the socket is an ordinary working one again
    await holder.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.retryNow();
    await expect.poll(() => socket.status, { timeout: 5000 }).toBe('up');
    await expect.poll(() => socket.tooManySockets, { timeout: 5000 }).toBe(false);
    expect(opens).toHaveLength(2);
  });

  it('with startNow: false it connects only on start(); stop() closes it until the next start()', async () => {
    const gw = await startGateway({});
    const cookie = await gw.login('alice', 'alice-password');
    const opens: number[] = [];
    globals['WebSocket'] = browserWebSocket(gw.origin, cookie, opens);
    const closes: number[] = [];
    let messages = 0;
    const socket = new ReconnectingSocket({
      url: () => `${gw.origin.replace('http', 'ws')}/ws/time`,
      onMessage: () => messages++,
      onClose: (event) => closes.push(event.code),
      startNow: false,
    });
    track({ close: async () => socket.close() });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect({ status: socket.status, opens: opens.length }).toEqual({ status: 'idle', opens: 0 });
    socket.retryNow(); // the Retry button does not start an idle socket
    socket.start();
    await expect.poll(() => messages, { timeout: 5000 }).toBeGreaterThan(0);
    expect(socket.status).toBe('up');
    socket.stop();
    expect(socket.status).toBe('idle');
    await new Promise((resolve) => setTimeout(resolve, 700));
    // stopped: no reconnect (the backoff would have retried after 250-500 ms)
    expect(opens).toHaveLength(1);
    socket.start();
    await expect.poll(() => socket.status, { timeout: 5000 }).toBe('up');
    expect(opens).toHaveLength(2);
  });
});
