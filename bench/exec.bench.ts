// exec streaming: `head -c 500M /dev/zero` run through the exec service (a separate process, as
// deployed) and drained by a Node client, versus the same command run locally into a pipe.
// Size: BENCH_EXEC_MB (default 500). Goal: ≥ 70 % of the local pipe.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecClient } from '../backends/exec/exec-client.js';
import { MB, mbPerSecond, peakRssMb, printTable } from './lib/report.js';

const BIN = fileURLToPath(new URL('../../bin/sockbridge', import.meta.url));

export async function run(): Promise<void> {
  const megabytes = Number(process.env['BENCH_EXEC_MB'] ?? 500);
  const argv = ['head', '-c', `${megabytes}M`, '/dev/zero'];
  const bytes = megabytes * MB;

  const local = await timeLocal(argv);
  const dir = await mkdtemp(join(tmpdir(), 'sockbridge-bench-exec-'));
  const secretFile = join(dir, 'exec.secret');
  const secret = randomBytes(24).toString('hex');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const service = spawn(process.execPath, [BIN, 'serve', 'exec', '--port', '0', '--secret-file', secretFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listeningPort(service.stdout);
    const client = await ExecClient.connect('127.0.0.1', port, secret);
    const remote = await timeRemote(client, argv);
    await client.close();
    const rss = await peakRssMb(service.pid!);
    if (local.bytes !== bytes || remote.bytes !== bytes) process.stdout.write(`FAILED: expected ${bytes} bytes, got local ${local.bytes}, exec ${remote.bytes}\n`);
    printTable(`exec streaming ${megabytes} MB of ${argv.join(' ')}`, [
      { name: 'local pipe', value: mbPerSecond(local.bytes, local.ms), unit: 'MB/s' },
      { name: 'through exec', value: mbPerSecond(remote.bytes, remote.ms), unit: 'MB/s', baseline: mbPerSecond(local.bytes, local.ms), goal: '≥ 70%' },
      { name: 'exec service peak RSS', value: rss, unit: 'MB' },
    ]);
  } finally {
    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

async function timeLocal(argv: string[]): Promise<{ bytes: number; ms: number }> {
  const start = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await new Promise((resolve) => child.once('close', resolve));
  return { bytes, ms: performance.now() - start };
}

async function timeRemote(client: ExecClient, argv: string[]): Promise<{ bytes: number; ms: number }> {
  const start = performance.now();
  const job = client.run({ argv });
  let bytes = 0;
  job.on('stdout', (chunk) => (bytes += chunk.length));
  const exit = await job.done;
  if (exit.code !== 0) process.stdout.write(`FAILED: exec exited with ${JSON.stringify(exit)}\n`);
  return { bytes, ms: performance.now() - start };
}

function listeningPort(stdout: NodeJS.ReadableStream): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (d: string) => {
      text += d;
      const m = /listening on tcp:\/\/\S+:(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    stdout.once('end', () => reject(new Error(`exec service exited before listening: ${text}`)));
  });
}
