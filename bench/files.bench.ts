// files: put and get of one file (BENCH_FILES_MB, default 1024) through the files service, run as a
// separate process as deployed, versus a plain TCP copy of the same bytes on loopback (a bare
// net.Server piping the socket to a file and a file to the socket). The client side is the same
// in both: read the local file into the socket, or the socket into a local file.
// Goals: ≥ 80 % of the plain copy; the service's peak RSS (VmHWM) under 150 MB.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { FilesClient } from '../backends/files/files-client.js';
import { MB, mbPerSecond, peakRssMb, printTable } from './lib/report.js';

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

    const port = await listeningPort(service.stdout);
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

function listeningPort(stdout: NodeJS.ReadableStream): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (d: string) => {
      text += d;
      const m = /files listening on tcp:\/\/\S+:(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    stdout.once('end', () => reject(new Error(`files service exited before listening: ${text}`)));
  });
}
