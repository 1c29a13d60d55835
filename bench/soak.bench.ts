// The soak (issue 5, "Load"): SOAK_CLIENTS (1,000) /ws/chat clients chatting in one room (SOAK_RATE,
// default 10 messages/s in all: 10,000 deliveries/s) and
// SOAK_UPLOADS (20) concurrent uploads of SOAK_UPLOAD_MB (50) MB each, for SOAK_SECONDS (60), against a
// whole `sockbridge start` in a child process. Every message acknowledged to its sender (its own copy,
// carrying its `ref`) must reach every client that stayed connected, once, in id order; every upload
// must come back byte-exact (sha256 of what was sent = the upload response's = the download's).
// Anything else prints `SOAK FAILED: …` and throws; otherwise `SOAK OK`. The gateway's RSS (that of the
// `sockbridge start` process: gateway and backends) is sampled every second: at start (clients
// connected, no load), peak, at the end of the load, and after they leave.
// Meanwhile SOAK_CHURN (10) more tabs connect and disconnect; once every client has left, the stack must
// hold no more file descriptors than before the first connected (no leaked socket or temp file).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { MB, mbPerSecond, printTable } from './lib/report.js';
import {
  closeAll,
  inBatches,
  loadConfig,
  login,
  memoryMb,
  openFds,
  numberEnv,
  openChat,
  percentile,
  printStackLog,
  sleep,
  startStack,
  type RunningStack,
} from './lib/ws-clients.js';

const ROOM = 'lobby';
// one connection per request, closed after it: descriptors counted at the end are the stack's own
const agent = new http.Agent({ keepAlive: false });

/** One chat client's view: which messages (by send sequence) it received, and whether ids only grew. */
interface ChatClient {
  ws: WebSocket;
  received: Uint8Array;
  lastId: number;
  closedEarly: boolean;
}

interface ChatTally {
  sent: number;
  sentAt: Float64Array;
  acked: Uint8Array;
  ackMs: number[];
  refused: Map<string, number>;
  deliveries: number;
  duplicates: number;
  outOfOrder: number;
  otherErrors: Map<string, number>;
}

interface UploadTally {
  completed: number;
  aborted: number;
  bytes: number;
  mismatches: string[];
  errors: string[];
}

export async function run(): Promise<void> {
  const clientCount = numberEnv('SOAK_CLIENTS', 1000);
  const accounts = numberEnv('SOAK_ACCOUNTS', 20);
  const seconds = numberEnv('SOAK_SECONDS', 60);
  const rate = numberEnv('SOAK_RATE', 10);
  const uploads = numberEnv('SOAK_UPLOADS', 20);
  const uploadBytes = Math.round(numberEnv('SOAK_UPLOAD_MB', 50) * MB);
  const churners = numberEnv('SOAK_CHURN', 10);

  const { config, raised } = loadConfig({ sockets: clientCount + churners, users: accounts, messagesPerSecond: rate });
  process.stdout.write(`config raised: ${raised.join(', ')}\n`);
  process.stdout.write(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs\n`);
  const stack = await startStack({ users: accounts, config });
  const capacity = Math.ceil(rate * seconds) + 1;
  const tally: ChatTally = {
    sent: 0,
    sentAt: new Float64Array(capacity),
    acked: new Uint8Array(capacity),
    ackMs: [],
    refused: new Map(),
    deliveries: 0,
    duplicates: 0,
    outOfOrder: 0,
    otherErrors: new Map(),
  };
  const clients: ChatClient[] = [];
  const rss: number[] = [];
  let sampling: NodeJS.Timeout | undefined;
  // a socket that closes before the verdict has missed messages: it is a failure, not a survivor
  let judging = false;
  try {
    const fdsBefore = await openFds(stack.pid);
    const cookies = await inBatches(accounts, 2, (i) => login(stack.origin, stack.accounts[i]!));
    clients.push(
      ...(await inBatches(clientCount, 50, async (i) => {
        const client: ChatClient = { ws: null as unknown as WebSocket, received: new Uint8Array(capacity), lastId: 0, closedEarly: false };
        client.ws = await openChat(stack.origin, cookies[i % accounts]!, (text) => onEvent(client, i, clientCount, text, tally));
        client.ws.once('close', () => (client.closedEarly ||= !judging));
        return client;
      })),
    );
    await sleep(2000);
    const rssStart = (await memoryMb(stack.pid)).rss;
    sampling = setInterval(() => void memoryMb(stack.pid).then((m) => rss.push(m.rss), () => undefined), 1000);
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const uploadTally: UploadTally = { completed: 0, aborted: 0, bytes: 0, mismatches: [], errors: [] };
    const uploading = Promise.all(
      Array.from({ length: uploads }, (_, w) => uploadLoop(stack.origin, cookies[w % accounts]!, w, uploadBytes, deadline, uploadTally)),
    );
    const churnTally: ChurnTally = { cycles: 0, errors: [] };
    const churning = Promise.all(Array.from({ length: churners }, (_, w) => churnLoop(stack.origin, cookies[w % accounts]!, deadline, churnTally)));
    await chatLoop(clients, rate, deadline, tally);
    await churning;
    const chatEnded = performance.now();
    await uploading;
    await settle(clients, tally, stack);
    const wall = (performance.now() - start) / 1000;
    const rssEnd = (await memoryMb(stack.pid)).rss;
    clearInterval(sampling);
    const peak = (await memoryMb(stack.pid)).hwm;

    judging = true;
    const verdict = judge(clients, tally, uploadTally, uploads, stack);
    const fdsLoaded = await openFds(stack.pid);
    await closeAll(clients.map((c) => c.ws));
    // idle keep-alive connections (fetch's pool) close within a few seconds
    await sleep(5000);
    const rssAfter = stack.exited() ? NaN : (await memoryMb(stack.pid)).rss;
    const fdsAfter = stack.exited() ? NaN : await openFds(stack.pid);
    if (churnTally.errors.length > 0) verdict.failures.push(`${churnTally.errors.length} connect/disconnect cycles failed`);
    // every socket, temp file and upstream connection of the run must be gone again
    const leftovers = await leftoverFiles(stack.data);
    if (leftovers.length > 0) verdict.failures.push(`files left behind after every upload was deleted or cut off: ${leftovers.slice(0, 5).join(', ')}`);
    if (fdsAfter > fdsBefore + 4) verdict.failures.push(`${fdsAfter - fdsBefore} file descriptors still open after every client left (${fdsBefore} before, ${fdsAfter} after)`);

    const ackSorted = tally.ackMs.sort((a, b) => a - b);
    const acked = tally.acked.reduce((n, a) => n + a, 0);
    printTable(`soak: ${clientCount} chat clients (${accounts} accounts) at ${rate} msg/s and ${uploads} × ${uploadBytes / MB} MB uploads, ${seconds} s`, [
      { name: 'messages sent', value: tally.sent, unit: '' },
      { name: 'messages acknowledged', value: acked, unit: '', goal: `${[...tally.refused].map(([c, n]) => `${n} refused ${c}`).join(', ') || 'none refused'}` },
      { name: 'deliveries', value: tally.deliveries, unit: '', goal: `${verdict.lost} lost, ${tally.duplicates} duplicated, ${tally.outOfOrder} out of order` },
      { name: 'deliveries per second', value: tally.deliveries / ((chatEnded - start) / 1000), unit: 'msg/s' },
      { name: 'ack latency p50', value: percentile(ackSorted, 50), unit: 'ms' },
      { name: 'ack latency p99', value: percentile(ackSorted, 99), unit: 'ms' },
      { name: 'uploads byte-exact', value: uploadTally.completed, unit: '', goal: `${uploadTally.mismatches.length} mismatched, ${uploadTally.errors.length} failed` },
      { name: 'uploads cut off half-way', value: uploadTally.aborted, unit: '', goal: 'never visible' },
      { name: 'upload+download rate', value: mbPerSecond(uploadTally.bytes * 2, wall * 1000), unit: 'MB/s' },
      { name: 'connect/disconnect cycles', value: churnTally.cycles, unit: '', goal: `${churners} sockets joining and leaving throughout, ${churnTally.errors.length} failed` },
      { name: 'stack RSS at start', value: rssStart, unit: 'MB' },
      { name: 'stack RSS peak sample', value: Math.max(rssStart, ...rss), unit: 'MB', goal: `VmHWM ${peak.toFixed(0)} MB` },
      { name: 'stack RSS at end', value: rssEnd, unit: 'MB', baseline: rssStart },
      // after the warm-up, a leak keeps growing: the run's last third against its first
      ...(rss.length >= 3 ? [{ name: 'stack RSS, last third of the run', value: mean(rss.slice(-Math.floor(rss.length / 3))), unit: 'MB', baseline: mean(rss.slice(0, Math.floor(rss.length / 3))), goal: 'flat (≈ 100% of the first third)' }] : []),
      { name: 'stack RSS, clients gone', value: rssAfter, unit: 'MB' },
      { name: 'stack open fds: before', value: fdsBefore, unit: '' },
      { name: 'stack open fds: loaded', value: fdsLoaded, unit: '' },
      { name: 'stack open fds: clients gone', value: fdsAfter, unit: '', goal: 'as before' },
    ]);
    // every 10 s: a leak grows with time, a warm-up does not
    process.stdout.write(`stack RSS every 10 s (MB): ${rss.filter((_, i) => i % 10 === 9).map((v) => v.toFixed(0)).join(' ')}\n`);
    for (const line of [...uploadTally.mismatches, ...uploadTally.errors].slice(0, 5)) process.stdout.write(`  upload: ${line}\n`);
    for (const line of churnTally.errors.slice(0, 5)) process.stdout.write(`  connect/disconnect: ${line}\n`);
    for (const [code, n] of tally.otherErrors) process.stdout.write(`  chat error without ref: ${code} × ${n}\n`);
    printStackLog(stack);
    if (verdict.failures.length > 0) {
      const message = `SOAK FAILED: ${verdict.failures.join('; ')}`;
      process.stdout.write(`${message}\n`);
      throw new Error(message);
    }
    process.stdout.write('SOAK OK\n');
  } finally {
    clearInterval(sampling);
    await closeAll(clients.map((c) => c.ws));
    await stack.close();
  }
}

function onEvent(client: ChatClient, index: number, senders: number, text: string, tally: ChatTally): void {
  const event = JSON.parse(text) as { cmd: string; id?: number; room?: string; text?: string; ref?: string; code?: string };
  if (event.cmd === 'message' && event.room === ROOM) {
    const seq = Number(/^soak:(\d+):/.exec(event.text ?? '')?.[1] ?? -1);
    if (seq < 0 || seq >= client.received.length) return;
    if (client.received[seq]) tally.duplicates++;
    client.received[seq] = 1;
    tally.deliveries++;
    if (event.id! <= client.lastId) tally.outOfOrder++;
    client.lastId = event.id!;
    // the sender's own copy carries its ref: that is the acknowledgement
    if (event.ref === `r${seq}` && senderOf(seq, senders) === index) {
      tally.acked[seq] = 1;
      tally.ackMs.push(performance.now() - tally.sentAt[seq]!);
    }
  } else if (event.cmd === 'error') {
    const seq = Number(/^r(\d+)$/.exec(event.ref ?? '')?.[1] ?? -1);
    const bucket = seq >= 0 ? tally.refused : tally.otherErrors;
    bucket.set(event.code ?? '?', (bucket.get(event.code ?? '?') ?? 0) + 1);
  }
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

const senderOf = (seq: number, senders: number) => seq % senders;

/** Open loop: message `seq` is said by client seq % N at start + seq/rate, until the deadline. */
async function chatLoop(clients: ChatClient[], rate: number, deadline: number, tally: ChatTally): Promise<void> {
  const start = performance.now();
  const padding = 'x'.repeat(80);
  while (performance.now() < deadline && tally.sent < tally.sentAt.length) {
    const due = Math.min(tally.sentAt.length, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    for (; tally.sent < due; tally.sent++) {
      const seq = tally.sent;
      const ws = clients[senderOf(seq, clients.length)]!.ws;
      tally.sentAt[seq] = performance.now();
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ cmd: 'say', room: ROOM, text: `soak:${seq}:${padding}`, ref: `r${seq}` }));
    }
    await sleep(5);
  }
}

/** After the load: waits (≤ 60 s) until every message is answered and every ack delivered everywhere. */
async function settle(clients: ChatClient[], tally: ChatTally, stack: RunningStack): Promise<void> {
  const until = performance.now() + 60_000;
  const refused = () => [...tally.refused.values()].reduce((a, b) => a + b, 0);
  const alive = () => clients.filter((c) => !c.closedEarly).length;
  while (performance.now() < until && !stack.exited()) {
    const acked = tally.acked.reduce((n, a) => n + a, 0);
    if (acked + refused() >= tally.sent && tally.deliveries >= acked * alive()) return;
    await sleep(200);
  }
}

function judge(clients: ChatClient[], tally: ChatTally, uploads: UploadTally, uploadSlots: number, stack: RunningStack): { lost: number; failures: string[] } {
  const failures: string[] = [];
  let lost = 0;
  let messagesWithLoss = 0;
  let unanswered = 0;
  const refused = [...tally.refused.values()].reduce((a, b) => a + b, 0);
  const survivors = clients.filter((c) => !c.closedEarly);
  for (let seq = 0; seq < tally.sent; seq++) {
    if (!tally.acked[seq]) {
      unanswered++;
      continue;
    }
    let missing = 0;
    for (const c of survivors) if (!c.received[seq]) missing++;
    lost += missing;
    if (missing > 0) messagesWithLoss++;
  }
  unanswered -= refused;
  if (stack.exited()) failures.push('the stack process exited');
  if (lost > 0) failures.push(`${lost} deliveries of ${messagesWithLoss} acknowledged messages lost (clients that stayed connected never got them)`);
  if (unanswered > 0) failures.push(`${unanswered} messages neither acknowledged nor refused`);
  if (tally.duplicates > 0) failures.push(`${tally.duplicates} duplicate deliveries`);
  if (tally.outOfOrder > 0) failures.push(`${tally.outOfOrder} deliveries out of id order`);
  const dropped = clients.length - survivors.length;
  if (dropped > 0) failures.push(`${dropped} chat sockets closed during the load`);
  if (uploads.mismatches.length > 0) failures.push(`${uploads.mismatches.length} uploads not byte-exact`);
  if (uploads.errors.length > 0) failures.push(`${uploads.errors.length} uploads failed`);
  if (uploads.completed === 0 && uploadSlots > 0) failures.push('no upload completed');
  return { lost, failures };
}

/**
 * One upload slot: upload, check, download, check, delete; again until the deadline. Every
 * SOAK_ABORT_EVERY-th round (5) is cut off half-way instead, and must never become visible.
 */
async function uploadLoop(origin: string, cookie: string, worker: number, size: number, deadline: number, tally: UploadTally): Promise<void> {
  const abortEvery = numberEnv('SOAK_ABORT_EVERY', 5);
  for (let round = 0; performance.now() < deadline; round++) {
    const name = `soak-${worker}-${round}.bin`;
    try {
      if (abortEvery > 0 && round % abortEvery === abortEvery - 1) {
        await upload(origin, cookie, name, size, worker, Math.floor(size / 2));
        tally.aborted++;
        const seen = await request(origin, 'GET', `/api/files/${name}`, { cookie });
        if (seen.status !== 404) tally.mismatches.push(`${name}: aborted half-way, yet GET answers ${seen.status}`);
        continue;
      }
      const sent = await upload(origin, cookie, name, size, worker);
      if (sent.response.size !== size || sent.response.sha256 !== sent.sha256) {
        tally.mismatches.push(`${name}: sent ${size} B sha256 ${sent.sha256}, stored ${sent.response.size} B ${sent.response.sha256}`);
        continue;
      }
      const got = await download(origin, cookie, name);
      if (got.size !== size || got.sha256 !== sent.sha256) {
        tally.mismatches.push(`${name}: sent ${size} B sha256 ${sent.sha256}, downloaded ${got.size} B ${got.sha256}`);
        continue;
      }
      tally.completed++;
      tally.bytes += size;
      const removed = await request(origin, 'DELETE', `/api/files/${name}`, { cookie, origin });
      if (removed.status !== 204) tally.errors.push(`${name}: DELETE ${removed.status} ${removed.body}`);
    } catch (err) {
      tally.errors.push(`${name}: ${(err as Error).message}`);
    }
  }
}

/** Stored files, the gateway's upload temp files and the files service's partial uploads, by path. */
async function leftoverFiles(data: string): Promise<string[]> {
  const list = async (dir: string, keep: (name: string) => boolean) =>
    (await readdir(join(data, dir)).catch(() => [] as string[])).filter(keep).map((name) => join(dir, name));
  return [
    ...(await list('tmp', () => true)),
    ...(await list('files', (name) => !name.startsWith('.'))),
    ...(await list('files/.partial', () => true)),
  ];
}

interface ChurnTally {
  cycles: number;
  errors: string[];
}

/** Another tab comes and goes: open /ws/chat, wait for "joined", close; every 200 ms until the deadline. */
async function churnLoop(origin: string, cookie: string, deadline: number, tally: ChurnTally): Promise<void> {
  while (performance.now() < deadline) {
    try {
      await closeAll([await openChat(origin, cookie, () => undefined)]);
      tally.cycles++;
    } catch (err) {
      tally.errors.push((err as Error).message);
    }
    await sleep(200);
  }
}

interface FileEntry {
  name: string;
  size: number;
  sha256: string;
}

/**
 * Streams a multipart upload of `size` bytes, honouring backpressure; returns the sha256 of what was
 * sent and the gateway's FileEntry (or, cut off at `abortAt` bytes, nothing meaningful). Content: one random MiB per upload, each chunk stamped with its
 * index, so a chunk dropped, repeated or moved changes the hash.
 */
async function upload(origin: string, cookie: string, name: string, size: number, worker: number, abortAt = Infinity): Promise<{ sha256: string; response: FileEntry }> {
  const boundary = `soak${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${name}"\r\ncontent-type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const req = http.request(`${origin}/api/files`, {
    agent,
    method: 'POST',
    headers: { cookie, origin, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + size + tail.length },
  });
  // an early answer (a refusal) ends the request: stop writing, keep later write errors quiet
  req.on('error', () => undefined);
  let answeredEarly = false;
  const answered = responseOf(req).finally(() => (answeredEarly = true));
  answered.catch(() => undefined);
  const hash = createHash('sha256');
  const block = randomBytes(MB);
  req.write(head);
  for (let offset = 0, index = 0; offset < size && !answeredEarly; offset += block.length, index++) {
    const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - offset)));
    if (chunk.length >= 8) {
      chunk.writeUInt32BE(index, 0);
      chunk.writeUInt32BE(worker, 4);
    }
    if (offset >= abortAt) {
      // the connection drops mid-file, as when a tab is closed during an upload
      req.destroy();
      return { sha256: '', response: { name, size: -1, sha256: '' } };
    }
    hash.update(chunk);
    if (!req.write(chunk)) await Promise.race([once(req, 'drain').catch(() => undefined), answered.catch(() => undefined)]);
  }
  if (!answeredEarly) req.end(tail);
  const res = await answered;
  if (res.status !== 201) throw new Error(`upload HTTP ${res.status} ${res.body.slice(0, 200)}`);
  const entry = (JSON.parse(res.body) as { files: FileEntry[] }).files[0]!;
  return { sha256: hash.digest('hex'), response: entry };
}

function download(origin: string, cookie: string, name: string): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin}/api/files/${name}`, { agent, headers: { cookie } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`download HTTP ${res.statusCode}`));
      }
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (chunk: Buffer) => ((size += chunk.length), hash.update(chunk)));
      res.once('end', () => resolve({ size, sha256: hash.digest('hex') }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}

function request(origin: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const req = http.request(`${origin}${path}`, { agent, method, headers });
  req.end();
  return responseOf(req);
}

function responseOf(req: http.ClientRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
  });
}
