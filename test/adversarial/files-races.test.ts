// Races between a download and a replacement of the same file (audit H1). A proxy between the gateway
// and the files service holds each `get` request while the test replaces the file, so the race the
// audit found (size and ETag from one request, bytes from another) happens every time. Every response
// must describe the bytes it carries: ETag = sha256 of the body's version, Content-Length = body
// bytes, nothing written past it on the keep-alive connection, a resume never spliced across versions.
// Real HTTP, a real files service and a real TCP proxy, all on 127.0.0.1 port 0.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesService } from '../../backends/files/files-service.js';
import { FilesClient } from '../../backends/files/files-client.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { closeAll, login, testGateway } from '../server/app-fixture.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await closeAll();
  await removeTempDirs();
});

/**
 * A TCP proxy to the files service that counts `get` requests and, while `beforeGet` is set, holds
 * each one until it has run (the moment between whatever the gateway did first and its get).
 */
async function holdingProxy(target: number) {
  const state = { gets: 0, beforeGet: undefined as (() => Promise<unknown>) | undefined, cutReplyAfter: undefined as number | undefined };
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    let replied = 0;
    upstream.on('data', (d: Buffer) => {
      replied += d.length;
      const cut = state.cutReplyAfter;
      if (cut !== undefined && replied > cut) {
        client.write(d.subarray(0, d.length - (replied - cut)));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    client.on('data', (d: Buffer) => {
      if (!d.includes('"cmd":"get"')) return void upstream.write(d);
      state.gets++;
      const hook = state.beforeGet;
      if (!hook) return void upstream.write(d);
      client.pause();
      // a failing hook still lets the get through, and its rejection fails the run
      void hook().finally(() => {
        upstream.write(d);
        client.resume();
      });
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { state, port: (server.address() as AddressInfo).port };
}

async function setup() {
  const root = await tempDir();
  const files = new FilesService({ root, port: 0 });
  const { port: filesPort } = await files.start();
  cleanups.push(() => files.close());
  const proxy = await holdingProxy(filesPort);
  const { app } = await testGateway({ extra: { files: `tcp://127.0.0.1:${proxy.port}` } });
  const cookie = await login(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  /** Stores `data` as `name` straight through the files service (not the proxy). */
  const store = async (name: string, data: Buffer) => {
    const client = await FilesClient.connect('127.0.0.1', filesPort);
    try {
      await client.put(name, Readable.from([data]), data.length);
    } finally {
      await client.close();
    }
  };
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, headers: { cookie: `sb_session=${cookie}`, ...headers } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), complete: res.complete });
        res.on('end', done);
        res.on('error', done);
        res.on('aborted', done);
      });
      req.on('error', reject);
      req.end();
    });
  /** Two GETs pipelined on one keep-alive connection: every byte the gateway writes, in order. */
  const twoOnOneConnection = (path: string) =>
    new Promise<Buffer>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const parts: Buffer[] = [];
      socket.on('data', (d: Buffer) => parts.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(parts)));
      const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sb_session=${cookie}\r\n\r\n`;
      socket.write(request + request.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
    });
  return { proxy: proxy.state, store, get, twoOnOneConnection };
}

/** Splits raw HTTP/1.1 responses with a Content-Length each; what follows the last is `rest`. */
function splitResponses(raw: Buffer): { responses: Array<{ head: string; body: Buffer }>; rest: Buffer } {
  const responses: Array<{ head: string; body: Buffer }> = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = raw.subarray(at, end).toString('latin1');
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    responses.push({ head, body: raw.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  return { responses, rest: raw.subarray(at) };
}

describe('a download while its file is replaced (audit H1)', () => {
  it('a Range + If-Range resume gets the new version whole, under its own ETag, never a splice of both', async () => {
    const s = await setup();
    const v1 = Buffer.alloc(1000, 'A');
    const v2 = Buffer.alloc(1000, 'B');
    await s.store('doc.bin', v1);
    const first = await s.get('/api/files/doc.bin', { range: 'bytes=0-499' });
    expect(first.status).toBe(206);
    expect(first.headers.etag).toBe(`"${sha(v1)}"`);

    s.proxy.beforeGet = () => s.store('doc.bin', v2);
    const rest = await s.get('/api/files/doc.bin', { range: 'bytes=500-', 'if-range': first.headers.etag! });
    s.proxy.beforeGet = undefined;
    // The partial copy is of v1, the file is v2 now: If-Range says send it all (RFC 9110 §13.1.5).
    expect(rest.status).toBe(200);
    expect(rest.headers.etag).toBe(`"${sha(v2)}"`);
    expect(rest.headers['content-range']).toBeUndefined();
    expect(rest.body.equals(v2)).toBe(true);
  });

  it('a Range resume of an unchanged file still takes a single get from the offset', async () => {
    const s = await setup();
    const v1 = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await s.store('doc.bin', v1);
    const etag = `"${sha(v1)}"`;
    const rest = await s.get('/api/files/doc.bin', { range: 'bytes=500-', 'if-range': etag });
    expect(rest.status).toBe(206);
    expect(rest.headers['content-range']).toBe('bytes 500-999/1000');
    expect(rest.body.equals(v1.subarray(500))).toBe(true);
    expect(s.proxy.gets).toBe(1);
  });

  it('a plain GET while the file grows: headers describe the bytes sent and nothing follows them on the connection', async () => {
    const s = await setup();
    await s.store('b.bin', Buffer.alloc(1000, 'A'));
    const grown = Buffer.alloc(3000, 'C');
    let replaced = false;
    // Node runs pipelined requests' handlers at once: only the first get replaces the file.
    s.proxy.beforeGet = async () => {
      if (replaced) return;
      replaced = true;
      await s.store('b.bin', grown);
    };
    const { responses, rest } = splitResponses(await s.twoOnOneConnection('/api/files/b.bin'));
    expect(responses).toHaveLength(2);
    for (const { head, body } of responses) {
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      expect(head).toContain(`etag: "${sha(body)}"`);
    }
    // the held get (the first to reach the service) was served the grown file, whole
    expect(responses.some(({ body }) => body.equals(grown))).toBe(true);
    expect(rest.length).toBe(0);
  });

  it('a plain GET while the file shrinks: a complete response whose ETag and length are the smaller version', async () => {
    const s = await setup();
    await s.store('c.bin', Buffer.alloc(3000, 'A'));
    const shrunk = Buffer.alloc(1000, 'D');
    s.proxy.beforeGet = () => s.store('c.bin', shrunk);
    const res = await s.get('/api/files/c.bin');
    expect(res.complete).toBe(true);
    expect(res.headers['content-length']).toBe('1000');
    expect(res.headers.etag).toBe(`"${sha(shrunk)}"`);
    expect(res.body.equals(shrunk)).toBe(true);
  });

  it('a suffix range is taken from the version its bytes come from', async () => {
    const s = await setup();
    await s.store('d.bin', Buffer.alloc(1000, 'A'));
    const v2 = Buffer.concat([Buffer.alloc(2990, 'E'), Buffer.from('0123456789')]);
    s.proxy.beforeGet = () => s.store('d.bin', v2);
    const res = await s.get('/api/files/d.bin', { range: 'bytes=-10' });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 2990-2999/3000');
    expect(res.headers.etag).toBe(`"${sha(v2)}"`);
    expect(res.body.toString()).toBe('0123456789');
  });

  it('a download the files service cuts mid-body ends the response short, never as complete', async () => {
    const s = await setup();
    const data = Buffer.alloc(4 * 1024 * 1024, 'F');
    await s.store('e.bin', data);
    s.proxy.cutReplyAfter = 1024 * 1024;
    const res = await s.get('/api/files/e.bin');
    expect(res.headers['content-length']).toBe(String(data.length));
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(data.length);
  });

  it('HEAD, a 304 and a 416 read no file bytes (no get), with headers of the current version', async () => {
    const s = await setup();
    const data = Buffer.alloc(5000, 'G');
    await s.store('h.bin', data);
    const etag = `"${sha(data)}"`;
    const head = await s.get('/api/files/h.bin', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers).toMatchObject({ etag, 'content-length': '5000' });
    const headRange = await s.get('/api/files/h.bin', { range: 'bytes=100-199' }, 'HEAD');
    expect(headRange.status).toBe(206);
    expect(headRange.headers).toMatchObject({ 'content-range': 'bytes 100-199/5000', 'content-length': '100' });
    expect((await s.get('/api/files/h.bin', { 'if-none-match': etag })).status).toBe(304);
    const beyond = await s.get('/api/files/h.bin', { range: 'bytes=9000-' });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe('bytes */5000');
    expect(s.proxy.gets).toBe(1); // the 416's one get, refused past the end: no body was sent
  });
});
