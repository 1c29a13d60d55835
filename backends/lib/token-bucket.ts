// Token-bucket rate limiting (chat's per-nick limits, time's per-source limits): `capacity` requests
// at once, refilled at capacity per `intervalMs`.
// Time is passed in (never read here) so the logic stays pure and testable.

export interface RateLimit {
  /** burst size: how many requests pass at once */
  capacity: number;
  /** time in which a full bucket refills */
  intervalMs: number;
}

export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(private readonly limit: RateLimit, now: number) {
    this.tokens = limit.capacity;
    this.updated = now;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updated);
    this.tokens = Math.min(this.limit.capacity, this.tokens + (elapsed * this.limit.capacity) / this.limit.intervalMs);
    this.updated = now;
  }

  /** Takes one token: 0 if it passed, otherwise the ms until one will be available (nothing taken). */
  take(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * this.limit.intervalMs) / this.limit.capacity);
  }

  /** Ms until one token is available, without taking it. */
  wait(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * this.limit.intervalMs) / this.limit.capacity);
  }

  /** True when the bucket is full again: forgetting it changes nothing. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.limit.capacity;
  }
}
