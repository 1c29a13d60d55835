// Raw relay speed (issue 4): bytes per second both ways and the 64-byte echo round trip through
// (a) `sockbridge relay`, (b) the gateway's /ws/raw/:target, (c) Debian's websockify, all relaying
// the same TCP target, and (d) a direct TCP connection to it. The load client and the target are C
// (bench/c/wsload.c, compiled here with gcc -O2 into bench/out/): a Node `ws` client tops out near
// 650 MB/s on its own, so it would measure itself. The client's own ceiling (against wsload's
// trivial WebSocket sink, no relay) is printed beside the figures. Loopback only; every loop bounded.
// Goals: ≥ 2× websockify's throughput both ways and a lower p99; ≥ 60 % of direct TCP.
//
// Environment: BENCH_RELAY_MB (default 512) bytes per transfer, BENCH_RELAY_ECHOES (default 20000),
// BENCH_RELAY_RUNS (default 3; the median run is reported).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { buildApp } from '../server/app.js';
import { loadConfig } from '../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../server/gateway-options.js';
import { MB, printTable, type Row } from './lib/report.js';

const run$ = promisify(execFile);
const WEBSOCKIFY = '/usr/bin/websockify';

interface Transfer {
  mb_per_s: number;
}
interface Echo {
  p50_us: number;
  p99_us: number;
}
interface PathResult {
  down: number;
  up: number;
  p50: number;
  p99: number;
}
/** How wsload reaches one path: `ws HOST PORT PATH` (+ headers) or `tcp HOST PORT`. */
type Route = { kind: 'ws'; port: number; path: string; headers: string[] } | { kind: 'tcp'; port: number };

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

async function compileWsload(root: string): Promise<string> {
  const out = join(root, 'bench', 'out');
  mkdirSync(out, { recursive: true });
  const bin = join(out, 'wsload');
  await run$('gcc', ['-O2', '-Wall', '-pthread', '-o', bin, join(root, 'bench', 'c', 'wsload.c')]);
  return bin;
}

/** Starts a process and resolves once its output matches `ready` (rejects if it exits first). */
function startProcess(cmd: string, args: string[], ready: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${text}`)), 15_000);
    const check = (d: Buffer) => {
      text += d.toString();
      const m = text.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}): ${text}`));
    });
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

async function wsload<T>(bin: string, route: Route, mode: 'down' | 'up' | 'echo', n: number): Promise<T> {
  const args =
    route.kind === 'ws'
      ? ['ws', '127.0.0.1', String(route.port), route.path, mode, String(n), ...route.headers]
      : ['tcp', '127.0.0.1', String(route.port), mode, String(n)];
  const { stdout } = await run$(bin, args, { timeout: 120_000 });
  return JSON.parse(stdout) as T;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(bin: string, route: Route, bytes: number, echoes: number, runs: number): Promise<PathResult> {
  const down: number[] = [];
  const up: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  for (let i = 0; i < runs; i++) {
    down.push((await wsload<Transfer>(bin, route, 'down', bytes)).mb_per_s);
    up.push((await wsload<Transfer>(bin, route, 'up', bytes)).mb_per_s);
    const echo = await wsload<Echo>(bin, route, 'echo', echoes);
    p50.push(echo.p50_us);
    p99.push(echo.p99_us);
  }
  return { down: median(down), up: median(up), p50: median(p50), p99: median(p99) };
}

/** The gateway in this process, with the C target as raw target "bench" and a logged-in session. */
async function startGateway(targetPort: number) {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const data = await mkdtemp(join(tmpdir(), 'sockbridge-bench-'));
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, {
    base: { data, port: 0, webRoot: join(data, 'no-web'), raw: { bench: `127.0.0.1:${targetPort}` } },
  });
  const app = await buildApp(options, { logger: pino({ level: 'silent' }), probeHealth: false });
  await app.users.add('bench', 'bench-password', 'user');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const login = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'bench', password: 'bench-password' } });
  const cookie = login.cookies.find((c) => c.name === 'sb_session');
  if (!cookie) throw new Error(`bench login failed: ${login.statusCode}`);
  const route: Route = { kind: 'ws', port, path: '/ws/raw/bench', headers: [`Origin: http://127.0.0.1:${port}`, `Cookie: sb_session=${cookie.value}`] };
  return {
    route,
    close: async () => {
      await app.close();
      await rm(data, { recursive: true, force: true });
    },
  };
}

export async function run(): Promise<void> {
  const bytes = Number(process.env['BENCH_RELAY_MB'] ?? 512) * MB;
  const echoes = Number(process.env['BENCH_RELAY_ECHOES'] ?? 20_000);
  const runs = Number(process.env['BENCH_RELAY_RUNS'] ?? 3);
  const root = repoRoot();
  const bin = await compileWsload(root);
  const children: ChildProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    const target = await startProcess(bin, ['target', '0'], /listening (\d+)/);
    children.push(target.child);
    const targetPort = Number(target.match[1]);
    const sink = await startProcess(bin, ['sink', '0'], /listening (\d+)/);
    children.push(sink.child);

    const relay = await startProcess(process.execPath, [join(root, 'bin', 'sockbridge'), 'relay', '127.0.0.1:0', `127.0.0.1:${targetPort}`], /listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    children.push(relay.child);
    const gateway = await startGateway(targetPort);
    closers.push(gateway.close);

    const paths: { name: string; route: Route }[] = [
      { name: 'client ceiling (wsload ↔ trivial C sink)', route: { kind: 'ws', port: Number(sink.match[1]), path: '/', headers: [] } },
      { name: 'direct TCP', route: { kind: 'tcp', port: targetPort } },
      { name: 'sockbridge relay', route: { kind: 'ws', port: Number(relay.match[1]), path: '/', headers: [] } },
      { name: 'gateway /ws/raw', route: gateway.route },
    ];
    if (existsSync(WEBSOCKIFY)) {
      const port = await freePort();
      const websockify = await startProcess(WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], /proxying from/);
      children.push(websockify.child);
      paths.push({ name: 'websockify (Debian)', route: { kind: 'ws', port, path: '/', headers: [] } });
    } else {
      process.stdout.write(`(${WEBSOCKIFY} not installed: no websockify comparison)\n`);
    }

    const results = new Map<string, PathResult>();
    for (const p of paths) results.set(p.name, await measure(bin, p.route, bytes, echoes, runs));

    const ws = results.get('websockify (Debian)');
    const direct = results.get('direct TCP')!;
    const ours = ['sockbridge relay', 'gateway /ws/raw'];
    process.stdout.write(`\n${bytes / MB} MiB per transfer, ${echoes} echoes of 64 bytes, median of ${runs} runs; C client (bench/c/wsload.c)\n`);
    for (const dir of ['down', 'up'] as const) {
      const rows: Row[] = [];
      for (const [name, r] of results) {
        const row: Row = { name, value: r[dir], unit: 'MB/s' };
        if (ours.includes(name) && ws) Object.assign(row, { baseline: ws[dir], goal: '≥ 200% of websockify' });
        rows.push(row);
      }
      printTable(`raw relay ${dir === 'down' ? 'target → browser' : 'browser → target'} (vs websockify)`, rows);
      printTable(
        `raw relay ${dir} (vs direct TCP)`,
        ours.map((name) => ({ name, value: results.get(name)![dir], unit: 'MB/s', baseline: direct[dir], goal: '≥ 60% of direct TCP' })),
      );
    }
    printTable(
      '64-byte echo round trip p99 (lower is better)',
      [...results].map(([name, r]) => ({ name, value: r.p99, unit: 'µs', ...(ours.includes(name) && ws ? { baseline: ws.p99, goal: '< websockify' } : {}) })),
    );
    printTable('64-byte echo round trip p50', [...results].map(([name, r]) => ({ name, value: r.p50, unit: 'µs' })));
  } finally {
    for (const close of closers) await close();
    for (const child of children) child.kill('SIGTERM');
  }
}
