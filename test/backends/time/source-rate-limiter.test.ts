import { describe, expect, it } from 'vitest';
import { sourceKey, SourceRateLimiter } from '../../../backends/time/source-rate-limiter.js';

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

describe('sourceKey', () => {
  it('keys IPv4 by address and IPv6 by its /64, so one host cannot rotate addresses to escape its bucket', () => {
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2::1')).toBe(sourceKey('2001:0DB8:0001:0002:ffff::9'));
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('2001:db8:1:3::1')).not.toBe(sourceKey('2001:db8:1:2::1'));
  });
});
