// What a browser may send the gateway on /ws/chat, /ws/exec and /ws/time, parsed and validated.
// The browser is untrusted: every message is rebuilt from the fields the contract names (extra keys
// are dropped, so nothing a browser adds reaches a backend), and every failure is a SockbridgeError.
//
// Two kinds of failure, told apart by code:
//  - SB_ERR_WS_*: the message is not one this socket speaks (not JSON, a reserved or unknown cmd,
//    a prototype key, a malformed binary message). The route closes the socket with err.wsClose.
//  - anything else (SB_ERR_MESSAGE_INVALID, SB_ERR_CHAT_ROOM_INVALID, …): a well-formed request with
//    a bad field. The route answers {cmd:'error', code, message, ref?} and keeps the socket open,
//    as the backends themselves do for refusals.
// Pure: no I/O, imported by the gateway and the fuzz tests.

import { sbError, type SockbridgeError } from './errors.js';
import {
  CHAT_LIMITS,
  checkRef,
  type DirectRequest,
  type JoinRequest,
  type LeaveRequest,
  type PingRequest,
  type RoomsRequest,
  type SayRequest,
  type WhoRequest,
  validateNick,
  validateRoom,
} from './chat-messages.js';
import {
  decodeExecData,
  EXEC_SIGNALS,
  EXEC_TERM_MAX,
  type CancelRequest,
  type ResizeRequest,
  type RunRequest,
  type StdinRequest,
} from './exec-messages.js';
import type { TimePing } from './api.js';
import { parseJsonObject, type JsonObjectCodes } from './frame-codec.js';

/** A chat request as a browser may send it: everything but `hello`, which the gateway sends. */
export type BrowserChatRequest =
  | JoinRequest | LeaveRequest | SayRequest | DirectRequest | WhoRequest | RoomsRequest | PingRequest;
export const BROWSER_CHAT_COMMANDS = ['join', 'leave', 'say', 'dm', 'who', 'rooms', 'ping'] as const;

/** An exec control request as a browser may send it: everything but `auth`, which the gateway sends. */
export type BrowserExecControl = RunRequest | StdinRequest | ResizeRequest | CancelRequest;
export const BROWSER_EXEC_COMMANDS = ['run', 'stdin', 'resize', 'cancel'] as const;
export type BrowserExecMessage =
  | { kind: 'control'; request: BrowserExecControl }
  | { kind: 'stdin'; id: string; payload: Uint8Array };

export const BROWSER_TIME_COMMANDS = ['ping'] as const;

/** Commands only the gateway may send on a browser's behalf. */
const RESERVED_COMMANDS = new Set(['hello', 'auth']);
// A prototype key (__proto__, constructor, prototype) is refused as in frame headers, with a WS code.
const MESSAGE_CODES: JsonObjectCodes = { json: 'SB_ERR_WS_NOT_JSON', forbiddenKey: 'SB_ERR_WS_FORBIDDEN_KEY', notObject: 'SB_ERR_WS_NOT_JSON' };

export const BROWSER_LIMITS = {
  /** client ids: exec command ids (also bounded to 64 UTF-8 bytes by encodeExecData) and chat refs */
  idMaxLength: 64,
  argvMaxItems: 1024,
  argMaxBytes: 64 * 1024,
  /** terminal size: the exec service's own bound (node-pty and the kernel take u16) */
  termMaxCells: EXEC_TERM_MAX,
  /** exec timeouts a browser may ask for; the service caps them again */
  timeoutMaxMs: 7 * 24 * 3600_000,
} as const;

/** True when the error must close the socket (see the header comment). */
export function endsSocket(err: SockbridgeError): boolean {
  return err.code.startsWith('SB_ERR_WS_') || err.code === 'SB_ERR_MESSAGE_TOO_LARGE';
}

type Fields = Record<string, unknown>;
const utf8Length = (s: string): number => new TextEncoder().encode(s).length;
const excerpt = (s: string): string => (s.length > 64 ? `${s.slice(0, 64)}…` : s);

/** Parses a text message into an object with a string `cmd`; SB_ERR_WS_* on anything else. */
export function parseJsonMessage(text: string): Fields & { cmd: string } {
  if (text.length === 0) throw sbError('SB_ERR_WS_NOT_JSON', 'the message is empty');
  const value = parseJsonObject(text, MESSAGE_CODES);
  const cmd = value['cmd'];
  if (typeof cmd !== 'string') throw sbError('SB_ERR_WS_NOT_JSON', 'no "cmd" string');
  return value as Fields & { cmd: string };
}

function checkCommand(cmd: string, accepted: readonly string[]): void {
  if (RESERVED_COMMANDS.has(cmd)) throw sbError('SB_ERR_WS_CMD_RESERVED', cmd);
  if (!accepted.includes(cmd)) throw sbError('SB_ERR_WS_CMD_UNKNOWN', excerpt(cmd), accepted.join(', '));
}

// ---- field readers: a bad field is SB_ERR_MESSAGE_INVALID (or a service's own code) ----

function str(m: Fields, key: string, maxBytes: number, minLength = 1): string {
  const v = m[key];
  if (typeof v !== 'string') throw sbError('SB_ERR_MESSAGE_INVALID', `"${key}" must be a string`);
  if (v.length < minLength) throw sbError('SB_ERR_MESSAGE_INVALID', `"${key}" may not be empty`);
  if (v.length > maxBytes || utf8Length(v) > maxBytes) {
    throw sbError('SB_ERR_MESSAGE_INVALID', `"${key}" is longer than ${maxBytes} bytes`);
  }
  return v;
}

function optional<T>(m: Fields, key: string, read: (m: Fields, key: string) => T): T | undefined {
  return m[key] === undefined ? undefined : read(m, key);
}

function int(m: Fields, key: string, min: number, max: number): number {
  const v = m[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw sbError('SB_ERR_MESSAGE_INVALID', `"${key}" must be an integer in ${min}..${max}`);
  }
  return v;
}

function bool(m: Fields, key: string): boolean {
  const v = m[key];
  if (typeof v !== 'boolean') throw sbError('SB_ERR_MESSAGE_INVALID', `"${key}" must be true or false`);
  return v;
}

const id = (m: Fields, key = 'id'): string => str(m, key, BROWSER_LIMITS.idMaxLength);

// Room and nick: the chat service's own checks (validateRoom, validateNick), so the rule and its
// message live in one place; only a non-string is refused here.
function room(m: Fields): string {
  const v = m['room'];
  if (typeof v !== 'string') throw sbError('SB_ERR_CHAT_ROOM_INVALID', JSON.stringify(v ?? null), 'must be a string');
  return validateRoom(v);
}

function nick(m: Fields, key: string): string {
  const v = m[key];
  if (typeof v !== 'string') throw sbError('SB_ERR_CHAT_NICK_INVALID', JSON.stringify(v ?? null), 'must be a string');
  return validateNick(v);
}

const text = (m: Fields): string => str(m, 'text', CHAT_LIMITS.textMaxBytes);
const withRef = <T extends object>(m: Fields, request: T): T & { ref?: string } => {
  // The chat service's own rule: a ref it would refuse as malformed would end its connection, and so the browser's.
  const ref = optional(m, 'ref', (x, k) => checkRef(id(x, k)));
  return ref === undefined ? request : { ...request, ref };
};

// ---- /ws/chat ----

export function parseChatClientMessage(data: string): BrowserChatRequest {
  return validateChatRequest(parseJsonMessage(data));
}

/** The second half of parseChatClientMessage, for a caller that wants the parsed object (for its ref). */
export function validateChatRequest(m: Fields & { cmd: string }): BrowserChatRequest {
  checkCommand(m.cmd, BROWSER_CHAT_COMMANDS);
  switch (m.cmd as BrowserChatRequest['cmd']) {
    case 'join':
      return { cmd: 'join', room: room(m) };
    case 'leave':
      return { cmd: 'leave', room: room(m) };
    case 'who':
      return { cmd: 'who', room: room(m) };
    case 'say':
      return withRef(m, { cmd: 'say' as const, room: room(m), text: text(m) });
    case 'dm':
      return withRef(m, { cmd: 'dm' as const, to: nick(m, 'to'), text: text(m) });
    case 'rooms':
      return { cmd: 'rooms' };
    case 'ping':
      return { cmd: 'ping' };
  }
}

/** The client's `ref` of a message, when it is a usable one: a refusal carries it back (the ack). */
export function refOf(m: Fields): string | undefined {
  const ref = m['ref'];
  return typeof ref === 'string' && ref.length >= 1 && ref.length <= BROWSER_LIMITS.idMaxLength ? ref : undefined;
}

// ---- /ws/exec ----

const SIGNALS: ReadonlySet<string> = new Set(EXEC_SIGNALS);

function parseRun(m: Fields): RunRequest {
  const request: RunRequest = { cmd: 'run', id: id(m) };
  const hasCommand = m['command'] !== undefined;
  const hasArgv = m['argv'] !== undefined;
  if (hasCommand === hasArgv) throw sbError('SB_ERR_MESSAGE_INVALID', 'give exactly one of "command" and "argv"');
  if (hasCommand) request.command = str(m, 'command', BROWSER_LIMITS.argMaxBytes);
  if (hasArgv) {
    const argv = m['argv'];
    if (!Array.isArray(argv) || argv.length < 1 || argv.length > BROWSER_LIMITS.argvMaxItems) {
      throw sbError('SB_ERR_MESSAGE_INVALID', `"argv" must be an array of 1..${BROWSER_LIMITS.argvMaxItems} strings`);
    }
    request.argv = argv.map((_, i) => str(argv as unknown as Fields, String(i), BROWSER_LIMITS.argMaxBytes, i === 0 ? 1 : 0));
  }
  const pty = optional(m, 'pty', bool);
  if (pty !== undefined) request.pty = pty;
  const cols = optional(m, 'cols', (x, k) => int(x, k, 1, BROWSER_LIMITS.termMaxCells));
  if (cols !== undefined) request.cols = cols;
  const rows = optional(m, 'rows', (x, k) => int(x, k, 1, BROWSER_LIMITS.termMaxCells));
  if (rows !== undefined) request.rows = rows;
  const timeoutMs = optional(m, 'timeoutMs', (x, k) => int(x, k, 1, BROWSER_LIMITS.timeoutMaxMs));
  if (timeoutMs !== undefined) request.timeoutMs = timeoutMs;
  return request;
}

function parseExecControl(m: Fields & { cmd: string }): BrowserExecControl {
  checkCommand(m.cmd, BROWSER_EXEC_COMMANDS);
  switch (m.cmd as BrowserExecControl['cmd']) {
    case 'run':
      return parseRun(m);
    case 'stdin': {
      // stdin bytes travel as binary messages; the JSON form only closes stdin
      const eof = optional(m, 'eof', bool);
      return eof === undefined ? { cmd: 'stdin', id: id(m) } : { cmd: 'stdin', id: id(m), eof };
    }
    case 'resize':
      return {
        cmd: 'resize',
        id: id(m),
        cols: int(m, 'cols', 1, BROWSER_LIMITS.termMaxCells),
        rows: int(m, 'rows', 1, BROWSER_LIMITS.termMaxCells),
      };
    case 'cancel': {
      const signal = m['signal'];
      if (signal === undefined) return { cmd: 'cancel', id: id(m) };
      if (typeof signal !== 'string' || !SIGNALS.has(signal)) {
        throw sbError('SB_ERR_MESSAGE_INVALID', `"signal" must be one of ${[...SIGNALS].join(', ')}`);
      }
      return { cmd: 'cancel', id: id(m), signal: signal as NonNullable<CancelRequest['signal']> };
    }
  }
}

/** Text messages are JSON control requests; binary messages are stdin bytes (encodeExecData). */
export function parseExecClientMessage(data: string | Uint8Array): BrowserExecMessage {
  if (typeof data === 'string') return { kind: 'control', request: parseExecControl(parseJsonMessage(data)) };
  const decoded = decodeExecData(data);
  if (!decoded) throw sbError('SB_ERR_WS_BINARY_INVALID', 'expected stream byte, id length 1..64, UTF-8 id, payload');
  if (decoded.stream !== 'stdin') throw sbError('SB_ERR_WS_BINARY_INVALID', `a browser may only send stdin, not ${decoded.stream}`);
  return { kind: 'stdin', id: decoded.id, payload: decoded.payload };
}

// ---- /ws/time ----

export function parseTimeClientMessage(data: string): TimePing {
  const m = parseJsonMessage(data);
  checkCommand(m.cmd, BROWSER_TIME_COMMANDS);
  const t0 = m['t0'];
  if (typeof t0 !== 'number' || !Number.isFinite(t0)) throw sbError('SB_ERR_MESSAGE_INVALID', '"t0" must be a finite number (ms)');
  return { cmd: 'ping', t0 };
}
