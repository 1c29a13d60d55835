// What the chat benchmark and the soak share: a whole sockbridge (`sockbridge start`, every port 0) as a
// child process whose memory and CPU are read from /proc, accounts made straight in DATA/users.sqlite
// (100 scrypt hashes through the CLI would take a minute), logins, and many /ws/chat clients.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { UserStore } from '../../server/accounts/user-store.js';

const BIN = fileURLToPath(new URL('../../../bin/sockbridge', import.meta.url));
const ADMIN_PASSWORD = 'bench-admin-password-1';

export interface Account {
  username: string;
  password: string;
}

export interface RunningStack {
  /** the gateway's origin, e.g. http://127.0.0.1:40123 */
  origin: string;
  /** the process running the four backends and the gateway */
  pid: number;
  data: string;
  accounts: Account[];
  /** warn/error lines the stack logged (pino JSON), for the report */
  logLines(): string[];
  /** true once the process has exited (a crash under load) */
  exited(): boolean;
  close(): Promise<void>;
}

/**
 * The --config for a load run, raising only what one machine's worth of clients needs:
 * - chat.maxConnections (default 1,000 in total) to fit `sockets` connections;
 * - gateway limits.maxSocketsPerUser (16) and chat.maxConnectionsPerNick (8) to fit `sockets / users` tabs;
 * - gateway limits.loginAttemptsPerMinute (10 per address) so every account logs in from 127.0.0.1;
 * - the chat message rate (20 per 10 s per connection and per nick) only when `messagesPerSecond`
 *   spread over the accounts would pass 75 % of it. `raised` names what changed, for the report.
 */
export function loadConfig(opts: { sockets: number; users: number; messagesPerSecond: number }): { config: Record<string, unknown>; raised: string[] } {
  const perUser = Math.ceil(opts.sockets / opts.users);
  const chat: Record<string, number> = { maxConnections: Math.max(1000, opts.sockets + 100), maxConnectionsPerNick: Math.max(8, perUser) };
  const raised = ['chat.maxConnections', 'chat.maxConnectionsPerNick', 'gateway limits.maxSocketsPerUser', 'gateway limits.loginAttemptsPerMinute'];
  const perNickPer10s = (opts.messagesPerSecond / opts.users) * 10;
  if (perNickPer10s > 0.75 * 20) {
    chat['rateCapacity'] = Math.ceil(perNickPer10s * 2);
    raised.push(`chat.rateCapacity ${chat['rateCapacity']} per 10 s (shipped: 20)`);
  }
  return {
    config: { gateway: { limits: { maxSocketsPerUser: Math.max(16, perUser), loginAttemptsPerMinute: opts.users + 10 } }, chat },
    raised,
  };
}

/** Starts `sockbridge start` on free ports in a fresh data dir holding `users` accounts (bench0…). */
export async function startStack(opts: { users: number; config: Record<string, unknown> }): Promise<RunningStack> {
  const data = await mkdtemp(join(tmpdir(), 'sockbridge-load-'));
  const accounts = await createAccounts(data, opts.users);
  const configFile = join(data, 'bench-config.json');
  await writeFile(configFile, JSON.stringify(opts.config));
  const child = spawn(
    process.execPath,
    // BENCH_STACK_NODE_ARGS='--cpu-prof --cpu-prof-dir=prof' profiles the stack under load
    [...(process.env['BENCH_STACK_NODE_ARGS']?.split(' ').filter(Boolean) ?? []), BIN, 'start', '--port', '0', '--chat-port', '0', '--chat-line-port', '0', '--exec-port', '0', '--files-port', '0', '--time-port', '0', '--data', data, '--config', configFile],
    // info would log every socket's open and close: the figures are the gateway's, not the log's
    { env: { ...process.env, SOCKBRIDGE_ADMIN_PASSWORD: ADMIN_PASSWORD, SOCKBRIDGE_LOG_LEVEL: process.env['SOCKBRIDGE_LOG_LEVEL'] ?? 'warn' }, stdio: 'pipe' },
  );
  const logLines: string[] = [];
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  collectLines(child, logLines);
  const close = async () => {
    if (!exited) child.kill('SIGTERM');
    await exit;
    await rm(data, { recursive: true, force: true });
  };
  try {
    const origin = await printedOrigin(child);
    return { origin, pid: child.pid!, data, accounts, logLines: () => logLines, exited: () => exited, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function createAccounts(data: string, count: number): Promise<Account[]> {
  const store = new UserStore(join(data, 'users.sqlite'));
  try {
    const accounts = Array.from({ length: count }, (_, i) => ({ username: `bench${i}`, password: `bench-password-${i}` }));
    for (let i = 0; i < accounts.length; i += 8) {
      await Promise.all(accounts.slice(i, i + 8).map((a) => store.add(a.username, a.password, 'user')));
    }
    return accounts;
  } finally {
    store.close();
  }
}

function collectLines(child: ChildProcessWithoutNullStreams, into: string[]): void {
  child.stdout.resume();
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    // bounded: a log storm must not become the bench's own leak
    for (const line of lines) if (line && into.length < 1000) into.push(line);
  });
}

function printedOrigin(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`sockbridge start did not print its URL in 30 s: ${text}`)), 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const m = /sockbridge: open (http:\/\/[^/\s]+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`sockbridge start exited (${code}) before listening: ${text}`)));
  });
}

/**
 * Logs in and returns the `Cookie` header value (sb_session=…). Each login is a scrypt hash of 32 MiB in
 * the stack: callers log in two at a time so the stack's peak RSS shows the load, not the logins.
 */
export async function login(origin: string, account: Account): Promise<string> {
  const res = await fetch(`${origin}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify(account),
  });
  if (res.status !== 200) throw new Error(`login ${account.username}: HTTP ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('sb_session='));
  if (!cookie) throw new Error(`login ${account.username}: no sb_session cookie`);
  return cookie;
}

/**
 * Opens /ws/chat and resolves once the gateway's hello was answered with `joined` (the socket is in
 * the default room, so what is said from now on reaches it). `onText` sees every later message.
 */
export function openChat(origin: string, cookie: string, onText: (text: string) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${origin.replace(/^http/, 'ws')}/ws/chat`, { headers: { cookie, origin }, perMessageDeflate: false });
    const timer = setTimeout(() => fail(new Error('no "joined" within 30 s')), 30_000);
    const onError = (err: Error) => fail(err);
    const onClose = (code: number) => fail(new Error(`closed ${code} before "joined"`));
    const settle = () => {
      clearTimeout(timer);
      ws.off('message', onFirst).off('error', onError).off('close', onClose);
    };
    const fail = (err: Error) => {
      settle();
      ws.terminate();
      reject(err);
    };
    function onFirst(data: WebSocket.RawData): void {
      const text = data.toString();
      const event = JSON.parse(text) as { cmd?: string };
      if (event.cmd === 'error') return fail(new Error(`chat refused: ${text.slice(0, 200)}`));
      // welcome comes first; joined means the socket is in the room
      if (event.cmd !== 'joined') return;
      settle();
      ws.on('message', (d: WebSocket.RawData) => onText(d.toString()));
      resolve(ws);
    }
    ws.on('message', onFirst).once('error', onError).once('close', onClose);
  });
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` at once (the listen backlog is finite). */
export async function inBatches<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** Closes sockets and waits for their close handshakes (bounded). */
export async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => (ws.terminate(), resolve()), 5000);
          ws.once('close', () => (clearTimeout(timer), resolve()));
          ws.close();
        }),
    ),
  );
}

/** Resident (VmRSS) and peak resident (VmHWM) memory of a process, in MB, from /proc. */
export async function memoryMb(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** Open file descriptors of a process (sockets, files, pipes): a leak shows here before it shows in RSS. */
export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat (clock ticks of 1/100 s on Linux). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised command name, which may itself hold spaces
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** This process's CPU seconds (user + system). */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The soft open-file limit of this process (the stack inherits it). */
export async function openFileLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
}

/** Says whether the stack died and prints the first warn/error lines it logged. */
export function printStackLog(stack: RunningStack): void {
  if (stack.exited()) process.stdout.write('FAILED: the stack process exited during the run\n');
  const lines = stack.logLines();
  if (lines.length === 0) return;
  process.stdout.write(`the stack logged ${lines.length} warn/error lines; first:\n`);
  for (const line of lines.slice(0, 5)) process.stdout.write(`  ${line.slice(0, 300)}\n`);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A numeric setting from the environment (SOAK_SECONDS=120), or its default. */
export function numberEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${process.env[name]}: use a number ≥ 0`);
  return value;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
