// The exec contract. Control messages are frame headers on the exec service's TCP port and JSON
// text messages on the gateway's /ws/exec; output and stdin bytes are frame bodies on TCP and
// binary WebSocket messages (encodeExecData below) in the browser, so bytes are never re-encoded
// as text and a UTF-8 sequence split across two reads survives.

import { sbError } from './errors.js';

// ---- client → server ----
/** TCP only, first frame: nothing runs before it. The gateway authenticates itself with it. */
export interface AuthRequest { cmd: 'auth'; secret: string }
export interface RunRequest {
  cmd: 'run';
  /** the client's id for this command, unique among its running commands (1..64 chars) */
  id: string;
  /** run through `/bin/sh -c` (refused when the service has an allow-list) */
  command?: string;
  /** run directly, no shell: argv[0] is the program */
  argv?: string[];
  pty?: boolean;
  cols?: number;
  rows?: number;
  /** per-command timeout; capped by the service's own limit */
  timeoutMs?: number;
  /**
   * Bulk mode (not with `pty`): stdout goes over a second TCP connection of its own, handed to the
   * child as its stdout fd, so its bytes never pass through the service. The service answers
   * `data-token`; the client opens the data connection with `auth` then `attach`.
   */
  stdout?: 'connection';
}
/** TCP: stdin bytes are the frame body. Browser: binary message with stream STDIN. `eof` closes stdin. */
export interface StdinRequest { cmd: 'stdin'; id: string; eof?: boolean }
export interface ResizeRequest { cmd: 'resize'; id: string; cols: number; rows: number }
/** Data connection only, right after its `auth`: hands this connection to the run that issued the token. */
export interface AttachRequest { cmd: 'attach'; token: string }
/** Kill the whole process group (default SIGTERM, then SIGKILL after a grace period). */
export interface CancelRequest { cmd: 'cancel'; id: string; signal?: 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGHUP' }

export type ExecRequest = AuthRequest | RunRequest | StdinRequest | ResizeRequest | CancelRequest | AttachRequest;
export const EXEC_REQUEST_COMMANDS = ['auth', 'run', 'stdin', 'resize', 'cancel', 'attach'] as const;

// ---- server → client ----
export interface ReadyEvent { cmd: 'ready'; allow: string[] | null; pty: boolean }
export interface StartedEvent {
  cmd: 'started';
  id: string;
  pid: number;
  /**
   * Stdin flow control (as SSH channel windows): the client may have this many stdin bytes sent
   * and not yet acknowledged by `stdin-ack`. A client that ignores it is not refused, but while the
   * command's stdin is that full the service stops reading the whole connection (cancel included).
   */
  stdinWindow?: number;
}
/**
 * A `stdout: 'connection'` run is accepted but not spawned: open a data connection and present this
 * one-time token (≥ 128 random bits) in `attach`. `started` follows once the child runs.
 */
export interface DataTokenEvent { cmd: 'data-token'; id: string; dataToken: string }
/** On a data connection, the answer to a valid `attach`: every byte after this frame is the command's raw stdout, until EOF. */
export interface AttachedEvent { cmd: 'attached'; id: string }
/** These stdin bytes of command `id` were handed to it: the client may send as many more. */
export interface StdinAckEvent { cmd: 'stdin-ack'; id: string; bytes: number }
/** TCP: output bytes are the frame body. Browser: binary message (encodeExecData). */
export interface OutputEvent { cmd: 'stdout' | 'stderr'; id: string }
export interface ExitEvent {
  cmd: 'exit';
  id: string;
  code: number | null;
  signal: string | null;
  /** why sockbridge ended it, when it did */
  reason?: 'timeout' | 'output-limit' | 'cancelled' | 'disconnected';
}
export interface ExecErrorEvent { cmd: 'error'; code: string; message: string; id?: string }

export type ExecEvent = ReadyEvent | StartedEvent | StdinAckEvent | OutputEvent | ExitEvent | ExecErrorEvent | DataTokenEvent | AttachedEvent;

// ---- binary messages on /ws/exec ----
// byte 0: stream (1 stdin, 2 stdout, 3 stderr); byte 1: id length L (1..64); L bytes UTF-8 id; payload.
export const EXEC_STREAM = { stdin: 1, stdout: 2, stderr: 3 } as const;
export type ExecStreamName = keyof typeof EXEC_STREAM;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeExecData(stream: ExecStreamName, id: string, payload: Uint8Array): Uint8Array {
  const idBytes = utf8.encode(id);
  if (idBytes.length < 1 || idBytes.length > 64) throw new RangeError('exec id must be 1..64 bytes');
  const out = new Uint8Array(2 + idBytes.length + payload.length);
  out[0] = EXEC_STREAM[stream];
  out[1] = idBytes.length;
  out.set(idBytes, 2);
  out.set(payload, 2 + idBytes.length);
  return out;
}

/** Returns null for anything malformed; the caller closes the socket with SB_ERR_MESSAGE_INVALID. */
export function decodeExecData(data: Uint8Array): { stream: ExecStreamName; id: string; payload: Uint8Array } | null {
  if (data.length < 3) return null;
  const stream = (Object.keys(EXEC_STREAM) as ExecStreamName[]).find((k) => EXEC_STREAM[k] === data[0]);
  const idLength = data[1]!;
  if (!stream || idLength < 1 || idLength > 64 || data.length < 2 + idLength) return null;
  let id: string;
  try {
    id = fromUtf8.decode(data.subarray(2, 2 + idLength));
  } catch {
    return null;
  }
  return { stream, id, payload: data.subarray(2 + idLength) };
}

// ---- validation of client requests (TCP headers and /ws/exec JSON alike) ----
// A header has already passed the frame codec (object, cmd string, no __proto__ keys); these
// checks give every field its type and bounds, so the service never sees a half-valid request.

export const EXEC_ID_MAX_BYTES = 64;
export const EXEC_ARGV_MAX = 4096;
export const EXEC_TERM_MAX = 10_000;
export const EXEC_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP'] as const;
/** Data tokens are base64url; 16..128 characters bounds what a peer can make us compare. */
const DATA_TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

const bad = (detail: string): never => {
  throw sbError('SB_ERR_BAD_REQUEST', detail);
};

function field(header: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(header, key) ? header[key] : undefined;
}

function id(header: Record<string, unknown>): string {
  const value = field(header, 'id');
  if (typeof value !== 'string') return bad('"id" must be a string');
  const bytes = utf8.encode(value).length;
  if (bytes < 1 || bytes > EXEC_ID_MAX_BYTES) bad(`"id" must be 1..${EXEC_ID_MAX_BYTES} bytes`);
  return value;
}

function noNul(value: string, what: string): string {
  if (value.includes('\0')) bad(`${what} may not contain NUL`);
  return value;
}

function termSize(header: Record<string, unknown>, key: 'cols' | 'rows', required: boolean): number | undefined {
  const value = field(header, key);
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > EXEC_TERM_MAX) {
    return bad(`"${key}" must be an integer 1..${EXEC_TERM_MAX}`);
  }
  return value;
}

/**
 * Checks a client request and returns it with only the known fields (unknown keys dropped).
 * Throws SB_ERR_BAD_REQUEST on anything malformed.
 */
export function parseExecRequest(header: { cmd: string; [key: string]: unknown }): ExecRequest {
  switch (header.cmd) {
    case 'auth': {
      const secret = field(header, 'secret');
      if (typeof secret !== 'string') return bad('"secret" must be a string');
      return { cmd: 'auth', secret };
    }
    case 'run': {
      const request: RunRequest = { cmd: 'run', id: id(header) };
      const command = field(header, 'command');
      const argv = field(header, 'argv');
      if ((command === undefined) === (argv === undefined)) bad('give exactly one of "command" (a shell string) or "argv" (an array)');
      if (command !== undefined) {
        if (typeof command !== 'string' || command.length === 0) bad('"command" must be a non-empty string');
        request.command = noNul(command as string, '"command"');
      } else {
        if (!Array.isArray(argv) || argv.length === 0 || argv.length > EXEC_ARGV_MAX) bad(`"argv" must be an array of 1..${EXEC_ARGV_MAX} strings`);
        const list = argv as unknown[];
        if (!list.every((a): a is string => typeof a === 'string')) bad('"argv" must contain only strings');
        if ((list[0] as string).length === 0) bad('"argv[0]" (the program) may not be empty');
        request.argv = (list as string[]).map((a) => noNul(a, '"argv"'));
      }
      const pty = field(header, 'pty');
      if (pty !== undefined && typeof pty !== 'boolean') bad('"pty" must be a boolean');
      if (pty) request.pty = true;
      const cols = termSize(header, 'cols', false);
      const rows = termSize(header, 'rows', false);
      if (cols !== undefined) request.cols = cols;
      if (rows !== undefined) request.rows = rows;
      const timeoutMs = field(header, 'timeoutMs');
      if (timeoutMs !== undefined) {
        if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1) bad('"timeoutMs" must be a positive integer');
        request.timeoutMs = timeoutMs as number;
      }
      const stdout = field(header, 'stdout');
      if (stdout !== undefined) {
        if (stdout !== 'connection') bad('"stdout" may only be "connection"');
        if (request.pty) bad('"stdout":"connection" cannot be combined with "pty"');
        request.stdout = 'connection';
      }
      return request;
    }
    case 'stdin': {
      const eof = field(header, 'eof');
      if (eof !== undefined && typeof eof !== 'boolean') bad('"eof" must be a boolean');
      return eof ? { cmd: 'stdin', id: id(header), eof: true } : { cmd: 'stdin', id: id(header) };
    }
    case 'resize':
      return { cmd: 'resize', id: id(header), cols: termSize(header, 'cols', true)!, rows: termSize(header, 'rows', true)! };
    case 'cancel': {
      const signal = field(header, 'signal');
      if (signal === undefined) return { cmd: 'cancel', id: id(header) };
      if (!(EXEC_SIGNALS as readonly unknown[]).includes(signal)) bad(`"signal" must be one of ${EXEC_SIGNALS.join(', ')}`);
      return { cmd: 'cancel', id: id(header), signal: signal as CancelRequest['signal'] };
    }
    case 'attach': {
      const token = field(header, 'token');
      if (typeof token !== 'string' || !DATA_TOKEN_PATTERN.test(token)) return bad('"token" must be a data token');
      return { cmd: 'attach', token };
    }
    default:
      return bad(`unknown cmd "${String(header.cmd).slice(0, 64)}"`);
  }
}
