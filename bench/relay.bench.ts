// Raw relay speed (issue 4): bytes per second both ways and the 64-byte echo round trip through
// (a) `sockbridge relay`, (b) the gateway's /ws/raw/:target (`sockbridge gateway`, its own process), (c) Debian's websockify, all relaying
// the same TCP target, and (d) a direct TCP connection to it. The load client and the target are C
// (bench/c/wsload.c, compiled here with gcc -O2 into bench/out/): a Node `ws` client tops out near
// 650 MB/s on its own, so it would measure itself. The client's own ceiling (against wsload's
// trivial WebSocket sink, no relay) is printed beside the figures. Loopback only; every loop bounded.
// Goals: ≥ 2× websockify's throughput both ways and a lower p99; ≥ 60 % of direct TCP.
//
// Up-stream is measured twice: with 64,000-byte messages (bulk; under the gateway's 64 KiB message
// limit) and with 2 KiB ones ("up 2K"), which is what browsers send (noVNC's input events, terminal
// keystrokes) and where per-message costs show.
//
// Environment: BENCH_RELAY_MB (default 512) bytes per transfer (a quarter of it for "up 2K"),
// BENCH_RELAY_ECHOES (default 20000), BENCH_RELAY_RUNS (default 3; the median run is reported),
// BENCH_RELAY_BASELINE: the root of another built checkout (e.g. `git worktree add /tmp/base HEAD~1
// && (cd /tmp/base && npm run build:server)`, with node_modules linked) whose `sockbridge relay` and gateway
// are measured in the same run, for before/after figures on the same machine load.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  /** up-stream with small (SMALL_FRAME_BYTES) messages */
  upSmall: number;
  p50: number;
  p99: number;
  /** CPU the relay itself spent per GiB moved (user + system), when it is known: robust on a busy machine */
  cpuMsPerGiB?: { down: number; up: number; upSmall: number };
}
type Direction = 'down' | 'up' | 'upSmall';
/** The message size of the "up 2K" measurement. */
const SMALL_FRAME_BYTES = 2048;
/** Cumulative CPU milliseconds of the relay under test. */
type CpuClock = () => Promise<number>;

/** A child's CPU time from /proc (utime + stime + reaped children's, in clock ticks of 10 ms). */
function processCpu(pid: number): CpuClock {
  return async () => {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    // after "pid (comm) ": state is field 3, so utime (14), stime (15), cutime (16), cstime (17) are 11..14
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) * 10;
  };
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
function startProcess(cmd: string, args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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

async function wsload<T>(bin: string, route: Route, mode: 'down' | 'up' | 'echo', n: number, frameBytes?: number): Promise<T> {
  const args =
    route.kind === 'ws'
      ? ['ws', '127.0.0.1', String(route.port), route.path, mode, String(n), ...route.headers]
      : ['tcp', '127.0.0.1', String(route.port), mode, String(n)];
  const env = frameBytes ? { ...process.env, WSLOAD_FRAME: String(frameBytes) } : process.env;
  const { stdout } = await run$(bin, args, { timeout: 120_000, env });
  return JSON.parse(stdout) as T;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Per-figure medians of single runs. */
function combineRuns(list: PathResult[]): PathResult {
  const of = (pick: (r: PathResult) => number) => median(list.map(pick));
  const cpu = list.every((r) => r.cpuMsPerGiB) ? list.map((r) => r.cpuMsPerGiB!) : undefined;
  return {
    down: of((r) => r.down),
    up: of((r) => r.up),
    upSmall: of((r) => r.upSmall),
    p50: of((r) => r.p50),
    p99: of((r) => r.p99),
    ...(cpu ? { cpuMsPerGiB: { down: median(cpu.map((c) => c.down)), up: median(cpu.map((c) => c.up)), upSmall: median(cpu.map((c) => c.upSmall)) } } : {}),
  };
}

async function measure(bin: string, route: Route, bytes: number, echoes: number, runs: number, cpu?: CpuClock): Promise<PathResult> {
  const down: number[] = [];
  const up: number[] = [];
  const upSmall: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const cpuMs = { down: 0, up: 0, upSmall: 0 };
  const timed = async (dir: Direction) => {
    const before = cpu ? await cpu() : 0;
    const result =
      dir === 'upSmall' ? await wsload<Transfer>(bin, route, 'up', bytes / 4, SMALL_FRAME_BYTES) : await wsload<Transfer>(bin, route, dir, bytes);
    if (cpu) {
      // websockify's per-connection process is counted once its parent has reaped it.
      await new Promise((r) => setTimeout(r, 300));
      cpuMs[dir] += (await cpu()) - before;
    }
    return result.mb_per_s;
  };
  for (let i = 0; i < runs; i++) {
    down.push(await timed('down'));
    up.push(await timed('up'));
    upSmall.push(await timed('upSmall'));
    const echo = await wsload<Echo>(bin, route, 'echo', echoes);
    p50.push(echo.p50_us);
    p99.push(echo.p99_us);
  }
  const gib = (bytes * runs) / (1024 * MB);
  return {
    down: median(down),
    up: median(up),
    upSmall: median(upSmall),
    p50: median(p50),
    p99: median(p99),
    ...(cpu ? { cpuMsPerGiB: { down: cpuMs.down / gib, up: cpuMs.up / gib, upSmall: cpuMs.upSmall / (gib / 4) } } : {}),
  };
}

/**
 * The gateway as a user runs it (`sockbridge gateway`, its own process, so its CPU is its own), with
 * the C target as raw target "bench", and a session logged in over HTTP.
 */
async function startGateway(root: string, targetPort: number, dataDir: string) {
  // `root` may be a baseline checkout (BENCH_RELAY_BASELINE): its own bin/sockbridge and dist/.
  const password = 'bench-password-relay';
  const gateway = await startProcess(
    process.execPath,
    // As deployed: `npm start` and the launcher run Node with --initial-old-space-size=64 (docs/relay.md).
    ['--initial-old-space-size=64', join(root, 'bin', 'sockbridge'), 'gateway', '--port', '0', '--data', dataDir, '--raw', `bench=127.0.0.1:${targetPort}`],
    /open http:\/\/127\.0\.0\.1:(\d+)/,
    { SOCKBRIDGE_ADMIN_PASSWORD: password, SOCKBRIDGE_LOG_LEVEL: 'warn' },
  );
  const port = Number(gateway.match[1]);
  const login = await fetch(`http://127.0.0.1:${port}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  const cookie = /sb_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
  if (!cookie) throw new Error(`bench login failed: ${login.status} ${await login.text()}`);
  const route: Route = { kind: 'ws', port, path: '/ws/raw/bench', headers: [`Origin: http://127.0.0.1:${port}`, `Cookie: sb_session=${cookie}`] };
  return { child: gateway.child, route };
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

    const paths: { name: string; route: Route; cpu?: CpuClock }[] = [
      { name: 'client ceiling (wsload ↔ trivial C sink)', route: { kind: 'ws', port: Number(sink.match[1]), path: '/', headers: [] } },
      { name: 'direct TCP', route: { kind: 'tcp', port: targetPort } },
    ];
    /** Our two entry points, built from the checkout at `checkout`, under names ending in `suffix`. */
    const addOurs = async (checkout: string, suffix: string) => {
      const relay = await startProcess(process.execPath, ['--initial-old-space-size=64', join(checkout, 'bin', 'sockbridge'), 'relay', '127.0.0.1:0', `127.0.0.1:${targetPort}`], /listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      children.push(relay.child);
      const dataDir = await mkdtemp(join(tmpdir(), 'sockbridge-bench-relay-'));
      closers.push(() => rm(dataDir, { recursive: true, force: true }));
      const gateway = await startGateway(checkout, targetPort, dataDir);
      children.push(gateway.child);
      paths.push(
        { name: `sockbridge relay${suffix}`, route: { kind: 'ws', port: Number(relay.match[1]), path: '/', headers: [] }, cpu: processCpu(relay.child.pid!) },
        { name: `gateway /ws/raw${suffix}`, route: gateway.route, cpu: processCpu(gateway.child.pid!) },
      );
    };
    await addOurs(root, '');
    const baseline = process.env['BENCH_RELAY_BASELINE'];
    if (baseline) await addOurs(baseline, ' (baseline)');
    if (existsSync(WEBSOCKIFY)) {
      const port = await freePort();
      const websockify = await startProcess(WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], /proxying from/);
      children.push(websockify.child);
      // websockify forks a process per connection: its CPU shows as reaped children's time.
      paths.push({ name: 'websockify (Debian)', route: { kind: 'ws', port, path: '/', headers: [] }, cpu: processCpu(websockify.child.pid!) });
    } else {
      process.stdout.write(`(${WEBSOCKIFY} not installed: no websockify comparison)\n`);
    }

    // Run by run, every path in turn, so that a change in the machine's load hits all of them alike.
    const results = new Map<string, PathResult>();
    const perRun = new Map<string, PathResult[]>(paths.map((p) => [p.name, []]));
    for (let i = 0; i < runs; i++) {
      for (const p of paths) perRun.get(p.name)!.push(await measure(bin, p.route, bytes, echoes, 1, p.cpu));
    }
    for (const [name, list] of perRun) results.set(name, combineRuns(list));

    const ws = results.get('websockify (Debian)');
    const direct = results.get('direct TCP')!;
    const ours = [...results.keys()].filter((name) => name.startsWith('sockbridge relay') || name.startsWith('gateway /ws/raw'));
    process.stdout.write(`\n${bytes / MB} MiB per transfer, ${echoes} echoes of 64 bytes, median of ${runs} runs; C client (bench/c/wsload.c)\n`);
    const label = (dir: Direction) =>
      dir === 'down' ? 'target → browser' : dir === 'up' ? 'browser → target' : `browser → target, ${SMALL_FRAME_BYTES}-byte messages`;
    for (const dir of ['down', 'up', 'upSmall'] as const) {
      const rows: Row[] = [];
      for (const [name, r] of results) {
        const row: Row = { name, value: r[dir], unit: 'MB/s' };
        if (ours.includes(name) && ws) Object.assign(row, { baseline: ws[dir], goal: '≥ 200% of websockify' });
        rows.push(row);
      }
      printTable(`raw relay ${label(dir)} (vs websockify)`, rows);
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
    // Throughput on a shared machine swings with everyone else's load; the CPU a relay spends per GiB does not.
    for (const dir of ['down', 'up', 'upSmall'] as const) {
      printTable(
        `relay CPU per GiB ${label(dir)} (user + system, lower is better)`,
        [...results]
          .filter(([, r]) => r.cpuMsPerGiB)
          .map(([name, r]) => ({
            name,
            value: r.cpuMsPerGiB![dir],
            unit: 'ms/GiB',
            ...(ours.includes(name) && ws?.cpuMsPerGiB ? { baseline: ws.cpuMsPerGiB[dir] } : {}),
          })),
      );
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300)); // let the gateway close its database before its directory goes
    for (const close of closers) await close();
  }
}
