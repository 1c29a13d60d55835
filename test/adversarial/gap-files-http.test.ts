// Issue 5 gap audit, files over HTTP: the cases http-path-traversal does not cover. Absolute paths and
// names over 255 bytes are refused with 400; a symlink planted in the root that points outside is
// never followed, neither to read (GET) nor to create (upload through a dangling link); nothing
// outside the root is read or written, and a well-behaved upload and download work afterwards.
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, login, multipart, testGateway } from '../server/app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A raw request: the path goes on the wire exactly as written (fetch would normalize it). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function setup() {
  const { app, filesRoot } = await testGateway({ files: true });
  const root = filesRoot!;
  const outside = join(dirname(root), `outside-${Date.now()}`);
  await mkdir(outside);
  await writeFile(join(outside, 'secret.txt'), 'outside secret');
  const cookie = await login(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const headers = { cookie: `sb_session=${cookie}`, origin };
  /** a well-behaved round trip through the API */
  const stillServes = async () => {
    const up = multipart([{ filename: 'good.txt', data: 'good bytes' }]);
    const put = await raw(port, 'POST', '/api/files', { ...up.headers, ...headers }, up.payload);
    expect(put.status).toBe(201);
    const get = await raw(port, 'GET', '/api/files/good.txt', headers);
    expect(get).toEqual({ status: 200, body: 'good bytes' });
  };
  return { app, root, outside, port, headers, stillServes };
}

const codeOf = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

describe('files over HTTP: names and links that leave the root', () => {
  it('refuses absolute paths and names over 255 bytes with 400, on GET, DELETE and upload', async () => {
    const s = await setup();
    const names = ['%2Fetc%2Fpasswd', `%2F${s.outside.slice(1).replaceAll('/', '%2F')}%2Fsecret.txt`, 'a'.repeat(256), encodeURIComponent('é'.repeat(128))];
    for (const name of names) {
      for (const method of ['GET', 'DELETE']) {
        const res = await raw(s.port, method, `/api/files/${name}`, s.headers);
        expect({ name, method, status: res.status }).toEqual({ name, method, status: 400 });
        expect(['SB_ERR_FILE_NAME_INVALID', 'SB_ERR_BAD_REQUEST']).toContain(codeOf(res.body));
      }
    }
    for (const filename of ['b'.repeat(256), 'é'.repeat(128)]) {
      const up = multipart([{ filename, data: 'x' }]);
      const res = await raw(s.port, 'POST', '/api/files', { ...up.headers, ...s.headers }, up.payload);
      expect({ filename, status: res.status, code: codeOf(res.body) }).toEqual({ filename, status: 400, code: 'SB_ERR_FILE_NAME_INVALID' });
    }
    expect((await readdir(s.root)).filter((n) => !n.startsWith('.'))).toEqual([]);
    // A multipart filename is a base name (busboy drops any directory part, as browsers send it):
    // an absolute one lands inside the root under its last component, never at the path it names.
    const up = multipart([{ filename: join(s.outside, 'planted.txt'), data: 'x' }]);
    const planted = await raw(s.port, 'POST', '/api/files', { ...up.headers, ...s.headers }, up.payload);
    expect(planted.status).toBe(201);
    expect((JSON.parse(planted.body) as { files: { name: string }[] }).files[0]!.name).toBe('planted.txt');
    expect(await readdir(s.outside)).toEqual(['secret.txt']);
    expect((await readdir(s.root)).filter((n) => !n.startsWith('.'))).toEqual(['planted.txt']);
    await s.stillServes();
  });

  // Regression: the router's default maxParamLength (100) answered 414 for any longer name.
  it('serves a valid name of exactly 255 bytes (765 characters percent-encoded)', async () => {
    const s = await setup();
    const name = 'é'.repeat(127) + 'x';
    const up = multipart([{ filename: name, data: 'long name' }]);
    expect((await raw(s.port, 'POST', '/api/files', { ...up.headers, ...s.headers }, up.payload)).status).toBe(201);
    expect(await raw(s.port, 'GET', `/api/files/${encodeURIComponent(name)}`, s.headers)).toEqual({ status: 200, body: 'long name' });
    expect((await raw(s.port, 'DELETE', `/api/files/${encodeURIComponent(name)}`, s.headers)).status).toBe(204);
  });

  it('never reads through a symlink that points outside the root', async () => {
    const s = await setup();
    await symlink(join(s.outside, 'secret.txt'), join(s.root, 'link.txt'));
    await symlink(s.outside, join(s.root, 'linkdir'));
    const get = await raw(s.port, 'GET', '/api/files/link.txt', s.headers);
    expect(get.status).toBeGreaterThanOrEqual(400);
    expect(get.status).toBeLessThan(500);
    expect(get.body).not.toContain('outside secret');
    const through = await raw(s.port, 'GET', '/api/files/linkdir%2Fsecret.txt', s.headers);
    expect(through.status).toBe(400);
    expect(through.body).not.toContain('outside secret');
    // nor is it listed as a file
    const list = await raw(s.port, 'GET', '/api/files', s.headers);
    expect((JSON.parse(list.body) as { files: { name: string }[] }).files.map((f) => f.name)).not.toContain('link.txt');
    await s.stillServes();
  });

  it('never creates a file through a dangling symlink, by multipart POST or by PUT', async () => {
    const s = await setup();
    await symlink(join(s.outside, 'created.txt'), join(s.root, 'trap.txt'));
    const up = multipart([{ filename: 'trap.txt', data: 'payload' }]);
    const post = await raw(s.port, 'POST', '/api/files', { ...up.headers, ...s.headers }, up.payload);
    expect(post.status).toBeGreaterThanOrEqual(400);
    expect(post.status).toBeLessThan(500);
    const put = await raw(s.port, 'PUT', '/api/files/trap.txt', { ...s.headers, 'content-type': 'application/octet-stream', 'content-length': '7' }, Buffer.from('payload'));
    expect(put.status).toBeGreaterThanOrEqual(400);
    expect(put.status).toBeLessThan(500);
    expect(await readdir(s.outside)).toEqual(['secret.txt']);
    expect(await readFile(join(s.outside, 'secret.txt'), 'utf8')).toBe('outside secret');
    await s.stillServes();
  });
});
