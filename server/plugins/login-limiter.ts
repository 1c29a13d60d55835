// Login attempts per client address: a fixed one-minute window per key. The key is request.ip, which
// Fastify derives from X-Forwarded-For only when `trustProxy` is on, so a client cannot pick its own
// key by sending that header. The map is bounded: at most `maxKeys` windows are kept, oldest dropped.

import { sbError } from '../../protocol/errors.js';

export class LoginLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly attemptsPerMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** Counts one attempt; throws SB_ERR_RATE_LIMITED (429) once the window's budget is spent. */
  hit(key: string): void {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= 60_000) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    if (window.count > this.attemptsPerMinute) {
      const retry = Math.ceil((window.start + 60_000 - now) / 1000);
      throw Object.assign(sbError('SB_ERR_RATE_LIMITED', `at most ${this.attemptsPerMinute} login attempts a minute`), { retryAfter: retry });
    }
  }
}
