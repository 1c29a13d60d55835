import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../backends/lib/token-bucket.js';

describe('TokenBucket', () => {
  it('passes a burst of capacity, then says how long to wait, and refills over time', () => {
    const b = new TokenBucket({ capacity: 2, intervalMs: 1000 }, 0);
    expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBe(500);
    expect(b.wait(250)).toBe(250);
    expect(b.take(500)).toBe(0);
    expect(b.isFull(500)).toBe(false);
    expect(b.isFull(1500)).toBe(true);
    // never above capacity however long it rests
    expect(b.take(1e9)).toBe(0);
    expect(b.take(1e9)).toBe(0);
    expect(b.take(1e9)).toBeGreaterThan(0);
  });
});
