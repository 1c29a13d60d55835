// The chat contract. The same messages travel as frame headers on the chat service's TCP port
// (no bodies) and as JSON text messages on the gateway's /ws/chat, so one union, keyed on `cmd`,
// is imported by the chat service, the gateway, the terminal client and the browser.

import { sbError } from './errors.js';

/** A message as stored and delivered: id, ts and account are set by the server, never by a client. */
export interface ChatMessage {
  id: number;
  room: string;
  from: string;
  text: string;
  /** milliseconds since the Unix epoch, server clock */
  ts: number;
  /**
   * true: sent by an account, through the gateway (its token vouches for the name). false: sent by a
   * direct client of the chat ports, which may use any free nickname, so `from` proves nothing.
   * Absent: not known — stored before the service marked accounts (or sent by such a service).
   * Nothing vouches for such a sender (parseChatEvent makes it false), but it is not known to be a
   * guest either: the web shows neither mark for it.
   */
  account?: boolean;
}

export interface DirectMessage {
  id: number;
  from: string;
  to: string;
  text: string;
  ts: number;
  /** as ChatMessage.account */
  account?: boolean;
}

export const DEFAULT_ROOM = 'lobby';
export const HISTORY_ON_JOIN = 100;
/** Most direct messages a `directs` event holds (the service's directHistoryOnHello is at most this). */
export const DIRECT_HISTORY_MAX = 100;

// ---- client → server ----
/**
 * First frame of a connection. `gatewayToken` is the chat service's shared secret for the gateway:
 * with it, several connections (browser tabs) may share one nickname, which is the account name.
 * The gateway always sets nick itself; a browser never sends hello.
 */
export interface HelloRequest { cmd: 'hello'; nick: string; room?: string; gatewayToken?: string }
export interface JoinRequest { cmd: 'join'; room: string }
export interface LeaveRequest { cmd: 'leave'; room: string }
/**
 * `ref` is the client's own id for the message: the server echoes it on the sender's copy (the ack).
 * A ref of at least CHAT_LIMITS.idempotentRefMinLength characters is also its idempotency key: a
 * retry with the same ref (same sender, target and text) within the service's window is answered
 * with the stored copy instead of being posted again. A client keeps the ref of a message across
 * every retry and makes it unique across its tabs and reloads (random bits). A shorter ref (a bot's
 * per-connection counter "1", "2", …) only correlates the ack, as before idempotent send.
 */
export interface SayRequest { cmd: 'say'; room: string; text: string; ref?: string }
export interface DirectRequest { cmd: 'dm'; to: string; text: string; ref?: string }
export interface WhoRequest { cmd: 'who'; room: string }
export interface RoomsRequest { cmd: 'rooms' }
export interface PingRequest { cmd: 'ping' }

export type ChatRequest =
  | HelloRequest | JoinRequest | LeaveRequest | SayRequest | DirectRequest | WhoRequest | RoomsRequest | PingRequest;

// ---- server → client ----
export interface WelcomeEvent { cmd: 'welcome'; nick: string; rooms: string[] }
/**
 * `guests`: those of `members` who are guests (no account: nothing vouches for the name, see
 * ChatMessage.account). A service older than the field sends none: parseChatEvent then makes every
 * member a guest (nobody is vouched for).
 */
export interface JoinedEvent { cmd: 'joined'; room: string; members: string[]; guests: string[]; history: ChatMessage[] }
export interface LeftEvent { cmd: 'left'; room: string }
export interface MessageEvent extends ChatMessage { cmd: 'message'; ref?: string }
export interface DirectEvent extends DirectMessage { cmd: 'direct'; ref?: string }
/**
 * Sent once after hello (behind the first `joined`): the connection's own recent direct messages,
 * to or by its nick, oldest first. Empty when there are none, or when the service does not vouch
 * for the nick (see docs/protocol.md, "Direct-message history").
 */
export interface DirectsEvent { cmd: 'directs'; history: DirectMessage[] }
/** `account` as ChatMessage.account; absent (an older service) is taken as false by parseChatEvent. */
export interface PresenceEvent { cmd: 'presence'; room: string; nick: string; event: 'join' | 'leave'; account: boolean }
/** `guests` as on JoinedEvent. */
export interface MembersEvent { cmd: 'members'; room: string; members: string[]; guests: string[] }
/** `rooms` is capped (the fullest 100); `total` is how many rooms have someone in them, listed or not. */
export interface RoomListEvent { cmd: 'rooms'; rooms: { room: string; members: number }[]; total: number }
export interface PongEvent { cmd: 'pong' }
/**
 * A refusal. Protocol violations also close the connection; limits (rate, size) do not.
 * `ref` names the refused request; `retryAfterMs` (on SB_ERR_RATE_LIMITED) says when a retry will pass.
 */
export interface ChatErrorEvent { cmd: 'error'; code: string; message: string; ref?: string; retryAfterMs?: number }

export type ChatEvent =
  | WelcomeEvent | JoinedEvent | LeftEvent | MessageEvent | DirectEvent | DirectsEvent | PresenceEvent | MembersEvent
  | RoomListEvent | PongEvent | ChatErrorEvent;

export const CHAT_REQUEST_COMMANDS = ['hello', 'join', 'leave', 'say', 'dm', 'who', 'rooms', 'ping'] as const;

/** Limits shared by the service and the clients that want to check before sending. */
export const CHAT_LIMITS = {
  nickMaxLength: 32,
  roomMaxLength: 64,
  textMaxBytes: 4096,
  refMaxLength: 64,
  /** refs this long or longer are idempotency keys (see SayRequest); shorter ones only name the ack */
  idempotentRefMinLength: 16,
  /**
   * Largest event the service sends (a `joined` or `directs` with 100 messages of 4096 bytes, JSON-escaped):
   * a client's frame decoder must accept headers this large.
   */
  eventMaxBytes: 4 * 1024 * 1024,
} as const;

export const NICK_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
/** A request ref: 1-64 printable ASCII characters, no spaces (a UUID, base64url or hex id fits). */
export const REF_PATTERN = new RegExp(`^[\\x21-\\x7e]{1,${CHAT_LIMITS.refMaxLength}}$`);
export const ROOM_PATTERN = /^[a-z0-9_][a-z0-9_.-]{0,63}$/;

// ---- validation (pure; used by the chat service and by the gateway on /ws/chat) ----

const str = (value: unknown, field: string, cmd: string): string => {
  if (typeof value !== 'string') throw sbError('SB_ERR_MESSAGE_INVALID', `"${cmd}" needs a string "${field}"`);
  return value;
};
const optionalStr = (value: unknown, field: string, cmd: string): string | undefined =>
  value === undefined ? undefined : str(value, field, cmd);

function ref(value: unknown, cmd: string): string | undefined {
  const r = optionalStr(value, 'ref', cmd);
  return r === undefined ? undefined : checkRef(r);
}

/** Whether `ref` is long enough to be an idempotency key (see SayRequest), not only a correlation id. */
export const isIdempotencyKey = (ref: string | undefined): ref is string =>
  ref !== undefined && ref.length >= CHAT_LIMITS.idempotentRefMinLength;

/** A message ref as the chat service accepts it (also checked by the gateway, so the refusal keeps the socket). */
export function checkRef(r: string): string {
  if (!REF_PATTERN.test(r)) {
    throw sbError('SB_ERR_MESSAGE_INVALID', `"ref" must be 1-${CHAT_LIMITS.refMaxLength} printable ASCII characters without spaces`);
  }
  return r;
}

/**
 * Checks the shape of a decoded request (types only) and returns a clean copy holding only the
 * known fields. Throws SB_ERR_MESSAGE_INVALID (a broken client: the connection is closed).
 * Names, rooms and text sizes are policy, checked by the service with their own codes
 * (see validateNick, validateRoom, textBytes), so those refusals leave the connection open.
 */
export function parseChatRequest(value: unknown): ChatRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw sbError('SB_ERR_MESSAGE_INVALID', 'a chat request must be a JSON object');
  }
  const v = value as Record<string, unknown>;
  const cmd = v['cmd'];
  switch (cmd) {
    case 'hello': {
      const room = optionalStr(v['room'], 'room', cmd);
      const gatewayToken = optionalStr(v['gatewayToken'], 'gatewayToken', cmd);
      return { cmd, nick: str(v['nick'], 'nick', cmd), ...(room !== undefined && { room }), ...(gatewayToken !== undefined && { gatewayToken }) };
    }
    case 'join':
    case 'leave':
    case 'who':
      return { cmd, room: str(v['room'], 'room', cmd) };
    case 'say': {
      const r = ref(v['ref'], cmd);
      return { cmd, room: str(v['room'], 'room', cmd), text: str(v['text'], 'text', cmd), ...(r !== undefined && { ref: r }) };
    }
    case 'dm': {
      const r = ref(v['ref'], cmd);
      return { cmd, to: str(v['to'], 'to', cmd), text: str(v['text'], 'text', cmd), ...(r !== undefined && { ref: r }) };
    }
    case 'rooms':
    case 'ping':
      return { cmd };
    default:
      throw sbError('SB_ERR_MESSAGE_INVALID', `unknown chat cmd ${JSON.stringify(String(cmd)).slice(0, 40)}`);
  }
}

/** Throws SB_ERR_CHAT_NICK_INVALID unless `nick` matches NICK_PATTERN. */
export function validateNick(nick: string): string {
  if (!NICK_PATTERN.test(nick)) {
    throw sbError('SB_ERR_CHAT_NICK_INVALID', JSON.stringify(nick.slice(0, 40)), `1-${CHAT_LIMITS.nickMaxLength} of A-Z a-z 0-9 _ . - (not starting with . or -)`);
  }
  return nick;
}

/** Throws SB_ERR_CHAT_ROOM_INVALID unless `room` matches ROOM_PATTERN. */
export function validateRoom(room: string): string {
  if (!ROOM_PATTERN.test(room)) {
    throw sbError('SB_ERR_CHAT_ROOM_INVALID', JSON.stringify(room.slice(0, 70)), `1-${CHAT_LIMITS.roomMaxLength} of a-z 0-9 _ . - (not starting with . or -)`);
  }
  return room;
}

// ---- events, checked on the client side ----
// A client prints these fields on a terminal and keys its state on them, so an event of the wrong
// shape (a broken or hostile service) is SB_ERR_MESSAGE_INVALID and ends the connection. Nicks and
// rooms must match the patterns the service itself enforces; text is any string (clients strip it
// for the terminal, see backends/chat/terminal-text.ts).

type Fields = Record<string, unknown>;
const eventError = (cmd: string, field: string, what: string) =>
  sbError('SB_ERR_MESSAGE_INVALID', `chat service sent a "${cmd}" event whose "${field}" is not ${what}`);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);
const isNick = (value: unknown) => typeof value === 'string' && NICK_PATTERN.test(value);
const isRoom = (value: unknown) => typeof value === 'string' && ROOM_PATTERN.test(value);

function need(ok: boolean, cmd: string, field: string, what: string): void {
  if (!ok) throw eventError(cmd, field, what);
}
function needNick(v: Fields, field: string, cmd: string): void {
  need(isNick(v[field]), cmd, field, 'a nickname');
}
function needRoom(v: Fields, field: string, cmd: string): void {
  need(isRoom(v[field]), cmd, field, 'a room name');
}
function needList(v: Fields, field: string, cmd: string, what: string, check: (item: unknown) => boolean): void {
  need(Array.isArray(v[field]) && (v[field] as unknown[]).every(check), cmd, field, `a list of ${what}`);
}
function needRef(v: Fields, cmd: string): void {
  const r = v['ref'];
  need(r === undefined || (typeof r === 'string' && REF_PATTERN.test(r)), cmd, 'ref', 'a request ref');
}
const isMessageBody = (m: Fields) =>
  isCount(m['id']) && isNick(m['from']) && typeof m['text'] === 'string' && isCount(m['ts']) && (m['account'] === undefined || typeof m['account'] === 'boolean');
const isChatMessage = (m: unknown) => isObject(m) && isMessageBody(m) && isRoom(m['room']);
const isDirectMessage = (m: unknown) => isObject(m) && isMessageBody(m) && isNick(m['to']);

/**
 * A message without the `account` flag (stored before it existed, or from a service older than it)
 * vouches for nobody: its absent flag is set to false, so a client never takes such a sender for an
 * account.
 */
function defaultAccount(m: unknown): void {
  const fields = m as Fields;
  fields['account'] ??= false;
}

/**
 * `guests` must name members only; absent (a service older than the field), every member is taken
 * for a guest, as an absent `account` is taken for false.
 */
function needGuests(v: Fields, cmd: string): void {
  if (v['guests'] === undefined) {
    v['guests'] = [...(v['members'] as unknown[])];
    return;
  }
  const members = new Set(v['members'] as unknown[]);
  needList(v, 'guests', cmd, 'members', (nick) => isNick(nick) && members.has(nick));
}

/**
 * Checks a decoded event from the chat service and returns it (the same object, with an absent
 * `account` set to false, see defaultAccount, and absent `guests` filled in, see needGuests), or undefined for a cmd this client does not know (a
 * newer service's event: ignored, not fatal). Throws SB_ERR_MESSAGE_INVALID for a known cmd with a
 * field of the wrong type or form.
 */
export function parseChatEvent(value: unknown): ChatEvent | undefined {
  if (!isObject(value)) throw sbError('SB_ERR_MESSAGE_INVALID', 'chat service sent an event that is not a JSON object');
  const v = value;
  const cmd = v['cmd'];
  switch (cmd) {
    case 'welcome':
      needNick(v, 'nick', cmd);
      needList(v, 'rooms', cmd, 'room names', isRoom);
      break;
    case 'joined':
      needRoom(v, 'room', cmd);
      needList(v, 'members', cmd, 'nicknames', isNick);
      needGuests(v, cmd);
      needList(v, 'history', cmd, 'room messages', isChatMessage);
      (v['history'] as unknown[]).forEach(defaultAccount);
      break;
    case 'left':
      needRoom(v, 'room', cmd);
      break;
    case 'message':
      need(isChatMessage(v), cmd, 'id, room, from, text, ts or account', 'of the right form');
      needRef(v, cmd);
      defaultAccount(v);
      break;
    case 'direct':
      need(isDirectMessage(v), cmd, 'id, from, to, text, ts or account', 'of the right form');
      needRef(v, cmd);
      defaultAccount(v);
      break;
    case 'directs':
      needList(v, 'history', cmd, 'direct messages', isDirectMessage);
      (v['history'] as unknown[]).forEach(defaultAccount);
      break;
    case 'presence':
      needRoom(v, 'room', cmd);
      needNick(v, 'nick', cmd);
      need(v['event'] === 'join' || v['event'] === 'leave', cmd, 'event', '"join" or "leave"');
      need(v['account'] === undefined || typeof v['account'] === 'boolean', cmd, 'account', 'true or false');
      defaultAccount(v);
      break;
    case 'members':
      needRoom(v, 'room', cmd);
      needList(v, 'members', cmd, 'nicknames', isNick);
      needGuests(v, cmd);
      break;
    case 'rooms':
      needList(v, 'rooms', cmd, 'rooms with a member count', (r) => isObject(r) && isRoom(r['room']) && isCount(r['members']));
      // A service older than `total` listed every room it had: the list is then the total.
      v['total'] ??= (v['rooms'] as unknown[]).length;
      need(isCount(v['total']) && (v['total'] as number) >= (v['rooms'] as unknown[]).length, cmd, 'total', 'a count of at least the rooms listed');
      break;
    case 'pong':
      break;
    case 'error':
      need(typeof v['code'] === 'string', cmd, 'code', 'a string');
      need(typeof v['message'] === 'string', cmd, 'message', 'a string');
      needRef(v, cmd);
      need(v['retryAfterMs'] === undefined || isCount(v['retryAfterMs']), cmd, 'retryAfterMs', 'a non-negative integer');
      break;
    default:
      return undefined;
  }
  return v as unknown as ChatEvent;
}
