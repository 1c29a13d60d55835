// A WebSocket that reconnects with exponential backoff and jitter, and exposes its state as runes.
// Each panel owns one; close() stops it for good (logout, unmount).
import { backoffDelay } from './backoff.js';

export type SocketStatus = 'connecting' | 'up' | 'down';

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

  #ws: WebSocket | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stableTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  readonly #options: Required<Omit<ReconnectingSocketOptions, 'onOpen' | 'onClose'>> & ReconnectingSocketOptions;

  constructor(options: ReconnectingSocketOptions) {
    this.#options = { minDelayMs: 500, maxDelayMs: 15_000, stableAfterMs: 10_000, ...options };
    this.#connect();
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
    if (this.#closed || this.#ws) return;
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
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#clearStableTimer();
    this.#ws?.close(1000, 'bye');
    this.#ws = null;
    this.status = 'down';
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
    ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => this.#options.onMessage(event.data);
    ws.onclose = (event) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearStableTimer();
      this.status = 'down';
      if (event.code !== 1000 && event.code !== 1005) this.lastError = event.reason || `closed (${event.code})`;
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
    const delay = backoffDelay(this.attempts, this.#options.minDelayMs, this.#options.maxDelayMs);
    this.attempts++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#closed) this.#connect();
    }, delay);
  }
}
