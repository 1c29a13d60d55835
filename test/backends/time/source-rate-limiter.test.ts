import { describe, expect, it } from 'vitest';
import { SourceRateLimiter } from '../../../backends/time/source-rate-limiter.js';

describe('SourceRateLimiter', () => {
  it('allows a burst, then refills at the sustained rate', () => {
    let now = 0;
    const limiter = new SourceRateLimiter({ perSecond: 2, burst: 3 }, 100, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]);
    now += 499;
    expect(limiter.take('a')).toBe(false);
    now += 2;
    expect(limiter.take('a')).toBe(true); // 0.5 s at 2/s = one token
    now += 60_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]); // capped at the burst
  });

  it('keeps sources apart', () => {
    const limiter = new SourceRateLimiter({ perSecond: 1, burst: 1 }, 100, () => 0);
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
    expect(limiter.take('b')).toBe(true);
  });

  it('never holds more than maxSources entries, however many sources (forged) appear', () => {
    const limiter = new SourceRateLimiter({ perSecond: 1, burst: 1 }, 1000, () => 0);
    for (let i = 0; i < 50_000; i++) limiter.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(limiter.size).toBe(1000);
  });

  it('evicts the least recently used source, not a busy one', () => {
    const limiter = new SourceRateLimiter({ perSecond: 1, burst: 1 }, 2, () => 0);
    limiter.take('busy');
    limiter.take('idle');
    limiter.take('busy'); // refused, but touched: now the most recent
    limiter.take('new'); // evicts "idle"
    expect(limiter.take('busy')).toBe(false); // still remembered, still empty
    expect(limiter.take('idle')).toBe(true); // forgotten: a fresh bucket
  });
});
