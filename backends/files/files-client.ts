// FilesClient: the one client of the files service, used by the CLI (put/get/ls) and the gateway.
//
// Stable API (the gateway depends on it):
//   FilesClient.connect(host, port, opts?: FilesClientOptions): Promise<FilesClient>
//   put(name, source: Readable, size?, { sha256?, offset?, resumable?, maxBytes?, onProgress?, actor? }): Promise<FileEntry>
//       sends `size` bytes read from source (the file from `offset`); resolves once the service has
//       stored and verified them. `sha256`, when given, covers the whole file (from byte 0).
//       With `size` undefined it sends a chunked put: whatever the source holds, in chunk frames of
//       at most FILES_CHUNK_MAX_BYTES, each read from the source only once the socket has drained.
//   get(name, { offset? }): Promise<{ entry, offset, stream }>
//       resolves at the reply header; `stream` yields entry.size - offset bytes then ends. Backpressure
//       is end to end: a stream that is not read pauses the socket. Read it to the end (or close())
//       before the next request can run.
//   list(): Promise<ListedFile[]>      (FileEntry + owner, string or null)
//   stat(name): Promise<FileStat>     (exists, FileEntry fields, partial?: kept upload to resume)
//   delete(name, { actor? }): Promise<void>
//       `actor` (put and delete): the account the request acts for, checked against the file's owner
//       by the service (SB_ERR_FILE_NOT_OWNER); without it the request is a direct client's.
//   close(): Promise<void>
// Requests run one at a time, in call order. A refusal rejects with a SockbridgeError carrying the
// service's code (err.code; isServiceRefusal(err) tells it came from the service); a lost connection
// rejects with SB_ERR_BACKEND_DOWN, a refused connect with SB_ERR_CONNECT, a silent service with
// SB_ERR_TIMEOUT.

import { IncomingMessage } from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { errorFromFrame, sbError, SockbridgeError } from '../../protocol/errors.js';
import { encodeFrame, encodeFrameHead, FrameDecoder, type FrameEvent, type FrameHeader } from '../../protocol/frame-codec.js';
import {
  actorFields,
  FILES_CHUNK_MAX_BYTES,
  fromWireEntry,
  parseFileList,
  parsePartialInfo,
  type FileActor,
  type FileEntry,
  type FileStat,
  type ListedFile,
} from '../../protocol/files-messages.js';
import { decodeChunk } from '../lib/decode-chunk.js';
import { endSocket } from '../lib/end-socket.js';

export interface FilesClientOptions {
  /** give up connecting after this long (default 10 s) */
  connectTimeoutMs?: number;
  /** give up waiting for a reply after this long once a request is sent (default 120 s) */
  replyTimeoutMs?: number;
  /** largest list reply accepted, in bytes (default 64 MiB) */
  maxListBytes?: number;
}

export interface PutOptions {
  sha256?: string;
  offset?: number;
  resumable?: boolean;
  /**
   * chunked put only: the source may hold at most this many bytes; one more rejects with
   * SB_ERR_FILE_TOO_LARGE and abandons the upload (the service drops it)
   */
  maxBytes?: number;
  /** called with the bytes of this request sent so far */
  onProgress?: (sent: number) => void;
  /** the account the put acts for: it becomes the file's owner */
  actor?: FileActor;
}

export interface GetResult {
  entry: FileEntry;
  offset: number;
  stream: Readable;
}

type Listener = (event: FrameEvent) => void;

/** Errors the service sent in an error frame: it answered, so it is up (whatever the code says). */
const serviceRefusals = new WeakSet<SockbridgeError>();

/**
 * True for an error the files service itself reported ({cmd:'error'}), as opposed to one the client
 * concluded (connection lost or refused, no reply in time). A SB_ERR_TIMEOUT refusal is the
 * service's idle timeout closing a connection whose peer went quiet, not a silent service.
 */
export function isServiceRefusal(err: unknown): boolean {
  return err instanceof SockbridgeError && serviceRefusals.has(err);
}

function refusalOf(header: FrameHeader): SockbridgeError {
  const err = errorFromFrame(header, 'unknown error from the files service');
  serviceRefusals.add(err);
  return err;
}

export class FilesClient {
  private readonly decoder: FrameDecoder;
  private listener: Listener | undefined;
  private closedError: SockbridgeError | undefined;
  private readonly closeWaiters = new Set<(err: SockbridgeError) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly replyTimeoutMs: number;

  private constructor(
    private readonly socket: net.Socket,
    options: FilesClientOptions,
  ) {
    this.replyTimeoutMs = options.replyTimeoutMs ?? 120_000;
    const maxList = options.maxListBytes ?? 64 * 1024 * 1024;
    this.decoder = new FrameDecoder({
      maxBodyBytes: (h) => (h.cmd === 'data' ? Number.MAX_SAFE_INTEGER : h.cmd === 'list' ? maxList : 0),
    });
    socket.on('data', (chunk: Buffer) => {
      // Bytes that are no frame are the service's fault, not the caller's: the gateway must answer
      // 503 and show files down, not relay the decoder's 400 as if the browser had sent them.
      const events = decodeChunk(this.decoder, chunk, (err) => {
        const code = err instanceof SockbridgeError ? err.code : 'SB_ERR_INTERNAL';
        this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', `malformed reply (${code})`));
      });
      if (!events) return;
      for (const event of events) {
        if (this.listener) this.listener(event);
        else this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', 'an unexpected frame'));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', 'connection closed')));
  }

  static connect(host: string, port: number, options: FilesClientOptions = {}): Promise<FilesClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(sbError('SB_ERR_CONNECT', `${host}:${port}`, 'timed out'));
      }, options.connectTimeoutMs ?? 10_000);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(sbError('SB_ERR_CONNECT', `${host}:${port}`, err.code ?? err.message));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new FilesClient(socket, options));
      });
    });
  }

  put(name: string, source: Readable, size: number | undefined, options: PutOptions = {}): Promise<FileEntry> {
    return this.enqueue(async () => {
      const header = {
        cmd: 'put',
        filename: name,
        ...(size === undefined ? { chunked: true } : {}),
        ...(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
        ...(options.offset ? { offset: options.offset } : {}),
        ...(options.resumable !== undefined ? { resumable: options.resumable } : {}),
        ...actorFields(options.actor),
      };
      // Listening before the first byte goes out: a refusal can arrive mid-body.
      const reply = this.nextReply();
      let refused = false;
      reply.catch(() => (refused = true));
      try {
        await this.write(encodeFrameHead(header, size ?? 0));
        const sending = size === undefined ? this.sendChunks(source, options, () => refused) : this.sendBody(source, size, options, () => refused);
        sending.catch(() => undefined);
        // A refusal or a lost connection settles `reply` at once; without this race a stalled source
        // (a browser upload paused by its sender) would hold the request until its next chunk.
        await Promise.race([sending, reply.then(() => new Promise<void>(() => undefined), () => undefined)]);
      } catch (err) {
        // Refused mid-body: the service closed the connection, and its reply says why.
        if (!refused) {
          // The source failed mid-body (e.g. a read error): the frame can never be finished.
          this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', 'upload abandoned'));
          throw err;
        }
      } finally {
        releaseSource(source);
      }
      const { header: ok } = await this.withTimeout(reply);
      return this.checked(() => fromWireEntry(ok));
    });
  }

  /** The body of a sized put: exactly `size` bytes, or the connection is given up. */
  private async sendBody(source: Readable, size: number, options: PutOptions, refused: () => boolean): Promise<void> {
    let sent = 0;
    for await (const chunk of source.iterator({ destroyOnReturn: false })) {
      if (refused()) return;
      const buf = toBuffer(chunk);
      if (sent + buf.length > size) throw this.shutdown(sbError('SB_ERR_BAD_REQUEST', `the source holds more than the declared ${size} bytes`));
      sent += buf.length;
      await this.write(buf);
      options.onProgress?.(sent);
    }
    if (!refused() && sent < size) throw this.shutdown(sbError('SB_ERR_BAD_REQUEST', `the source ended after ${sent} of ${size} bytes`));
  }

  /** The chunk frames of a chunked put, then the empty chunk that ends it. */
  private async sendChunks(source: Readable, options: PutOptions, refused: () => boolean): Promise<void> {
    const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    let sent = 0;
    for await (const chunk of source.iterator({ destroyOnReturn: false })) {
      if (refused()) return;
      const buf = toBuffer(chunk);
      if (sent + buf.length > maxBytes) throw sbError('SB_ERR_FILE_TOO_LARGE', `more than ${maxBytes}`, maxBytes);
      for (let at = 0; at < buf.length; at += FILES_CHUNK_MAX_BYTES) {
        const piece = buf.subarray(at, at + FILES_CHUNK_MAX_BYTES);
        // The head is a few bytes: only the piece after it needs to wait for 'drain'.
        this.socket.write(encodeFrameHead({ cmd: 'chunk' }, piece.length));
        await this.write(piece);
      }
      sent += buf.length;
      options.onProgress?.(sent);
    }
    if (!refused()) await this.write(encodeFrameHead({ cmd: 'chunk' }));
  }

  get(name: string, options: { offset?: number } = {}): Promise<GetResult> {
    return new Promise<GetResult>((resolveGet, rejectGet) => {
      // A connection already gone rejects here, before the request is even written.
      this.enqueue(
        () =>
          new Promise<void>((release) => {
            // While the body streams, the service must keep sending: a gap of replyTimeoutMs with
            // nothing arriving (counted only while we are waiting for bytes, not while our reader
            // has paused us) gives up the download instead of hanging forever.
            let idle: NodeJS.Timeout | undefined;
            const waitForBody = () => {
              clearTimeout(idle);
              idle = setTimeout(() => finish(this.shutdown(sbError('SB_ERR_TIMEOUT', this.replyTimeoutMs, 'files get body'))), this.replyTimeoutMs);
            };
            const stream = new Readable({
              highWaterMark: 1024 * 1024,
              read: () => {
                if (started && this.listener === onEvent) waitForBody();
                this.socket.resume();
              },
              destroy: (err, cb) => {
                // Abandoned mid-body: the connection cannot be used for another request.
                if (this.listener === onEvent) this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', 'download abandoned'));
                cb(err);
              },
            });
            let started = false;
            const finish = (err?: SockbridgeError) => {
              this.listener = undefined;
              this.closeWaiters.delete(onClose);
              clearTimeout(timer);
              clearTimeout(idle);
              if (!started) rejectGet(err);
              else if (err) stream.destroy(err);
              release();
            };
            const onClose = (err: SockbridgeError) => finish(err);
            let refusal: SockbridgeError | undefined;
            const onEvent: Listener = (event) => {
              if (event.type === 'header') {
                clearTimeout(timer);
                const h = event.header;
                if (h.cmd === 'error') refusal = refusalOf(h);
                else if (h.cmd !== 'data') return finish(this.shutdown(sbError('SB_ERR_BAD_REQUEST', `unexpected reply "${h.cmd}"`)));
                else {
                  let entry: FileEntry;
                  let offset: number;
                  try {
                    entry = this.checked(() => fromWireEntry(h));
                    offset = this.checked(() => {
                      const at = h['offset'] ?? 0;
                      if (!Number.isSafeInteger(at) || (at as number) < 0 || (at as number) > entry.size) throw new Error(`offset ${JSON.stringify(at)}`);
                      return at as number;
                    });
                  } catch {
                    return; // checked() ended the connection, and onClose has already failed this get
                  }
                  started = true;
                  waitForBody();
                  resolveGet({ entry, offset, stream });
                }
              } else if (event.type === 'body') {
                if (stream.push(event.chunk)) waitForBody();
                else {
                  clearTimeout(idle); // our reader is slow, not the service
                  this.socket.pause();
                }
              } else if (refusal) {
                finish(refusal);
              } else {
                clearTimeout(idle);
                stream.push(null);
                this.listener = undefined;
                this.closeWaiters.delete(onClose);
                release();
              }
            };
            if (this.closedError) return finish(this.closedError);
            this.listener = onEvent;
            this.closeWaiters.add(onClose);
            const timer = setTimeout(() => finish(this.shutdown(sbError('SB_ERR_TIMEOUT', this.replyTimeoutMs, 'files get'))), this.replyTimeoutMs);
            this.socket.write(encodeFrame({ cmd: 'get', filename: name, ...(options.offset ? { offset: options.offset } : {}) }));
          }),
      ).catch(rejectGet);
    });
  }

  list(): Promise<ListedFile[]> {
    return this.request({ cmd: 'list' }).then(({ body }) =>
      this.checked(() => parseFileList(JSON.parse(body.toString('utf8')))),
    );
  }

  stat(name: string): Promise<FileStat> {
    return this.request({ cmd: 'stat', filename: name }).then(({ header }) => {
      return this.checked(() => {
        const partial = header['partial'] === undefined ? undefined : parsePartialInfo(header['partial']);
        return { exists: header['exists'] === true, ...fromWireEntry(header), ...(partial ? { partial } : {}) };
      });
    });
  }

  delete(name: string, options: { actor?: FileActor } = {}): Promise<void> {
    return this.request({ cmd: 'delete', filename: name, ...actorFields(options.actor) }).then(() => undefined);
  }

  close(): Promise<void> {
    return endSocket(this.socket, 1000);
  }

  // ---- internals ----

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closedError) throw this.closedError;
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private request(header: { cmd: string; [key: string]: unknown }): Promise<{ header: FrameHeader; body: Buffer }> {
    return this.enqueue(async () => {
      const reply = this.nextReply();
      reply.catch(() => undefined);
      await this.write(encodeFrame(header));
      return this.withTimeout(reply);
    });
  }

  /** The next whole reply (small bodies only: list); an error reply rejects with its code. */
  private nextReply(): Promise<{ header: FrameHeader; body: Buffer }> {
    return new Promise((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      let header: FrameHeader | undefined;
      const parts: Buffer[] = [];
      const onClose = (err: SockbridgeError) => done(err);
      const done = (err?: SockbridgeError) => {
        this.listener = undefined;
        this.closeWaiters.delete(onClose);
        if (err) reject(err);
        else resolve({ header: header!, body: Buffer.concat(parts) });
      };
      this.closeWaiters.add(onClose);
      this.listener = (event) => {
        if (event.type === 'header') header = event.header;
        else if (event.type === 'body') parts.push(Buffer.from(event.chunk));
        else done(header!.cmd === 'error' ? refusalOf(header!) : undefined);
      };
    });
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.shutdown(sbError('SB_ERR_TIMEOUT', this.replyTimeoutMs, 'files reply'))), this.replyTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * `parse(reply)`, or, when the reply is malformed (a broken or hostile service), the connection
   * ended with SB_ERR_BACKEND_DOWN naming what was wrong: the gateway must answer 503, not relay
   * the 400 of SB_ERR_MESSAGE_INVALID as if the browser had sent it.
   */
  private checked<T>(parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      throw this.shutdown(sbError('SB_ERR_BACKEND_DOWN', 'files', `malformed reply: ${(err as Error).message}`));
    }
  }

  /** socket.write with backpressure; rejects once the connection is gone. */
  private write(buf: Buffer): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.socket.write(buf)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      // A service that stops reading for replyTimeoutMs is given up, not waited for forever.
      const stalled = setTimeout(() => this.shutdown(sbError('SB_ERR_TIMEOUT', this.replyTimeoutMs, 'files service not reading')), this.replyTimeoutMs);
      const onClose = (err: SockbridgeError) => {
        clearTimeout(stalled);
        this.socket.off('drain', onDrain);
        reject(err);
      };
      const onDrain = () => {
        clearTimeout(stalled);
        this.closeWaiters.delete(onClose);
        resolve();
      };
      this.socket.once('drain', onDrain);
      this.closeWaiters.add(onClose);
    });
  }

  /** Ends the connection for good; every waiter learns why. Returns the error for `throw`. */
  private shutdown(err: SockbridgeError): SockbridgeError {
    if (!this.closedError) {
      this.closedError = err;
      this.socket.destroy();
      for (const waiter of [...this.closeWaiters]) waiter(err);
      this.closeWaiters.clear();
    }
    return this.closedError;
  }
}

function toBuffer(chunk: unknown): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
}

/**
 * Lets go of an upload's source. An HTTP request is drained, not destroyed: destroying it would drop
 * the connection before the gateway can answer why the upload failed (503, 413, …).
 */
function releaseSource(source: Readable): void {
  if (source instanceof IncomingMessage) {
    if (!source.readableEnded) source.resume();
  } else {
    source.destroy();
  }
}
