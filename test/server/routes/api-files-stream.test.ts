// POST /api/files streams each multipart part into a chunked put (issue 4): no spool under DATA/tmp,
// memory that does not grow with the upload, nothing half-written left behind by a refused or aborted request.
// Real HTTP on 127.0.0.1:0 against a real files service.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { eventually } from '../../backends/files/harness.js';
import { closeAll, login, multipart, startRawUpload, testGateway } from '../app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const MiB = 1024 * 1024;

// Garbage (every socket read is a fresh buffer) is collected when V8 decides, typically after some
// tens of MB of external memory: collecting every few MB makes RSS show what is live, which is what
// must not grow with the upload.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const visible = async (root: string) => (await readdir(root)).filter((n) => !n.startsWith('.')).sort();
const partials = (root: string) => readdir(join(root, '.partial'));

/** A gateway listening on a real port, with a files service, alice logged in. */
async function listeningGateway(limits: Record<string, number> = {}) {
  const gw = await testGateway({ files: true, extra: { limits } });
  const cookie = await login(gw.app);
  await gw.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = gw.app.server.address() as AddressInfo;
  return { ...gw, filesRoot: gw.filesRoot!, cookie, port };
}

/** POSTs a streamed request body; resolves with the status and the JSON reply. */
function post(port: number, cookie: string, contentType: string, body: Readable): Promise<{ status: number; json: { files?: Array<{ name: string; size: number; sha256: string }>; error?: { code: string } } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/files', headers: { cookie: `sb_session=${cookie}`, 'content-type': contentType, origin: `http://127.0.0.1:${port}` } });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    body.pipe(req);
  });
}

describe('POST /api/files streams to the files service', () => {
  it('uploads 64 MB with no spool and RSS growth well under the upload size', async () => {
    const { port, cookie, data, filesRoot } = await listeningGateway({ maxUploadBytes: 128 * MiB });
    const boundary = `----sb${randomBytes(8).toString('hex')}`;
    const size = 64 * MiB;
    const block = randomBytes(256 * 1024);
    const hash = createHash('sha256');
    // a warm-up upload first, so loading and JIT are not counted as growth
    const warm = multipart([{ filename: 'warm.bin', data: randomBytes(MiB) }]);
    expect((await post(port, cookie, warm.headers['content-type']!, Readable.from([warm.payload]))).status).toBe(201);

    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    // Generated as the socket drains (Readable.from pulls only when the request wants more): the test
    // itself never holds more than one block, so growth is the gateway's and the service's.
    async function* body() {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
      for (let sent = 0; sent < size; sent += block.length) {
        hash.update(block);
        if (sent % (4 * MiB) === 0) gc();
        peak = Math.max(peak, process.memoryUsage().rss);
        yield block;
      }
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    const res = await post(port, cookie, `multipart/form-data; boundary=${boundary}`, Readable.from(body(), { objectMode: false }));
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(res.status).toBe(201);
    expect(res.json.files![0]).toMatchObject({ name: 'big.bin', size, sha256: hash.digest('hex') });
    expect(peak - before).toBeLessThan(32 * MiB);
    await expect(readdir(join(data, 'tmp'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await visible(filesRoot)).toEqual(['big.bin', 'warm.bin']);
  }, 20_000);

  it('stores several files byte-exact; a refused later part keeps the complete earlier ones and lists them', async () => {
    const { port, cookie, filesRoot } = await listeningGateway({ maxUploadBytes: 3 * MiB });
    const a = randomBytes(2 * MiB + 3);
    const b = randomBytes(1000);
    const ok = multipart([{ filename: 'a.bin', data: a }, { filename: 'b.bin', data: b }]);
    const res = await post(port, cookie, ok.headers['content-type']!, Readable.from([ok.payload]));
    expect(res.status).toBe(201);
    expect((await readFile(join(filesRoot, 'a.bin'))).equals(a)).toBe(true);
    expect((await readFile(join(filesRoot, 'b.bin'))).equals(b)).toBe(true);

    const tooBig = multipart([{ filename: 'c.bin', data: b }, { filename: 'd.bin', data: randomBytes(3 * MiB + 1) }]);
    const refused = await post(port, cookie, tooBig.headers['content-type']!, Readable.from([tooBig.payload]));
    expect(refused.status).toBe(413);
    expect(refused.json.error?.code).toBe('SB_ERR_FILE_TOO_LARGE');
    expect(refused.json.files?.map((f) => f.name)).toEqual(['c.bin']);
    const badName = multipart([{ filename: 'e.bin', data: b }, { filename: '..', data: b }]);
    const invalid = await post(port, cookie, badName.headers['content-type']!, Readable.from([badName.payload]));
    expect(invalid.status).toBe(400);
    expect(invalid.json.files?.map((f) => f.name)).toEqual(['e.bin']);
    await eventually(async () => (await partials(filesRoot)).length === 0, 'the refused part to be deleted');
    expect(await visible(filesRoot)).toEqual(['a.bin', 'b.bin', 'c.bin', 'e.bin']);
    expect((await readFile(join(filesRoot, 'c.bin'))).equals(b)).toBe(true);
  });

  it('a refused request never deletes a file it replaced: the new complete version stays', async () => {
    const { port, cookie, filesRoot } = await listeningGateway({ maxUploadBytes: MiB });
    const first = multipart([{ filename: 'report.txt', data: Buffer.from('version 1') }]);
    expect((await post(port, cookie, first.headers['content-type']!, Readable.from([first.payload]))).status).toBe(201);
    const replaceThenFail = multipart([
      { filename: 'report.txt', data: Buffer.from('version 2') },
      { filename: 'huge.bin', data: randomBytes(MiB + 1) },
    ]);
    const refused = await post(port, cookie, replaceThenFail.headers['content-type']!, Readable.from([replaceThenFail.payload]));
    expect(refused.status).toBe(413);
    expect(refused.json.files?.map((f) => f.name)).toEqual(['report.txt']);
    expect(await readFile(join(filesRoot, 'report.txt'), 'utf8')).toBe('version 2');
  });

  it('refuses a second part with the same stored name (x/a.txt and y/a.txt) instead of replacing the first', async () => {
    const { port, cookie, filesRoot } = await listeningGateway();
    const twice = multipart([
      { filename: 'x/a.txt', data: Buffer.from('from x') },
      { filename: 'y/a.txt', data: Buffer.from('from y') },
    ]);
    const refused = await post(port, cookie, twice.headers['content-type']!, Readable.from([twice.payload]));
    expect(refused.status).toBe(400);
    expect(refused.json.error?.code).toBe('SB_ERR_UPLOAD_INVALID');
    expect(refused.json.files?.map((f) => f.name)).toEqual(['a.txt']);
    expect(await readFile(join(filesRoot, 'a.txt'), 'utf8')).toBe('from x');
  });

  it('an upload aborted mid-part leaves nothing of that part, no partial and no spool', async () => {
    const { port, cookie, data, filesRoot } = await listeningGateway();
    const body = multipart([
      { filename: 'first.bin', data: randomBytes(100_000) },
      { filename: 'second.bin', data: randomBytes(8 * MiB) },
    ]);
    const socket = await startRawUpload(port, cookie, body, 4 * MiB); // all of first.bin, half of second.bin
    // first.bin stored, second.bin in progress in the files service's .partial/
    await eventually(async () => (await visible(filesRoot)).length === 1 && (await partials(filesRoot)).length === 1, 'the upload to be under way');
    socket.destroy();
    // The complete first file stays; nothing of the second is visible, under its name or as a partial.
    await eventually(async () => (await partials(filesRoot)).length === 0, 'the aborted part to be deleted');
    expect(await visible(filesRoot)).toEqual(['first.bin']);
    await expect(readdir(join(data, 'tmp'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
