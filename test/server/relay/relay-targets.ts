// TCP targets for relay tests: real servers on 127.0.0.1:0 that echo, send-and-close, or just count.
import net, { type AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { WebSocket } from 'ws';

// ---- teardown shared by the relay test files ----

const cleanups: (() => Promise<unknown> | void)[] = [];

/** Registers teardown for runCleanups; the newest runs first. */
export function onCleanup(fn: () => Promise<unknown> | void): void {
  cleanups.push(fn);
}

/** Call from afterEach. */
export async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

/** A target that runCleanups closes. */
export async function target(make: () => Promise<TestTarget>): Promise<TestTarget> {
  const t = await make();
  onCleanup(() => t.close());
  return t;
}

export interface TestTarget {
  server: net.Server;
  port: number;
  /** connections accepted so far */
  accepted: number;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export async function startTarget(onConnection: (socket: net.Socket) => void = () => {}): Promise<TestTarget> {
  const sockets = new Set<net.Socket>();
  const target: TestTarget = {
    server: net.createServer((socket) => {
      target.accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      onConnection(socket);
    }),
    port: 0,
    accepted: 0,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => target.server.close(() => resolve()));
    },
  };
  target.server.listen(0, '127.0.0.1');
  await once(target.server, 'listening');
  target.port = (target.server.address() as AddressInfo).port;
  return target;
}

/** Echoes every byte back, respecting backpressure (pipe). */
export const startEchoTarget = () => startTarget((socket) => socket.pipe(socket));

/** Deterministic pseudo-random bytes, so a corrupted or reordered byte is caught. */
export function patternBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Opens a client WebSocket and waits for it to be open (rejects on an HTTP refusal, with .status). */
export async function openClient(url: string, options: { protocols?: string[]; headers?: Record<string, string>; maxPayload?: number } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options.protocols ?? ['binary'], { headers: options.headers, perMessageDeflate: false, maxPayload: options.maxPayload ?? 256 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
  return ws;
}

/** The error code in an HTTP refusal's JSON body. */
export function refusalCode(err: unknown): string | undefined {
  try {
    return (JSON.parse((err as { body: string }).body) as { error: { code: string } }).error.code;
  } catch {
    return undefined;
  }
}

/** Collects every binary byte until the socket closes; resolves with the bytes and the close code/reason. */
export function collectUntilClose(ws: WebSocket): Promise<{ data: Buffer; code: number; reason: string }> {
  const parts: Buffer[] = [];
  ws.on('message', (d: Buffer) => parts.push(d));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ data: Buffer.concat(parts), code, reason: reason.toString() })));
}

/** Resolves once `n` bytes have arrived. */
export function receiveBytes(ws: WebSocket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  return new Promise((resolve, reject) => {
    const onMessage = (d: Buffer) => {
      parts.push(d);
      have += d.length;
      if (have >= n) {
        ws.off('message', onMessage);
        resolve(Buffer.concat(parts));
      }
    };
    ws.on('message', onMessage);
    ws.once('close', (code) => reject(new Error(`closed (${code}) after ${have} of ${n} bytes`)));
  });
}

/** Polls until `read()` returns the same value `times` times in a row (a stalled flow). */
export async function settled(read: () => number, times = 4, everyMs = 50): Promise<number> {
  let last = read();
  let same = 0;
  for (let i = 0; i < 400 && same < times; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * Sends a WebSocket upgrade request with the path exactly as given (no URL normalization, unlike a
 * WebSocket client, which turns `%2e%2e/` into `../` and resolves it) and returns the HTTP answer.
 */
export function rawUpgrade(base: string, path: string, headers: Record<string, string>, protocol = 'binary'): Promise<{ status: number; code: string | undefined }> {
  const url = new URL(base.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path,
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-protocol': protocol,
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, code: undefined });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: refusalCode({ body }) }));
    });
    req.on('error', reject);
    req.end();
  });
}
