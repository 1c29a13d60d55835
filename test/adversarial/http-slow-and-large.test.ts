// Slow and oversized HTTP input: a slowloris client is cut off by headersTimeout while the gateway
// keeps answering; oversized headers get 431; a flood of empty multipart parts stops at the limit.
import { readdir, readFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, login, multipart, startRawUpload, testGateway } from '../server/app-fixture.js';
import { slowClient } from './slow-client.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('slow and oversized HTTP requests', () => {
  it('closes a slowloris connection (headers byte by byte) after headersTimeout while /api/health answers', async () => {
    const { app } = await testGateway({ extra: { limits: { headersTimeoutMs: 1000 } } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const request = 'GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(10_000);
    const client = await slowClient(port, '', request, 50);
    try {
      const health = await fetch(`http://127.0.0.1:${port}/api/health`);
      expect(health.status).toBe(200);
      await client.closed; // the test's own timeout fails this if the server never closes it
      expect(client.answered()).toMatch(/^$|^HTTP\/1\.1 408/);
    } finally {
      client.stop();
    }
  }, 15_000);

  it('answers 431 to oversized headers', async () => {
    const { app } = await testGateway({ extra: { limits: { maxHeaderBytes: 4096 } } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const status = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.write(`GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(8000)}\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text.split('\r\n')[0]!));
      socket.on('error', () => resolve(text.split('\r\n')[0]!));
    });
    expect(status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('stops 1,001 empty multipart parts with a 4xx', async () => {
    const { app, filesRoot } = await testGateway({ files: true });
    const cookie = await login(app);
    const fields = Array.from({ length: 1001 }, () => ({ name: 'x', data: '' }));
    const res = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, ...multipart(fields) });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('SB_ERR_UPLOAD_TOO_MANY_PARTS');
    // empty file parts: stopped at maxUploadFiles (100 by default); the complete files before the
    // limit stay (each file is atomic, a request is not) and the refusal lists them
    const empty = Array.from({ length: 1001 }, (_, i) => ({ filename: `f${i}`, data: '' }));
    const files = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, ...multipart(empty) });
    expect(files.statusCode).toBe(413);
    expect(files.json().error.code).toBe('SB_ERR_UPLOAD_TOO_MANY_PARTS');
    expect(files.json().files).toHaveLength(100);
    expect((await readdir(filesRoot!)).filter((n) => !n.startsWith('.'))).toHaveLength(100);
  }, 20_000);

  it('refuses an upload without an Origin header (form-type CSRF)', async () => {
    const { app } = await testGateway({ files: true });
    const cookie = await login(app);
    const body = multipart([{ filename: 'a.txt', data: 'x' }]);
    const { origin: _origin, ...headers } = body.headers;
    const res = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, payload: body.payload, headers });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('SB_ERR_ORIGIN_REJECTED');
  });
});

describe('aborted uploads', () => {
  it('an upload cut off mid-file leaves nothing of that file, no partial and no spool', async () => {
    const { app, filesRoot, data } = await testGateway({ files: true });
    const cookie = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const body = multipart([
      { filename: 'first.bin', data: Buffer.alloc(10_000, 1) },
      { filename: 'second.bin', data: Buffer.alloc(200_000, 2) },
    ]);
    const socket = await startRawUpload(port, cookie, body, 150_000); // all of first.bin, part of second.bin
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    const visible = async () => (await readdir(filesRoot!)).filter((n) => !n.startsWith('.'));
    // Uploads stream straight into the files service (no spool): the complete first file stays,
    // nothing of the cut one is visible or kept in .partial.
    const partials = async () => (await readdir(`${filesRoot!}/.partial`).catch(() => [] as string[]));
    for (let i = 0; i < 100 && (await partials()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await visible()).toEqual(['first.bin']);
    expect(await partials()).toEqual([]);
    expect((await readFile(`${filesRoot!}/first.bin`)).equals(Buffer.alloc(10_000, 1))).toBe(true);
    await expect(readdir(`${data}/tmp`)).rejects.toMatchObject({ code: 'ENOENT' });
    const cookieList = await app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: cookie } });
    expect(cookieList.json().files.map((f: { name: string }) => f.name)).toEqual(['first.bin']);
  });

  it('a raw PUT cut off mid-body leaves no file and no partial', async () => {
    const { app, filesRoot } = await testGateway({ files: true });
    const cookie = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `PUT /api/files/cut.bin HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: sb_session=${cookie}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: 200000\r\n\r\n`,
    );
    socket.write(Buffer.alloc(100_000, 7));
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    // neither the visible file nor anything in the store's partial-upload area (names there are hashed)
    const leftovers = async () => [
      ...(await readdir(filesRoot!)).filter((n) => n === 'cut.bin'),
      ...(await readdir(`${filesRoot}/.partial`).catch(() => [] as string[])),
    ];
    for (let i = 0; i < 100 && (await leftovers()).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await leftovers()).toEqual([]);
  });
});
