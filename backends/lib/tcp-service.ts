// What every TCP backend shares: listen on host:port (0 picks a free port), track connections,
// and close them all on close(), so tests can start many services side by side and stop them cleanly.

import net, { type AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { encodeFrame } from '../../protocol/frame-codec.js';
import { sbError, type SockbridgeError } from '../../protocol/errors.js';

export interface ListenOptions {
  host?: string;
  port?: number;
  logger?: Logger;
}

export const silentLogger: Logger = pino({ level: 'silent' });

export abstract class TcpService {
  protected readonly logger: Logger;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly host: string;
  private readonly port: number;

  protected constructor(options: ListenOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.logger = options.logger ?? silentLogger;
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      // A peer error is that connection's business: log it, never let it reach the process.
      socket.on('error', (err) => this.logger.debug({ err, remote: socket.remoteAddress }, 'connection error'));
      this.onConnection(socket);
    });
  }

  protected abstract onConnection(socket: net.Socket): void;

  /** Extra teardown (databases, child processes) run by close() after the sockets are gone. */
  protected async onClose(): Promise<void> {}

  get connectionCount(): number {
    return this.sockets.size;
  }

  start(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.logger.error({ err }, 'server error'));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await closed;
    await this.onClose();
  }
}

/**
 * The one way a backend refuses a peer: an error frame, then the connection ends once it is flushed.
 * The peer learns why (a stable code); every other connection is untouched.
 */
export function sendErrorAndClose(socket: net.Socket, err: unknown, logger: Logger = silentLogger): void {
  const error: SockbridgeError =
    err instanceof Error && 'code' in err && typeof (err as SockbridgeError).code === 'string' && (err as SockbridgeError).code.startsWith('SB_ERR_')
      ? (err as SockbridgeError)
      : sbError('SB_ERR_INTERNAL', 'unexpected failure');
  if (error.code === 'SB_ERR_INTERNAL') logger.error({ err }, 'internal error');
  else logger.info({ code: error.code, remote: socket.remoteAddress }, 'closing connection after protocol error');
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(encodeFrame({ cmd: 'error', code: error.code, message: error.message }));
  // A peer that never reads must not hold the socket open forever.
  socket.setTimeout(5000, () => socket.destroy());
}
