// The chat panel's state: rooms joined, their timelines and members, direct conversations, unread counts.
// Speaks protocol/chat-messages.ts as JSON over /ws/chat; the gateway sends hello with the account name.
import {
  CHAT_LIMITS,
  DEFAULT_ROOM,
  ROOM_PATTERN,
  type ChatEvent,
  type ChatMessage,
  type ChatRequest,
  type DirectMessage,
} from '../../../protocol/chat-messages.js';
import { wsUrl } from './api.js';
import { parseJsonFrame, ReconnectingSocket } from './reconnecting-socket.svelte.js';

export type TimelineItem =
  | ({ kind: 'message' } & ChatMessage)
  | { kind: 'presence'; key: string; nick: string; event: 'join' | 'leave'; ts: number };

export interface RoomState {
  name: string;
  timeline: TimelineItem[];
  members: string[];
  unread: number;
}

export interface DirectConversation {
  peer: string;
  messages: DirectMessage[];
  unread: number;
}

export type ChatTarget = { kind: 'room'; name: string } | { kind: 'dm'; name: string };

/**
 * A message this tab sent that the service has not acknowledged (its copy with our `ref`), or that
 * failed: refused (rate, size…) or cut off by a disconnect. Kept so its text is never lost silently.
 */
export interface OutgoingMessage {
  ref: string;
  target: ChatTarget;
  text: string;
  /** set once it failed: the refusal's code, or the close that cut it off */
  failure?: { code: string; message: string };
}

/** Oldest timeline entries are dropped past this, so a busy room cannot grow the tab without bound. */
const TIMELINE_LIMIT = 500;
/** `rooms` is rate-charged by the service: the joins and leaves of a burst (a reconnect) ask for it once. */
const DIRECTORY_REFRESH_MS = 500;
const textEncoder = new TextEncoder();

export class ChatClient {
  nick = $state<string | null>(null);
  rooms = $state<Record<string, RoomState>>({});
  directs = $state<Record<string, DirectConversation>>({});
  /** every room on the server with its member count (the `rooms` reply) */
  directory = $state<{ room: string; members: number }[]>([]);
  active = $state<ChatTarget>({ kind: 'room', name: DEFAULT_ROOM });
  /** whether the chat panel is on screen; unread counts grow only for what the user is not looking at */
  visible = $state(false);
  lastError = $state<{ code: string; message: string } | null>(null);
  /** sent and not yet acknowledged, or failed (see OutgoingMessage) */
  outgoing = $state<OutgoingMessage[]>([]);

  readonly socket: ReconnectingSocket;

  totalUnread = $derived(
    Object.values(this.rooms).reduce((n, r) => n + r.unread, 0) + Object.values(this.directs).reduce((n, d) => n + d.unread, 0),
  );
  activeRoom = $derived(this.active.kind === 'room' ? this.rooms[this.active.name] : undefined);
  activeDirect = $derived(this.active.kind === 'dm' ? this.directs[this.active.name] : undefined);
  activeOutgoing = $derived(this.outgoing.filter((m) => m.target.kind === this.active.kind && m.target.name === this.active.name));

  #refCounter = 0;
  /** rooms to (re)join after a reconnect */
  #wanted = new Set<string>([DEFAULT_ROOM]);
  #directoryTimer: ReturnType<typeof setTimeout> | null = null;

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

  close(): void {
    if (this.#directoryTimer) clearTimeout(this.#directoryTimer);
    this.socket.close();
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    if (visible) this.#markActiveRead();
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
    this.#send({ cmd: 'join', room: name });
    this.active = { kind: 'room', name };
    return null;
  }

  leave(room: string): void {
    this.#wanted.delete(room);
    this.#send({ cmd: 'leave', room });
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
      this.#send({ cmd: 'rooms' });
    }, DIRECTORY_REFRESH_MS);
  }

  /**
   * Sends to the active room or conversation; returns an error message (the text was not sent: keep
   * it) or null. Sent text stays in `outgoing` until the service acknowledges it; a refusal or a
   * disconnect marks it failed there, for resend() or discard().
   */
  say(text: string): string | null {
    return this.#sendTo({ ...this.active }, text);
  }

  /** Sends a failed message again, to where it first went; returns an error message or null. */
  resend(ref: string): string | null {
    const message = this.outgoing.find((m) => m.ref === ref);
    if (!message) return null;
    const notice = this.#sendTo(message.target, message.text);
    if (!notice) this.discard(ref);
    return notice;
  }

  /** Forgets a failed message. */
  discard(ref: string): void {
    const i = this.outgoing.findIndex((m) => m.ref === ref);
    if (i !== -1) this.outgoing.splice(i, 1);
  }

  #sendTo(target: ChatTarget, text: string): string | null {
    const body = text.trim();
    if (!body) return null;
    if (textEncoder.encode(body).length > CHAT_LIMITS.textMaxBytes) return `Messages are at most ${CHAT_LIMITS.textMaxBytes} bytes`;
    if (this.socket.status !== 'up') return 'Not connected: the message was not sent';
    const ref = `r${Date.now().toString(36)}${(this.#refCounter++).toString(36)}`;
    const request: ChatRequest =
      target.kind === 'room' ? { cmd: 'say', room: target.name, text: body, ref } : { cmd: 'dm', to: target.name, text: body, ref };
    if (!this.socket.sendJson(request)) return 'Not connected: the message was not sent';
    this.outgoing.push({ ref, target, text: body });
    return null;
  }

  /** The service's copy with our ref arrived: the message is stored and delivered. */
  #acknowledge(ref: string | undefined): void {
    if (ref !== undefined) this.outgoing = this.outgoing.filter((m) => m.ref !== ref);
  }

  /** A refusal naming one of our messages; false when the ref is not one of them. */
  #refuse(ref: string | undefined, failure: { code: string; message: string }): boolean {
    const message = ref === undefined ? undefined : this.outgoing.find((m) => m.ref === ref && !m.failure);
    if (message) message.failure = failure;
    return message !== undefined;
  }

  /** The socket closed: what was not acknowledged may or may not have reached the service. */
  #failPending(event: CloseEvent): void {
    const code = /^SB_ERR_[A-Z_]+$/.test(event.reason) ? event.reason : `closed (${event.code})`;
    const failure = { code, message: 'the connection dropped before the server confirmed it; it may not have been sent' };
    for (const m of this.outgoing) m.failure ??= failure;
  }

  #send(request: ChatRequest): void {
    this.socket.sendJson(request);
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
    const peer = message.from === this.nick ? message.to : message.from;
    const conversation = (this.directs[peer] ??= { peer, messages: [], unread: 0 });
    const { messages } = conversation;
    if (messages.some((m) => m.id === message.id)) return undefined;
    const after = messages.findIndex((m) => m.id > message.id);
    if (after === -1) push(messages, message);
    else messages.splice(after, 0, message);
    return conversation;
  }

  #handle(event: ChatEvent): void {
    switch (event.cmd) {
      case 'welcome':
        // the chat service itself answered: not a gateway that accepts and then closes
        this.socket.markHealthy();
        this.nick = event.nick;
        // the hello already joined event.rooms: joining again would only spend a rate token
        for (const room of this.#wanted) if (!event.rooms.includes(room)) this.#send({ cmd: 'join', room });
        this.refreshDirectory();
        break;
      case 'joined': {
        const previous = this.rooms[event.room];
        const history: TimelineItem[] = event.history.map((m) => ({ kind: 'message', ...m }));
        this.rooms[event.room] = { name: event.room, timeline: history, members: [...event.members].sort(), unread: previous?.unread ?? 0 };
        this.#wanted.add(event.room);
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
        if (message.from !== this.nick && !this.#isLookingAt({ kind: 'room', name: event.room })) room.unread++;
        break;
      }
      case 'direct': {
        this.#acknowledge(event.ref);
        const { cmd: _cmd, ref: _ref, ...message } = event;
        const conversation = this.#addDirect(message);
        if (conversation && message.from !== this.nick && !this.#isLookingAt({ kind: 'dm', name: conversation.peer })) conversation.unread++;
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
        if (event.event === 'join') members.add(event.nick);
        else members.delete(event.nick);
        room.members = [...members].sort();
        push(room.timeline, { kind: 'presence', key: `p${Date.now()}-${this.#refCounter++}`, nick: event.nick, event: event.event, ts: Date.now() });
        break;
      }
      case 'members': {
        const room = this.rooms[event.room];
        if (room) room.members = [...event.members].sort();
        break;
      }
      case 'rooms':
        this.directory = [...event.rooms].sort((a, b) => a.room.localeCompare(b.room));
        break;
      case 'error': {
        const wait = event.retryAfterMs === undefined ? '' : ` (try again in ${Math.ceil(event.retryAfterMs / 1000)} s)`;
        // a refused message is shown with its text (OutgoingMessage); anything else here
        if (!this.#refuse(event.ref, { code: event.code, message: `${event.message}${wait}` })) {
          this.lastError = { code: event.code, message: event.message };
        }
        break;
      }
      case 'pong':
        break;
    }
  }
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > TIMELINE_LIMIT) list.splice(0, list.length - TIMELINE_LIMIT);
}
