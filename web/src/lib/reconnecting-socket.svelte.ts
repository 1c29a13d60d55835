// A WebSocket that reconnects with exponential backoff and jitter, and exposes its state as runes.
// Each panel owns one; close() stops it for good (logout, unmount). A socket made with
// `startNow: false` waits for start() (a panel not yet shown), and stop() puts it back to waiting
// (the terminal of an account that lost the admin role).
import { backoffDelay } from './backoff.js';

/** `idle`: not started, or stopped; nothing is open or scheduled. */
export type SocketStatus = 'idle' | 'connecting' | 'up' | 'down';

/** The close reason of a socket the gateway refused because the account has too many open (docs/api.md § WebSockets). */
const TOO_MANY_SOCKETS = 'SB_ERR_TOO_MANY_SOCKETS';
/** What the page says for it: the cause and the cure, not a bare code or 1006. */
export const TOO_MANY_SOCKETS_TEXT = 'too many open connections for this account (close other tabs)';
/**
 * Close reasons that mean the same to a person: the chat service's own cap on one account's chat
 * connections (maxConnectionsPerNick, 8) is reached before the gateway's when many tabs are open.
 */
const TOO_MANY_REASONS = new Set([TOO_MANY_SOCKETS, 'SB_ERR_CHAT_TOO_MANY_CONNECTIONS']);
/**
 * Retrying a socket refused for the account's socket limit: only another tab closing makes room, so
 * every tab retries slowly (and with jitter, so they do not take the freed place in lockstep).
 */
const TOO_MANY_RETRY_MS = { min: 15_000, max: 30_000 };

export interface ReconnectingSocketOptions {
  url: () => string;
  onOpen?: (ws: WebSocket) => void;
  onMessage: (data: string | ArrayBuffer) => void;
  onClose?: (event: CloseEvent) => void;
  /** first retry delay, doubled each failure up to maxDelayMs */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * The backoff starts over once a connection stayed open this long (or on markHealthy()), not when
   * it opens: the gateway accepts the upgrade and then closes at once when the backend is down (1011)
   * or it has too many sockets (1013), and such a cycle must still back off.
   */
  stableAfterMs?: number;
  /** connect at once (default) or wait for start() */
  startNow?: boolean;
}

/** A text frame parsed as JSON, or undefined for a binary frame or text that is not JSON (ignored by every panel). */
export function parseJsonFrame<T>(data: string | ArrayBuffer): T | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}

/** Close codes after which retrying cannot help: the session is gone or the role forbids it (RFC 6455 §7.4). */
const FATAL_CLOSE_CODES = new Set([1008, 4401, 4403]);

export class ReconnectingSocket {
  status = $state<SocketStatus>('connecting');
  /** last close reason from the gateway, shown beside the indicator */
  lastError = $state<string | null>(null);
  attempts = $state(0);
  /** true after a close that retrying cannot fix (policy, session ended); retryNow() still works */
  gaveUp = $state(false);
  /**
   * true after the gateway refused this socket for the account's socket limit (closed at once with
   * SB_ERR_TOO_MANY_SOCKETS), until a connection delivers a message: the service is not down, the
   * account has too many tabs open. lastError then says so in words.
   */
  tooManySockets = $state(false);

  #ws: WebSocket | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stableTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  readonly #options: Required<Omit<ReconnectingSocketOptions, 'onOpen' | 'onClose'>> & ReconnectingSocketOptions;

  constructor(options: ReconnectingSocketOptions) {
    this.#options = { minDelayMs: 500, maxDelayMs: 15_000, stableAfterMs: 10_000, startNow: true, ...options };
    if (this.#options.startNow) this.#connect();
    else this.status = 'idle';
  }

  /** Connects a socket that is idle (never started, or stopped); anything else is left as it is. */
  start(): void {
    if (this.#closed || this.status !== 'idle') return;
    this.#connect();
  }

  /** Closes the connection and any retry, and waits for start() again. */
  stop(): void {
    if (this.#closed || this.status === 'idle') return;
    this.#disconnect();
    this.status = 'idle';
    this.lastError = null;
    this.gaveUp = false;
    this.tooManySockets = false;
    this.attempts = 0;
  }

  get socket(): WebSocket | null {
    return this.#ws;
  }

  /** Sends when connected; returns false (and drops nothing silently: the caller decides) otherwise. */
  send(data: string | Uint8Array): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data);
    return true;
  }

  sendJson(message: unknown): boolean {
    return this.send(JSON.stringify(message));
  }

  /** Reconnect now, skipping the backoff wait (the "retry" button). */
  retryNow(): void {
    if (this.#closed || this.#ws || this.status === 'idle') return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#connect();
  }

  /** The backend answered for real (chat's welcome): the connection works, so the backoff starts over. */
  markHealthy(): void {
    this.#clearStableTimer();
    this.attempts = 0;
  }

  close(): void {
    this.#closed = true;
    this.#disconnect();
    this.status = 'down';
  }

  #disconnect(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#clearStableTimer();
    this.#ws?.close(1000, 'bye');
    this.#ws = null;
  }

  #connect(): void {
    this.status = 'connecting';
    this.gaveUp = false;
    const ws = new WebSocket(this.#options.url());
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      this.status = 'up';
      this.lastError = null;
      this.#stableTimer = setTimeout(() => this.markHealthy(), this.#options.stableAfterMs);
      this.#options.onOpen?.(ws);
    };
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      // the gateway sends nothing on a socket it refuses: a message means this one was admitted
      this.tooManySockets = false;
      this.#options.onMessage(event.data);
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearStableTimer();
      this.status = 'down';
      this.tooManySockets = TOO_MANY_REASONS.has(event.reason);
      if (this.tooManySockets) this.lastError = TOO_MANY_SOCKETS_TEXT;
      else if (event.code !== 1000 && event.code !== 1005) this.lastError = event.reason || `closed (${event.code})`;
      this.#options.onClose?.(event);
      if (this.#closed) return;
      if (FATAL_CLOSE_CODES.has(event.code)) {
        this.gaveUp = true;
        return;
      }
      this.#scheduleReconnect();
    };
  }

  #clearStableTimer(): void {
    if (this.#stableTimer) clearTimeout(this.#stableTimer);
    this.#stableTimer = null;
  }

  #scheduleReconnect(): void {
    const delay = this.tooManySockets
      ? TOO_MANY_RETRY_MS.min + Math.random() * (TOO_MANY_RETRY_MS.max - TOO_MANY_RETRY_MS.min)
      : backoffDelay(this.attempts, this.#options.minDelayMs, this.#options.maxDelayMs);
    this.attempts++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#closed) this.#connect();
    }, delay);
  }
}
