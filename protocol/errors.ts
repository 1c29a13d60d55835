// The one registry of sockbridge's errors. Every error a peer, a user or a test can observe
// is created here, with a stable code (asserted by tests, documented in docs/errors.md),
// the HTTP status the gateway answers with, and the WebSocket close code (RFC 6455 §7.4.1)
// a browser socket is closed with when the error ends that socket.
//
// Codes are never renamed or reused: a retired code stays here, marked retired.
// Pure module (no I/O): imported by backends, gateway and the browser alike.

export interface ErrorSpec {
  /** printf-like template: each %s is replaced by the next argument */
  readonly message: string;
  /** HTTP status the gateway answers with */
  readonly status: number;
  /** WebSocket close code when the error ends a browser socket */
  readonly wsClose: number;
}

// RFC 6455 §7.4.1 close codes used below.
export const WS_CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const;

const spec = (message: string, status: number, wsClose: number): ErrorSpec => ({ message, status, wsClose });
const P = WS_CLOSE;

export const ERROR_SPECS = {
  // -- frame codec (protocol/frame-codec.ts) --
  SB_ERR_FRAME_HEADER_LENGTH: spec('frame header length %s is outside 1..%s bytes', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_HEADER_UTF8: spec('frame header is not valid UTF-8', 400, P.INVALID_PAYLOAD),
  SB_ERR_FRAME_HEADER_JSON: spec('frame header is not valid JSON: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_HEADER_NOT_OBJECT: spec('frame header must be a JSON object, got %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_HEADER_FORBIDDEN_KEY: spec('frame header may not contain the key "%s"', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_CMD_MISSING: spec('frame header has no "cmd" string', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_CMD_UNKNOWN: spec('unknown cmd "%s"; this service accepts: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_BODY_SIZE: spec('frame body size %s is not a non-negative integer', 400, P.PROTOCOL_ERROR),
  SB_ERR_FRAME_BODY_TOO_LARGE: spec('frame body of %s bytes exceeds the limit of %s bytes', 413, P.MESSAGE_TOO_BIG),
  SB_ERR_FRAME_TRUNCATED: spec('connection closed in the middle of a frame (%s)', 400, P.PROTOCOL_ERROR),

  // -- generic request validation --
  SB_ERR_BAD_REQUEST: spec('bad request: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_MESSAGE_INVALID: spec('invalid message: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_MESSAGE_TOO_LARGE: spec('message of %s bytes exceeds the limit of %s bytes', 413, P.MESSAGE_TOO_BIG),
  SB_ERR_RATE_LIMITED: spec('too many requests: %s; slow down and retry', 429, P.TRY_AGAIN_LATER),
  SB_ERR_TIMEOUT: spec('timed out after %s ms: %s', 504, P.INTERNAL_ERROR),
  SB_ERR_INTERNAL: spec('internal error: %s', 500, P.INTERNAL_ERROR),

  // -- configuration and CLI --
  SB_ERR_CONFIG_INVALID: spec('invalid configuration: %s', 500, P.INTERNAL_ERROR),
  SB_ERR_CONFIG_FILE: spec('cannot read config file %s: %s', 500, P.INTERNAL_ERROR),
  SB_ERR_SECRET_FILE: spec('cannot read secret file %s: %s', 500, P.INTERNAL_ERROR),
  SB_ERR_USAGE: spec('%s', 400, P.POLICY_VIOLATION),
  SB_ERR_CONNECT: spec('cannot connect to %s: %s', 502, P.INTERNAL_ERROR),

  // -- files service --
  SB_ERR_FILE_NAME_INVALID: spec('invalid file name %s: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_FILE_NOT_FOUND: spec('no such file: %s', 404, P.POLICY_VIOLATION),
  SB_ERR_FILE_TOO_LARGE: spec('file of %s bytes exceeds the limit of %s bytes', 413, P.MESSAGE_TOO_BIG),
  SB_ERR_FILE_CHECKSUM: spec('checksum mismatch for %s: declared %s, received %s', 422, P.POLICY_VIOLATION),
  SB_ERR_FILE_OFFSET: spec('cannot resume %s at offset %s: %s', 416, P.POLICY_VIOLATION),
  SB_ERR_FILE_NO_SPACE: spec('no space left to store %s', 507, P.INTERNAL_ERROR),
  SB_ERR_FILE_BUSY: spec('%s is being uploaded by another connection', 409, P.TRY_AGAIN_LATER),
  SB_ERR_FILE_QUOTA: spec('storing %s would exceed the quota of %s bytes', 507, P.POLICY_VIOLATION),
  SB_ERR_FILE_NOT_OWNER: spec('%s may be replaced or deleted only by %s', 403, P.POLICY_VIOLATION),

  // -- chat service --
  SB_ERR_CHAT_NICK_INVALID: spec('invalid nickname %s: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_CHAT_NICK_TAKEN: spec('nickname %s is already in use', 409, P.POLICY_VIOLATION),
  SB_ERR_CHAT_NICK_RESERVED: spec('nickname %s belongs to an account: only that account, logged in through the gateway, may use it', 409, P.POLICY_VIOLATION),
  SB_ERR_CHAT_WRONG_PORT: spec('this is the chat line-mode port, for plain text lines (nc, telnet); frame clients (sockbridge chat) use the chat port', 400, P.PROTOCOL_ERROR),
  SB_ERR_CHAT_NOT_JOINED: spec('send "hello" with a nickname first', 400, P.POLICY_VIOLATION),
  SB_ERR_CHAT_ROOM_INVALID: spec('invalid room name %s: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_CHAT_NOT_IN_ROOM: spec('not in room %s; join it first', 400, P.POLICY_VIOLATION),
  SB_ERR_CHAT_NO_SUCH_USER: spec('no user named %s is online', 404, P.POLICY_VIOLATION),
  SB_ERR_CHAT_TOO_MANY_CONNECTIONS: spec('%s already has %s open connections', 429, P.TRY_AGAIN_LATER),
  SB_ERR_CHAT_GATEWAY_TOKEN: spec('wrong chat gateway token; check --gateway-token-file on both sides', 401, P.POLICY_VIOLATION),
  SB_ERR_CHAT_TOO_MANY_ROOMS: spec('a connection may be in at most %s rooms', 429, P.POLICY_VIOLATION),
  SB_ERR_CHAT_REF_REUSED: spec('ref %s was already used for another message; give each message its own ref', 409, P.POLICY_VIOLATION),

  // -- exec service --
  SB_ERR_EXEC_AUTH_REQUIRED: spec('the first frame must be "auth" with the shared secret', 401, P.POLICY_VIOLATION),
  SB_ERR_EXEC_AUTH_FAILED: spec('wrong exec secret', 401, P.POLICY_VIOLATION),
  SB_ERR_EXEC_NOT_ALLOWED: spec('program %s is not allowed; allowed: %s', 403, P.POLICY_VIOLATION),
  SB_ERR_EXEC_SPAWN: spec('cannot start %s: %s', 500, P.INTERNAL_ERROR),
  SB_ERR_EXEC_NO_SUCH_JOB: spec('no running command with id %s', 404, P.POLICY_VIOLATION),
  SB_ERR_EXEC_DUPLICATE_ID: spec('a command with id %s is already running', 409, P.POLICY_VIOLATION),
  SB_ERR_EXEC_TOO_MANY: spec('at most %s commands may run at once on one connection', 429, P.TRY_AGAIN_LATER),
  SB_ERR_EXEC_STDIN_FULL: spec('stdin of command %s is full (%s bytes wait): this message was dropped; send more after a stdin-ack', 429, P.TRY_AGAIN_LATER),
  SB_ERR_EXEC_DATA_TOKEN: spec('unknown, used or expired data-connection token', 403, P.POLICY_VIOLATION),
  SB_ERR_EXEC_DATA_TIMEOUT: spec('no data connection attached for command %s within %s ms', 408, P.POLICY_VIOLATION),

  // -- time service --
  SB_ERR_NTP_PACKET: spec('malformed NTP packet: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_NTP_REPLY: spec('unusable %s reply from the time server: %s', 502, P.INTERNAL_ERROR),

  // -- gateway: accounts, sessions, origins --
  SB_ERR_AUTH_REQUIRED: spec('log in first', 401, P.POLICY_VIOLATION),
  SB_ERR_AUTH_FAILED: spec('wrong username or password', 401, P.POLICY_VIOLATION),
  SB_ERR_FORBIDDEN: spec('%s', 403, P.POLICY_VIOLATION),
  SB_ERR_ORIGIN_REJECTED: spec('cross-origin request refused: %s', 403, P.POLICY_VIOLATION),
  SB_ERR_USER_EXISTS: spec('user %s already exists', 409, P.POLICY_VIOLATION),
  SB_ERR_USER_NOT_FOUND: spec('no user named %s', 404, P.POLICY_VIOLATION),
  SB_ERR_USER_INVALID: spec('invalid user: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_ACCOUNTS_MISSING: spec('no accounts database at %s; check --data (sockbridge start or sockbridge user add creates it)', 404, P.POLICY_VIOLATION),
  SB_ERR_BACKEND_DOWN: spec('the %s service is unavailable: %s', 503, P.INTERNAL_ERROR),
  SB_ERR_RAW_TARGET_UNKNOWN: spec('no relay target named %s is configured', 404, P.POLICY_VIOLATION),
  SB_ERR_ROUTE_NOT_FOUND: spec('no route %s %s', 404, P.POLICY_VIOLATION),
  SB_ERR_RANGE_NOT_SATISFIABLE: spec('range %s cannot be served from a file of %s bytes', 416, P.POLICY_VIOLATION),
  SB_ERR_UPLOAD_TOO_MANY_PARTS: spec('an upload may carry at most %s parts', 413, P.POLICY_VIOLATION),
  SB_ERR_UPLOAD_INVALID: spec('invalid upload: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_RAW_SUBPROTOCOL: spec('the relay speaks the "binary" subprotocol only; offered: %s', 400, P.PROTOCOL_ERROR),
  SB_ERR_TOO_MANY_SOCKETS: spec('account %s already has %s open WebSockets, the most allowed (limits.maxSocketsPerUser); close other tabs or windows of this site', 429, P.TRY_AGAIN_LATER),

  // -- gateway: browser WebSocket messages (server/routes/ws-*.ts); every SB_ERR_WS_* ends its socket --
  SB_ERR_WS_BINARY_INVALID: spec('binary message is not an exec stdin message: %s', 400, P.UNSUPPORTED_DATA),
  SB_ERR_WS_BINARY_REFUSED: spec('this socket accepts JSON text messages only', 400, P.UNSUPPORTED_DATA),
  SB_ERR_WS_CMD_RESERVED: spec('"%s" is sent by the gateway itself, never by a browser', 403, P.POLICY_VIOLATION),
  SB_ERR_WS_CMD_UNKNOWN: spec('unknown cmd "%s"; this socket accepts: %s', 400, P.POLICY_VIOLATION),
  SB_ERR_WS_FORBIDDEN_KEY: spec('message may not contain the key "%s"', 400, P.POLICY_VIOLATION),
  SB_ERR_WS_NOT_JSON: spec('message is not a JSON object: %s', 400, P.INVALID_PAYLOAD),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_SPECS;

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => (i < args.length ? String(args[i++]) : '%s'));
}

export class SockbridgeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly wsClose: number;

  constructor(code: ErrorCode, ...args: unknown[]) {
    const s: ErrorSpec = ERROR_SPECS[code];
    super(format(s.message, args));
    this.name = 'SockbridgeError';
    this.code = code;
    this.status = s.status;
    this.wsClose = s.wsClose;
  }

  /** The shape sent to peers: never a stack, never internals. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The common errno codes of a failed file read in words, for messages such as SB_ERR_CONFIG_FILE's. */
const FILE_ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
};

/** Why a file could not be read, in words: "no such file", "permission denied", else the errno code. */
export function fileErrorReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  return (code !== undefined ? FILE_ERRNO_WORDS[code] ?? code : undefined) ?? String(e?.message ?? err);
}

/** `sbError('SB_ERR_FILE_NOT_FOUND', name)`: the one way errors are made. */
export function sbError(code: ErrorCode, ...args: unknown[]): SockbridgeError {
  return new SockbridgeError(code, ...args);
}

export function isSockbridgeError(err: unknown, code?: ErrorCode): err is SockbridgeError {
  return err instanceof SockbridgeError && (code === undefined || err.code === code);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_SPECS, value);
}

/**
 * The error a service's error frame ({cmd:'error', code, message}) stands for, on the client side:
 * its own code and message; a code this build does not know is SB_ERR_INTERNAL (`fallback`).
 */
export function errorFromFrame(header: Readonly<Record<string, unknown>>, fallback: string): SockbridgeError {
  const code = header['code'];
  const message = header['message'];
  const err = sbError(isErrorCode(code) ? code : 'SB_ERR_INTERNAL', fallback);
  if (typeof message === 'string') err.message = message;
  return err;
}
