// The chat itself, independent of any transport: nicknames, rooms, rate limits, history.
// The frame port (chat-connection.ts) and the line port (line-chat-server.ts) each turn their
// wire format into calls on a ChatSession, and every event comes back through ChatPeer.deliver.
//
// Ordering rule: a message is committed to SQLite (ChatHistory.append) before any peer, its sender
// included, is handed it, so an acknowledged message is never lost by a restart.
//
// Idempotent send: a say or dm whose `ref` this nick already stored (ChatHistory.sentWithRef) is a
// retry after a lost ack; it is answered with the stored copy, to the asking connection only, and
// never stored or delivered again (see ChatSession.ackRetry). Only refs long enough to be random
// keys count (isIdempotencyKey): bots number their messages "1", "2", … per connection, and such a
// ref seen again after a reconnect is a new message, not a retry.
//
// Accounts and nicknames: a connection with the gateway token is an account (the gateway logged it
// in and names it). Every nickname an account uses is reserved for good (ChatHistory.reserveNick):
// a connection without the token may not take it (SB_ERR_CHAT_NICK_RESERVED), and an account that
// says hello while such a connection holds its name takes it over (the holder's transport moves it
// off, EventSink.nickClaimed), so the owner is never shut out. Every message records whether its
// sender was an account (`account`), which tells an impostor from an account that never chatted yet.
//
// Nicknames are unique ignoring letter case, as reserved_nicks and account names are: a guest
// holding `alice` would otherwise keep it beside the account `Alice`, in every member list, and
// receive direct messages meant for it. Lookups by name (isOnline, sessionsOf) stay exact.

import { Buffer } from 'node:buffer';
import { sbError, type SockbridgeError } from '../../protocol/errors.js';
import {
  isIdempotencyKey,
  validateNick,
  validateRoom,
  type ChatEvent,
  type DirectMessage,
  type JoinedEvent,
  type MembersEvent,
  type RoomListEvent,
} from '../../protocol/chat-messages.js';
import type { ChatHistory } from './chat-history.js';
import { ChatRooms, type ChatPeer } from './chat-room.js';
import { TokenBucket, type RateLimit } from '../lib/token-bucket.js';

export interface ChatHubLimits {
  maxTextBytes: number;
  /** applies to each connection and, separately, to each nickname across all its connections */
  rateLimit: RateLimit;
  maxConnectionsPerNick: number;
  maxRoomsPerConnection: number;
  historyOnJoin: number;
  /** direct messages in the `directs` event after a gateway hello */
  directHistoryOnHello: number;
  /**
   * When the last connection of a gateway nick (browser tabs) closes, the room says "leave" only
   * after this long, and not at all if the nick is back by then: a reload is a close and a hello a
   * moment later, which would otherwise post "left" and "joined" to everyone. 0: at once.
   */
  presenceGraceMs?: number;
}

/** Where a transport wants a connection's events: it encodes and writes them. */
export interface EventSink extends Pick<ChatPeer, 'deliver'> {
  /**
   * An account says hello under this connection's nickname (only a connection without the gateway
   * token is ever asked): before returning, the transport must give the name up, by renaming the
   * session (ChatSession.rename) or closing it.
   */
  nickClaimed(): void;
}

/** What nickname uniqueness compares: NICK_PATTERN is ASCII, so lower case is the whole of case folding. */
const nickKey = (nick: string): string => nick.toLowerCase();

/** A SockbridgeError that also says when a retry will pass. */
export type RateLimitedError = SockbridgeError & { retryAfterMs: number };

interface NickEntry {
  /** the spelling the nickname is held under (the map is keyed by nickKey) */
  nick: string;
  sessions: Set<ChatSession>;
  /** true when the nickname is held through the gateway token, and so may be shared */
  shared: boolean;
}

export class ChatHub {
  readonly rooms = new ChatRooms();
  private readonly nicks = new Map<string, NickEntry>();
  private readonly nickBuckets = new Map<string, TokenBucket>();

  constructor(
    readonly history: ChatHistory,
    readonly limits: ChatHubLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Registers a connection under `nick`. `shared` (the gateway token was presented: an account) lets
   * several connections hold one nickname, up to maxConnectionsPerNick, reserves the name, and moves
   * a tokenless holder off it; otherwise a held or reserved nickname is refused.
   */
  connect(sink: EventSink, nick: string, shared: boolean): ChatSession {
    validateNick(nick);
    if (shared) {
      this.history.reserveNick(nick);
      this.displaceGuests(nick);
    } else {
      this.refuseReserved(nick);
    }
    this.claimNick(nick, shared);
    const session = new ChatSession(this, sink, nick, shared, this.clock());
    this.nicks.get(nickKey(nick))!.sessions.add(session);
    return session;
  }

  /**
   * The recent direct messages to or by `nick`, oldest first, for a connection holding it — only
   * through the gateway, whose token vouches that the nick is the logged-in account. A nickname is
   * not a password: on the raw ports anyone may take a free one, so a raw connection gets none,
   * whoever held the nick before (an account, a raw-only nick, a guest-N of a previous run).
   * A service without a gateway token refuses every token-bearing hello, so there nobody gets any.
   */
  directHistoryFor(nick: string, viaGateway: boolean): DirectMessage[] {
    if (!viaGateway) return [];
    return this.history.recentDirect(nick, this.limits.directHistoryOnHello);
  }

  /** The entry of `nick` held under exactly this spelling. */
  private held(nick: string): NickEntry | undefined {
    const entry = this.nicks.get(nickKey(nick));
    return entry?.nick === nick ? entry : undefined;
  }

  isOnline(nick: string): boolean {
    return this.held(nick) !== undefined;
  }

  sessionsOf(nick: string): ReadonlySet<ChatSession> {
    return this.held(nick)?.sessions ?? new Set();
  }

  /** Whether a connection without the gateway token may take `nick` now (no spelling of it is held or reserved). */
  isFree(nick: string): boolean {
    return !this.nicks.has(nickKey(nick)) && !this.history.isReserved(nick);
  }

  private refuseReserved(nick: string): void {
    if (this.history.isReserved(nick)) throw sbError('SB_ERR_CHAT_NICK_RESERVED', nick);
  }

  /**
   * An account takes precedence over tokenless connections holding its name in any spelling of its
   * case (see EventSink.nickClaimed).
   */
  private displaceGuests(nick: string): void {
    const entry = this.nicks.get(nickKey(nick));
    if (!entry || entry.shared) return;
    for (const session of [...entry.sessions]) session.nickClaimed();
  }

  private claimNick(nick: string, shared: boolean): void {
    const entry = this.nicks.get(nickKey(nick));
    if (!entry) {
      this.nicks.set(nickKey(nick), { nick, sessions: new Set(), shared });
      return;
    }
    // Only the same spelling is shared: two accounts never differ by case alone (nor do their names here).
    if (!shared || !entry.shared || entry.nick !== nick) throw sbError('SB_ERR_CHAT_NICK_TAKEN', nick);
    if (entry.sessions.size >= this.limits.maxConnectionsPerNick) {
      throw sbError('SB_ERR_CHAT_TOO_MANY_CONNECTIONS', nick, entry.sessions.size);
    }
  }

  /** @internal ChatSession's half of a rename or disconnect. */
  releaseNick(session: ChatSession, nick: string): void {
    const key = nickKey(nick);
    const entry = this.nicks.get(key);
    if (!entry?.sessions.delete(session)) return;
    if (entry.sessions.size > 0) return;
    this.nicks.delete(key);
    const bucket = this.nickBuckets.get(key);
    // A bucket that still holds a debt is kept, so reconnecting (in any case) does not reset the limit.
    if (bucket?.isFull(this.clock())) this.nickBuckets.delete(key);
    if (this.nickBuckets.size > 4 * this.nicks.size + 1024) this.pruneBuckets();
  }

  /**
   * @internal Throws unless `session` may rename itself to `nick`: its own nick in another case may
   * be taken (holdRenamed runs after the old name is released).
   */
  checkRename(session: ChatSession, nick: string): void {
    validateNick(nick);
    this.refuseReserved(nick);
    const entry = this.nicks.get(nickKey(nick));
    if (entry && !(entry.sessions.size === 1 && entry.sessions.has(session))) throw sbError('SB_ERR_CHAT_NICK_TAKEN', nick);
  }

  /** @internal The second half of a rename checked by checkRename. */
  holdRenamed(session: ChatSession, nick: string): void {
    this.nicks.set(nickKey(nick), { nick, sessions: new Set([session]), shared: false });
  }

  /** @internal Charges one request to the connection's and the nickname's buckets. */
  charge(connectionBucket: TokenBucket, nick: string): void {
    const now = this.clock();
    let nickBucket = this.nickBuckets.get(nickKey(nick));
    if (!nickBucket) {
      nickBucket = new TokenBucket(this.limits.rateLimit, now);
      this.nickBuckets.set(nickKey(nick), nickBucket);
    }
    const wait = Math.max(connectionBucket.wait(now), nickBucket.wait(now));
    if (wait > 0) {
      const err = sbError('SB_ERR_RATE_LIMITED', `at most ${this.limits.rateLimit.capacity} requests per ${this.limits.rateLimit.intervalMs} ms`);
      throw Object.assign(err, { retryAfterMs: wait }) as RateLimitedError;
    }
    connectionBucket.take(now);
    nickBucket.take(now);
  }

  /** @internal */
  checkText(text: string): void {
    const bytes = Buffer.byteLength(text);
    if (bytes > this.limits.maxTextBytes) throw sbError('SB_ERR_MESSAGE_TOO_LARGE', bytes, this.limits.maxTextBytes);
    if (text.trim().length === 0) throw sbError('SB_ERR_BAD_REQUEST', 'empty message');
  }

  private pruneBuckets(): void {
    const now = this.clock();
    for (const [key, bucket] of this.nickBuckets) {
      if (!this.nicks.has(key) && bucket.isFull(now)) this.nickBuckets.delete(key);
    }
  }

  /** The fullest ROOMS_LISTED rooms (see ChatRooms.fullest), and how many rooms there are in all. */
  roomList(): RoomListEvent {
    return { cmd: 'rooms', rooms: [...this.rooms.fullest()], total: this.rooms.size };
  }
}

/** One connection's view of the chat: what the transports call. Methods throw SockbridgeErrors. */
export class ChatSession implements ChatPeer {
  private readonly joined = new Set<string>();
  private readonly bucket: TokenBucket;
  private closed = false;

  constructor(
    private readonly hub: ChatHub,
    private readonly sink: EventSink,
    private currentNick: string,
    /** the nick was claimed with the gateway token (an account the gateway authenticated) */
    readonly viaGateway: boolean,
    now: number,
  ) {
    this.bucket = new TokenBucket(hub.limits.rateLimit, now);
  }

  get nick(): string {
    return this.currentNick;
  }

  get roomNames(): string[] {
    return [...this.joined];
  }

  deliver(event: ChatEvent): void {
    if (!this.closed) this.sink.deliver(event);
  }

  /** @internal ChatHub.displaceGuests: an account claims this nickname. */
  nickClaimed(): void {
    if (!this.closed) this.sink.nickClaimed();
  }

  /**
   * Joins `room` (again: idempotent) and returns the `joined` event with the room's recent history.
   * `replacing`: a room the caller leaves right after (line mode's /join), not counted against
   * maxRoomsPerConnection, so a switch works even when that limit is 1.
   */
  join(roomName: string, { charge = true, replacing }: { charge?: boolean; replacing?: string } = {}): JoinedEvent {
    validateRoom(roomName);
    const kept = replacing !== undefined && this.joined.has(replacing) ? this.joined.size - 1 : this.joined.size;
    if (!this.joined.has(roomName) && kept >= this.hub.limits.maxRoomsPerConnection) {
      throw sbError('SB_ERR_CHAT_TOO_MANY_ROOMS', this.hub.limits.maxRoomsPerConnection);
    }
    // Charged even when already in the room: a join answers with up to 100 messages of history.
    if (charge) this.hub.charge(this.bucket, this.nick);
    const room = this.hub.rooms.getOrCreate(roomName);
    const isNew = room.add(this);
    this.joined.add(roomName);
    const joined: JoinedEvent = {
      cmd: 'joined',
      room: roomName,
      members: room.members(),
      guests: room.guests(),
      history: this.hub.history.recent(roomName, this.hub.limits.historyOnJoin),
    };
    this.deliver(joined);
    if (isNew) room.presence(this.nick, this.viaGateway, 'join', this);
    return joined;
  }

  /** `charge: false` when the leave is half of a switch whose join was already charged (line mode's /join). */
  leave(roomName: string, { charge = true } = {}): void {
    validateRoom(roomName);
    const room = this.hub.rooms.get(roomName);
    if (!room || !this.joined.has(roomName)) throw sbError('SB_ERR_CHAT_NOT_IN_ROOM', roomName);
    if (charge) this.hub.charge(this.bucket, this.nick);
    this.leaveRoom(roomName);
    this.deliver({ cmd: 'left', room: roomName });
  }

  private leaveRoom(roomName: string, nick = this.nick, { closing = false } = {}): void {
    const room = this.hub.rooms.get(roomName);
    this.joined.delete(roomName);
    if (!room) return;
    if (room.remove(this, nick)) {
      const grace = closing && this.viaGateway ? (this.hub.limits.presenceGraceMs ?? 0) : 0;
      if (grace > 0) room.leaveLater(nick, this.viaGateway, grace);
      else room.presence(nick, this.viaGateway, 'leave');
    }
    this.hub.rooms.release(room);
  }

  say(roomName: string, text: string, ref?: string): void {
    validateRoom(roomName);
    if (this.ackRetry(ref, { room: roomName }, text)) return;
    const room = this.hub.rooms.get(roomName);
    if (!room || !this.joined.has(roomName)) throw sbError('SB_ERR_CHAT_NOT_IN_ROOM', roomName);
    this.hub.checkText(text);
    this.hub.charge(this.bucket, this.nick);
    const message = this.hub.history.append(roomName, this.nick, text, undefined, isIdempotencyKey(ref) ? ref : undefined, this.viaGateway);
    const event = { cmd: 'message', ...message } as const;
    room.broadcast(event, ref === undefined ? undefined : { peer: this, event: { ...event, ref } });
  }

  dm(to: string, text: string, ref?: string): void {
    validateNick(to);
    if (this.ackRetry(ref, { to }, text)) return;
    if (!this.hub.isOnline(to)) throw sbError('SB_ERR_CHAT_NO_SUCH_USER', to);
    this.hub.checkText(text);
    this.hub.charge(this.bucket, this.nick);
    const message = this.hub.history.appendDirect(this.nick, to, text, undefined, isIdempotencyKey(ref) ? ref : undefined, this.viaGateway);
    const event = { cmd: 'direct', ...message } as const;
    // Every connection of the recipient, and of the sender (its other tabs see what it sent).
    const targets = new Set<ChatSession>([...this.hub.sessionsOf(to), ...this.hub.sessionsOf(this.nick)]);
    for (const session of targets) session.deliver(session === this && ref !== undefined ? { ...event, ref } : event);
  }

  /**
   * True when `ref` names a message this nick already stored (a retry whose ack was lost): this
   * connection gets the stored copy again as its ack (same id and ts) and nobody else gets anything.
   * Checked before room membership and presence: the message was accepted when first sent, so a
   * retry settles even if the sender has left the room or the recipient went offline since.
   * The same ref on another target or text is SB_ERR_CHAT_REF_REUSED (a client bug: refs collided).
   * A ref too short to be a key (isIdempotencyKey) is never a retry.
   */
  private ackRetry(ref: string | undefined, target: { room: string } | { to: string }, text: string): boolean {
    if (!isIdempotencyKey(ref)) return false;
    const sent = this.hub.history.sentWithRef(this.nick, ref);
    if (!sent) return false;
    this.hub.charge(this.bucket, this.nick);
    const { message } = sent;
    if (message.text === text) {
      if (sent.kind === 'room' && 'room' in target && sent.message.room === target.room) {
        this.deliver({ cmd: 'message', ...sent.message, ref });
        return true;
      }
      if (sent.kind === 'direct' && 'to' in target && sent.message.to === target.to) {
        this.deliver({ cmd: 'direct', ...sent.message, ref });
        return true;
      }
    }
    throw sbError('SB_ERR_CHAT_REF_REUSED', JSON.stringify(ref));
  }

  /** Delivers the `directs` event: this nick's recent direct messages (see ChatHub.directHistoryFor). */
  sendDirectHistory(): void {
    this.deliver({ cmd: 'directs', history: this.hub.directHistoryFor(this.nick, this.viaGateway) });
  }

  /** Rate-charged like a message: a big room's member list is a big reply. */
  who(roomName: string): MembersEvent {
    validateRoom(roomName);
    this.hub.charge(this.bucket, this.nick);
    const room = this.hub.rooms.get(roomName);
    return { cmd: 'members', room: roomName, members: room?.members() ?? [], guests: room?.guests() ?? [] };
  }

  /** Rate-charged like a message; the reply is bounded (ChatHub.roomList). */
  rooms(): RoomListEvent {
    this.hub.charge(this.bucket, this.nick);
    return this.hub.roomList();
  }

  /**
   * Takes another nickname (line mode's /nick): presence leave/join in every room it is in.
   * `charge: false` when the connection did not ask (an account claimed its nickname).
   */
  rename(nick: string, { charge = true } = {}): void {
    if (nick === this.nick) return;
    if (charge) this.hub.charge(this.bucket, this.nick);
    this.hub.checkRename(this, nick);
    const old = this.nick;
    const rooms = [...this.joined];
    for (const name of rooms) this.leaveRoom(name, old);
    this.hub.releaseNick(this, old);
    this.hub.holdRenamed(this, nick);
    this.currentNick = nick;
    for (const name of rooms) {
      const room = this.hub.rooms.getOrCreate(name);
      if (room.add(this)) room.presence(nick, this.viaGateway, 'join', this);
      this.joined.add(name);
    }
  }

  /** Leaves every room (presence "leave") and gives the nickname back. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const name of [...this.joined]) this.leaveRoom(name, this.nick, { closing: true });
    this.hub.releaseNick(this, this.nick);
  }
}
