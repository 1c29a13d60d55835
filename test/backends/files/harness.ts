// Shared by the files tests: a real FilesService on 127.0.0.1:0 over a temp root, and a raw frame
// socket for the bytes a FilesClient would never send.
import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { FilesClient } from '../../../backends/files/files-client.js';
import { FilesService, type FilesOptions } from '../../../backends/files/files-service.js';
import { WholeFrameDecoder, type WholeFrame } from '../../../protocol/frame-codec.js';
import { tempDir } from '../../helpers/tmp.js';

export interface Started {
  service: FilesService;
  port: number;
  root: string;
  /** a directory beside the root: what must never be touched */
  outside: string;
}

const running: FilesService[] = [];
const sockets: net.Socket[] = [];
const clients: FilesClient[] = [];

export async function startFiles(options: Partial<FilesOptions> = {}): Promise<Started> {
  const base = await tempDir('sockbridge-files-');
  const root = join(base, 'root');
  const service = new FilesService({ root, port: 0, ...options });
  running.push(service);
  const { port } = await service.start();
  const outside = join(base, 'outside');
  await mkdir(outside);
  return { service, port, root, outside };
}

/** A FilesClient on 127.0.0.1:port, closed by stopFiles(). */
export async function connect(port: number): Promise<FilesClient> {
  const client = await FilesClient.connect('127.0.0.1', port);
  clients.push(client);
  return client;
}

/** Closes the clients from connect(), the raw peers, then the services. */
export async function stopFiles(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((s) => s.close()));
}

/** The published names under root (dot-entries such as .partial left out), sorted. */
export const visible = async (root: string) => (await readdir(root)).filter((n) => !n.startsWith('.')).sort();

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

/** A raw connection: write any bytes, read whole reply frames, see when the service closes it. */
export class RawPeer {
  private readonly frames: WholeFrame[] = [];
  private waiter: (() => void) | undefined;
  private readonly decoder = new WholeFrameDecoder({ maxBodyBytes: 1 << 30 });
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.decoder.push(chunk));
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawPeer(socket)));
      sockets.push(socket);
      socket.once('error', reject);
    });
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** The next reply frame; rejects if the connection closes first. */
  async next(): Promise<WholeFrame> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.isClosed) throw new Error('connection closed before a reply');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

/** The bytes of one frame as the seed builds them: int32 LE length + JSON header. */
export function rawHead(header: unknown, lengthOverride?: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(lengthOverride ?? json.length);
  return Buffer.concat([prefix, json]);
}

/** Polls until check() passes: for effects that follow a socket close asynchronously. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
