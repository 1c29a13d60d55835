import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { eventually } from '../../backends/files/harness.js';
import { closeAll, login, multipart, ORIGIN, testGateway } from '../app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('files API against a real files service', () => {
  it('uploads several files, lists them with sha256, downloads byte-identical, resumes with Range, deletes', async () => {
    const { app, data } = await testGateway({ files: true });
    const cookie = await login(app);
    const a = randomBytes(300_000);
    const b = Buffer.from('hello, files\n');
    const up = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, ...multipart([{ filename: 'a.bin', data: a }, { filename: 'é b.txt', data: b }]) });
    expect(up.statusCode).toBe(201);
    expect(up.json().files.map((f: { name: string }) => f.name)).toEqual(['a.bin', 'é b.txt']);
    // streamed to the files service: never spooled
    await expect(readdir(`${data}/tmp`)).rejects.toMatchObject({ code: 'ENOENT' });

    const list = await app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: cookie } });
    const entries = list.json().files as Array<{ name: string; size: number; sha256: string }>;
    expect(entries.find((f) => f.name === 'a.bin')).toMatchObject({ size: a.length, sha256: sha(a) });

    const whole = await app.inject({ method: 'GET', url: '/api/files/a.bin', cookies: { sb_session: cookie } });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(a)).toBe(true);
    expect(whole.headers['content-length']).toBe(String(a.length));
    expect(whole.headers['etag']).toBe(`"${sha(a)}"`);

    const named = await app.inject({ method: 'GET', url: `/api/files/${encodeURIComponent('é b.txt')}`, cookies: { sb_session: cookie } });
    expect(named.headers['content-disposition']).toBe(`attachment; filename="_ b.txt"; filename*=UTF-8''%C3%A9%20b.txt`);

    const tail = await app.inject({ method: 'GET', url: '/api/files/a.bin', headers: { range: 'bytes=100000-' }, cookies: { sb_session: cookie } });
    expect(tail.statusCode).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes 100000-${a.length - 1}/${a.length}`);
    expect(tail.rawPayload.equals(a.subarray(100_000))).toBe(true);

    const mid = await app.inject({ method: 'GET', url: '/api/files/a.bin', headers: { range: 'bytes=10-19' }, cookies: { sb_session: cookie } });
    expect(mid.statusCode).toBe(206);
    expect(mid.rawPayload.equals(a.subarray(10, 20))).toBe(true);

    const beyond = await app.inject({ method: 'GET', url: '/api/files/a.bin', headers: { range: `bytes=${a.length}-` }, cookies: { sb_session: cookie } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${a.length}`);
    expect(beyond.json().error.code).toBe('SB_ERR_RANGE_NOT_SATISFIABLE');

    const cached = await app.inject({ method: 'GET', url: '/api/files/a.bin', headers: { 'if-none-match': `"${sha(a)}"` }, cookies: { sb_session: cookie } });
    expect(cached.statusCode).toBe(304);

    const del = await app.inject({ method: 'DELETE', url: '/api/files/a.bin', headers: { origin: ORIGIN }, cookies: { sb_session: cookie } });
    expect(del.statusCode).toBe(204);
    const gone = await app.inject({ method: 'GET', url: '/api/files/a.bin', cookies: { sb_session: cookie } });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('SB_ERR_FILE_NOT_FOUND');
  });

  it('needs a session', async () => {
    const { app } = await testGateway({ files: true });
    const res = await app.inject({ method: 'GET', url: '/api/files' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SB_ERR_AUTH_REQUIRED');
  });

  it('refuses a file over maxUploadBytes and keeps nothing of it', async () => {
    const { app, filesRoot, data } = await testGateway({ files: true, extra: { limits: { maxUploadBytes: 1000 } } });
    const cookie = await login(app);
    const res = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, ...multipart([{ filename: 'big.bin', data: randomBytes(5000) }]) });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('SB_ERR_FILE_TOO_LARGE');
    expect((await readdir(filesRoot!)).filter((n) => !n.startsWith('.'))).toEqual([]);
    await eventually(async () => (await readdir(`${filesRoot!}/.partial`)).length === 0, 'the refused upload to be deleted');
    await expect(readdir(`${data}/tmp`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports the files service down when it is unreachable', async () => {
    const { app } = await testGateway({ extra: { files: 'tcp://127.0.0.1:1' } });
    const cookie = await login(app);
    const res = await app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: cookie } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('SB_ERR_BACKEND_DOWN');
    expect(app.healthRegistry.get('files')).toMatchObject({ status: 'down', reason: 'connection failed' });
  });

  // Regression (files walkthrough): the web client's multipart upload of `a'b"c<d>&.txt` was stored as
  // `a'b%22c<d>&.txt`. The web client now PUTs, with the name percent-encoded in the path.
  it('PUT stores the name in the path exactly: a quote, markup, an ampersand, and a literal %22 are each themselves', async () => {
    const { app, filesRoot } = await testGateway({ files: true });
    const cookie = await login(app);
    const put = (name: string, body: string) =>
      app.inject({ method: 'PUT', url: `/api/files/${encodeURIComponent(name)}`, payload: body, headers: { 'content-type': 'application/octet-stream', origin: ORIGIN }, cookies: { sb_session: cookie } });
    const quoted = `a'b"c<d>&.txt`;
    const literal = `a'b%22c<d>&.txt`;
    for (const [name, body] of [[quoted, 'quote'], [literal, 'percent']] as const) {
      const res = await put(name, body);
      expect(res.statusCode).toBe(201);
      expect(res.json().files[0].name).toBe(name);
    }
    const list = await app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: cookie } });
    expect(list.json().files.map((f: { name: string }) => f.name).sort()).toEqual([quoted, literal].sort());
    expect((await readdir(filesRoot!)).filter((n) => !n.startsWith('.')).sort()).toEqual([quoted, literal].sort());
    const back = await app.inject({ method: 'GET', url: `/api/files/${encodeURIComponent(quoted)}`, cookies: { sb_session: cookie } });
    expect(back.payload).toBe('quote');
    expect(back.headers['content-disposition']).toBe(`attachment; filename="a'b_c<d>&.txt"; filename*=UTF-8''a%27b%22c%3Cd%3E%26.txt`);
  });

  it("takes a multipart part's filename as sent: a browser's %22 escape is not undone (it cannot be told from a literal %22)", async () => {
    const { app } = await testGateway({ files: true });
    const cookie = await login(app);
    // what Chromium sends for a file chosen as `a"b.txt` (WHATWG HTML multipart/form-data encoding)
    const res = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, ...multipart([{ filename: 'a%22b.txt', data: 'x' }]) });
    expect(res.statusCode).toBe(201);
    expect(res.json().files[0].name).toBe('a%22b.txt');
  });

  it('PUT streams a raw body of declared length straight to the files service', async () => {
    const { app, data } = await testGateway({ files: true, extra: { limits: { maxUploadBytes: 500_000 } } });
    const cookie = await login(app);
    const body = randomBytes(400_000);
    const put = await app.inject({ method: 'PUT', url: '/api/files/raw.bin', payload: body, headers: { 'content-type': 'application/octet-stream', origin: ORIGIN }, cookies: { sb_session: cookie } });
    expect(put.statusCode).toBe(201);
    expect(put.json().files[0]).toMatchObject({ name: 'raw.bin', size: body.length, sha256: sha(body) });
    await expect(readdir(`${data}/tmp`)).rejects.toMatchObject({ code: 'ENOENT' }); // never spooled
    const back = await app.inject({ method: 'GET', url: '/api/files/raw.bin', cookies: { sb_session: cookie } });
    expect(back.rawPayload.equals(body)).toBe(true);

    const big = await app.inject({ method: 'PUT', url: '/api/files/big.bin', payload: randomBytes(600_000), headers: { 'content-type': 'application/octet-stream', origin: ORIGIN }, cookies: { sb_session: cookie } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('SB_ERR_FILE_TOO_LARGE');
    const traversal = await app.inject({ method: 'PUT', url: '/api/files/..%5cx', payload: 'x', headers: { 'content-type': 'application/octet-stream', origin: ORIGIN }, cookies: { sb_session: cookie } });
    expect(traversal.statusCode).toBe(400);
  });
});
