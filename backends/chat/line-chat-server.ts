// The chat's plain-text line mode, for nc, telnet and the seed's own client: one line in is one
// message to the default room, and every event goes out as one line:
//   alice: hello            a message             * bob joined / * bob left   presence
//   *alice* psst            a direct message      ! ...                       a refusal
// A read that ends without a newline (the seed's client sends none) counts as a line once no more
// bytes follow within lineFlushMs, so a long line split across TCP segments still stays one line.
// Commands: /nick NAME, /who, /msg NICK TEXT, /quit, /help.

import type net from 'node:net';
import type { Logger } from 'pino';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import { DEFAULT_ROOM, type ChatEvent } from '../../protocol/chat-messages.js';
import { TcpService } from '../lib/tcp-service.js';
import type { ChatHub, ChatSession } from './chat-hub.js';
import { LineSplitter, type LineItem } from './line-splitter.js';
import { SocketSink } from './socket-sink.js';
import { sanitizeForTerminal } from './terminal-text.js';

/** History lines shown on connect: enough for context, few enough for an 80x24 terminal. */
export const LINE_HISTORY_ON_JOIN = 20;

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
  '* commands: /nick NAME (change nickname), /who (who is here), /msg NICK TEXT (direct message), /quit, /help',
  '* anything else you type is said in #' + DEFAULT_ROOM,
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
      socket.end(`! ${sbError('SB_ERR_CHAT_TOO_MANY_CONNECTIONS', 'the chat line port', this.options.maxConnections).message}\n`);
      socket.setTimeout(5000, () => socket.destroy());
      return;
    }
    new LineConnection(socket, this.hub, this.options, () => this.nextGuestNick());
  }

  /** guest-1, guest-2, …: skips names someone already holds. */
  private nextGuestNick(): string {
    let nick: string;
    do nick = `guest-${++this.guestCounter}`;
    while (this.hub.isOnline(nick));
    return nick;
  }
}

class LineConnection {
  private readonly splitter: LineSplitter;
  private readonly sink: SocketSink;
  private readonly session: ChatSession;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    hub: ChatHub,
    private readonly options: LineChatOptions,
    guestNick: () => string,
  ) {
    this.splitter = new LineSplitter(options.maxLineBytes);
    this.sink = new SocketSink(socket, options.maxBufferedBytes, options.logger);
    socket.setKeepAlive(true, 60_000);
    this.session = hub.connect({ deliver: (event) => this.deliver(event) }, guestNick(), false);
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

  private write(line: string): void {
    this.sink.write(`${line}\n`);
  }

  private onData(chunk: Buffer): void {
    clearTimeout(this.flushTimer);
    this.handle(this.splitter.push(chunk));
    if (this.splitter.hasPartial && !this.socket.destroyed) {
      this.flushTimer = setTimeout(() => this.handle(this.splitter.flush()), this.options.lineFlushMs);
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

  private refuse(err: Error): void {
    this.write(`! ${sanitizeForTerminal(err.message)}`);
  }

  private onLine(line: string): void {
    const text = line.trim();
    if (text.length === 0) return;
    if (!text.startsWith('/')) {
      this.session.say(DEFAULT_ROOM, text);
      return;
    }
    const [command = '', ...args] = text.split(/\s+/);
    switch (command.toLowerCase()) {
      case '/nick':
        if (!args[0]) throw sbError('SB_ERR_BAD_REQUEST', 'usage: /nick NAME');
        this.session.rename(args[0]);
        this.write(`* you are now ${this.session.nick}`);
        return;
      case '/who':
        this.deliver(this.session.who(DEFAULT_ROOM));
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

  private deliver(event: ChatEvent): void {
    const clean = sanitizeForTerminal;
    switch (event.cmd) {
      case 'message':
        this.write(`${event.from}: ${clean(event.text)}`);
        return;
      case 'direct':
        this.write(event.from === this.session?.nick ? `-> *${event.to}* ${clean(event.text)}` : `*${event.from}* ${clean(event.text)}`);
        return;
      case 'presence':
        this.write(`* ${event.nick} ${event.event === 'join' ? 'joined' : 'left'}`);
        return;
      case 'joined':
        for (const m of event.history.slice(-LINE_HISTORY_ON_JOIN)) this.write(`${m.from}: ${clean(m.text)}`);
        this.write(`* in #${event.room}: ${event.members.join(', ')}`);
        return;
      case 'members':
        this.write(`* in #${event.room}: ${event.members.join(', ')}`);
        return;
      case 'error':
        this.write(`! ${clean(event.message)}`);
        return;
      default:
        return;
    }
  }
}
