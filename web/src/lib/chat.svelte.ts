// The chat panel's state: rooms joined, their timelines and members, direct conversations, unread counts.
// Speaks protocol/chat-messages.ts as JSON over /ws/chat; the gateway sends hello with the account name.
import {
  CHAT_LIMITS,
  DEFAULT_ROOM,
  NICK_PATTERN,
  REF_PATTERN,
  ROOM_PATTERN,
  type ChatErrorEvent,
  type ChatEvent,
  type ChatMessage,
  type ChatRequest,
  type DirectMessage,
} from '../../../protocol/chat-messages.js';
import { wsUrl } from './api.js';
import { parseJsonFrame, ReconnectingSocket } from './reconnecting-socket.svelte.js';
import { readStored, writeStored, writeStoredChecked } from './storage.js';
import { isOwn } from './chat-own.js';

export type TimelineItem =
  | ({ kind: 'message' } & ChatMessage)
  | { kind: 'presence'; key: string; nick: string; event: 'join' | 'leave'; ts: number; guest: boolean };

export interface RoomState {
  name: string;
  timeline: TimelineItem[];
  members: string[];
  /** the members that are not accounts (direct clients of the chat service, any free name) */
  guests: string[];
  unread: number;
}

export interface DirectConversation {
  peer: string;
  messages: DirectMessage[];
  unread: number;
}

export type ChatTarget = { kind: 'room'; name: string } | { kind: 'dm'; name: string };

/**
 * A message this tab sent that the service has not acknowledged (its copy with our `ref`): waiting
 * its turn in the send queue, on its way, or failed (too large, no such user, cut off by a
 * disconnect…). Kept so its text is never lost silently: in this tab's sessionStorage too, so a
 * reload sends it again (same ref) or shows it failed (see #restoreAfterReload).
 */
export interface OutgoingMessage {
  /** its idempotency key (see SayRequest): kept through every retry and Resend, so the service posts it at most once */
  ref: string;
  target: ChatTarget;
  text: string;
  /** when it was typed (ms since the epoch), kept through Resend: how old its ref may be at the service */
  queuedAt: number;
  /** set once it failed: `code` is the refusal's code or the close that cut it off, `message` plain words */
  failure?: { code: string; message: string };
}

/**
 * A rate-charged request waiting its turn. They go out one at a time, each after the answer to the
 * previous one, so a refusal for the rate limit is retried before anything sent after it: messages
 * arrive in the order they were typed however fast that was.
 */
type QueuedRequest = { kind: 'say'; ref: string } | { kind: 'join'; room: string } | { kind: 'leave'; room: string } | { kind: 'rooms' };

/** Oldest timeline entries are dropped past this, so a busy room cannot grow the tab without bound. */
const TIMELINE_LIMIT = 500;
/** `rooms` is rate-charged by the service: the joins and leaves of a burst (a reconnect) ask for it once. */
const DIRECTORY_REFRESH_MS = 500;
/** While the panel is on screen the room directory is asked for this often (one rate token each time), so rooms others create show up. */
const DIRECTORY_POLL_MS = 10_000;
/** An answer that takes longer than this will not come: the queue moves on. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Messages still waiting to go out fail once the connection has been down this long. */
const OFFLINE_LIMIT_MS = 20_000;
/** Used when a rate refusal does not say how long to wait. */
const DEFAULT_RETRY_MS = 1_000;
/** localStorage key prefix: the rooms an account's tabs joined, rejoined after a reload. */
const ROOMS_STORAGE_PREFIX = 'sockbridge.chat.rooms.';
/** sessionStorage key prefixes (per tab, per account): the unacknowledged messages and the conversation on screen, both kept across a reload. */
const OUTGOING_STORAGE_PREFIX = 'sockbridge.chat.outgoing.';
const ACTIVE_STORAGE_PREFIX = 'sockbridge.chat.active.';
/**
 * A message restored after a reload is sent again with its ref only while that is well inside the
 * service's refWindowMs (1 h, docs/protocol.md § chat "Idempotent send"): a first try that did reach
 * the service is then still recognised and answered with its stored copy, not posted twice. An older
 * one is shown failed, for Resend, Edit or Discard: the person decides whether it still makes sense.
 */
const RESEND_AFTER_RELOAD_MS = 10 * 60_000;
const textEncoder = new TextEncoder();
const NOT_CONNECTED = 'Not connected: the message was not sent';

/**
 * A message ref: 96 random bits. Two tabs (or a tab before and after a reload) of one account share
 * its nick, and the service deduplicates by (nick, ref) for an hour, so a ref must not repeat across
 * them: the former `r<ms><counter>` did when two tabs sent their n-th message in the same ms.
 * getRandomValues, not randomUUID, which needs a secure context (the gateway may be plain http).
 */
function newRef(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `r${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export { isOwn };

export class ChatClient {
  nick = $state<string | null>(null);
  rooms = $state<Record<string, RoomState>>({});
  directs = $state<Record<string, DirectConversation>>({});
  /** the fullest rooms on the server with their member counts (the `rooms` reply, capped by the service) */
  directory = $state<{ room: string; members: number }[]>([]);
  /** rooms on the server not in `directory` (the service lists only the fullest) */
  directoryMore = $state(0);
  #active = $state<ChatTarget>({ kind: 'room', name: DEFAULT_ROOM });
  /** whether the chat panel is on screen; unread counts grow only for what the user is not looking at */
  visible = $state(false);
  lastError = $state<{ code: string; message: string } | null>(null);
  /** queued, sent and not yet acknowledged, or failed (see OutgoingMessage) */
  outgoing = $state<OutgoingMessage[]>([]);
  /** true while the send queue waits for the service's rate limit to let the next request through */
  throttled = $state(false);
  /**
   * false while `outgoing` is not all in sessionStorage (storage disabled or full, or sent before the
   * first welcome named the account): a reload now would lose those messages, so the page asks first.
   */
  outgoingSaved = $state(true);

  readonly socket: ReconnectingSocket;

  totalUnread = $derived(
    Object.values(this.rooms).reduce((n, r) => n + r.unread, 0) + Object.values(this.directs).reduce((n, d) => n + d.unread, 0),
  );
  activeRoom = $derived(this.active.kind === 'room' ? this.rooms[this.active.name] : undefined);
  activeDirect = $derived(this.active.kind === 'dm' ? this.directs[this.active.name] : undefined);
  activeOutgoing = $derived(this.outgoing.filter((m) => m.target.kind === this.active.kind && m.target.name === this.active.name));

  #presenceCounter = 0;
  /** rooms to (re)join after a reconnect */
  #wanted = new Set<string>([DEFAULT_ROOM]);
  #directoryTimer: ReturnType<typeof setTimeout> | null = null;
  #directoryPoll: ReturnType<typeof setInterval> | null = null;
  /** rate-charged requests not yet sent, oldest first; see QueuedRequest */
  #queue: QueuedRequest[] = [];
  /** the request sent and not yet answered; nothing else goes out until it is */
  #inFlight: QueuedRequest | null = null;
  #answerTimer: ReturnType<typeof setTimeout> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #offlineTimer: ReturnType<typeof setTimeout> | null = null;
  /** the welcome arrived on the current connection: requests may go out */
  #welcomed = false;
  /** what a reload left in sessionStorage was read (on the first welcome, which names the account) */
  #restored = false;
  /** the room on screen before the reload, shown again once it is rejoined unless the person chose another */
  #activeAfterRejoin: string | null = null;

  constructor() {
    this.socket = new ReconnectingSocket({
      url: () => wsUrl('/ws/chat'),
      onMessage: (data) => {
        const event = parseJsonFrame<ChatEvent>(data);
        if (event) this.#handle(event);
      },
      onClose: (event) => this.#failPending(event),
    });
  }

  /** The room or conversation on screen; kept per tab, so a reload comes back to it. */
  get active(): ChatTarget {
    return this.#active;
  }

  set active(target: ChatTarget) {
    this.#active = target;
    this.#activeAfterRejoin = null;
    const key = this.#storageKey(ACTIVE_STORAGE_PREFIX);
    if (key !== null) writeStored('sessionStorage', key, JSON.stringify(target));
  }

  close(): void {
    for (const timer of [this.#directoryTimer, this.#answerTimer, this.#retryTimer, this.#offlineTimer]) if (timer) clearTimeout(timer);
    if (this.#directoryPoll) clearInterval(this.#directoryPoll);
    this.socket.close();
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.#markActiveRead();
    const polling = visible && document.visibilityState === 'visible';
    if (polling && !this.#directoryPoll) {
      this.#directoryPoll = setInterval(() => this.#enqueueDirectory(), DIRECTORY_POLL_MS);
      this.refreshDirectory();
    } else if (!polling && this.#directoryPoll) {
      clearInterval(this.#directoryPoll);
      this.#directoryPoll = null;
    }
  }

  select(target: ChatTarget): void {
    this.active = target;
    this.#markActiveRead();
  }

  /** Returns an error message for invalid input, or null once sent. */
  join(room: string): string | null {
    const name = room.trim().toLowerCase().replace(/^#/, '');
    if (!ROOM_PATTERN.test(name)) return 'Room names are 1–64 of a–z, 0–9, _ . -';
    this.#wanted.add(name);
    if (this.rooms[name]) {
      this.select({ kind: 'room', name });
      return null;
    }
    this.#enqueue({ kind: 'join', room: name });
    this.active = { kind: 'room', name };
    return null;
  }

  leave(room: string): void {
    this.#wanted.delete(room);
    this.#saveRooms();
    this.#enqueue({ kind: 'leave', room });
  }

  openDirect(peer: string): void {
    if (peer === this.nick) return;
    this.directs[peer] ??= { peer, messages: [], unread: 0 };
    this.select({ kind: 'dm', name: peer });
  }

  /** Asks for the room directory in a moment, once for any number of calls until then. */
  refreshDirectory(): void {
    if (this.#directoryTimer) return;
    this.#directoryTimer = setTimeout(() => {
      this.#directoryTimer = null;
      this.#enqueueDirectory();
    }, DIRECTORY_REFRESH_MS);
  }

  /**
   * Sends to the active room or conversation; returns an error message (the text was not sent: keep
   * it) or null. Sent text stays in `outgoing` until the service acknowledges it: queued behind the
   * rate limit if need be, and sent in order; a real refusal or a disconnect marks it failed there,
   * for resend() or discard().
   */
  say(text: string): string | null {
    return this.#sendTo({ ...this.active }, text);
  }

  /**
   * Sends a failed message again, to where it first went and with its first ref: if the first try
   * did reach the service (only its ack was lost), the service answers with that stored copy
   * instead of posting it twice. Returns an error message or null.
   */
  resend(ref: string): string | null {
    const message = this.outgoing.find((m) => m.ref === ref);
    if (!message?.failure) return null; // still on its way: it will be answered
    if (this.socket.status !== 'up') return NOT_CONNECTED;
    delete message.failure;
    this.#saveOutgoing();
    this.#enqueue({ kind: 'say', ref });
    return null;
  }

  /** Forgets a failed message. */
  discard(ref: string): void {
    const i = this.outgoing.findIndex((m) => m.ref === ref);
    if (i !== -1) this.outgoing.splice(i, 1);
    this.#saveOutgoing();
  }

  #sendTo(target: ChatTarget, text: string): string | null {
    const body = text.trim();
    if (!body) return null;
    if (textEncoder.encode(body).length > CHAT_LIMITS.textMaxBytes) return `Messages are at most ${CHAT_LIMITS.textMaxBytes} bytes`;
    if (this.socket.status !== 'up') return NOT_CONNECTED;
    const ref = newRef();
    this.outgoing.push({ ref, target, text: body, queuedAt: Date.now() });
    this.#saveOutgoing();
    this.#enqueue({ kind: 'say', ref });
    return null;
  }

  #enqueue(request: QueuedRequest): void {
    this.#queue.push(request);
    this.#pump();
  }

  /** One `rooms` request in the queue or on its way is enough. */
  #enqueueDirectory(): void {
    if (this.#inFlight?.kind === 'rooms' || this.#queue.some((r) => r.kind === 'rooms')) return;
    this.#enqueue({ kind: 'rooms' });
  }

  /** Sends the next queued request, unless one is unanswered, a rate wait runs, or the service has not welcomed us. */
  #pump(): void {
    if (this.#inFlight || this.#retryTimer || !this.#welcomed || this.socket.status !== 'up') return;
    const next = this.#queue[0];
    if (!next) {
      this.throttled = false;
      return;
    }
    const request = this.#request(next);
    if (!request) {
      this.#queue.shift(); // a message discarded while it waited
      this.#pump();
      return;
    }
    if (!this.socket.sendJson(request)) return;
    this.#queue.shift();
    this.#inFlight = next;
    this.#answerTimer = setTimeout(() => {
      if (next.kind === 'say') this.#fail(next.ref, 'timeout', 'the server did not confirm it in time; it may not have been sent');
      this.#answered();
    }, ANSWER_TIMEOUT_MS);
  }

  #request(queued: QueuedRequest): ChatRequest | undefined {
    switch (queued.kind) {
      case 'join':
      case 'leave':
        return { cmd: queued.kind, room: queued.room };
      case 'rooms':
        return { cmd: 'rooms' };
      case 'say': {
        const message = this.outgoing.find((m) => m.ref === queued.ref && !m.failure);
        if (!message) return undefined;
        const { ref, target, text } = message;
        return target.kind === 'room' ? { cmd: 'say', room: target.name, text, ref } : { cmd: 'dm', to: target.name, text, ref };
      }
    }
  }

  /** The request on its way got its answer (or never will): the next one may go. */
  #answered(): void {
    if (this.#answerTimer) clearTimeout(this.#answerTimer);
    this.#answerTimer = null;
    this.#inFlight = null;
    this.#pump();
  }

  /** Whether an event answers the request on its way: by ref for messages, by kind and room otherwise. */
  #answers(event: ChatEvent): boolean {
    const f = this.#inFlight;
    if (!f) return false;
    switch (event.cmd) {
      case 'message':
      case 'direct':
        return f.kind === 'say' && event.ref === f.ref;
      case 'joined':
        return f.kind === 'join' && event.room === f.room;
      case 'left':
        return f.kind === 'leave' && event.room === f.room;
      case 'rooms':
        return f.kind === 'rooms';
      case 'error':
        // the service answers in order and only messages carry a ref: an error without one answers a join, leave or rooms
        return f.kind === 'say' ? event.ref === f.ref : event.ref === undefined;
      default:
        return false;
    }
  }

  /** The service's copy with our ref arrived: the message is stored and delivered. */
  #acknowledge(ref: string | undefined): void {
    if (ref === undefined || !this.outgoing.some((m) => m.ref === ref)) return;
    this.outgoing = this.outgoing.filter((m) => m.ref !== ref);
    this.#saveOutgoing();
  }

  #fail(ref: string, code: string, message: string): void {
    const outgoing = this.outgoing.find((m) => m.ref === ref);
    if (!outgoing || outgoing.failure) return;
    outgoing.failure = { code, message };
    this.#saveOutgoing();
  }

  /** A refusal: the rate limit puts the request back at the head of the queue until the service allows it; anything else is final. */
  #refused(event: ChatErrorEvent): void {
    const request = this.#answers(event) ? this.#inFlight : null;
    if (request && event.code === 'SB_ERR_RATE_LIMITED') {
      this.#queue.unshift(request);
      this.throttled = true;
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.#pump();
      }, event.retryAfterMs ?? DEFAULT_RETRY_MS);
      this.#answered();
      return;
    }
    const plain = plainFailure(event);
    if (request?.kind === 'say' || (event.ref !== undefined && this.outgoing.some((m) => m.ref === event.ref))) {
      this.#fail(event.ref!, event.code, plain);
    } else {
      if (request?.kind === 'join') this.#forget(request.room);
      if (request?.kind !== 'rooms') this.lastError = { code: event.code, message: plain };
    }
    if (request) this.#answered();
  }

  /** A room that could not be joined: not wanted any more, and not shown as the active one. */
  #forget(room: string): void {
    this.#wanted.delete(room);
    this.#saveRooms();
    if (this.#activeAfterRejoin === room) this.#activeAfterRejoin = null;
    if (this.active.kind === 'room' && this.active.name === room && !this.rooms[room]) {
      this.active = { kind: 'room', name: Object.keys(this.rooms)[0] ?? DEFAULT_ROOM };
    }
  }

  /**
   * The socket closed: the message on its way may or may not have reached the service, so it fails
   * (Resend decides); queued messages were never sent and wait for the reconnect, up to OFFLINE_LIMIT_MS.
   * Joins and the directory are asked for again after the next welcome.
   */
  #failPending(event: CloseEvent): void {
    const code = /^SB_ERR_[A-Z_]+$/.test(event.reason) ? event.reason : `closed (${event.code})`;
    const inFlight = this.#inFlight;
    if (inFlight?.kind === 'say') this.#fail(inFlight.ref, code, 'the connection dropped before the server confirmed it; it may not have been sent');
    this.#welcomed = false;
    this.#queue = this.#queue.filter((r) => r.kind === 'say');
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#answered();
    this.#offlineTimer ??= setTimeout(() => {
      this.#offlineTimer = null;
      for (const r of this.#queue) if (r.kind === 'say') this.#fail(r.ref, code, 'not connected to the chat service for too long');
      this.#queue = [];
      this.throttled = false;
    }, OFFLINE_LIMIT_MS);
  }

  #storageKey(prefix: string): string | null {
    return this.nick === null ? null : `${prefix}${this.nick}`;
  }

  /** The rooms this account's tabs joined, as last saved; only valid names. */
  #savedRooms(): string[] {
    const key = this.#storageKey(ROOMS_STORAGE_PREFIX);
    const saved = parseStoredJson(key === null ? null : readStored('localStorage', key));
    return Array.isArray(saved) ? saved.filter((r): r is string => typeof r === 'string' && ROOM_PATTERN.test(r)) : [];
  }

  #saveRooms(): void {
    const key = this.#storageKey(ROOMS_STORAGE_PREFIX);
    // storage full or disabled: the rooms are just not remembered across reloads
    if (key !== null) writeStored('localStorage', key, JSON.stringify([...this.#wanted].sort()));
  }

  /** Keeps `outgoing` in this tab's sessionStorage; outgoingSaved says whether that worked. */
  #saveOutgoing(): void {
    const key = this.#storageKey(OUTGOING_STORAGE_PREFIX);
    if (key === null) {
      this.outgoingSaved = this.outgoing.length === 0;
      return;
    }
    const kept = this.outgoing.map(({ ref, target, text, queuedAt, failure }) => ({ ref, target, text, queuedAt, failure }));
    this.outgoingSaved = writeStoredChecked('sessionStorage', key, kept.length === 0 ? null : JSON.stringify(kept));
  }

  /**
   * On the first welcome (it names the account): what this tab left before a reload. Its messages
   * not yet acknowledged come back: failed ones as failed, the rest are sent again with their refs
   * (returned, to queue), so each settles as an ack whether or not the first try reached the service;
   * one queued too long ago is shown failed instead (RESEND_AFTER_RELOAD_MS). The room on screen is
   * shown again once rejoined, if it is still among the account's rooms; a conversation at once.
   */
  #restoreAfterReload(): QueuedRequest[] {
    if (this.#restored) return [];
    this.#restored = true;
    const active = parseTarget(readStored('sessionStorage', this.#storageKey(ACTIVE_STORAGE_PREFIX)!));
    if (active?.kind === 'room' && this.#wanted.has(active.name)) this.#activeAfterRejoin = active.name;
    if (active?.kind === 'dm') this.openDirect(active.name);

    const stored = parseOutgoing(readStored('sessionStorage', this.#storageKey(OUTGOING_STORAGE_PREFIX)!));
    const restored = stored.filter((m) => !this.outgoing.some((o) => o.ref === m.ref));
    const now = Date.now();
    for (const message of restored) {
      if (!message.failure && now - message.queuedAt > RESEND_AFTER_RELOAD_MS) {
        message.failure = { code: 'reloaded', message: 'the page was reloaded before the server confirmed it, over 10 minutes ago; it may not have been sent' };
      }
      // its conversation is listed, so the message can be seen
      if (message.target.kind === 'dm') this.directs[message.target.name] ??= { peer: message.target.name, messages: [], unread: 0 };
    }
    this.outgoing = [...restored, ...this.outgoing];
    this.#saveOutgoing();
    return restored.filter((m) => !m.failure).map((m) => ({ kind: 'say', ref: m.ref }));
  }

  #isLookingAt(target: ChatTarget): boolean {
    return this.visible && this.active.kind === target.kind && this.active.name === target.name && document.visibilityState === 'visible';
  }

  #markActiveRead(): void {
    if (!this.visible) return;
    if (this.activeRoom) this.activeRoom.unread = 0;
    if (this.activeDirect) this.activeDirect.unread = 0;
  }

  /** Adds `message` to its conversation in id order; returns the conversation, or undefined if it was there already. */
  #addDirect(message: DirectMessage): DirectConversation | undefined {
    const peer = isOwn(message, this.nick) ? message.to : message.from;
    const conversation = (this.directs[peer] ??= { peer, messages: [], unread: 0 });
    const { messages } = conversation;
    if (messages.some((m) => m.id === message.id)) return undefined;
    const after = messages.findIndex((m) => m.id > message.id);
    if (after === -1) push(messages, message);
    else messages.splice(after, 0, message);
    return conversation;
  }

  #handle(event: ChatEvent): void {
    if (event.cmd === 'error') {
      this.#refused(event);
      return;
    }
    const answered = this.#answers(event);
    // a join or leave went through: a refusal shown from before (too many rooms…) no longer applies
    if (answered && (event.cmd === 'joined' || event.cmd === 'left')) this.lastError = null;
    this.#apply(event);
    if (answered) this.#answered();
  }

  #apply(event: Exclude<ChatEvent, ChatErrorEvent>): void {
    switch (event.cmd) {
      case 'welcome':
        // the chat service itself answered: not a gateway that accepts and then closes
        this.socket.markHealthy();
        // a refusal from before (the gateway's "chat service is unavailable" of an outage, a join
        // that failed) was about a connection that is gone: this one starts clean
        this.lastError = null;
        this.nick = event.nick;
        this.#welcomed = true;
        if (this.#offlineTimer) clearTimeout(this.#offlineTimer);
        this.#offlineTimer = null;
        for (const room of this.#savedRooms()) this.#wanted.add(room);
        // the hello already joined event.rooms: joining again would only spend a rate token. The
        // joins go first, then messages from before a reload, then those that waited for the
        // reconnect, all paced by the queue.
        this.#queue.unshift(
          ...[...this.#wanted].filter((room) => !event.rooms.includes(room)).map((room) => ({ kind: 'join' as const, room })),
          ...this.#restoreAfterReload(),
        );
        this.refreshDirectory();
        this.#pump();
        break;
      case 'joined': {
        const previous = this.rooms[event.room];
        const history: TimelineItem[] = event.history.map((m) => ({ kind: 'message', ...m }));
        this.rooms[event.room] = {
          name: event.room,
          timeline: history,
          members: [...event.members].sort(),
          guests: event.guests ?? [],
          unread: previous?.unread ?? 0,
        };
        this.#wanted.add(event.room);
        this.#saveRooms();
        if (this.#activeAfterRejoin === event.room) this.select({ kind: 'room', name: event.room });
        this.refreshDirectory();
        break;
      }
      case 'left':
        delete this.rooms[event.room];
        if (this.active.kind === 'room' && this.active.name === event.room) {
          const next = Object.keys(this.rooms)[0];
          if (next) this.active = { kind: 'room', name: next };
        }
        this.refreshDirectory();
        break;
      case 'message': {
        this.#acknowledge(event.ref);
        const room = this.rooms[event.room];
        if (!room) break;
        const { cmd: _cmd, ref: _ref, ...message } = event;
        if (room.timeline.some((i) => i.kind === 'message' && i.id === message.id)) break;
        push(room.timeline, { kind: 'message', ...message });
        if (!isOwn(message, this.nick) && !this.#isLookingAt({ kind: 'room', name: event.room })) room.unread++;
        break;
      }
      case 'direct': {
        this.#acknowledge(event.ref);
        const { cmd: _cmd, ref: _ref, ...message } = event;
        const conversation = this.#addDirect(message);
        if (conversation && !isOwn(message, this.nick) && !this.#isLookingAt({ kind: 'dm', name: conversation.peer })) conversation.unread++;
        break;
      }
      case 'directs':
        // Our recent direct messages, sent after every (re)connect: what a reload would otherwise
        // lose. Merged by id with what this tab already has; history is never counted as unread.
        for (const message of event.history) this.#addDirect(message);
        break;
      case 'presence': {
        const room = this.rooms[event.room];
        if (!room) break;
        const members = new Set(room.members);
        const guests = new Set(room.guests);
        const guest = event.account === false;
        if (event.event === 'join') {
          members.add(event.nick);
          if (guest) guests.add(event.nick);
          else guests.delete(event.nick);
        } else {
          members.delete(event.nick);
          guests.delete(event.nick);
        }
        room.members = [...members].sort();
        room.guests = [...guests];
        push(room.timeline, { kind: 'presence', key: `p${Date.now()}-${this.#presenceCounter++}`, nick: event.nick, event: event.event, ts: Date.now(), guest });
        break;
      }
      case 'members': {
        const room = this.rooms[event.room];
        if (room) {
          room.members = [...event.members].sort();
          room.guests = event.guests ?? [];
        }
        break;
      }
      case 'rooms':
        this.directory = [...event.rooms].sort((a, b) => a.room.localeCompare(b.room));
        this.directoryMore = Math.max(0, event.total - event.rooms.length);
        break;
      case 'pong':
        break;
    }
  }
}

/** A ChatTarget read back from storage, or null for anything else. */
function parseTarget(text: string | null): ChatTarget | null {
  return toTarget(parseStoredJson(text));
}

function toTarget(value: unknown): ChatTarget | null {
  if (typeof value !== 'object' || value === null) return null;
  const { kind, name } = value as Record<string, unknown>;
  if (kind === 'room' && typeof name === 'string' && ROOM_PATTERN.test(name)) return { kind, name };
  if (kind === 'dm' && typeof name === 'string' && NICK_PATTERN.test(name)) return { kind, name };
  return null;
}

/** The OutgoingMessages read back from storage; anything malformed is skipped. */
function parseOutgoing(text: string | null): OutgoingMessage[] {
  const stored = parseStoredJson(text);
  if (!Array.isArray(stored)) return [];
  const messages: OutgoingMessage[] = [];
  for (const item of stored as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const { ref, target, text: body, queuedAt, failure } = item as Record<string, unknown>;
    const to = toTarget(target);
    if (typeof ref !== 'string' || !REF_PATTERN.test(ref) || !to || typeof body !== 'string' || !body || typeof queuedAt !== 'number') continue;
    const message: OutgoingMessage = { ref, target: to, text: body, queuedAt };
    if (typeof failure === 'object' && failure !== null) {
      const { code, message: words } = failure as Record<string, unknown>;
      if (typeof code === 'string' && typeof words === 'string') message.failure = { code, message: words };
    }
    messages.push(message);
  }
  return messages;
}

function parseStoredJson(text: string | null): unknown {
  try {
    return text === null ? null : (JSON.parse(text) as unknown);
  } catch {
    return null;
  }
}

/** A refusal in plain words for the page; the code is shown beside it in small print. */
function plainFailure(event: ChatErrorEvent): string {
  switch (event.code) {
    case 'SB_ERR_MESSAGE_TOO_LARGE':
      return 'the message is too long for the server';
    case 'SB_ERR_CHAT_NOT_IN_ROOM':
      return 'you are not in this room any more';
    case 'SB_ERR_CHAT_NO_SUCH_USER':
      return 'that person is not online';
    case 'SB_ERR_CHAT_ROOM_INVALID':
      return 'that is not a valid room name';
    case 'SB_ERR_CHAT_TOO_MANY_ROOMS':
      return 'you are in as many rooms as the server allows; leave one first';
    case 'SB_ERR_RATE_LIMITED':
      return 'too many requests at once; try again in a moment';
    default:
      return event.message;
  }
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > TIMELINE_LIMIT) list.splice(0, list.length - TIMELINE_LIMIT);
}
