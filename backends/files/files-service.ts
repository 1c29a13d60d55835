// The files service: put/get/list/stat/delete over length-prefixed frames (protocol/files-messages.ts).
//
// One FilesConnection per socket handles requests strictly in order. Bodies stream: a put's body
// (or a chunked put's chunk frames) goes piece by piece into the FileStore's temp file, and the socket is paused whenever that file's
// write buffer is full (resumed on its 'drain'); a get pipes the file into socket.write() and waits
// for the socket's 'drain' when write() returns false. Memory per connection stays bounded by the
// socket's and the file stream's buffers, whatever the file size.
//
// Errors:
// - A malformed frame (codec error) or a refused put (bad name, too large, quota, busy, offset…) gets
//   an error frame and the connection closes: the peer may still be sending the body, so the stream
//   is no longer in sync (sendErrorAndClose). So does a chunked put whose running total passes
//   maxFileSize or the quota (refused at the chunk header that would pass it, its temp file
//   deleted), a chunk outside a chunked put, and any other request in the middle of one.
// - get/list/stat/delete carry no body, so a file-level refusal (not found, invalid name) is an error
//   frame and the connection stays open for the next request. So does a checksum mismatch reported
//   after a put's last byte: the stream is in sync again.

import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../protocol/errors.js';
import { DEFAULT_MAX_HEADER_BYTES, encodeFrame, encodeFrameHead, FrameDecoder, type FrameEvent, type FrameHeader } from '../../protocol/frame-codec.js';
import { FILES_CHUNK_MAX_BYTES, FILES_COMMANDS, FILES_DEFAULT_PORT, isSha256Hex, parseActor, toWireEntry } from '../../protocol/files-messages.js';
import { hostSchema, loadConfig, portSchema } from '../../server/config.js';
import { decodeChunk } from '../lib/decode-chunk.js';
import { sendErrorAndClose, TcpService } from '../lib/tcp-service.js';
import { FileStore, type Upload } from './file-store.js';

export interface FilesOptions {
  host: string;
  port: number;
  /** the directory holding the files (created if missing) */
  root: string;
  /** largest file, in bytes (default 8 GiB) */
  maxFileSize: number;
  /** total bytes of files plus partial uploads; 0 = no quota, the disk is the limit (default 0) */
  quotaBytes: number;
  /** largest frame header, in bytes (default 8 KiB: a request is a name of at most 255 bytes and a few numbers) */
  maxHeaderBytes: number;
  /** open connections at once; the next one is refused with SB_ERR_RATE_LIMITED (default 256) */
  maxConnections: number;
  /** an interrupted resumable upload is deleted after this long (default 24 h) */
  partialTtlMs: number;
  /** a connection with no traffic either way for this long is closed (default 2 min) */
  idleTimeoutMs: number;
}

export const filesOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['root'],
  properties: {
    host: hostSchema,
    port: portSchema(FILES_DEFAULT_PORT),
    root: { type: 'string', minLength: 1 },
    maxFileSize: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 8 * 1024 ** 3 },
    quotaBytes: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
    maxHeaderBytes: { type: 'integer', minimum: 512, maximum: DEFAULT_MAX_HEADER_BYTES, default: 8 * 1024 },
    maxConnections: { type: 'integer', minimum: 1, default: 256 },
    partialTtlMs: { type: 'integer', minimum: 1000, default: 24 * 60 * 60 * 1000 },
    idleTimeoutMs: { type: 'integer', minimum: 100, default: 120_000 },
  },
} as const;

export class FilesService extends TcpService {
  readonly options: Readonly<FilesOptions>;
  readonly store: FileStore;

  constructor(options: Partial<FilesOptions>, deps: { logger?: Logger } = {}) {
    const config = loadConfig<FilesOptions>(filesOptionsSchema, { base: options });
    super({ host: config.host, port: config.port, ...(deps.logger ? { logger: deps.logger } : {}) });
    this.options = config;
    this.store = new FileStore(config);
  }

  override async start(): Promise<AddressInfo> {
    await this.store.open();
    return super.start();
  }

  protected onConnection(socket: net.Socket): void {
    if (this.connectionCount > this.options.maxConnections) {
      sendErrorAndClose(socket, sbError('SB_ERR_RATE_LIMITED', `the files service allows ${this.options.maxConnections} connections at once`), this.logger);
      return;
    }
    new FilesConnection(socket, this.store, this.options, this.logger);
  }

  protected override async onClose(): Promise<void> {
    await this.store.close();
  }
}

/** One client connection: decodes frames and runs the requests one after another. */
class FilesConnection {
  private readonly decoder: FrameDecoder;
  private upload: Upload | undefined;
  /** the current upload is a chunked put: its bytes come in chunk frames, its end is an empty one */
  private chunked = false;
  /** the frame whose body (or end) comes next */
  private frame: 'put' | 'chunk' | 'other' = 'other';
  /** the current chunk frame has no body: it ends the chunked put */
  private lastChunkWasEmpty = false;
  /** the current put was refused: its remaining body is not ours to read */
  private failed = false;
  private closed = false;
  private work: Promise<void> = Promise.resolve();
  private busy = false;
  private readonly backlog: FrameEvent[][] = [];
  /** a get's body is being written: any other bytes now would be taken for part of it */
  private sendingBody = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly store: FileStore,
    private readonly options: Readonly<FilesOptions>,
    private readonly logger: Logger,
  ) {
    socket.setTimeout(options.idleTimeoutMs, () => this.onIdle());
    this.decoder = new FrameDecoder({
      maxHeaderBytes: options.maxHeaderBytes,
      // Limits checked the moment a header is read: only a sized put and a chunk carry a body.
      maxBodyBytes: (header) => (header.cmd === 'put' ? (header['chunked'] === true ? 0 : options.maxFileSize) : header.cmd === 'chunk' ? FILES_CHUNK_MAX_BYTES : 0),
      commands: FILES_COMMANDS,
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.after(() => this.onEnd()));
    socket.on('close', () => {
      this.closed = true;
      this.after(() => this.abortUpload());
    });
  }

  private after(fn: () => void | Promise<void>): void {
    this.work = this.work.then(fn).catch((err: unknown) => this.logger.error({ err }, 'files connection failure'));
  }

  private onData(chunk: Buffer): void {
    if (this.failed) return;
    const events = decodeChunk(this.decoder, chunk, (err) => this.fail(err));
    if (!events) return;
    if (this.busy) {
      // A paused socket emits no more data; should a chunk still come, it waits its turn.
      this.backlog.push(events);
      return;
    }
    this.run(events);
  }

  /** Runs synchronously as long as nothing has to wait; the socket is paused only when it must. */
  private run(events: FrameEvent[]): void {
    this.busy = true;
    const done = this.process(events);
    if (!this.busy) return;
    this.socket.pause();
    this.work = this.work
      .then(() => done)
      .then(() => {
        const next = this.backlog.shift();
        if (next) this.run(next);
        else if (!this.closed && !this.failed) this.socket.resume();
      });
  }

  private async process(events: FrameEvent[]): Promise<void> {
    try {
      for (const event of events) {
        // Not stopped by a closed socket: bytes already received still complete an upload (the
        // seed's client closes right after its last byte without reading the reply).
        if (this.failed) break;
        if (event.type === 'header') {
          const { cmd } = event.header;
          if (this.chunked && cmd !== 'chunk') throw sbError('SB_ERR_BAD_REQUEST', `"${cmd}" in the middle of a chunked put`);
          this.frame = cmd === 'put' || cmd === 'chunk' ? cmd : 'other';
          if (cmd === 'put') await this.beginPut(event.header, event.bodySize);
          else if (cmd === 'chunk') await this.beginChunk(event.bodySize);
          else await this.request(event.header);
        } else if (event.type === 'body') {
          const upload = this.upload;
          if (upload && !upload.write(event.chunk)) await upload.drained();
        } else if (this.upload && this.isLastFrameOfPut()) {
          await this.completePut();
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
    }
  }

  /** A sized put ends with its body; a chunked put with its empty chunk. */
  private isLastFrameOfPut(): boolean {
    return this.chunked ? this.frame === 'chunk' && this.lastChunkWasEmpty : this.frame === 'put';
  }

  private async beginChunk(bodySize: number): Promise<void> {
    if (!this.chunked || !this.upload) throw sbError('SB_ERR_BAD_REQUEST', 'a chunk outside a chunked put');
    this.lastChunkWasEmpty = bodySize === 0;
    if (bodySize > 0) await this.upload.room(bodySize);
  }

  private async beginPut(header: FrameHeader, bodySize: number): Promise<void> {
    const sha256 = header['sha256'];
    const offset = header['offset'] ?? 0;
    const resumable = header['resumable'] ?? true;
    const chunked = header['chunked'] ?? false;
    if (typeof chunked !== 'boolean') throw sbError('SB_ERR_BAD_REQUEST', 'chunked must be true or false');
    if (sha256 !== undefined && !isSha256Hex(sha256)) throw sbError('SB_ERR_BAD_REQUEST', 'sha256 must be 64 lowercase hex digits');
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw sbError('SB_ERR_BAD_REQUEST', 'offset must be a non-negative integer');
    if (typeof resumable !== 'boolean') throw sbError('SB_ERR_BAD_REQUEST', 'resumable must be true or false');
    const actor = parseActor(header);
    this.upload = await this.store.beginUpload(header['filename'] as string, {
      ...(chunked ? {} : { size: bodySize }),
      offset,
      resumable,
      ...(sha256 !== undefined ? { sha256 } : {}),
      ...(actor ? { actor } : {}),
    });
    this.chunked = chunked;
  }

  private async completePut(): Promise<void> {
    const upload = this.upload!;
    this.upload = undefined;
    this.chunked = false;
    try {
      const entry = await upload.complete();
      await this.send({ cmd: 'ok', op: 'put', ...toWireEntry(entry) });
    } catch (err) {
      // Every byte was read: the stream is in sync, so a refusal here keeps the connection.
      if (!isSockbridgeError(err) || err.code === 'SB_ERR_INTERNAL' || err.code === 'SB_ERR_FILE_NO_SPACE') throw err;
      await this.sendError(err);
    }
  }

  private async request(header: FrameHeader): Promise<void> {
    try {
      switch (header.cmd) {
        case 'get':
          return await this.get(header);
        case 'list': {
          const files = await this.store.list();
          const body = Buffer.from(JSON.stringify(files));
          return await this.send({ cmd: 'list', count: files.length }, body);
        }
        case 'stat': {
          const { exists, entry, partial } = await this.store.stat(header['filename'] as string);
          return await this.send({ cmd: 'stat', exists, ...toWireEntry(entry), ...(partial ? { partial } : {}) });
        }
        case 'delete': {
          const name = header['filename'] as string;
          await this.store.delete(name, parseActor(header));
          return await this.send({ cmd: 'ok', op: 'delete', name });
        }
      }
    } catch (err) {
      // No body follows these requests: a refusal leaves the stream in sync.
      if (!isSockbridgeError(err) || err.code === 'SB_ERR_INTERNAL') throw err;
      await this.sendError(err);
    }
  }

  private async get(header: FrameHeader): Promise<void> {
    const offset = header['offset'] ?? 0;
    if (typeof offset !== 'number') throw sbError('SB_ERR_BAD_REQUEST', 'offset must be a non-negative integer');
    const { entry, stream } = await this.store.read(header['filename'] as string, offset);
    const size = entry.size - offset;
    const head = encodeFrameHead({ cmd: 'data', ...toWireEntry(entry), offset }, size);
    try {
      await this.write(head);
    } catch (err) {
      stream?.destroy(); // the connection went first: close the file now, not when GC finds it
      throw err;
    }
    if (!stream) return;
    let sent = 0;
    this.sendingBody = true;
    try {
      for await (const chunk of stream) {
        if (this.closed) break;
        sent += (chunk as Buffer).length;
        await this.write(chunk as Buffer);
      }
    } catch (err) {
      // A read error mid-body: an error frame now would be taken for body bytes, so just cut.
      this.logger.error({ err }, 'file read failed during get');
    } finally {
      this.sendingBody = false;
      stream.destroy();
    }
    // Truncated under us (another process): the frame cannot be finished honestly.
    if (sent !== size && !this.closed) this.socket.destroy();
  }

  private send(header: { cmd: string; [key: string]: unknown }, body?: Buffer): Promise<void> | void {
    return this.write(encodeFrame(header, body));
  }

  private sendError(err: SockbridgeError): Promise<void> | void {
    return this.send({ cmd: 'error', code: err.code, message: err.message });
  }

  /** socket.write with backpressure: resolves at once if there is room, else on 'drain' (or close). */
  private write(buf: Buffer): Promise<void> | void {
    if (this.closed || this.socket.write(buf)) return;
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /**
   * No bytes either way for idleTimeoutMs: typically a client whose own sender stalled mid-upload.
   * Said in an error frame (SB_ERR_TIMEOUT) whenever the stream allows one, so the client can tell
   * "you went quiet" from "the service failed"; a reader stalled mid-get is just cut.
   */
  private onIdle(): void {
    if (this.sendingBody) {
      this.socket.destroy();
      return;
    }
    this.fail(sbError('SB_ERR_TIMEOUT', this.options.idleTimeoutMs, 'nothing arrived for that long, so the files service closed the connection'));
  }

  private onEnd(): void {
    try {
      this.decoder.finish();
    } catch (err) {
      // Cut mid-frame: a resumable upload stays in .partial/, anything else is dropped.
      this.logger.debug({ code: (err as SockbridgeError).code }, 'connection ended mid-frame');
    }
    return void this.abortUpload();
  }

  private async abortUpload(): Promise<void> {
    const upload = this.upload;
    this.upload = undefined;
    await upload?.abort();
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    sendErrorAndClose(this.socket, err, this.logger);
    this.after(() => this.abortUpload());
  }
}
