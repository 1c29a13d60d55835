// File names over HTTP that try to leave the files root: each is a 400 and nothing outside the root
// (nor inside it) is read, written or deleted.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, login, testGateway } from '../server/app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A raw request: the path goes on the wire exactly as written (fetch and inject would normalize it). */
function raw(port: number, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const NAMES = ['..%2fsecret.txt', '..%2F..%2Fsecret.txt', '%2e%2e', '%2e%2e%2fsecret.txt', '..%5csecret.txt', 'a%5c..%5c..%5csecret.txt', 'x%00.txt', '.', '%2e'];

describe('path traversal over HTTP', () => {
  it('refuses every traversal name with 400 and touches nothing', async () => {
    const { app, filesRoot } = await testGateway({ files: true });
    const outside = join(dirname(filesRoot!), 'secret.txt');
    await writeFile(outside, 'keep me');
    await writeFile(join(filesRoot!, 'secret.txt'), 'inside');
    const before = await readdir(filesRoot!);
    const cookie = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const headers = { cookie: `sb_session=${cookie}`, origin: `http://127.0.0.1:${port}` };
    for (const name of NAMES) {
      for (const method of ['GET', 'DELETE']) {
        const res = await raw(port, method, `/api/files/${name}`, headers);
        expect({ name, method, status: res.status }).toEqual({ name, method, status: 400 });
        expect(['SB_ERR_FILE_NAME_INVALID', 'SB_ERR_BAD_REQUEST']).toContain(JSON.parse(res.body).error.code);
      }
    }
    expect(await readFile(outside, 'utf8')).toBe('keep me');
    expect(await readFile(join(filesRoot!, 'secret.txt'), 'utf8')).toBe('inside');
    expect(await readdir(filesRoot!)).toEqual(before);
  });
});
