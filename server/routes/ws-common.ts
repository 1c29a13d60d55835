// What the chat, exec and time WebSocket routes share: reading a browser message within the limits,
// ending a socket with a typed error, the heartbeat, the secrets, and BackendLink, the TCP connection
// to a frame backend with backpressure in both directions.
//
// Close codes follow RFC 6455 §7.4.1 and come from the error registry (err.wsClose): 1003 for a binary
// message where text is expected, 1007 for a text message that is not JSON, 1008 for a refused command,
// 1009 for an oversized message, 1011 when a backend fails.

import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { fileErrorReason, sbError, isSockbridgeError, isErrorCode, type SockbridgeError } from '../../protocol/errors.js';
import { FrameDecoder, encodeFrame, type FrameHeader } from '../../protocol/frame-codec.js';
import { endsSocket } from '../../protocol/browser-messages.js';
import type { ServiceName } from '../../protocol/api.js';
import { onSocketEnding, socketPeer } from '../plugins/auth.js';
import { closeWithGrace } from '../plugins/ws-close.js';

// ---- accepting a socket ----

/**
 * What every route does first with a new browser socket (attached synchronously, before any await):
 * registers it with its session (closed on logout; liveSockets logs its connect and disconnect lines
 * with user, address and Origin, never message contents) and starts the heartbeat. Undefined when the
 * socket was refused and is closing: no session (wsGuard has refused it already; this is the belt to
 * its braces), or the account already has limits.maxSocketsPerUser open (SB_ERR_TOO_MANY_SOCKETS).
 */
export function acceptBrowserSocket(
  app: FastifyInstance,
  ws: WebSocket,
  request: FastifyRequest,
  service: ServiceName | 'raw',
): { username: string; sessionId: string; logger: FastifyBaseLogger } | undefined {
  const session = request.session;
  if (!session) {
    request.log.info({ ...socketPeer(request), url: request.url, code: 'SB_ERR_AUTH_REQUIRED' }, 'websocket refused');
    closeWithError(ws, sbError('SB_ERR_AUTH_REQUIRED'));
    return undefined;
  }
  if (!app.liveSockets.add(session.id, ws, request)) return undefined;
  const logger = request.log.child({ service, user: session.username });
  startHeartbeat(ws, app.gatewayOptions.limits.heartbeatMs);
  return { username: session.username, sessionId: session.id, logger };
}

// ---- sending and closing ----

/** A JSON text message to the browser. `onSent` runs once ws has written it to the kernel (or failed). */
export function sendJson(ws: WebSocket, value: unknown, onSent?: (err?: Error) => void): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(JSON.stringify(value), onSent);
}

/** Tells the browser why (a {cmd:'error'} message), then closes with the error's close code. */
export function closeWithError(ws: WebSocket, err: SockbridgeError): void {
  if (ws.readyState !== ws.OPEN) return;
  sendJson(ws, { cmd: 'error', code: err.code, message: err.message });
  // RFC 6455 §5.5: a close reason fits in 123 bytes; the code is short, ASCII and stable.
  closeWithGrace(ws, err.wsClose, err.code);
}

/** Answers a refused request on a socket that stays open (the backends do the same for refusals). */
export function sendRefusal(ws: WebSocket, err: SockbridgeError, ref?: string): void {
  sendJson(ws, ref === undefined ? { cmd: 'error', code: err.code, message: err.message } : { cmd: 'error', code: err.code, message: err.message, ref });
}

// ---- reading browser messages ----

export interface MessageHandlers {
  /** Largest accepted message (limits.wsMaxMessageBytes); @fastify/websocket's maxPayload is the first line. */
  maxBytes: number;
  onText(text: string): void;
  /** Absent: binary messages are refused with 1003. */
  onBinary?(data: Buffer): void;
  logger: FastifyBaseLogger;
}

/**
 * Listens for browser messages, attached synchronously in the route handler (a listener added after an
 * await would miss early messages). Enforces the size limit, refuses binary where only text is spoken,
 * ignores empty messages (ttyd crashed on one), and turns any typed error a handler throws into a
 * refusal or a close: SB_ERR_WS_* and oversized messages close the socket, the rest are answered.
 * Once the socket is closing nothing is acted on: ws still emits the messages a peer sends after our
 * Close frame (until it answers or closeTimeout), and after a logout they must not reach a backend.
 */
export function onBrowserMessage(ws: WebSocket, handlers: MessageHandlers): void {
  ws.on('message', (raw: RawData, isBinary: boolean) => {
    if (ws.readyState !== ws.OPEN) return;
    const data = toBuffer(raw);
    try {
      if (data.length > handlers.maxBytes) throw sbError('SB_ERR_MESSAGE_TOO_LARGE', data.length, handlers.maxBytes);
      if (isBinary) {
        if (!handlers.onBinary) throw sbError('SB_ERR_WS_BINARY_REFUSED');
        handlers.onBinary(data);
        return;
      }
      if (data.length === 0) return;
      // ws has already checked the UTF-8 (RFC 6455 §8.1) and closed with 1007 if it was invalid.
      handlers.onText(data.toString('utf8'));
    } catch (err) {
      if (!isSockbridgeError(err)) {
        handlers.logger.error({ err }, 'websocket message handler failed');
        closeWithError(ws, sbError('SB_ERR_INTERNAL', 'message handling failed'));
      } else if (endsSocket(err)) {
        handlers.logger.info({ code: err.code }, 'closing websocket after a refused message');
        closeWithError(ws, err);
      } else {
        sendRefusal(ws, err);
      }
    }
  });
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

// ---- heartbeat ----

/**
 * Pings every intervalMs; a socket that has not answered the previous ping is terminated, so a tab
 * that vanished without a close (laptop lid, dead NAT) frees its backend connection. A socket we
 * paused ourselves (backend backpressure) cannot read its pong, so it is not judged while paused;
 * it is still pinged, and a ping that cannot be written to a departed peer closes it all the same.
 */
export function startHeartbeat(ws: WebSocket, intervalMs: number): void {
  let alive = true;
  ws.on('pong', () => (alive = true));
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    if (!alive && !ws.isPaused) {
      ws.terminate();
      return;
    }
    alive = false;
    ws.ping();
  }, intervalMs);
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}

// ---- configuration ----

/**
 * A secret given inline or read once from a file; undefined when neither exists. A file named in
 * the configuration must be readable (a typo fails at start-up); only the default DATA/NAME may be absent.
 */
export function readSecret(inline: string | undefined, file: string | undefined, dataDir: string, defaultName: string): string | undefined {
  if (inline) return inline;
  try {
    const value = readFileSync(file ?? join(dataDir, defaultName), 'utf8').trim();
    return value.length > 0 ? value : undefined;
  } catch (err) {
    if (file === undefined) return undefined;
    throw sbError('SB_ERR_SECRET_FILE', file, fileErrorReason(err));
  }
}

// ---- the backend connection ----

export interface BackendLinkOptions {
  service: ServiceName;
  /** parsed once at registration (parseBackendUrl), so a bad URL fails at start-up, not per socket */
  address: { host: string; port: number };
  /** bufferedAmount above which the backend socket is paused (limits.wsHighWaterBytes) */
  highWaterBytes: number;
  /** largest frame body the backend may send (0 for chat, whose frames are headers only) */
  maxBodyBytes: number;
  /** largest frame header the backend may send (default DEFAULT_MAX_HEADER_BYTES, 64 KiB) */
  maxHeaderBytes?: number;
  connectTimeoutMs?: number;
  logger: FastifyBaseLogger;
  onHeader(header: FrameHeader, bodySize: number): void;
  onBody?(chunk: Buffer): void;
  onEnd?(): void;
  /** The backend failed (refused, reset, timed out, sent garbage, or closed unasked). */
  onFailure(err: SockbridgeError): void;
}

const CONNECT_TIMEOUT_MS = 5000;
/** A backend that closes within this long after an error frame has refused us; later, it went away. */
const REFUSAL_WINDOW_MS = 1000;

/**
 * One browser socket's TCP connection to a frame backend. Backpressure both ways:
 * - backend → browser: when ws.bufferedAmount passes highWaterBytes the backend socket is paused;
 *   it resumes when the browser has drained below half of it (ws has no 'drain' event: send
 *   callbacks and a short poll while paused tell us).
 * - browser → backend: when the backend socket's write() returns false, the browser socket is
 *   paused (ws ≥ 8 pause(), which stops reading its TCP socket) until 'drain'. A browser that leaves
 *   meanwhile is noticed when a heartbeat ping fails to write (see startHeartbeat).
 * Closing either side closes the other: the browser socket's close destroys the TCP connection, and
 * so does the gateway ending the socket for its session (endSocket), without waiting for the peer.
 */
export class BackendLink {
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private backendPaused = false;
  private browserPaused = false;
  private drainPoll: NodeJS.Timeout | undefined;
  private closedByUs = false;
  private failed = false;
  private lastError: { code: string; at: number } | undefined;
  private connected = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: BackendLinkOptions,
  ) {
    this.decoder = new FrameDecoder({ maxBodyBytes: options.maxBodyBytes, ...(options.maxHeaderBytes ? { maxHeaderBytes: options.maxHeaderBytes } : {}) });
    const { host, port } = options.address;
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.setTimeout(options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, () => {
      this.fail(sbError('SB_ERR_BACKEND_DOWN', options.service, 'connection timed out'));
    });
    this.socket.once('connect', () => {
      this.connected = true;
      this.socket.setTimeout(0);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail(sbError('SB_ERR_BACKEND_DOWN', options.service, err.code ?? 'connection error'));
    });
    this.socket.on('close', () => {
      if (this.closedByUs || this.failed) return;
      const refusal = this.lastError && Date.now() - this.lastError.at < REFUSAL_WINDOW_MS ? this.lastError.code : undefined;
      this.fail(
        refusal && isErrorCode(refusal) ? sbError(refusal) : sbError('SB_ERR_BACKEND_DOWN', options.service, this.connected ? 'connection closed' : 'no connection'),
      );
    });
    ws.once('close', () => this.close());
    onSocketEnding(ws, () => this.close());
  }

  /** Sends one frame to the backend (writes before 'connect' are queued by net, in order). */
  sendFrame<T extends { cmd: string }>(header: T, body?: Uint8Array): void {
    if (this.closedByUs || this.failed) return;
    if (!this.socket.write(encodeFrame(header as { cmd: string }, body)) && !this.browserPaused) {
      this.browserPaused = true;
      this.ws.pause();
      this.socket.once('drain', () => {
        this.browserPaused = false;
        this.ws.resume();
      });
    }
  }

  /** Relays a message to the browser, pausing the backend while the browser is behind. */
  sendToBrowser(data: string | Uint8Array, binary: boolean): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(data, { binary }, () => this.maybeResumeBackend());
    if (!this.backendPaused && this.ws.bufferedAmount > this.options.highWaterBytes) {
      this.backendPaused = true;
      this.socket.pause();
      this.drainPoll = setInterval(() => this.maybeResumeBackend(), 20);
      this.drainPoll.unref();
    }
  }

  close(): void {
    if (this.closedByUs) return;
    this.closedByUs = true;
    this.stopPoll();
    // Destroying the connection is what makes the exec service kill this tab's commands.
    this.socket.destroy();
  }

  private maybeResumeBackend(): void {
    if (!this.backendPaused) return;
    if (this.ws.readyState !== this.ws.OPEN) return this.stopPoll();
    if (this.ws.bufferedAmount > this.options.highWaterBytes / 2) return;
    this.backendPaused = false;
    this.stopPoll();
    this.socket.resume();
  }

  private stopPoll(): void {
    if (this.drainPoll) clearInterval(this.drainPoll);
    this.drainPoll = undefined;
  }

  private onData(chunk: Buffer): void {
    if (this.closedByUs || this.failed) return;
    try {
      for (const event of this.decoder.push(chunk)) {
        if (event.type === 'header') {
          // Remembered so a close right after it reads as a refusal (sendErrorAndClose), not an outage.
          this.lastError =
            event.header.cmd === 'error' && typeof event.header['code'] === 'string'
              ? { code: event.header['code'], at: Date.now() }
              : undefined;
          this.options.onHeader(event.header, event.bodySize);
        } else if (event.type === 'body') {
          this.options.onBody?.(event.chunk);
        } else {
          this.options.onEnd?.();
        }
      }
    } catch (err) {
      const code = isSockbridgeError(err) ? err.code : 'SB_ERR_INTERNAL';
      this.options.logger.error({ service: this.options.service, code }, 'backend sent a malformed frame');
      this.fail(sbError('SB_ERR_BACKEND_DOWN', this.options.service, `malformed frame (${code})`));
    }
  }

  private fail(err: SockbridgeError): void {
    if (this.closedByUs || this.failed) return;
    this.failed = true;
    this.stopPoll();
    this.socket.destroy();
    this.options.onFailure(err);
  }
}

/**
 * The usual reaction to a failed backend link: an error frame the backend sent before closing
 * (a refusal such as SB_ERR_CHAT_TOO_MANY_CONNECTIONS) ends the socket with that error; anything else
 * means the backend is down: logged, reported to /api/health, and the socket closed with 1011.
 */
export function reportBackendFailure(
  ws: WebSocket,
  err: SockbridgeError,
  deps: { service: ServiceName; logger: FastifyBaseLogger; markDown(service: ServiceName, reason: string): void },
): void {
  if (err.code === 'SB_ERR_BACKEND_DOWN') {
    deps.logger.warn({ service: deps.service, reason: err.message }, 'backend connection failed');
    deps.markDown(deps.service, err.message);
  } else {
    deps.logger.info({ service: deps.service, code: err.code }, 'backend refused the connection');
  }
  if (ws.readyState === ws.OPEN) {
    // A refusal the backend already sent was relayed as it arrived; only the close is left.
    if (err.code === 'SB_ERR_BACKEND_DOWN') closeWithError(ws, err);
    else ws.close(err.wsClose, err.code);
  }
}
