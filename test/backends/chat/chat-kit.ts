// Test kit for the chat service: start services on port 0 in a temp data dir, and a raw frame
// client that records every event, so tests can assert on exactly what went over the wire.
import net from 'node:net';
import { WholeFrameDecoder, encodeFrame } from '../../../protocol/frame-codec.js';
import { CHAT_LIMITS, type ChatEvent } from '../../../protocol/chat-messages.js';
import { ChatService, type ChatOptions } from '../../../backends/chat/chat-service.js';
import { tempDir } from '../../helpers/tmp.js';

const services: ChatService[] = [];
const sockets: net.Socket[] = [];

/** The kit's services have a gateway token, as under `sockbridge start`; pass `gatewayToken: undefined` for none. */
export const KIT_GATEWAY_TOKEN = 'kit-gateway-token-0123456789';

export async function startChat(options: Partial<ChatOptions> = {}): Promise<{ service: ChatService; port: number; linePort: number; dataDir: string }> {
  const dataDir = options.dataDir ?? (await tempDir('sockbridge-chat-'));
  const config: Partial<ChatOptions> = { port: 0, linePort: 0, gatewayToken: KIT_GATEWAY_TOKEN, ...options, dataDir };
  if (config.gatewayToken === undefined) delete config.gatewayToken;
  const service = new ChatService(config);
  services.push(service);
  const address = await service.start();
  return { service, port: address.port, linePort: service.lineAddress()?.port ?? -1, dataDir };
}

export async function closeAll(): Promise<void> {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(services.splice(0).map((s) => s.close()));
}

/** A TCP connection to 127.0.0.1:port that closeAll() destroys. */
export async function connectTracked(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Waits for `predicate` to hold over the recorded items, polling on every arrival. */
function waitUntil<T>(items: T[], subscribe: (fn: () => void) => () => void, predicate: (item: T) => boolean, what: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    let cursor = 0;
    const check = (): boolean => {
      for (; cursor < items.length; cursor++) {
        const item = items[cursor]!;
        if (predicate(item)) {
          cursor++;
          resolve(item);
          return true;
        }
      }
      return false;
    };
    if (check()) return;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(items).slice(-2000)}`));
    }, timeoutMs);
    const unsubscribe = subscribe(() => {
      if (check()) {
        clearTimeout(timer);
        unsubscribe();
      }
    });
  });
}

export class RawChat {
  readonly events: ChatEvent[] = [];
  readonly closed: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private readonly decoder = new WholeFrameDecoder({ maxHeaderBytes: CHAT_LIMITS.eventMaxBytes, maxBodyBytes: 0 });

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.events.push(f.header as unknown as ChatEvent);
      for (const l of [...this.listeners]) l();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => {
      for (const l of [...this.listeners]) l();
      resolve();
    }));
  }

  static async open(port: number): Promise<RawChat> {
    return new RawChat(await connectTracked(port));
  }

  /** Opens a connection and says hello; resolves after "welcome". */
  static async hello(port: number, nick: string, extra: Record<string, unknown> = {}): Promise<RawChat> {
    const c = await RawChat.open(port);
    c.send({ cmd: 'hello', nick, ...extra });
    await c.next('welcome');
    return c;
  }

  send(header: Record<string, unknown>): void {
    this.socket.write(encodeFrame(header as { cmd: string }));
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The first event so far (or to come) with that cmd that matches `where`. */
  next<C extends ChatEvent['cmd']>(cmd: C, where: (e: Extract<ChatEvent, { cmd: C }>) => boolean = () => true, timeoutMs?: number): Promise<Extract<ChatEvent, { cmd: C }>> {
    return waitUntil(
      this.events,
      (fn) => {
        this.listeners.add(fn);
        return () => this.listeners.delete(fn);
      },
      (e) => e.cmd === cmd && where(e as Extract<ChatEvent, { cmd: C }>),
      `${cmd}`,
      timeoutMs,
    ) as Promise<Extract<ChatEvent, { cmd: C }>>;
  }

  /** Round trip: once the pong arrives, everything sent before it has been handled. */
  async sync(): Promise<void> {
    const before = this.events.filter((e) => e.cmd === 'pong').length;
    this.send({ cmd: 'ping' });
    await waitUntil(this.events, (fn) => {
      this.listeners.add(fn);
      return () => this.listeners.delete(fn);
    }, () => this.events.filter((e) => e.cmd === 'pong').length > before, 'pong');
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }
}

/** A plain TCP client for line mode. */
export class LineClient {
  private buffer = '';
  readonly closed: Promise<void>;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (const l of [...this.listeners]) l();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<LineClient> {
    const c = new LineClient(await connectTracked(port));
    await c.waitFor(/^\* in #lobby: .*$/m);
    return c;
  }

  get text(): string {
    return this.buffer;
  }

  get lines(): string[] {
    return this.buffer.split('\n').filter(Boolean);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves with the first match of `pattern` in what arrived after `from` characters. */
  waitFor(pattern: RegExp, from = 0, timeoutMs = 5000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.buffer.slice(from).match(pattern);
        if (m) {
          clearTimeout(timer);
          this.listeners.delete(check);
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out waiting for ${pattern}; got:\n${this.buffer.slice(-2000)}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** The nickname the server assigned. */
  get nick(): string {
    return /you are (\S+) in #lobby/.exec(this.buffer)?.[1] ?? '';
  }
}
