// Shared by the exec tests: start real services on port 0, connect real clients, collect a job's
// output, speak raw frames, and close everything afterwards.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { ExecClient, type ExecJob } from '../../../backends/exec/exec-client.js';
import { ExecService, type ExecOptions } from '../../../backends/exec/exec-service.js';
import type { ExitEvent } from '../../../protocol/exec-messages.js';
import { WholeFrameDecoder, type WholeFrame } from '../../../protocol/frame-codec.js';

export const SECRET = 'test-secret-0123456789abcdef';

const services = new Set<ExecService>();
const clients = new Set<ExecClient>();
const sockets = new Set<net.Socket>();

export async function startExec(options: Partial<ExecOptions> = {}): Promise<{ service: ExecService; port: number }> {
  const service = new ExecService({ port: 0, secret: SECRET, killGraceMs: 500, ...options });
  services.add(service);
  const { port } = await service.start();
  return { service, port };
}

export async function connect(port: number, secret = SECRET): Promise<ExecClient> {
  const client = await ExecClient.connect('127.0.0.1', port, secret);
  clients.add(client);
  return client;
}

export async function closeAll(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all([...clients].map((c) => c.close()));
  clients.clear();
  await Promise.all([...services].map((s) => s.close()));
  services.clear();
}

export interface Collected {
  exit: ExitEvent;
  stdout: Buffer;
  stderr: Buffer;
  /** output in arrival order */
  events: { stream: 'stdout' | 'stderr'; text: string }[];
}

export async function collect(job: ExecJob): Promise<Collected> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const events: Collected['events'] = [];
  job.on('stdout', (c) => (out.push(c), events.push({ stream: 'stdout', text: c.toString() })));
  job.on('stderr', (c) => (err.push(c), events.push({ stream: 'stderr', text: c.toString() })));
  const exit = await job.done;
  return { exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err), events };
}

export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** True while a process exists and is not a zombie (dead, waiting for a parent that may never reap it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone (reaped); false if it still exists after `limitMs`. */
export async function waitGone(pid: number, limitMs = 5000): Promise<boolean> {
  for (let waited = 0; waited < limitMs; waited += 25) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}

/** A raw TCP peer speaking frames by hand, for what ExecClient would never send. */
export interface RawPeer {
  socket: net.Socket;
  frames: WholeFrame[];
  /** resolves with the next frame whose cmd matches, or rejects when the connection closes first */
  next(cmd?: string): Promise<WholeFrame>;
  closed: Promise<void>;
}

export async function rawConnect(port: number): Promise<RawPeer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.add(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new WholeFrameDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
  const frames: WholeFrame[] = [];
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk) => {
    frames.push(...decoder.push(chunk));
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let read = 0;
  const next = (cmd?: string): Promise<WholeFrame> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        while (read < frames.length) {
          const frame = frames[read++]!;
          if (!cmd || frame.header.cmd === cmd) {
            resolve(frame);
            return true;
          }
        }
        return false;
      };
      if (check()) return;
      const waiter = () => {
        if (!check()) waiters.push(waiter);
      };
      waiters.push(waiter);
      void closed.then(() => {
        if (!check()) reject(new Error(`connection closed before a "${cmd ?? 'any'}" frame; got ${frames.map((f) => f.header.cmd).join(',')}`));
      });
    });
  return { socket, frames, next, closed };
}
