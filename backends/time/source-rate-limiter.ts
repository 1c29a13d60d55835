// Per-source token buckets with a bounded table. A UDP source address costs nothing to forge,
// so the table must not grow with the number of sources: it is an LRU of at most `maxSources`
// entries (a Map keeps insertion order; a touched entry is moved to the end, the oldest goes
// first). An evicted source starts again with a full bucket, which is the price of bounded
// memory; a flood of forged sources therefore sees at most `burst` answers per address, each no
// larger than its request.

import { TokenBucket, type RateLimit as BucketLimit } from '../lib/token-bucket.js';

export interface RateLimit {
  /** tokens added per second (sustained rate) */
  perSecond: number;
  /** bucket size (largest burst) */
  burst: number;
}

export class SourceRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly bucketLimit: BucketLimit;

  constructor(
    limit: RateLimit,
    private readonly maxSources: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.bucketLimit = { capacity: limit.burst, intervalMs: (limit.burst * 1000) / limit.perSecond };
  }

  /** Takes one token for `source`; false when its bucket is empty (the caller drops the packet). */
  take(source: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(source);
    if (bucket) {
      this.buckets.delete(source);
    } else {
      bucket = new TokenBucket(this.bucketLimit, now);
      if (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
    }
    this.buckets.set(source, bucket);
    return bucket.take(now) === 0;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The rate-limit key of a source address: an IPv4 address itself (an IPv4-mapped IPv6 address
 * counts as its IPv4 address), an IPv6 address its /64 prefix, since one host is routinely given
 * a whole /64 and could otherwise rotate through 2^64 addresses to escape its bucket.
 */
export function sourceKey(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!;
  if (!lower.includes(':')) return lower;
  const [head = '', tail = ''] = lower.replace(/%.*$/, '').split('::');
  const left = head ? head.split(':') : [];
  const right = lower.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = lower.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
