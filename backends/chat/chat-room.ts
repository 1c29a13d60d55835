// Rooms and who is in them. A member is a connection (a ChatPeer); one nickname may have several
// connections (the gateway's browser tabs), so presence is counted per nickname: "join" when a
// nickname's first connection enters, "leave" when its last one goes. Members and presence say
// which nicknames are guests (no gateway token: nothing vouches for the name), so a guest using an
// unreserved account name is not listed or announced like the account.

import type { ChatEvent } from '../../protocol/chat-messages.js';

/** One connection as the rooms see it: a nickname and a way to hand it an event. */
export interface ChatPeer {
  readonly nick: string;
  /** the nickname is an account's (the connection presented the gateway token) */
  readonly viaGateway: boolean;
  deliver(event: ChatEvent): void;
}

export class ChatRoom {
  private readonly peers = new Set<ChatPeer>();
  private readonly nickCounts = new Map<string, number>();
  /** the present nicknames held without the gateway token (one nickname is never both: ChatHub.claimNick) */
  private readonly guestNicks = new Set<string>();
  /** nicknames whose "leave" waits out its grace (leaveLater) */
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  /** members() and guests(), kept until a nickname comes or goes: `who` and every join ask for them */
  private sortedMembers: string[] | undefined;
  private sortedGuests: string[] | undefined;

  /** `onMembersChanged`: a nickname came or went (the registry's room list is out of date). */
  constructor(
    readonly name: string,
    private readonly onMembersChanged: () => void = () => {},
  ) {}

  get isEmpty(): boolean {
    return this.peers.size === 0;
  }

  has(peer: ChatPeer): boolean {
    return this.peers.has(peer);
  }

  /**
   * Adds a connection; true when its nickname was not present before and must be announced (a
   * presence "join"): false for a nick back within its leave grace (see leaveLater), whose leave
   * was never said.
   */
  add(peer: ChatPeer): boolean {
    if (this.peers.has(peer)) return false;
    this.peers.add(peer);
    const count = this.nickCounts.get(peer.nick) ?? 0;
    this.nickCounts.set(peer.nick, count + 1);
    if (count > 0) return false;
    if (!peer.viaGateway) this.guestNicks.add(peer.nick);
    this.membersChanged();
    const pending = this.leaving.get(peer.nick);
    if (pending === undefined) return true;
    clearTimeout(pending);
    this.leaving.delete(peer.nick);
    return false;
  }

  /** The nick's last connection has gone: say "leave" after `graceMs`, unless it is back by then. */
  leaveLater(nick: string, account: boolean, graceMs: number): void {
    clearTimeout(this.leaving.get(nick));
    const timer = setTimeout(() => {
      this.leaving.delete(nick);
      if (!this.nickCounts.has(nick)) this.presence(nick, account, 'leave');
    }, graceMs);
    timer.unref();
    this.leaving.set(nick, timer);
  }

  /** Removes a connection; true when that was its nickname's last one here (a presence "leave"). */
  remove(peer: ChatPeer, nick = peer.nick): boolean {
    if (!this.peers.delete(peer)) return false;
    const count = (this.nickCounts.get(nick) ?? 1) - 1;
    if (count > 0) {
      this.nickCounts.set(nick, count);
      return false;
    }
    this.nickCounts.delete(nick);
    this.guestNicks.delete(nick);
    this.membersChanged();
    return true;
  }

  private membersChanged(): void {
    this.sortedMembers = undefined;
    this.sortedGuests = undefined;
    this.onMembersChanged();
  }

  /** Distinct nicknames present, sorted (a copy). */
  members(): string[] {
    this.sortedMembers ??= [...this.nickCounts.keys()].sort();
    return [...this.sortedMembers];
  }

  /** Those of members() that are guests, sorted (a copy). */
  guests(): string[] {
    this.sortedGuests ??= [...this.guestNicks].sort();
    return [...this.sortedGuests];
  }

  get memberCount(): number {
    return this.nickCounts.size;
  }

  /** Hands `event` to every connection in the room; `custom` may give one peer its own copy (the ack). */
  broadcast(event: ChatEvent, custom?: { peer: ChatPeer; event: ChatEvent }): void {
    for (const peer of this.peers) peer.deliver(custom && peer === custom.peer ? custom.event : event);
  }

  presence(nick: string, account: boolean, event: 'join' | 'leave', except?: ChatPeer): void {
    const e: ChatEvent = { cmd: 'presence', room: this.name, nick, event, account };
    for (const peer of this.peers) if (peer !== except) peer.deliver(e);
  }
}

interface RoomCount {
  room: string;
  members: number;
}

/** The fullest rooms `rooms` answers with: a bounded reply however many rooms exist. */
const ROOMS_LISTED = 100;

/** The registry of rooms: a room exists while someone is in it (its history stays in SQLite). */
export class ChatRooms {
  private readonly rooms = new Map<string, ChatRoom>();
  /** fullest(), kept until a room's membership changes: `rooms` is asked far more often than that */
  private fullestCache: RoomCount[] | undefined;
  private readonly invalidate = () => (this.fullestCache = undefined);

  get(name: string): ChatRoom | undefined {
    return this.rooms.get(name);
  }

  /** How many rooms have someone in them. */
  get size(): number {
    return this.rooms.size;
  }

  getOrCreate(name: string): ChatRoom {
    let room = this.rooms.get(name);
    if (!room) {
      room = new ChatRoom(name, this.invalidate);
      this.rooms.set(name, room);
    }
    return room;
  }

  /** Drops `room` from the registry once nobody is in it. */
  release(room: ChatRoom): void {
    if (room.isEmpty && this.rooms.delete(room.name)) this.invalidate();
  }

  /**
   * The ROOMS_LISTED fullest rooms, most members first, then by name. A selection in one pass
   * (O(rooms · log ROOMS_LISTED)), not a sort of every room, and cached until a membership changes.
   */
  fullest(): readonly RoomCount[] {
    this.fullestCache ??= selectFullest(this.rooms.values(), ROOMS_LISTED);
    return this.fullestCache;
  }
}

const fuller = (a: RoomCount, b: RoomCount): number => b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0);

/** The `limit` fullest of `rooms`, in `fuller` order: a sorted window kept by binary insertion. */
function selectFullest(rooms: Iterable<ChatRoom>, limit: number): RoomCount[] {
  const top: RoomCount[] = [];
  for (const r of rooms) {
    const entry = { room: r.name, members: r.memberCount };
    if (top.length === limit && fuller(entry, top[limit - 1]!) >= 0) continue;
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (fuller(top[mid]!, entry) <= 0) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, entry);
    if (top.length > limit) top.pop();
  }
  return top;
}
