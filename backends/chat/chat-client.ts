// The chat service's client, used by `sockbridge chat` and by tests (the gateway may speak raw
// frames instead). connect() resolves after "welcome"; then every ChatEvent is emitted under its
// `cmd` ('message', 'presence', …; errors as 'refusal') and as 'event'. say() and dm() resolve with the server's copy
// of the message (the ack: stored in SQLite before it was sent) or reject with the refusal, or with
// SB_ERR_TIMEOUT when no ack comes within replyTimeoutMs (the connection is then given up).
// Every event is checked (parseChatEvent) before anyone sees it: one of the wrong shape is a broken
// or hostile service, and ends the connection with SB_ERR_MESSAGE_INVALID, the close reason.

import net from 'node:net';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { WholeFrameDecoder, encodeFrame } from '../../protocol/frame-codec.js';
import { sbError, isErrorCode, SockbridgeError } from '../../protocol/errors.js';
import {
  CHAT_LIMITS,
  parseChatEvent,
  type ChatErrorEvent,
  type ChatEvent,
  type ChatRequest,
  type DirectEvent,
  type MessageEvent,
  type WelcomeEvent,
} from '../../protocol/chat-messages.js';
import { decodeChunk } from '../lib/decode-chunk.js';
import { endSocket } from '../lib/end-socket.js';

export interface ChatConnectOptions {
  nick: string;
  room?: string;
  gatewayToken?: string;
  /** give up on connect + hello after this long (default 10 s) */
  timeoutMs?: number;
  /** give up on a say or dm the server has not acknowledged after this long, and on the connection (default 10 s, as for hello) */
  replyTimeoutMs?: number;
}

const DEFAULT_REPLY_TIMEOUT_MS = 10_000;

type EventsByCmd = { [E in ChatEvent as E['cmd']]: [E] };
/**
 * Every event under its cmd, except that an error event is emitted as 'refusal' (an EventEmitter
 * 'error' with no listener would throw). 'event' carries every event; 'close' the end.
 */
export type ChatClientEvents = Omit<EventsByCmd, 'error'> & { refusal: [ChatErrorEvent]; event: [ChatEvent]; close: [] };

/** A refusal from the server, as an Error with the server's code (and retryAfterMs when rate-limited). */
export class ChatRefusal extends SockbridgeError {
  readonly retryAfterMs: number | undefined;
  constructor(event: ChatErrorEvent) {
    super(isErrorCode(event.code) ? event.code : 'SB_ERR_INTERNAL', event.message);
    this.message = event.message;
    this.retryAfterMs = event.retryAfterMs;
  }
}

interface Pending {
  resolve(event: MessageEvent | DirectEvent): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ChatClient extends EventEmitter<ChatClientEvents> {
  private readonly pending = new Map<string, Pending>();
  private closedError: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    readonly welcome: WelcomeEvent,
    private readonly replyTimeoutMs: number,
  ) {
    super();
  }

  /** Why the connection ended (once 'close' was emitted): lost, timed out, or a malformed event. */
  get closeReason(): Error | undefined {
    return this.closedError;
  }

  get nick(): string {
    return this.welcome.nick;
  }

  static connect(host: string, port: number, options: ChatConnectOptions): Promise<ChatClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const decoder = new WholeFrameDecoder({ maxHeaderBytes: CHAT_LIMITS.eventMaxBytes, maxBodyBytes: 0 });
      let client: ChatClient | undefined;
      // Events that arrive with "welcome" (the "joined" right behind it), and the end of the
      // connection, wait until the caller, resumed by the resolved promise, has had a chance to
      // attach its listeners: a 'close' emitted before that would never be heard.
      let held: ((c: ChatClient) => void)[] | undefined;
      const toClient = (act: (c: ChatClient) => void) => (held ? held.push(act) : act(client!));
      const timer = setTimeout(() => fail(sbError('SB_ERR_TIMEOUT', options.timeoutMs ?? 10_000, `chat hello to ${host}:${port}`)), options.timeoutMs ?? 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };

      socket.once('connect', () => {
        const hello: ChatRequest = { cmd: 'hello', nick: options.nick };
        if (options.room !== undefined) hello.room = options.room;
        if (options.gatewayToken !== undefined) hello.gatewayToken = options.gatewayToken;
        socket.write(encodeRequest(hello));
      });
      socket.on('data', (chunk: Buffer) => {
        const frames = decodeChunk(decoder, chunk, (err) => {
          if (client) toClient((c) => c.shutdown(err as Error));
          else fail(err as Error);
        });
        if (!frames) return;
        for (const { header } of frames) {
          let event: ChatEvent | undefined;
          try {
            event = parseChatEvent(header);
          } catch (err) {
            if (!client) return fail(err as Error);
            socket.destroy(); // read nothing more from a service that sends such things
            toClient((c) => c.shutdown(err as Error));
            return;
          }
          if (event === undefined) continue;
          if (client) {
            const e = event;
            toClient((c) => c.dispatch(e));
          } else if (event.cmd === 'welcome') {
            clearTimeout(timer);
            client = new ChatClient(socket, event, options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS);
            held = [];
            setImmediate(() => {
              const acts = held ?? [];
              held = undefined;
              for (const act of acts) act(client!);
            });
            resolve(client);
          } else if (event.cmd === 'error') {
            fail(new ChatRefusal(event));
            return;
          }
        }
      });
      socket.on('error', (err) => {
        if (client) toClient((c) => c.shutdown(err));
        else fail(sbError('SB_ERR_CONNECT', `${host}:${port}`, (err as NodeJS.ErrnoException).code ?? err.message));
      });
      socket.on('close', () => {
        if (client) toClient((c) => c.shutdown(sbError('SB_ERR_CONNECT', `${host}:${port}`, 'connection closed')));
        else fail(sbError('SB_ERR_CONNECT', `${host}:${port}`, 'closed before welcome'));
      });
    });
  }

  /** Sends any request as is. */
  send(request: ChatRequest): void {
    if (this.closedError) throw this.closedError;
    this.socket.write(encodeRequest(request));
  }

  /**
   * Says `text` in `room`; resolves with the stored message once the server acknowledged it.
   * `ref` (default: a new random one) is the message's idempotency key: a retry of the same message
   * passes the same ref (newRef()), and the service then stores and delivers it at most once.
   */
  say(room: string, text: string, ref = newRef()): Promise<MessageEvent> {
    return this.request({ cmd: 'say', room, text, ref }) as Promise<MessageEvent>;
  }

  /** Sends a direct message; resolves with the stored message once acknowledged. `ref` as for say(). */
  dm(to: string, text: string, ref = newRef()): Promise<DirectEvent> {
    return this.request({ cmd: 'dm', to, text, ref }) as Promise<DirectEvent>;
  }

  private request(request: ChatRequest & { ref: string }): Promise<MessageEvent | DirectEvent> {
    const { ref } = request;
    return new Promise((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      // one ack settles one call: a second call with the same ref would never hear its own
      if (this.pending.has(ref)) return reject(sbError('SB_ERR_BAD_REQUEST', `ref ${ref} is already waiting for its acknowledgement`));
      // A service that takes this long to store one message is not working: waiting on would hang
      // `echo hi | sockbridge chat` for ever, and what it did with the message is unknown anyway.
      const timer = setTimeout(() => this.shutdown(sbError('SB_ERR_TIMEOUT', this.replyTimeoutMs, `no acknowledgement of "${request.cmd}" from the chat service`)), this.replyTimeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this.send(request);
    });
  }

  private dispatch(event: ChatEvent): void {
    if ((event.cmd === 'message' || event.cmd === 'direct' || event.cmd === 'error') && event.ref !== undefined) {
      const pending = this.pending.get(event.ref);
      if (pending) {
        clearTimeout(pending.timer);
        this.pending.delete(event.ref);
        if (event.cmd === 'error') pending.reject(new ChatRefusal(event));
        else pending.resolve(event);
      }
    }
    this.emit('event', event);
    (this.emit as (name: string, e: ChatEvent) => boolean)(event.cmd === 'error' ? 'refusal' : event.cmd, event);
  }

  private shutdown(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.socket.destroy();
    this.emit('close');
  }

  /** Ends the connection; resolves once it is closed. */
  close(): Promise<void> {
    return endSocket(this.socket, 2000);
  }
}

/** A message ref: 122 random bits, unique across clients (see SayRequest). */
export const newRef = (): string => randomUUID();

function encodeRequest(request: ChatRequest): Buffer {
  return encodeFrame(request as unknown as { cmd: string });
}
