// Issue 5, faults: the files service is killed (SIGKILL of a real `sockbridge serve files` process)
// in the middle of an upload. Nothing partial may become visible: not on disk outside `.partial/`,
// not in a listing by a fresh FilesService on the same root. When the service returns on the same
// port and root, the upload is resumed from the kept partial (TCP, resumable put) or redone (HTTP,
// whose uploads are not resumable) and the stored file has the right sha256.
// Needs `npm run build:server` (the service runs from dist/ as a child process).
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesClient } from '../../backends/files/files-client.js';
import { FilesService } from '../../backends/files/files-service.js';
import { startCli, stopAllCli, type CliProcess } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { eventually, sha256 } from '../backends/files/harness.js';
import { closeAll, startGateway } from '../server/routes/ws-kit.js';
import { multipart } from '../server/app-fixture.js';

afterEach(async () => {
  await stopAllCli();
  await closeAll();
  await removeTempDirs();
});

async function serveFiles(root: string, port = 0): Promise<{ proc: CliProcess; port: number }> {
  const proc = startCli(['serve', 'files', '--port', String(port), '--root', root]);
  const m = await proc.waitFor(/sockbridge files listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
  return { proc, port: Number(m[1]) };
}

/** A files service process and a gateway using it, with alice logged in. */
async function gatewayWithFiles() {
  const root = join(await tempDir(), 'root');
  const first = await serveFiles(root);
  const gw = await startGateway({ files: `tcp://127.0.0.1:${first.port}` });
  const cookie = `sb_session=${await gw.login('alice', 'alice-password')}`;
  return { root, first, gw, cookie, gwPort: Number(new URL(gw.origin).port) };
}

/**
 * What a user could see: the root's entries on disk, and a fresh service's listing. Dot entries are
 * the store's own (`.partial/`, `.meta/`): a file name may not start with a dot (file-name.ts).
 */
async function visible(root: string): Promise<{ onDisk: string[]; listed: string[] }> {
  const onDisk = (await readdir(root)).filter((n) => !n.startsWith('.'));
  const fresh = new FilesService({ root, port: 0 });
  const { port } = await fresh.start();
  try {
    const client = await FilesClient.connect('127.0.0.1', port);
    const listed = (await client.list()).map((f) => f.name);
    await client.close();
    return { onDisk, listed };
  } finally {
    await fresh.close();
  }
}

async function partialBytes(root: string): Promise<number> {
  const names = await readdir(join(root, '.partial')).catch(() => [] as string[]);
  let total = 0;
  for (const n of names) total += (await stat(join(root, '.partial', n))).size;
  return total;
}

/** A source that yields `first` at once, then waits (an upload stalled mid-file) until released. */
function stalledSource(first: Buffer): { source: Readable; release(rest: Buffer): void } {
  let release!: (rest: Buffer) => void;
  const rest = new Promise<Buffer>((resolve) => (release = resolve));
  async function* chunks() {
    yield first;
    yield await rest;
  }
  return { source: Readable.from(chunks()), release };
}

/** An HTTP request whose body the test writes piece by piece; resolves with status and JSON body. */
function slowRequest(port: number, method: string, path: string, headers: Record<string, string | number>) {
  // agent: false: a one-off connection, closed with the exchange (a kept-alive one would hold app.close())
  const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false });
  const response = new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
  });
  return { req, response };
}

describe('the files service killed mid-upload', () => {
  it('over TCP: the partial is kept out of sight, and the upload resumes from it after a restart', async () => {
    const root = join(await tempDir(), 'root');
    const first = await serveFiles(root);
    const data = randomBytes(300_000);
    const half = 120_000;

    const client = await FilesClient.connect('127.0.0.1', first.port);
    const { source, release } = stalledSource(data.subarray(0, half));
    const put = client.put('big.bin', source, data.length, { sha256: sha256(data) });
    put.catch(() => undefined);
    await eventually(async () => (await partialBytes(root)) === half, 'the first half on disk');

    await first.proc.stop('SIGKILL');
    release(data.subarray(half)); // the client notices the lost connection at its next write
    await expect(put).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
    await client.close();
    expect(await visible(root)).toEqual({ onDisk: [], listed: [] });

    // back on the same port and root: the kept partial is offered, and the rest completes the file
    const second = await serveFiles(root, first.port);
    const again = await FilesClient.connect('127.0.0.1', second.port);
    const st = await again.stat('big.bin');
    expect(st.exists).toBe(false);
    expect(st.partial?.size).toBe(half);
    const offset = st.partial!.size;
    const entry = await again.put('big.bin', Readable.from([data.subarray(offset)]), data.length - offset, { offset, sha256: sha256(data) });
    expect(entry.sha256).toBe(sha256(data));
    await again.close();
    expect(await visible(root)).toEqual({ onDisk: ['big.bin'], listed: ['big.bin'] });
  });

  // Both HTTP uploads stream straight through to the files service (PUT with its Content-Length,
  // multipart POST as a chunked put per part), so the kill lands while the service holds the bytes.
  const HTTP_UPLOADS = {
    'PUT /api/files/:name': (data: Buffer, origin: string) => ({
      method: 'PUT',
      path: '/api/files/upload.bin',
      headers: { origin, 'content-type': 'application/octet-stream' } as Record<string, string>,
      payload: data,
    }),
    'POST /api/files (multipart)': (data: Buffer, origin: string) => {
      const body = multipart([{ filename: 'upload.bin', data }]);
      return { method: 'POST', path: '/api/files', headers: { ...body.headers, origin } as Record<string, string>, payload: body.payload };
    },
  };

  it.each(Object.keys(HTTP_UPLOADS) as (keyof typeof HTTP_UPLOADS)[])('over HTTP %s: 503, nothing visible or spooled, and the redone upload is byte-exact', async (kind) => {
    const { root, first, gw, cookie, gwPort } = await gatewayWithFiles();
    const data = randomBytes(300_000);
    const upload = HTTP_UPLOADS[kind](data, gw.origin);
    const headers = { ...upload.headers, cookie };

    const { req, response } = slowRequest(gwPort, upload.method, upload.path, { ...headers, 'content-length': upload.payload.length });
    req.write(upload.payload.subarray(0, 100_000));
    await eventually(async () => (await partialBytes(root)) > 0, 'bytes reaching the files service');
    await first.proc.stop('SIGKILL');
    // the browser keeps uploading: the gateway's next write upstream finds the connection gone
    req.end(upload.payload.subarray(100_000));
    const answer = await response;
    expect(answer.status).toBe(503);
    expect(answer.body.error?.code).toBe('SB_ERR_BACKEND_DOWN');
    expect(await visible(root)).toEqual({ onDisk: [], listed: [] });
    // no temporary copy on the gateway's side either
    expect(await readdir(join(gw.app.gatewayOptions.data, 'tmp')).catch(() => [])).toEqual([]);

    await serveFiles(root, first.port);
    const redo = await fetch(`${gw.origin}${upload.path}`, { method: upload.method, headers, body: new Uint8Array(upload.payload) });
    expect(redo.status).toBe(201);
    expect(((await redo.json()) as { files: { sha256: string }[] }).files[0]!.sha256).toBe(sha256(data));
    expect((await visible(root)).listed).toEqual(['upload.bin']);
  });
});
