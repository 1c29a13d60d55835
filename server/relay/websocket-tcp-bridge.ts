// The relay core: one browser WebSocket ↔ one TCP connection to a fixed target, shared by the
// gateway's /ws/raw/:target and `sockbridge relay`. Bytes in binary messages one way, bytes on the
// stream the other; message boundaries mean nothing (websockify's `binary` subprotocol).
//
// What it guarantees, and how:
// - Speed: the target is read with `onread` into buffers that grow to 1 MiB during a bulk
//   transfer (big reads, big frames, few syscalls). ws sends a buffer by reference (server frames are unmasked, so no copy) and keeps
//   it queued until the kernel takes it, so a buffer handed to ws is reused only after ws's send
//   callback says it was written; small reads are copied out so a 10-byte read does not pin a
//   big buffer while queued. Nagle is off; perMessageDeflate is off (set by the
//   WebSocket server); ws corks each frame's header and payload into one write; bufferutil masks.
// - Backpressure both ways: ws.bufferedAmount over highWaterBytes pauses reading from the target
//   until the frames queued so far have been written; a target write() returning false pauses
//   the WebSocket (ws.pause(), which stops reading its socket) until the target drains.
// - Tail on close: when the target ends, every byte it sent has already been queued on the
//   WebSocket in order, and the close frame is queued after them (RFC 6455 §5.5.1: the close
//   frame is the last frame sent), so the browser gets the whole tail before the close.
// - Browser leaves: the target is ended (FIN) after what the browser sent has been written,
//   its remaining output is read and dropped, and it is destroyed after lingerMs at the latest.

import net from 'node:net';
import type { LogFn } from 'pino';
import type { WebSocket, RawData } from 'ws';
import { WS_CLOSE, sbError, type SockbridgeError } from '../../protocol/errors.js';
import type { RelayLimits } from './relay-limits.js';

export interface RelayTarget {
  host: string;
  port: number;
}

/**
 * Reads from the target land in buffers of 64 KiB; a read that fills its buffer makes the next ones
 * 4× bigger, up to 1 MiB (a bulk transfer then costs a quarter of the syscalls and frames: ~25 % less
 * CPU per byte measured), and a small read brings them back to 64 KiB, so a quiet relay holds little.
 */
const MIN_READ_BYTES = 64 * 1024;
export const MAX_READ_BYTES = 1024 * 1024;
/** Reads smaller than this are copied out, and the read buffer is reused at once. */
const COPY_BELOW_BYTES = 16 * 1024;
/** Spare read buffers kept per relay. */
const MAX_FREE_BUFFERS = 2;

/** Closes with a reason carrying the stable error code (a close reason is at most 123 bytes, §5.5). */
function closeWithError(ws: WebSocket, err: SockbridgeError): void {
  closeWebSocket(ws, err.wsClose, err.code);
}

/** Starts the closing handshake (queued after every frame already sent) and reads the peer's reply. */
function closeWebSocket(ws: WebSocket, code: number, reason?: string): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.close(code, reason);
  // A paused WebSocket (backpressure, or still connecting) would never read the peer's close frame.
  ws.resume();
}

/** The logging the bridge needs: pino's Logger and Fastify's request.log both fit. */
export interface RelayLogger {
  debug: LogFn;
  info: LogFn;
}

export interface RelayStats {
  /** bytes from the target to the browser */
  down: number;
  /** bytes from the browser to the target */
  up: number;
  /** writes to the target: one per event-loop turn that brought browser messages (each a writev of them all) */
  upWrites: number;
}

/**
 * Relays an open WebSocket to `target` until either side ends. Resolves with the byte counts once
 * both sides are closed; never rejects (failures close the WebSocket with a code and are logged).
 */
export function bridgeWebSocketToTcp(ws: WebSocket, target: RelayTarget, limits: RelayLimits, logger: RelayLogger): Promise<RelayStats> {
  const stats: RelayStats = { down: 0, up: 0, upWrites: 0 };
  // Read buffers go back to this free list once ws has handed their bytes to the kernel (the send
  // callback), so a steady transfer reuses a few buffers instead of allocating (and page-faulting)
  // a fresh one per read.
  const freeBuffers: Buffer[] = [];
  let readSize = MIN_READ_BYTES;
  let readBuffer: Buffer = Buffer.allocUnsafe(readSize);
  let connected = false;
  let browserGone = false;
  let targetPausedForBrowser = false;
  let browserPausedForTarget = false;

  const resumeTarget = () => {
    targetPausedForBrowser = false;
    if (!browserGone) tcp.resume();
  };

  // Nothing the browser sends may be lost while the target is still connecting: stop reading it.
  ws.pause();

  // net.Socket hands its options to stream.Duplex, which honours writableHighWaterMark; @types/node
  // does not list it for net, hence the widened type.
  const connectOptions: net.NetConnectOpts & { writableHighWaterMark: number } = {
    host: target.host,
    port: target.port,
    noDelay: true,
    // What the browser sent may queue up to highWaterBytes before the WebSocket is paused (the
    // default 16 KiB would pause it after every 64 KiB message and leave nothing to coalesce).
    writableHighWaterMark: limits.highWaterBytes,
    onread: {
      buffer: () => readBuffer,
      callback: (nread: number, buf: Uint8Array): boolean => {
        if (browserGone || ws.readyState !== ws.OPEN) return true; // draining a target nobody reads
        stats.down += nread;
        const overHighWater = ws.bufferedAmount + nread > limits.highWaterBytes;
        if (nread < COPY_BELOW_BYTES) {
          // A small read is copied out and the read buffer kept: 10 bytes never pin a big buffer.
          const copy = Buffer.allocUnsafe(nread);
          copy.set(buf.subarray(0, nread));
          ws.send(copy, { binary: true }, overHighWater ? resumeTarget : undefined);
          if (readSize > MIN_READ_BYTES) {
            // The bulk transfer is over: give the big buffers back.
            readSize = MIN_READ_BYTES;
            freeBuffers.length = 0;
            readBuffer = Buffer.allocUnsafe(readSize);
          }
        } else {
          // A large read is sent as it lies (ws frames it by reference: no copy) and its buffer
          // is only reused after ws has written it; the next read goes to another buffer.
          const full = buf as Buffer; // the buffer this read landed in (readBuffer, handed out by `buffer`)
          if (nread === full.length && readSize < MAX_READ_BYTES) {
            readSize = Math.min(readSize * 4, MAX_READ_BYTES);
            freeBuffers.length = 0;
          }
          readBuffer = freeBuffers.pop() ?? Buffer.allocUnsafe(readSize);
          ws.send(full.subarray(0, nread), { binary: true }, () => {
            if (full.length === readSize && freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(full);
            if (overHighWater) resumeTarget();
          });
        }
        if (!overHighWater) return true;
        // Over the high-water mark: stop reading the target until everything queued so far has
        // been written to the browser's socket (ws calls back in order, once the kernel took it).
        targetPausedForBrowser = true;
        return false; // pauses the socket
      },
    },
  };
  const tcp = net.connect(connectOptions);

  tcp.setTimeout(limits.connectTimeoutMs);
  tcp.on('timeout', () => {
    const err = connected
      ? sbError('SB_ERR_TIMEOUT', limits.idleTimeoutMs, 'relay idle')
      : sbError('SB_ERR_TIMEOUT', limits.connectTimeoutMs, `connecting to ${target.host}:${target.port}`);
    logger.info({ code: err.code, target: `${target.host}:${target.port}` }, 'relay timed out');
    closeWithError(ws, err);
    tcp.destroy();
  });

  tcp.once('connect', () => {
    connected = true;
    tcp.setTimeout(limits.idleTimeoutMs);
    logger.debug({ target: `${target.host}:${target.port}` }, 'relay connected');
    if (!browserGone) ws.resume();
  });

  tcp.on('error', (e: NodeJS.ErrnoException) => {
    const err = connected
      ? sbError('SB_ERR_BACKEND_DOWN', 'relay target', e.code ?? e.message)
      : sbError('SB_ERR_CONNECT', `${target.host}:${target.port}`, e.code ?? e.message);
    logger.info({ code: err.code, errno: e.code, target: `${target.host}:${target.port}` }, 'relay target failed');
    // Bytes already queued on the WebSocket still precede the close frame.
    closeWithError(ws, err);
  });

  // The target finished sending: its bytes are all queued on the WebSocket; close after them.
  tcp.once('end', () => {
    closeWebSocket(ws, WS_CLOSE.NORMAL);
    tcp.end();
  });

  // Browser → target writes are coalesced: the first message of an event-loop turn corks the
  // socket and a setImmediate (which runs right after the poll phase that delivered the messages)
  // uncorks it, so every message parsed from the socket reads of that turn (libuv reads up to 32
  // in a row) goes to the target in one writev instead of one write() each. Latency: none that
  // matters (the same loop turn); memory: bounded by the target's writable high-water mark below.
  let upBatchOpen = false;
  const flushUpBatch = () => {
    upBatchOpen = false;
    if (!tcp.destroyed && tcp.writableCorked > 0) {
      stats.upWrites++;
      tcp.uncork();
    }
  };

  ws.on('message', (data: RawData) => {
    // Once we have sent our close (a limit, a logout, the target gone), nothing more reaches the
    // target, not even what the browser sent before it saw the close: ws still delivers those.
    if (ws.readyState !== ws.OPEN) return;
    const chunk = data as Buffer; // binaryType 'nodebuffer' (ws's default): always one Buffer
    // ws's maxPayload enforces the limit before buffering; this is the same limit in case the
    // WebSocket server was built with a larger one (the gateway shares one server between routes).
    if (chunk.length > limits.maxMessageBytes) {
      closeWithError(ws, sbError('SB_ERR_MESSAGE_TOO_LARGE', chunk.length, limits.maxMessageBytes));
      return;
    }
    if (tcp.destroyed || tcp.writableEnded || chunk.length === 0) return;
    stats.up += chunk.length;
    if (!upBatchOpen) {
      upBatchOpen = true;
      tcp.cork();
      setImmediate(flushUpBatch);
    }
    // Messages ws had already parsed may still arrive after pause(): one 'drain' wait is enough.
    if (!tcp.write(chunk) && !browserPausedForTarget) {
      browserPausedForTarget = true;
      ws.pause();
      tcp.once('drain', () => {
        browserPausedForTarget = false;
        if (!browserGone) ws.resume();
      });
    }
  });

  ws.on('error', (err) => logger.debug({ err }, 'relay websocket error'));

  const browserClosed = new Promise<void>((resolve) => {
    ws.once('close', () => {
      browserGone = true;
      // Flush what the browser sent, then FIN; keep reading (and dropping) the target's output so
      // closing never turns into a reset that could discard our unsent data; bound how long.
      if (targetPausedForBrowser) tcp.resume();
      flushUpBatch();
      if (!tcp.destroyed) {
        tcp.end();
        const linger = setTimeout(() => tcp.destroy(), limits.lingerMs);
        linger.unref();
        tcp.once('close', () => clearTimeout(linger));
      }
      resolve();
    });
  });
  const targetClosed = new Promise<void>((resolve) =>
    tcp.once('close', () => {
      // Whatever ended the target (timeout, reset after 'end'), the browser is never left hanging.
      closeWebSocket(ws, WS_CLOSE.NORMAL);
      resolve();
    }),
  );

  return Promise.all([browserClosed, targetClosed]).then(() => stats);
}
