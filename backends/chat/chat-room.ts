// Rooms and who is in them. A member is a connection (a ChatPeer); one nickname may have several
// connections (the gateway's browser tabs), so presence is counted per nickname: "join" when a
// nickname's first connection enters, "leave" when its last one goes.

import type { ChatEvent } from '../../protocol/chat-messages.js';

/** One connection as the rooms see it: a nickname and a way to hand it an event. */
export interface ChatPeer {
  readonly nick: string;
  deliver(event: ChatEvent): void;
}

export class ChatRoom {
  private readonly peers = new Set<ChatPeer>();
  private readonly nickCounts = new Map<string, number>();

  constructor(readonly name: string) {}

  get isEmpty(): boolean {
    return this.peers.size === 0;
  }

  has(peer: ChatPeer): boolean {
    return this.peers.has(peer);
  }

  /** Adds a connection; true when its nickname was not present before (a presence "join"). */
  add(peer: ChatPeer): boolean {
    if (this.peers.has(peer)) return false;
    this.peers.add(peer);
    const count = this.nickCounts.get(peer.nick) ?? 0;
    this.nickCounts.set(peer.nick, count + 1);
    return count === 0;
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
    return true;
  }

  /** Distinct nicknames present, sorted. */
  members(): string[] {
    return [...this.nickCounts.keys()].sort();
  }

  get memberCount(): number {
    return this.nickCounts.size;
  }

  /** Hands `event` to every connection in the room; `custom` may give one peer its own copy (the ack). */
  broadcast(event: ChatEvent, custom?: { peer: ChatPeer; event: ChatEvent }): void {
    for (const peer of this.peers) peer.deliver(custom && peer === custom.peer ? custom.event : event);
  }

  presence(nick: string, event: 'join' | 'leave', except?: ChatPeer): void {
    const e: ChatEvent = { cmd: 'presence', room: this.name, nick, event };
    for (const peer of this.peers) if (peer !== except) peer.deliver(e);
  }
}

/** The registry of rooms: a room exists while someone is in it (its history stays in SQLite). */
export class ChatRooms {
  private readonly rooms = new Map<string, ChatRoom>();

  get(name: string): ChatRoom | undefined {
    return this.rooms.get(name);
  }

  getOrCreate(name: string): ChatRoom {
    let room = this.rooms.get(name);
    if (!room) {
      room = new ChatRoom(name);
      this.rooms.set(name, room);
    }
    return room;
  }

  /** Drops `room` from the registry once nobody is in it. */
  release(room: ChatRoom): void {
    if (room.isEmpty) this.rooms.delete(room.name);
  }

  list(): { room: string; members: number }[] {
    return [...this.rooms.values()].map((r) => ({ room: r.name, members: r.memberCount })).sort((a, b) => a.room.localeCompare(b.room));
  }
}
