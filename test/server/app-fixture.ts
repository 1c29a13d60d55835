// Shared by the gateway's tests: a gateway built on a temp data dir with two accounts, optionally
// wired to real backends on port 0, and small helpers for logging in and multipart bodies.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../server/gateway-options.js';
import { FilesService } from '../../backends/files/files-service.js';
import { tempDir } from '../helpers/tmp.js';

export const ORIGIN = 'http://localhost';
const closers: Array<() => Promise<void>> = [];

export async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}

export interface TestGateway {
  app: FastifyInstance;
  data: string;
  filesRoot?: string;
}

export async function testGateway(opts: { extra?: Record<string, unknown>; files?: boolean; logger?: Logger } = {}): Promise<TestGateway> {
  const data = await tempDir();
  const extra: Record<string, unknown> = { ...opts.extra };
  let filesRoot: string | undefined;
  if (opts.files) {
    filesRoot = await tempDir();
    const files = new FilesService({ root: filesRoot, port: 0 });
    const address = await files.start();
    closers.push(() => files.close());
    extra['files'] = `tcp://127.0.0.1:${address.port}`;
  }
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: { data, webRoot: `${data}/no-web`, ...extra } });
  const app = await buildApp(options, { logger: opts.logger ?? pino({ level: 'silent' }), probeHealth: false });
  closers.push(() => app.close());
  await app.users.add('alice', 'alice-password', 'user');
  await app.users.add('root', 'root-password', 'admin');
  return { app, data, ...(filesRoot ? { filesRoot } : {}) };
}

/** Logs in through the API and returns the session cookie's value. */
export async function login(app: FastifyInstance, username = 'alice', password = `${username}-password`): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username, password } });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.cookies.find((c) => c.name === 'sb_session')!.value;
}

export interface Part {
  name?: string;
  filename?: string;
  data: Buffer | string;
}

/** A multipart/form-data body (RFC 7578) built by hand, so tests control every byte. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----sb${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name ?? 'file'}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    const type = part.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, origin: ORIGIN } };
}

/**
 * Opens a raw TCP connection and starts a multipart POST /api/files with `sent` bytes of `body`,
 * so a test can cut the upload off wherever it likes (`socket.destroy()`).
 */
export async function startRawUpload(port: number, cookie: string, body: { payload: Buffer; headers: Record<string, string> }, sent: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    `POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nCookie: sb_session=${cookie}\r\n` +
      `Content-Type: ${body.headers['content-type']}\r\nContent-Length: ${body.payload.length}\r\n\r\n`,
  );
  socket.write(body.payload.subarray(0, sent));
  return socket;
}
