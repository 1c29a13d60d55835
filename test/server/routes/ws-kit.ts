// What the WebSocket route tests share: a listening gateway wired to real backends on port 0,
// logged-in `ws` clients (session cookie + matching Origin), and a message queue to await replies.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { buildApp } from '../../../server/app.js';
import { loadConfig } from '../../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../../server/gateway-options.js';
import { tempDir } from '../../helpers/tmp.js';

export const CHAT_TOKEN = 'chat-gateway-token-0123456789';
export const EXEC_SECRET = 'exec-secret-0123456789abcdef';

export interface Gateway {
  app: FastifyInstance;
  /** http://127.0.0.1:PORT */
  origin: string;
  /** logs in, creating the account on first use (`root` is an admin); returns the session cookie */
  login(username: string, password: string): Promise<string>;
  /** opens path with the user's session cookie and the gateway's own Origin */
  open(path: string, cookie: string): Promise<TestSocket>;
}

const closers: (() => Promise<void>)[] = [];

/** Call from afterEach. */
export async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
}

export function track<T extends { close(): Promise<void> }>(thing: T): T {
  closers.push(() => thing.close());
  return thing;
}

export async function startGateway(
  backends: Partial<GatewayOptions>,
  limits: Partial<GatewayOptions['limits']> = {},
  /** receives the gateway's log lines (JSON), at debug level */
  logLines?: string[],
): Promise<Gateway> {
  const data = await tempDir();
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, {
    base: {
      data,
      webRoot: `${data}/no-web`,
      chatGatewayToken: CHAT_TOKEN,
      execSecret: EXEC_SECRET,
      // an unused port: a test that needs a backend names it
      chat: 'tcp://127.0.0.1:1',
      exec: 'tcp://127.0.0.1:1',
      time: 'udp://127.0.0.1:1',
      ...backends,
      limits,
    },
  });
  const logger = logLines ? pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) }) : pino({ level: 'silent' });
  const app = await buildApp(options, { logger, probeHealth: false });
  closers.push(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const created = new Set<string>();
  return {
    app,
    origin,
    async login(username, password) {
      // accounts are made on first login (scrypt is slow on purpose): root is the admin, others users
      if (!created.has(username)) {
        await app.users.add(username, password, username === 'root' ? 'admin' : 'user');
        created.add(username);
      }
      const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username, password } });
      if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
      return res.cookies.find((c) => c.name === 'sb_session')!.value;
    },
    open: (path, cookie) => openSocket(`${origin.replace('http', 'ws')}${path}`, { Cookie: `sb_session=${cookie}`, Origin: origin }),
  };
}

/** A `ws` client that queues what it receives, so a test can await the message it expects. */
export class TestSocket {
  readonly messages: { data: Buffer; binary: boolean }[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.messages.push({ data, binary });
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // the tests assert close codes; a client-side error (e.g. a reset after close) is not the point
    ws.on('error', () => {});
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' || value instanceof Uint8Array ? value : JSON.stringify(value));
  }

  /** The next JSON text message (from the start of the queue) that matches, removed from the queue. */
  async json<T = Record<string, unknown>>(match: (m: Record<string, unknown>) => boolean = () => true, timeoutMs = 5000): Promise<T> {
    const found = await this.take((m) => !m.binary && match(JSON.parse(m.data.toString('utf8'))), timeoutMs);
    return JSON.parse(found.data.toString('utf8')) as T;
  }

  async binary(match: (data: Buffer) => boolean = () => true, timeoutMs = 5000): Promise<Buffer> {
    return (await this.take((m) => m.binary && match(m.data), timeoutMs)).data;
  }

  private async take(match: (m: { data: Buffer; binary: boolean }) => boolean, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex(match);
      if (i >= 0) return this.messages.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message in ${timeoutMs} ms; got ${this.messages.map((m) => (m.binary ? `<${m.data.length} bytes>` : m.data.toString())).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.terminate();
    await this.closed;
  }
}

/** Opens a socket; rejects with the HTTP status if the upgrade is refused. */
export async function openSocket(url: string, headers: Record<string, string>): Promise<TestSocket> {
  const ws = new WebSocket(url, { headers });
  const socket = track(new TestSocket(ws));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.once('error', reject);
  });
  return socket;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { once };

/** The bytes of a logged-in browser's upgrade request for `path` (RFC 6455 §4.1), for tests that write it on a raw socket. */
export function rawUpgradeRequest(gw: Gateway, path: string, cookie: string, extraHeaders: readonly string[] = []): string {
  const { port } = new URL(gw.origin);
  return [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    `Origin: ${gw.origin}`,
    `Cookie: sb_session=${cookie}`,
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
}
