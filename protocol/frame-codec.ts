// The sticky-packet (粘包) answer: every sockbridge TCP service speaks length-prefixed frames.
//
//   offset 0   int32 little-endian  header length L (1..maxHeaderBytes)
//   offset 4   L bytes              UTF-8 JSON object, with at least {"cmd": string}
//   offset 4+L N bytes              body; N = header.size (or header.filesize on the seed's "put"), 0 if absent
//
// The header prefix is byte-compatible with the seed's FTP client (struct.pack('i', len)).
// FrameDecoder is an incremental parser in the shape of ws's lib/receiver.js: fed arbitrary
// chunks, it keeps its state across short reads, checks every length the moment it is read,
// and never buffers a body: bodies are handed on as slices of the input, so a 10 GiB body
// flows through in bounded memory. Only a protocol violation throws (a SockbridgeError).
// Pure: no sockets, no timers.

import { Buffer, isUtf8 } from 'node:buffer';
import { sbError, type ErrorCode, type SockbridgeError } from './errors.js';

export const FRAME_PREFIX_BYTES = 4;
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** A decoded header. `cmd` is guaranteed; everything else is the service's to validate. */
export interface FrameHeader {
  cmd: string;
  size?: number;
  [key: string]: unknown;
}

export type FrameEvent =
  | { type: 'header'; header: FrameHeader; bodySize: number }
  /** A slice of the pushed chunk (not a copy): copy it if you keep it past the next push. */
  | { type: 'body'; chunk: Buffer }
  | { type: 'end' };

export interface FrameDecoderOptions {
  /** Largest accepted header, in bytes. Default 64 KiB. */
  maxHeaderBytes?: number;
  /** Largest accepted body, fixed or per header (e.g. large for "put", 0 for "list"). Default 1 MiB. */
  maxBodyBytes?: number | ((header: FrameHeader) => number);
  /** When given, any other cmd is a protocol error. */
  commands?: readonly string[];
}

const enum State {
  HEADER_LENGTH,
  HEADER,
  BODY,
  FAILED,
}

// Keys that would let a header reach Object.prototype once code spreads or merges it.
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export class FrameDecoder {
  private state = State.HEADER_LENGTH;
  private readonly maxHeaderBytes: number;
  private readonly maxBody: (header: FrameHeader) => number;
  private readonly commands: ReadonlySet<string> | undefined;

  private readonly lengthBytes = Buffer.alloc(FRAME_PREFIX_BYTES);
  private headerBytes: Buffer = Buffer.alloc(0);
  private have = 0;
  private bodyRemaining = 0;
  private bodyTotal = 0;
  private failure: SockbridgeError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxBody = typeof maxBody === 'function' ? maxBody : () => maxBody;
    this.commands = options.commands ? new Set(options.commands) : undefined;
  }

  /** True between frames: a connection closing now has lost nothing. */
  get idle(): boolean {
    return this.state === State.HEADER_LENGTH && this.have === 0;
  }

  /** Feed bytes; returns the events they complete. Throws a SockbridgeError on a protocol violation. */
  push(chunk: Uint8Array): FrameEvent[] {
    if (this.failure) throw this.failure;
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const events: FrameEvent[] = [];
    let offset = 0;
    try {
      while (offset < data.length) {
        switch (this.state) {
          case State.HEADER_LENGTH:
            offset = this.readHeaderLength(data, offset);
            break;
          case State.HEADER:
            offset = this.readHeader(data, offset, events);
            break;
          case State.BODY:
            offset = this.readBody(data, offset, events);
            break;
          case State.FAILED:
            throw this.failure;
        }
      }
    } catch (err) {
      this.state = State.FAILED;
      this.failure = err as SockbridgeError;
      throw err;
    }
    return events;
  }

  /** Call when the stream ends: throws SB_ERR_FRAME_TRUNCATED if a frame was cut short. */
  finish(): void {
    if (this.failure) return;
    if (this.state === State.HEADER_LENGTH && this.have > 0) {
      throw sbError('SB_ERR_FRAME_TRUNCATED', `${this.have} of 4 header-length bytes`);
    }
    if (this.state === State.HEADER) {
      throw sbError('SB_ERR_FRAME_TRUNCATED', `${this.have} of ${this.headerBytes.length} header bytes`);
    }
    if (this.state === State.BODY) {
      throw sbError('SB_ERR_FRAME_TRUNCATED', `${this.bodyTotal - this.bodyRemaining} of ${this.bodyTotal} body bytes`);
    }
  }

  private readHeaderLength(data: Buffer, offset: number): number {
    let length: number;
    if (this.have === 0 && data.length - offset >= FRAME_PREFIX_BYTES) {
      length = data.readInt32LE(offset);
      offset += FRAME_PREFIX_BYTES;
    } else {
      const n = Math.min(FRAME_PREFIX_BYTES - this.have, data.length - offset);
      data.copy(this.lengthBytes, this.have, offset, offset + n);
      this.have += n;
      offset += n;
      if (this.have < FRAME_PREFIX_BYTES) return offset;
      length = this.lengthBytes.readInt32LE(0);
    }
    // Checked before a single header byte is buffered: a hostile length costs nothing.
    if (length < 1 || length > this.maxHeaderBytes) {
      throw sbError('SB_ERR_FRAME_HEADER_LENGTH', length, this.maxHeaderBytes);
    }
    this.state = State.HEADER;
    this.have = 0;
    this.headerBytes = Buffer.allocUnsafe(length);
    return offset;
  }

  private readHeader(data: Buffer, offset: number, events: FrameEvent[]): number {
    const need = this.headerBytes.length - this.have;
    const n = Math.min(need, data.length - offset);
    data.copy(this.headerBytes, this.have, offset, offset + n);
    this.have += n;
    offset += n;
    if (this.have < this.headerBytes.length) return offset;

    const header = parseHeader(this.headerBytes, this.commands);
    const bodySize = bodySizeOf(header);
    const limit = this.maxBody(header);
    if (bodySize > limit) throw sbError('SB_ERR_FRAME_BODY_TOO_LARGE', bodySize, limit);

    this.have = 0;
    this.headerBytes = Buffer.alloc(0);
    events.push({ type: 'header', header, bodySize });
    if (bodySize === 0) {
      events.push({ type: 'end' });
      this.state = State.HEADER_LENGTH;
    } else {
      this.state = State.BODY;
      this.bodyRemaining = bodySize;
      this.bodyTotal = bodySize;
    }
    return offset;
  }

  private readBody(data: Buffer, offset: number, events: FrameEvent[]): number {
    const n = Math.min(this.bodyRemaining, data.length - offset);
    events.push({ type: 'body', chunk: data.subarray(offset, offset + n) });
    this.bodyRemaining -= n;
    offset += n;
    if (this.bodyRemaining === 0) {
      events.push({ type: 'end' });
      this.state = State.HEADER_LENGTH;
    }
    return offset;
  }
}

/** The code each failure of parseJsonObject throws: frame headers and browser messages keep their own. */
export interface JsonObjectCodes {
  json: ErrorCode;
  forbiddenKey: ErrorCode;
  notObject: ErrorCode;
}

/**
 * Parses text that must be one JSON object, refusing a key that would reach Object.prototype
 * (FORBIDDEN_KEYS) at any depth. Shared by frame headers and the browser message parsers.
 */
export function parseJsonObject(text: string, codes: JsonObjectCodes): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) throw sbError(codes.forbiddenKey, key);
      return v;
    });
  } catch (err) {
    if ((err as SockbridgeError).code === codes.forbiddenKey) throw err;
    throw sbError(codes.json, (err as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw sbError(codes.notObject, value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value);
  }
  return value as Record<string, unknown>;
}

const HEADER_CODES: JsonObjectCodes = {
  json: 'SB_ERR_FRAME_HEADER_JSON',
  forbiddenKey: 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY',
  notObject: 'SB_ERR_FRAME_HEADER_NOT_OBJECT',
};

function parseHeader(bytes: Buffer, commands: ReadonlySet<string> | undefined): FrameHeader {
  if (!isUtf8(bytes)) throw sbError('SB_ERR_FRAME_HEADER_UTF8');
  const header = parseJsonObject(bytes.toString('utf8'), HEADER_CODES);
  const cmd = header['cmd'];
  if (typeof cmd !== 'string' || cmd.length === 0) throw sbError('SB_ERR_FRAME_CMD_MISSING');
  if (commands && !commands.has(cmd)) {
    throw sbError('SB_ERR_FRAME_CMD_UNKNOWN', cmd.slice(0, 64), [...commands].join(', '));
  }
  return header as FrameHeader;
}

/** The body length a header declares: `size`, or the seed's `filesize` on "put". */
export function bodySizeOf(header: FrameHeader): number {
  const raw = header.size !== undefined ? header.size : header.cmd === 'put' ? header['filesize'] : undefined;
  if (raw === undefined) return 0;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) {
    throw sbError('SB_ERR_FRAME_BODY_SIZE', JSON.stringify(raw)?.slice(0, 32));
  }
  return raw;
}

/**
 * The bytes that start a frame: length prefix and JSON header. Write `bodySize` body bytes after it.
 * `size` is set from bodySize (and omitted when 0), so header and body can never disagree.
 */
export function encodeFrameHead(header: { cmd: string; [key: string]: unknown }, bodySize = 0): Buffer {
  const { size: _ignored, ...rest } = header;
  const json = JSON.stringify(bodySize > 0 ? { ...rest, size: bodySize } : rest);
  const length = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + length);
  out.writeInt32LE(length, 0);
  out.write(json, FRAME_PREFIX_BYTES, 'utf8');
  return out;
}

/** A whole frame in one buffer; for small bodies (messages, control frames). */
export function encodeFrame(header: { cmd: string; [key: string]: unknown }, body?: Uint8Array): Buffer {
  const head = encodeFrameHead(header, body?.byteLength ?? 0);
  return body && body.byteLength > 0 ? Buffer.concat([head, body]) : head;
}

export interface WholeFrame {
  header: FrameHeader;
  body: Buffer;
}

/**
 * For services whose bodies are small (chat, exec control): collects each frame's body,
 * which FrameDecoder's maxBodyBytes has already bounded, and returns whole frames.
 */
export class WholeFrameDecoder {
  private readonly decoder: FrameDecoder;
  private current: { header: FrameHeader; parts: Buffer[] } | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.decoder = new FrameDecoder(options);
  }

  get idle(): boolean {
    return this.decoder.idle;
  }

  push(chunk: Uint8Array): WholeFrame[] {
    const frames: WholeFrame[] = [];
    for (const event of this.decoder.push(chunk)) {
      if (event.type === 'header') {
        this.current = { header: event.header, parts: [] };
      } else if (event.type === 'body') {
        // Copied: the slice points into a chunk the caller may reuse.
        this.current?.parts.push(Buffer.from(event.chunk));
      } else if (this.current) {
        const { header, parts } = this.current;
        frames.push({ header, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
        this.current = undefined;
      }
    }
    return frames;
  }

  finish(): void {
    this.decoder.finish();
  }
}
