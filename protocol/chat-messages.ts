// The chat contract. The same messages travel as frame headers on the chat service's TCP port
// (no bodies) and as JSON text messages on the gateway's /ws/chat, so one union, keyed on `cmd`,
// is imported by the chat service, the gateway, the terminal client and the browser.

/** A message as stored and delivered: id and ts are assigned by the server, never by a client. */
export interface ChatMessage {
  id: number;
  room: string;
  from: string;
  text: string;
  /** milliseconds since the Unix epoch, server clock */
  ts: number;
}

export interface DirectMessage {
  id: number;
  from: string;
  to: string;
  text: string;
  ts: number;
}

export const DEFAULT_ROOM = 'lobby';
export const HISTORY_ON_JOIN = 100;

// ---- client → server ----
/**
 * First frame of a connection. `gatewayToken` is the chat service's shared secret for the gateway:
 * with it, several connections (browser tabs) may share one nickname, which is the account name.
 * The gateway always sets nick itself; a browser never sends hello.
 */
export interface HelloRequest { cmd: 'hello'; nick: string; room?: string; gatewayToken?: string }
export interface JoinRequest { cmd: 'join'; room: string }
export interface LeaveRequest { cmd: 'leave'; room: string }
/** `ref` is the client's own id for the message; the server echoes it on the sender's copy (the ack). */
export interface SayRequest { cmd: 'say'; room: string; text: string; ref?: string }
export interface DirectRequest { cmd: 'dm'; to: string; text: string; ref?: string }
export interface WhoRequest { cmd: 'who'; room: string }
export interface RoomsRequest { cmd: 'rooms' }
export interface PingRequest { cmd: 'ping' }

export type ChatRequest =
  | HelloRequest | JoinRequest | LeaveRequest | SayRequest | DirectRequest | WhoRequest | RoomsRequest | PingRequest;

// ---- server → client ----
export interface WelcomeEvent { cmd: 'welcome'; nick: string; rooms: string[] }
export interface JoinedEvent { cmd: 'joined'; room: string; members: string[]; history: ChatMessage[] }
export interface LeftEvent { cmd: 'left'; room: string }
export interface MessageEvent extends ChatMessage { cmd: 'message'; ref?: string }
export interface DirectEvent extends DirectMessage { cmd: 'direct'; ref?: string }
export interface PresenceEvent { cmd: 'presence'; room: string; nick: string; event: 'join' | 'leave' }
export interface MembersEvent { cmd: 'members'; room: string; members: string[] }
export interface RoomListEvent { cmd: 'rooms'; rooms: { room: string; members: number }[] }
export interface PongEvent { cmd: 'pong' }
/** A refusal. Protocol violations also close the connection; limits (rate, size) do not. */
export interface ChatErrorEvent { cmd: 'error'; code: string; message: string; ref?: string }

export type ChatEvent =
  | WelcomeEvent | JoinedEvent | LeftEvent | MessageEvent | DirectEvent | PresenceEvent | MembersEvent
  | RoomListEvent | PongEvent | ChatErrorEvent;

export const CHAT_REQUEST_COMMANDS = ['hello', 'join', 'leave', 'say', 'dm', 'who', 'rooms', 'ping'] as const;

/** Limits shared by the service and the clients that want to check before sending. */
export const CHAT_LIMITS = {
  nickMaxLength: 32,
  roomMaxLength: 64,
  textMaxBytes: 4096,
} as const;

export const NICK_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
export const ROOM_PATTERN = /^[a-z0-9_][a-z0-9_.-]{0,63}$/;
