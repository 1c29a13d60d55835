// Chat under load (issue 4, "Speed: Chat"), against a whole `sockbridge start` in a child process:
//  1. fan-out: CHAT_BENCH_CLIENTS (1,000) /ws/chat clients in one room; messages said at fixed rates
//     (CHAT_BENCH_RATES, messages per second, open loop; default 5,10,20,40) for CHAT_BENCH_SECONDS (6) each; every client
//     receives every message. Figures: deliveries per second, send→delivery latency p50/p99 (the send
//     time travels in the text; senders and receivers share this process's clock), CPU of the stack
//     and of this client process (if the client is near 100 % of a core, it is the bottleneck).
//  2. idle memory: a fresh stack, CHAT_BENCH_IDLE (5,000) connected sockets, RSS delta / sockets.
//     One /ws/chat socket costs the stack process a WebSocket, a TCP connection to the chat service
//     and the chat service's end of it: all three are in the figure. Goal: < 50 KB each.
// CHAT_BENCH_ACCOUNTS (20) accounts share the sockets (a login costs a scrypt hash, ~0.3 s on a busy
// 2-core machine); connection caps are raised to fit, and the message rate limit only when the
// fastest rate would pass it (loadConfig in lib/ws-clients.ts says which; printed).
import { cpus, loadavg } from 'node:os';
import WebSocket from 'ws';
import { printTable, type Row } from './lib/report.js';
import {
  closeAll,
  cpuSeconds,
  inBatches,
  loadConfig,
  login,
  memoryMb,
  numberEnv,
  openChat,
  openFileLimit,
  ownCpuSeconds,
  percentile,
  printStackLog,
  sleep,
  startStack,
  type RunningStack,
} from './lib/ws-clients.js';

const ROOM = 'lobby';

export async function run(): Promise<void> {
  const clients = numberEnv('CHAT_BENCH_CLIENTS', 1000);
  const rates = (process.env['CHAT_BENCH_RATES'] ?? '5,10,20,40').split(',').map(Number);
  const seconds = numberEnv('CHAT_BENCH_SECONDS', 6);
  const idle = numberEnv('CHAT_BENCH_IDLE', 5000);
  const accounts = numberEnv('CHAT_BENCH_ACCOUNTS', 20);
  const fdLimit = await openFileLimit();
  process.stdout.write(`open-file limit ${fdLimit}; the stack holds 3 descriptors per chat socket (WebSocket, gateway→chat, chat's end)\n`);
  // a shared machine's other load shows in the latencies: say how busy it was
  process.stdout.write(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs\n`);
  await fanOut(clients, accounts, rates, seconds);
  const fit = Math.floor((fdLimit - 200) / 3);
  if (idle > fit) process.stdout.write(`idle phase limited by the open-file limit: ${fit} sockets instead of ${idle}\n`);
  await idleMemory(Math.min(idle, fit), accounts);
}

interface Step {
  step: number;
  sent: number;
  delivered: number;
  errors: number;
  latencies: Float64Array;
  lastDelivery: number;
}

async function fanOut(clients: number, accounts: number, rates: number[], seconds: number): Promise<void> {
  const { config, raised } = loadConfig({ sockets: clients, users: accounts, messagesPerSecond: Math.max(...rates) });
  process.stdout.write(`config raised: ${raised.join(', ')}\n`);
  const stack = await startStack({ users: accounts, config });
  const sockets: WebSocket[] = [];
  let current: Step | null = null;
  let closedEarly = 0;
  // Hot path: 1,000 receivers per message, so the text is found without JSON.parse.
  const onText = (text: string) => {
    const step = current;
    if (!step) return;
    if (text.startsWith('{"cmd":"error"')) {
      step.errors++;
      return;
    }
    const at = text.indexOf('"text":"@');
    if (at < 0) return;
    const colon = text.indexOf(':', at + 9);
    if (Number(text.slice(at + 9, colon)) !== step.step) return;
    const now = performance.now();
    const sentAt = Number(text.slice(colon + 1, text.indexOf('"', colon)));
    if (step.delivered < step.latencies.length) step.latencies[step.delivered] = now - sentAt;
    step.delivered++;
    step.lastDelivery = now;
  };
  try {
    const cookies = await inBatches(accounts, 2, (i) => login(stack.origin, stack.accounts[i]!));
    const opened = performance.now();
    // socket i belongs to account i % accounts: consecutive senders are different accounts
    sockets.push(...(await inBatches(clients, 50, (i) => openChat(stack.origin, cookies[i % accounts]!, onText))));
    process.stdout.write(`${clients} chat sockets open in ${((performance.now() - opened) / 1000).toFixed(1)} s\n`);
    for (const ws of sockets) ws.once('close', () => closedEarly++);

    const rows: Row[] = [];
    for (const [index, rate] of rates.entries()) {
      const step: Step = { step: index + 1, sent: 0, delivered: 0, errors: 0, latencies: new Float64Array(Math.ceil(rate * seconds) * clients), lastDelivery: 0 };
      current = step;
      const stackCpu = await cpuSeconds(stack.pid);
      const ownCpu = ownCpuSeconds();
      const start = performance.now();
      await sendAtRate(sockets, rate, seconds * 1000, step);
      await drain(step, clients, stack);
      const wall = ((step.lastDelivery || performance.now()) - start) / 1000;
      const stackSeconds = (await cpuSeconds(stack.pid)) - stackCpu;
      const stackUse = stackSeconds / wall;
      const ownUse = (ownCpuSeconds() - ownCpu) / wall;
      const sorted = Array.from(step.latencies.subarray(0, Math.min(step.delivered, step.latencies.length))).sort((a, b) => a - b);
      const expected = step.sent * clients;
      rows.push(
        { name: `${rate} msg/s said: deliveries`, value: step.delivered / wall, unit: 'msg/s', goal: `${expected} expected, ${step.delivered} arrived${step.errors ? `, ${step.errors} refusals` : ''}` },
        { name: `${rate} msg/s said: p50 latency`, value: percentile(sorted, 50), unit: 'ms' },
        { name: `${rate} msg/s said: p99 latency`, value: percentile(sorted, 99), unit: 'ms' },
        { name: `${rate} msg/s said: stack CPU`, value: stackUse * 100, unit: '% of a core' },
        // what the stack does with a core, whatever else the machine is doing
        { name: `${rate} msg/s said: per stack CPU second`, value: step.delivered / stackSeconds, unit: 'deliveries' },
        { name: `${rate} msg/s said: client CPU`, value: ownUse * 100, unit: '% of a core' },
      );
      current = null;
    }
    const memory = await memoryMb(stack.pid);
    rows.push({ name: 'stack peak RSS (VmHWM)', value: memory.hwm, unit: 'MB' });
    printTable(`chat fan-out: ${clients} /ws/chat clients in one room (${accounts} accounts), ${seconds} s per rate`, rows);
    if (closedEarly > 0) process.stdout.write(`FAILED: ${closedEarly} sockets closed during the run\n`);
    printStackLog(stack);
  } finally {
    await closeAll(sockets);
    await stack.close();
  }
}

/** Open loop: whatever the answers do, message k leaves at start + k/rate. */
async function sendAtRate(sockets: WebSocket[], rate: number, ms: number, step: Step): Promise<void> {
  const start = performance.now();
  const total = Math.round((rate * ms) / 1000);
  while (step.sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    for (; step.sent < due; step.sent++) {
      const ws = sockets[step.sent % sockets.length]!;
      ws.send(JSON.stringify({ cmd: 'say', room: ROOM, text: `@${step.step}:${performance.now().toFixed(3)}` }));
    }
    await sleep(5);
  }
}

/** Waits until every message reached every client, for at most 15 s (a saturated run reports the rest as late). */
async function drain(step: Step, clients: number, stack: RunningStack): Promise<void> {
  const until = performance.now() + 15_000;
  while (step.delivered + step.errors * clients < step.sent * clients && !stack.exited()) {
    if (performance.now() > until) {
      process.stdout.write(`rate step ${step.step}: ${step.sent * clients - step.delivered} deliveries still missing 15 s after the last send\n`);
      return;
    }
    await sleep(50);
  }
}

async function idleMemory(count: number, accounts: number): Promise<void> {
  const stack = await startStack({ users: accounts, config: loadConfig({ sockets: count, users: accounts, messagesPerSecond: 0 }).config });
  const sockets: WebSocket[] = [];
  try {
    const cookies = await inBatches(accounts, 2, (i) => login(stack.origin, stack.accounts[i]!));
    // warm up every code path once (and let the login's scrypt buffers go) before the baseline
    await closeAll(await inBatches(accounts, 20, (i) => openChat(stack.origin, cookies[i]!, () => undefined)));
    await sleep(3000);
    const before = await memoryMb(stack.pid);
    const ownBefore = process.memoryUsage().rss;
    const opened = performance.now();
    sockets.push(...(await inBatches(count, 100, (i) => openChat(stack.origin, cookies[i % accounts]!, () => undefined))));
    const openSeconds = (performance.now() - opened) / 1000;
    await sleep(3000);
    const after = await memoryMb(stack.pid);
    const perSocketKb = ((after.rss - before.rss) * 1024) / count;
    printTable(`chat idle memory: ${count} /ws/chat sockets connected (opened in ${openSeconds.toFixed(1)} s)`, [
      { name: 'stack RSS before', value: before.rss, unit: 'MB' },
      { name: 'stack RSS connected', value: after.rss, unit: 'MB' },
      { name: 'per idle socket', value: perSocketKb, unit: 'KB', goal: '< 50 KB' },
      { name: 'client process per socket', value: (process.memoryUsage().rss - ownBefore) / 1024 / count, unit: 'KB' },
    ]);
    printStackLog(stack);
  } finally {
    await closeAll(sockets);
    await stack.close();
  }
}
