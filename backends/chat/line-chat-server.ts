// The chat's plain-text line mode, for nc, telnet and the seed's own client. A connection is in one
// room at a time (the default room until /join): a line it types is a message to that room, and it
// gets that room's events and its own direct messages, each event as one line:
//   alice: hello            a message             * bob joined / * bob left   presence
//   *alice* psst            a direct message      -> *bob* psst               one you sent
//   ! SB_ERR_… text         a refusal (the connection stays open)
// A read that ends without a newline (the seed's client sends none) counts as a line once no more
// bytes follow within lineFlushMs, so a long line split across TCP segments still stays one line.
// Commands: /join ROOM, /rooms, /who, /nick NAME, /msg NICK TEXT, /quit, /help.
// Telnet commands (a telnet or PuTTY client's option negotiation) are stripped from the stream
// (TelnetFilter). A first line that is another protocol (a frame client's length header holds NUL
// bytes, a TLS record starts 16 03) is answered with SB_ERR_CHAT_WRONG_PORT and the connection
// closed, so a frame client pointed here posts nothing; any other byte is text.
// Direct-message history is never shown here: anyone may take any free nickname on this port, so
// a nick proves nothing (ChatHub.directHistoryFor serves it only through the gateway). A nickname an
// account ever used is refused to /nick (SB_ERR_CHAT_NICK_RESERVED), and when an account logs in
// under the nick a line client holds, the line client is renamed to a new guest-N and told so.
// Lines are the seed's `nick: text` for every sender, account or not (scripts parse them); the
// account marker is on the frame port's and the browser's messages (`account`).

import type net from 'node:net';
import type { Logger } from 'pino';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../protocol/errors.js';
import { DEFAULT_ROOM, type ChatEvent, type DirectMessage, type RoomListEvent } from '../../protocol/chat-messages.js';
import { TcpService } from '../lib/tcp-service.js';
import type { ChatHub, ChatSession } from './chat-hub.js';
import { LineSplitter, type LineItem } from './line-splitter.js';
import { SocketSink } from './socket-sink.js';
import { TelnetFilter } from './telnet-filter.js';
import { sanitizeForTerminal } from './terminal-text.js';

/** History lines shown on connect: enough for context, few enough for an 80x24 terminal. */
export const LINE_HISTORY_ON_JOIN = 20;
/** Rooms /rooms names (the fullest first): one readable line, not thousands of names. */
export const LINE_ROOMS_LISTED = 20;
/** Members a `* in #ROOM:` line names (/who, /join): one readable line however big the room. */
export const LINE_MEMBERS_LISTED = 50;

export interface LineChatOptions {
  host: string;
  port: number;
  maxLineBytes: number;
  lineFlushMs: number;
  maxConnections: number;
  maxBufferedBytes: number;
  logger: Logger;
}

const HELP = [
  '* commands: /join ROOM (switch rooms), /rooms, /who (who is in this room), /nick NAME, /msg NICK TEXT (direct message), /quit, /help',
  '* anything else you type is said in the room you are in (#' + DEFAULT_ROOM + ' at first)',
];

export class LineChatServer extends TcpService {
  private guestCounter = 0;

  constructor(
    private readonly hub: ChatHub,
    private readonly options: LineChatOptions,
  ) {
    super({ host: options.host, port: options.port, logger: options.logger });
  }

  protected onConnection(socket: net.Socket): void {
    if (this.connectionCount > this.options.maxConnections) {
      socket.end(`${refusalLine(sbError('SB_ERR_CHAT_TOO_MANY_CONNECTIONS', 'the chat line port', this.options.maxConnections))}\n`);
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    new LineConnection(socket, this.hub, this.options, () => this.nextGuestNick());
  }

  /** guest-1, guest-2, …: skips names someone holds or an account reserved. */
  private nextGuestNick(): string {
    let nick: string;
    do nick = `guest-${++this.guestCounter}`;
    while (!this.hub.isFree(nick));
    return nick;
  }
}

class LineConnection {
  private readonly splitter: LineSplitter;
  private readonly telnet = new TelnetFilter();
  private readonly sink: SocketSink;
  private readonly session: ChatSession;
  /** the one room this connection is in: where its lines go, whose events it gets */
  private room = DEFAULT_ROOM;
  private flushTimer: NodeJS.Timeout | undefined;
  /** no newline seen yet: the bytes so far are checked by isOtherProtocol */
  private inFirstLine = true;
  /** no data byte seen yet (telnet commands are not data) */
  private atStart = true;
  /** the first line was another protocol (see isOtherProtocol): nothing more is read */
  private notText = false;

  constructor(
    private readonly socket: net.Socket,
    hub: ChatHub,
    private readonly options: LineChatOptions,
    private readonly guestNick: () => string,
  ) {
    this.splitter = new LineSplitter(options.maxLineBytes);
    this.sink = new SocketSink(socket, options.maxBufferedBytes, options.logger);
    socket.setKeepAlive(true, 60_000);
    this.session = hub.connect({ deliver: (event) => this.deliver(event), nickClaimed: () => this.yieldNick() }, guestNick(), false);
    this.write(`* welcome, you are ${this.session.nick} in #${DEFAULT_ROOM}; /help lists the commands`);
    this.session.join(DEFAULT_ROOM, { charge: false });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.handle(this.splitter.flush());
      socket.end();
    });
    socket.once('close', () => {
      clearTimeout(this.flushTimer);
      this.session.close();
    });
  }

  /** An account logged in under our nickname (ChatHub.connect): we move to a new guest name. */
  private yieldNick(): void {
    const old = this.session.nick;
    this.session.rename(this.guestNick(), { charge: false });
    this.write(`* ${old} is an account's name and its owner just logged in: you are now ${this.session.nick}`);
  }

  private write(line: string): void {
    this.sink.write(`${line}\n`);
  }

  private onData(chunk: Buffer): void {
    clearTimeout(this.flushTimer);
    if (this.notText) return;
    const data = this.telnet.push(chunk);
    if (this.inFirstLine) {
      const newline = data.indexOf(0x0a);
      if (isOtherProtocol(newline === -1 ? data : data.subarray(0, newline), this.atStart)) {
        this.notText = true;
        this.refuse(sbError('SB_ERR_CHAT_WRONG_PORT'));
        this.socket.end();
        return;
      }
      if (newline !== -1) this.inFirstLine = false;
    }
    if (data.length > 0) this.atStart = false;
    this.handle(this.splitter.push(data));
    // A refused line without a newline (the seed's client) also ends with the pause: else every later line were skipped.
    if ((this.splitter.hasPartial || this.splitter.isSkipping) && !this.socket.destroyed) {
      this.flushTimer = setTimeout(() => {
        this.inFirstLine = false; // the pause ended it, as it ends the seed client's lines
        this.handle(this.splitter.flush());
      }, this.options.lineFlushMs);
    }
  }

  private handle(items: LineItem[]): void {
    for (const item of items) {
      if (this.socket.destroyed || !this.socket.writable) return;
      if (item.type === 'too-long') {
        this.refuse(sbError('SB_ERR_MESSAGE_TOO_LARGE', item.bytes, this.options.maxLineBytes));
        continue;
      }
      try {
        this.onLine(item.text);
      } catch (err) {
        if (!isSockbridgeError(err)) {
          this.options.logger.error({ err }, 'line chat failure');
          this.socket.destroy();
          return;
        }
        this.refuse(err);
      }
    }
  }

  private refuse(err: SockbridgeError): void {
    this.write(refusalLine(err));
  }

  private onLine(line: string): void {
    const text = line.trim();
    if (text.length === 0) return;
    if (!text.startsWith('/')) {
      this.session.say(this.room, text);
      return;
    }
    const [command = '', ...args] = text.split(/\s+/);
    switch (command.toLowerCase()) {
      case '/nick':
        if (!args[0]) throw sbError('SB_ERR_BAD_REQUEST', 'usage: /nick NAME');
        this.session.rename(args[0]);
        this.write(`* you are now ${this.session.nick}`);
        return;
      case '/join':
        if (!args[0]) throw sbError('SB_ERR_BAD_REQUEST', 'usage: /join ROOM');
        this.switchTo(args[0].replace(/^#/, ''));
        return;
      case '/rooms':
        this.write(roomsLine(this.session.rooms()));
        return;
      case '/who':
        this.deliver(this.session.who(this.room));
        return;
      case '/msg': {
        const to = args[0];
        const body = text.replace(/^\/msg\s+\S+\s*/i, '');
        if (!to || !body) throw sbError('SB_ERR_BAD_REQUEST', 'usage: /msg NICK TEXT');
        this.session.dm(to, body);
        return;
      }
      case '/quit':
        this.write('* bye');
        this.socket.end();
        return;
      case '/help':
        for (const line of HELP) this.write(line);
        return;
      default:
        throw sbError('SB_ERR_BAD_REQUEST', `unknown command ${command.slice(0, 20)}; try /help`);
    }
  }

  /**
   * Joins `room` (validated, rate-charged; its history and members are shown as on connect), then
   * leaves the previous one. Join first: a refused join leaves the connection where it was.
   */
  private switchTo(room: string): void {
    const previous = this.room;
    this.session.join(room, { replacing: previous });
    this.room = room;
    if (previous !== room) this.session.leave(previous, { charge: false });
  }

  private deliver(event: ChatEvent): void {
    const clean = sanitizeForTerminal;
    switch (event.cmd) {
      case 'message':
        this.write(`${event.from}: ${clean(event.text)}`);
        return;
      case 'direct':
        this.write(this.directLine(event));
        return;
      case 'presence':
        this.write(`* ${event.nick} ${event.event === 'join' ? 'joined' : 'left'}`);
        return;
      case 'joined':
        for (const m of event.history.slice(-LINE_HISTORY_ON_JOIN)) this.write(`${m.from}: ${clean(m.text)}`);
        this.write(membersLine(event.room, event.members));
        return;
      case 'members':
        this.write(membersLine(event.room, event.members));
        return;
      case 'error':
        this.write(`! ${event.code} ${clean(event.message)}`);
        return;
      default:
        return;
    }
  }

  private directLine(m: DirectMessage): string {
    // this.session is unset while hub.connect() runs; nothing is delivered before it returns
    return m.from === this.session?.nick ? `-> *${m.to}* ${sanitizeForTerminal(m.text)}` : `*${m.from}* ${sanitizeForTerminal(m.text)}`;
  }
}

/**
 * True for the signatures of protocols that are not lines of text: a NUL byte, which a frame's
 * 4-byte little-endian length header always holds (any header under 16 MiB) and no person types
 * (telnet's CR NUL is already gone, TelnetFilter), or a TLS record's first bytes `16 03` (RFC 8446
 * §5.1: handshake, legacy version 3.x) at the start. Other control bytes pass as text: terminal keys
 * send ESC sequences, and what is shown is cleaned (sanitizeForTerminal).
 */
function isOtherProtocol(bytes: Uint8Array, atStart: boolean): boolean {
  return bytes.includes(0x00) || (atStart && bytes[0] === 0x16 && bytes[1] === 0x03);
}

/** `! SB_ERR_… message`: the stable code first, for scripts; the connection stays open. */
function refusalLine(err: SockbridgeError): string {
  return `! ${err.code} ${sanitizeForTerminal(err.message)}`;
}

/** `* rooms: #lobby (3), #ops (1)`, the fullest LINE_ROOMS_LISTED rooms (the list comes fullest first), and how many more there are. */
function roomsLine(list: RoomListEvent): string {
  const shown = list.rooms.slice(0, LINE_ROOMS_LISTED).map((r) => `#${r.room} (${r.members})`);
  return `* rooms: ${shown.join(', ') || '(none)'}${andMore(list.total - shown.length)}`;
}

/** `* in #lobby: alice, bob`, the first LINE_MEMBERS_LISTED names, and how many more there are. */
function membersLine(room: string, members: string[]): string {
  const shown = members.slice(0, LINE_MEMBERS_LISTED);
  return `* in #${room}: ${shown.join(', ')}${andMore(members.length - shown.length)}`;
}

const andMore = (count: number): string => (count > 0 ? `, and ${count} more` : '');
