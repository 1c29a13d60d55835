// The time panel's state: the NTP four-timestamp exchange (RFC 5905 §8) over /ws/time.
// Each ping gives an offset and a round-trip delay; the best of the recent ones is shown (clock-filter.ts).
import { ntpOffset, type TimeServerMessage, type TimeStatus } from '../../../protocol/api.js';
import { wsUrl } from './api.js';
import { bestSample } from './clock-filter.js';
import { parseJsonFrame, ReconnectingSocket } from './reconnecting-socket.svelte.js';

export interface TimeSample {
  at: number;
  offset: number;
  delay: number;
}

/** samples kept for the chart */
const HISTORY = 60;
/** the best-of window: the lowest delay among the last few */
const FILTER_WINDOW = 8;
/** a burst on connect so a first answer appears quickly, then a steady pace */
const BURST = 8;
const BURST_INTERVAL_MS = 150;
const INTERVAL_MS = 2000;

export class TimeSync {
  samples = $state<TimeSample[]>([]);
  status = $state<TimeStatus | null>(null);
  /** this tab's clock, ticking, so the displayed server clock moves smoothly */
  now = $state(Date.now());

  best = $derived(bestSample(this.samples, FILTER_WINDOW));
  /** server time estimated from the best sample: browser clock + offset */
  serverNow = $derived(this.best ? this.now + this.best.offset : null);
  /** when the newest sample was taken (browser clock), null before the first */
  lastMeasuredAt = $derived(this.samples.at(-1)?.at ?? null);

  readonly socket: ReconnectingSocket;
  /** not connected: every figure is the last one measured, not a live one */
  stale = $derived.by(() => this.socket.status !== 'up');
  #pingTimer: ReturnType<typeof setTimeout> | null = null;
  #tickTimer: ReturnType<typeof setInterval> | null = null;
  #sent = 0;

  /**
   * Nothing is measured until start(): the shell starts it when the Time panel is first shown, so a tab
   * that never shows it holds no /ws/time socket (the tab's time indicator reads /api/health meanwhile).
   */
  constructor() {
    this.socket = new ReconnectingSocket({
      url: () => wsUrl('/ws/time'),
      startNow: false,
      onOpen: () => {
        this.#sent = 0;
        this.#schedule(0);
      },
      onMessage: (data) => this.#handle(data),
      onClose: () => this.#stopPinging(),
    });
  }

  start(): void {
    this.now = Date.now();
    this.#tickTimer ??= setInterval(() => (this.now = Date.now()), 200);
    this.socket.start();
  }

  close(): void {
    this.#stopPinging();
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    this.#tickTimer = null;
    this.socket.close();
  }

  #schedule(ms: number): void {
    this.#stopPinging();
    this.#pingTimer = setTimeout(() => {
      // performance.timeOrigin + now() is monotonic within the tab, unlike Date.now() which jumps when the OS clock is set
      this.socket.sendJson({ cmd: 'ping', t0: performance.timeOrigin + performance.now() });
      this.#sent++;
      this.#schedule(this.#sent < BURST ? BURST_INTERVAL_MS : INTERVAL_MS);
    }, ms);
  }

  #stopPinging(): void {
    if (this.#pingTimer) clearTimeout(this.#pingTimer);
    this.#pingTimer = null;
  }

  #handle(data: string | ArrayBuffer): void {
    const message = parseJsonFrame<TimeServerMessage>(data);
    if (!message) return;
    if (message.cmd === 'status') {
      this.status = message;
      return;
    }
    const t3 = performance.timeOrigin + performance.now();
    const { offset, delay } = ntpOffset(message.t0, message.t1, message.t2, t3);
    if (!Number.isFinite(offset) || delay < 0) return;
    this.samples.push({ at: Date.now(), offset, delay });
    if (this.samples.length > HISTORY) this.samples.splice(0, this.samples.length - HISTORY);
  }
}
