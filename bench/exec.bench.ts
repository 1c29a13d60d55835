// exec streaming: `head -c 500M /dev/zero` run through the exec service (a separate process, as
// deployed) and drained by a Node client, versus the same command run locally into a pipe.
// A bare pipe→TCP relay (no framing, no auth) is printed too: the transport's own cost, for scale.
// "data connection" is the same run with stdout: 'connection' (the child writes into the socket).
// Size: BENCH_EXEC_MB (default 500); rounds: BENCH_EXEC_ROUNDS (default 3). Goal: ≥ 70 % of the local pipe.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
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
  const rounds = Number(process.env['BENCH_EXEC_ROUNDS'] ?? 3);

  const dir = await mkdtemp(join(tmpdir(), 'sockbridge-bench-exec-'));
  const secretFile = join(dir, 'exec.secret');
  const secret = randomBytes(24).toString('hex');
  await writeFile(secretFile, secret, { mode: 0o600 });
  const service = spawn(process.execPath, [BIN, 'serve', 'exec', '--port', '0', '--secret-file', secretFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listeningPort(service.stdout);
    const client = await ExecClient.connect('127.0.0.1', port, secret);
    // Alternate the two, best of N each: on a shared machine one slow round says little.
    let local = { bytes: 0, ms: Infinity };
    let relay = { bytes: 0, ms: Infinity };
    let remote = { bytes: 0, ms: Infinity };
    let direct = { bytes: 0, ms: Infinity };
    for (let round = 0; round < rounds; round++) {
      local = fastest(local, await timeLocal(argv));
      relay = fastest(relay, await timeRelay(argv));
      remote = fastest(remote, await timeRemote(client, argv));
      direct = fastest(direct, await timeRemote(client, argv, 'connection'));
    }
    await client.close();
    const rss = await peakRssMb(service.pid!);
    if (local.bytes !== bytes || remote.bytes !== bytes || direct.bytes !== bytes) {
      process.stdout.write(`FAILED: expected ${bytes} bytes, got local ${local.bytes}, exec ${remote.bytes}, data connection ${direct.bytes}\n`);
    }
    printTable(`exec streaming ${megabytes} MB of ${argv.join(' ')} (best of ${rounds})`, [
      { name: 'local pipe', value: mbPerSecond(local.bytes, local.ms), unit: 'MB/s' },
      { name: 'bare pipe→TCP relay', value: mbPerSecond(relay.bytes, relay.ms), unit: 'MB/s', baseline: mbPerSecond(local.bytes, local.ms) },
      { name: 'through exec', value: mbPerSecond(remote.bytes, remote.ms), unit: 'MB/s', baseline: mbPerSecond(local.bytes, local.ms), goal: '≥ 70%' },
      { name: 'through exec, data connection', value: mbPerSecond(direct.bytes, direct.ms), unit: 'MB/s', baseline: mbPerSecond(local.bytes, local.ms), goal: '≥ 70%' },
      { name: 'exec service peak RSS', value: rss, unit: 'MB' },
    ]);
  } finally {
    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

const fastest = (a: { bytes: number; ms: number }, b: { bytes: number; ms: number }) => (b.ms < a.ms ? b : a);

async function timeLocal(argv: string[]): Promise<{ bytes: number; ms: number }> {
  const start = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await new Promise((resolve) => child.once('close', resolve));
  return { bytes, ms: performance.now() - start };
}

/** The transport alone, for scale: the command's stdout piped into a loopback socket, no framing, no auth. */
async function timeRelay(argv: string[]): Promise<{ bytes: number; ms: number }> {
  const server = net.createServer((socket) => spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] }).stdout.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const start = performance.now();
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.once('end', () => resolve());
    socket.once('error', reject);
  });
  const ms = performance.now() - start;
  await new Promise((resolve) => server.close(resolve));
  return { bytes, ms };
}

async function timeRemote(client: ExecClient, argv: string[], stdout?: 'connection'): Promise<{ bytes: number; ms: number }> {
  const start = performance.now();
  const job = client.run(stdout ? { argv, stdout } : { argv });
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
