// One connection on the chat service's frame port: decodes request frames, holds the ChatSession
// once "hello" succeeded, and encodes events back. A protocol violation (bad frame, malformed
// request, anything before hello, a refused hello) ends this connection only; a refused request
// (rate, size, unknown room or user) is answered with an error event carrying its `ref`, and the
// connection stays open.

import type net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { WholeFrameDecoder, encodeFrame } from '../../protocol/frame-codec.js';
import { isSockbridgeError, sbError, type ErrorCode } from '../../protocol/errors.js';
import {
  CHAT_REQUEST_COMMANDS,
  DEFAULT_ROOM,
  parseChatRequest,
  validateRoom,
  type ChatErrorEvent,
  type ChatEvent,
  type ChatRequest,
  type HelloRequest,
} from '../../protocol/chat-messages.js';
import { decodeChunk } from '../lib/decode-chunk.js';
import { sendErrorAndClose } from '../lib/tcp-service.js';
import type { ChatHub, ChatSession } from './chat-hub.js';
import { SocketSink } from './socket-sink.js';

export interface ChatConnectionOptions {
  gatewayToken: string | undefined;
  helloTimeoutMs: number;
  maxHeaderBytes: number;
  maxBufferedBytes: number;
  logger: Logger;
}

/** Codes that mean the peer is broken or refused, not merely told no: the connection ends. */
const FATAL_AFTER_HELLO: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['SB_ERR_MESSAGE_INVALID', 'SB_ERR_INTERNAL']);

export class ChatConnection {
  private readonly decoder: WholeFrameDecoder;
  private readonly sink: SocketSink;
  private session: ChatSession | undefined;
  private failed = false;
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: net.Socket,
    private readonly hub: ChatHub,
    private readonly options: ChatConnectionOptions,
  ) {
    // Requests are headers only: a body is a protocol error (FrameDecoder refuses size > 0).
    this.decoder = new WholeFrameDecoder({ maxHeaderBytes: options.maxHeaderBytes, maxBodyBytes: 0, commands: CHAT_REQUEST_COMMANDS });
    this.sink = new SocketSink(socket, options.maxBufferedBytes, options.logger);
    this.helloTimer = setTimeout(() => this.fail(sbError('SB_ERR_TIMEOUT', options.helloTimeoutMs, 'waiting for "hello"')), options.helloTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.once('close', () => {
      clearTimeout(this.helloTimer);
      this.session?.close();
    });
  }

  private deliver(event: ChatEvent): void {
    this.sink.write(encodeFrame(event as unknown as { cmd: string }));
  }

  private onData(chunk: Buffer): void {
    if (this.failed) return;
    const frames = decodeChunk(this.decoder, chunk, (err) => this.fail(err));
    if (!frames) return;
    for (const frame of frames) {
      if (this.failed || this.socket.destroyed) return;
      this.handle(frame.header);
    }
  }

  private onEnd(): void {
    try {
      this.decoder.finish();
    } catch (err) {
      this.options.logger.debug({ err, remote: this.socket.remoteAddress }, 'chat connection closed mid-frame');
    }
    this.session?.close();
    this.socket.end();
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    clearTimeout(this.helloTimer);
    this.session?.close();
    sendErrorAndClose(this.socket, err, this.options.logger);
  }

  private handle(header: unknown): void {
    let request: ChatRequest;
    try {
      request = parseChatRequest(header);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (!this.session) {
      if (request.cmd !== 'hello') return this.fail(sbError('SB_ERR_CHAT_NOT_JOINED'));
      try {
        this.hello(request);
      } catch (err) {
        this.fail(err);
      }
      return;
    }
    try {
      this.dispatch(this.session, request);
    } catch (err) {
      if (!isSockbridgeError(err) || FATAL_AFTER_HELLO.has(err.code)) return this.fail(err);
      const event: ChatErrorEvent = { cmd: 'error', code: err.code, message: err.message };
      if ('ref' in request && request.ref !== undefined) event.ref = request.ref;
      const retryAfterMs = (err as { retryAfterMs?: unknown }).retryAfterMs;
      if (typeof retryAfterMs === 'number') event.retryAfterMs = retryAfterMs;
      this.deliver(event);
    }
  }

  private hello(request: HelloRequest): void {
    const room = validateRoom(request.room ?? DEFAULT_ROOM);
    const shared = request.gatewayToken !== undefined;
    if (shared && !tokenMatches(this.options.gatewayToken, request.gatewayToken!)) throw sbError('SB_ERR_CHAT_GATEWAY_TOKEN');
    this.session = this.hub.connect(
      {
        deliver: (event) => this.deliver(event),
        // an account took this nickname (ChatHub.connect): a frame client is told why and closed,
        // as its hello would now be refused; it has no way to learn a new name mid-connection
        nickClaimed: () => this.fail(sbError('SB_ERR_CHAT_NICK_RESERVED', request.nick)),
      },
      request.nick,
      shared,
    );
    clearTimeout(this.helloTimer);
    this.options.logger.info({ nick: this.session.nick, remote: this.socket.remoteAddress, gateway: shared }, 'chat hello');
    this.deliver({ cmd: 'welcome', nick: this.session.nick, rooms: [room] });
    this.session.join(room, { charge: false });
    this.session.sendDirectHistory();
  }

  private dispatch(session: ChatSession, request: ChatRequest): void {
    switch (request.cmd) {
      case 'hello':
        throw sbError('SB_ERR_BAD_REQUEST', `already joined as ${session.nick}`);
      case 'join':
        session.join(request.room);
        return;
      case 'leave':
        session.leave(request.room);
        return;
      case 'say':
        session.say(request.room, request.text, request.ref);
        return;
      case 'dm':
        session.dm(request.to, request.text, request.ref);
        return;
      case 'who':
        this.deliver(session.who(request.room));
        return;
      case 'rooms':
        this.deliver(session.rooms());
        return;
      case 'ping':
        this.deliver({ cmd: 'pong' });
        return;
    }
  }
}

/** Constant-time comparison (of digests, so lengths leak nothing either). */
function tokenMatches(expected: string | undefined, given: string): boolean {
  if (expected === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
