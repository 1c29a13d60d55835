// files: put and get of one file (BENCH_FILES_MB, default 1024) through the files service, run as a
// separate process as deployed, versus a plain TCP copy of the same bytes on loopback (a bare
// net.Server piping the socket to a file and a file to the socket). The client side is the same
// in both: read the local file into the socket, or the socket into a local file.
// Goals: ≥ 80 % of the plain copy; the service's peak RSS (VmHWM) under 150 MB.
// Then the browser's path (issue 4): the same file as the web client's PUT /api/files/:name and as
// a form's multipart POST /api/files, through `sockbridge gateway` (its own process, streaming the
// body into a put) versus `sockbridge put` straight to the files service. Goals: ≥ 70 % of the CLI; the gateway's peak RSS
// flat (it must not grow with the file). Then the same file downloaded: GET /api/files/:name against
// `sockbridge get`, goal ≥ 70 %.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FilesClient } from '../backends/files/files-client.js';
import { MB, mbPerSecond, peakRssMb, printTable } from './lib/report.js';

const run$ = promisify(execFile);

const BIN = fileURLToPath(new URL('../../bin/sockbridge', import.meta.url));

export async function run(): Promise<void> {
  const megabytes = Number(process.env['BENCH_FILES_MB'] ?? 1024);
  const bytes = megabytes * MB;
  const dir = await mkdtemp(join(tmpdir(), 'sockbridge-bench-files-'));
  const source = join(dir, 'source.bin');
  await makeFile(source, bytes);

  const service = spawn(process.execPath, [BIN, 'serve', 'files', '--port', '0', '--root', join(dir, 'root'), '--max-file-size', String(bytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const plainPut = await timed(() => plainCopyUp(source, join(dir, 'plain-up.bin')));
    await rm(join(dir, 'plain-up.bin'), { force: true });
    // The service makes an upload durable (fdatasync) before it becomes visible: the fair baseline too.
    const plainPutSynced = await timed(() => plainCopyUp(source, join(dir, 'plain-up.bin'), true));
    const plainGet = await timed(() => plainCopyDown(source, join(dir, 'plain-down.bin')));
    await rm(join(dir, 'plain-up.bin'), { force: true });
    await rm(join(dir, 'plain-down.bin'), { force: true });

    const port = Number((await outputMatch(service, /files listening on tcp:\/\/\S+:(\d+)/))[1]);
    const client = await FilesClient.connect('127.0.0.1', port);
    const put = await timed(() => client.put('bench.bin', createReadStream(source, { highWaterMark: 1024 * 1024 }), bytes));
    const get = await timed(async () => {
      const { stream } = await client.get('bench.bin');
      await pipeline(stream, createWriteStream(join(dir, 'got.bin')));
    });
    await client.close();
    const rss = await peakRssMb(service.pid!);

    printTable(`files: ${megabytes} MB over loopback`, [
      { name: 'plain TCP copy up', value: mbPerSecond(bytes, plainPut), unit: 'MB/s' },
      { name: 'plain TCP copy up + fdatasync', value: mbPerSecond(bytes, plainPutSynced), unit: 'MB/s' },
      { name: 'files put', value: mbPerSecond(bytes, put), unit: 'MB/s', baseline: mbPerSecond(bytes, plainPut), goal: '≥ 80%' },
      { name: 'files put vs synced copy', value: mbPerSecond(bytes, put), unit: 'MB/s', baseline: mbPerSecond(bytes, plainPutSynced), goal: '≥ 80%' },
      { name: 'plain TCP copy down', value: mbPerSecond(bytes, plainGet), unit: 'MB/s' },
      { name: 'files get', value: mbPerSecond(bytes, get), unit: 'MB/s', baseline: mbPerSecond(bytes, plainGet), goal: '≥ 80%' },
      { name: 'files service peak RSS', value: rss, unit: 'MB', goal: '< 150 MB' },
    ]);
    await browserUpload(dir, source, bytes, port, megabytes);
  } finally {
    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Incompressible bytes without paying for 1 GiB of randomness: one random MiB, repeated. */
async function makeFile(path: string, bytes: number): Promise<void> {
  const block = randomBytes(MB);
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < bytes; written += MB) await handle.write(block, 0, Math.min(MB, bytes - written));
  } finally {
    await handle.close();
  }
}

/** The baseline upload: client file → socket → server file, nothing else (then fdatasync if `sync`). */
async function plainCopyUp(source: string, target: string, sync = false): Promise<void> {
  let stored!: Promise<void>;
  const server = net.createServer((socket) => {
    stored = (async () => {
      const handle = await open(target, 'w');
      await pipeline(socket, createWriteStream('', { fd: handle.fd, autoClose: false }));
      if (sync) await handle.datasync();
      await handle.close();
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await pipeline(createReadStream(source, { highWaterMark: 1024 * 1024 }), net.connect(port, '127.0.0.1'));
  await stored;
  server.close();
}

/** The baseline download: server file → socket → client file. */
async function plainCopyDown(source: string, target: string): Promise<void> {
  const server = net.createServer((socket) => void pipeline(createReadStream(source), socket).catch(() => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await pipeline(net.connect(port, '127.0.0.1'), createWriteStream(target));
  server.close();
}

/** Resolves with the first match of `pattern` in the child's stdout (rejects if it exits first). */
function outputMatch(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      text += d;
      const m = pattern.exec(text);
      if (m) resolve(m);
    });
    child.stdout!.once('end', () => reject(new Error(`${child.spawnargs.join(' ')} exited before ${pattern}: ${text}`)));
  });
}

/**
 * The upload the web client makes (PUT /api/files/:name, the name in the path) and a form's multipart
 * POST (HTML forms, `curl -F`), both through the gateway, against the CLI's direct put.
 */
async function browserUpload(dir: string, source: string, bytes: number, filesPort: number, megabytes: number): Promise<void> {
  const cli = await timed(
    () =>
      new Promise<void>((resolve, reject) => {
        const put = spawn(process.execPath, [BIN, 'put', `127.0.0.1:${filesPort}`, source, 'cli.bin'], { stdio: 'ignore' });
        put.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sockbridge put exited ${code}`))));
      }),
  );
  const password = 'bench-password-files';
  // As deployed: `npm start` and the launcher run Node with --initial-old-space-size=64 (docs/relay.md).
  const gateway = spawn(process.execPath, ['--initial-old-space-size=64', BIN, 'gateway', '--port', '0', '--data', join(dir, 'gateway'), '--files', `tcp://127.0.0.1:${filesPort}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SOCKBRIDGE_ADMIN_PASSWORD: password, SOCKBRIDGE_LOG_LEVEL: 'error' },
  });
  try {
    const port = Number((await outputMatch(gateway, /open http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const login = await fetch(`http://127.0.0.1:${port}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    const cookie = /sb_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
    if (!cookie) throw new Error(`bench login failed: ${login.status}`);
    const idle = await peakRssMb(gateway.pid!);
    const web = await timed(() => httpUpload(port, cookie, source, 'put'));
    const form = await timed(() => httpUpload(port, cookie, source, 'multipart'));
    const rss = await peakRssMb(gateway.pid!);
    // Downloads: `sockbridge get` straight from the files service against GET /api/files/:name.
    const cliGet = await timed(
      () =>
        new Promise<void>((resolve, reject) => {
          const get = spawn(process.execPath, [BIN, 'get', `127.0.0.1:${filesPort}`, 'cli.bin', join(dir, 'cli-copy.bin')], { stdio: 'ignore' });
          get.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sockbridge get exited ${code}`))));
        }),
    );
    const webGet = await timed(() => httpDownload(port, cookie, 'web.bin', join(dir, 'web-copy.bin'), bytes));
    const rssAfterGet = await peakRssMb(gateway.pid!);
    printTable(`files: ${megabytes} MB uploaded and downloaded as a browser does (through the gateway)`, [
      { name: 'sockbridge put (direct)', value: mbPerSecond(bytes, cli), unit: 'MB/s' },
      { name: 'gateway PUT /api/files/:name (the web client)', value: mbPerSecond(bytes, web), unit: 'MB/s', baseline: mbPerSecond(bytes, cli), goal: '≥ 70%' },
      { name: 'gateway POST /api/files (multipart form)', value: mbPerSecond(bytes, form), unit: 'MB/s', baseline: mbPerSecond(bytes, cli), goal: '≥ 70%' },
      { name: 'sockbridge get (direct)', value: mbPerSecond(bytes, cliGet), unit: 'MB/s' },
      { name: 'gateway GET /api/files/:name', value: mbPerSecond(bytes, webGet), unit: 'MB/s', baseline: mbPerSecond(bytes, cliGet), goal: '≥ 70%' },
      { name: 'gateway peak RSS before the upload', value: idle, unit: 'MB' },
      { name: 'gateway peak RSS after both uploads', value: rss, unit: 'MB', goal: 'flat: growth far below the file size' },
      { name: 'gateway peak RSS after the download', value: rssAfterGet, unit: 'MB', goal: 'flat' },
    ]);
  } finally {
    gateway.kill('SIGTERM');
    await new Promise((resolve) => gateway.once('exit', resolve));
  }
}

/**
 * GET /api/files/:name into a local file with curl, checking that every byte arrived. Not Node's
 * http client: here it tops out near 250 MB/s and measured itself (the gateway serves curl at
 * ~1 GB/s on this machine), as a browser's download is not a Node client either.
 */
async function httpDownload(port: number, cookie: string, name: string, target: string, bytes: number): Promise<void> {
  const url = `http://127.0.0.1:${port}/api/files/${encodeURIComponent(name)}`;
  const { stdout } = await run$('curl', ['-sS', '-o', target, '-w', '%{http_code}', '-H', `cookie: sb_session=${cookie}`, url]);
  if (stdout.trim() !== '200') throw new Error(`GET /api/files/${name} answered ${stdout.trim()}`);
  const received = (await stat(target)).size;
  if (received !== bytes) throw new Error(`downloaded ${received} of ${bytes} bytes`);
}

/**
 * The file streamed from disk as `web.bin` by curl (a client that costs little per byte, as a
 * browser's upload does not run through Node either): a PUT of the raw bytes (the web client) or
 * one multipart file part (a form), each with a Content-Length.
 */
async function httpUpload(port: number, cookie: string, path: string, kind: 'put' | 'multipart'): Promise<void> {
  const base = `http://127.0.0.1:${port}`;
  const common = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `cookie: sb_session=${cookie}`, '-H', `origin: ${base}`, '-H', 'expect:'];
  const args =
    kind === 'put'
      ? [...common, '-H', 'content-type: application/octet-stream', '-T', path, `${base}/api/files/web.bin`]
      : [...common, '-F', `file=@${path};filename=web.bin;type=application/octet-stream`, `${base}/api/files`];
  const { stdout } = await run$('curl', args);
  if (stdout.trim() !== '201') throw new Error(`${kind === 'put' ? 'PUT /api/files/web.bin' : 'POST /api/files'} answered ${stdout.trim()}`);
}
