import { describe, expect, it } from 'vitest';
import { bestSample } from '../../../../web/src/lib/clock-filter.js';

describe('bestSample (RFC 5905 §10 clock filter, simplified)', () => {
  it('picks the lowest delay, not the smallest offset', () => {
    const samples = [
      { offset: 0.1, delay: 9 },
      { offset: 4, delay: 0.8 },
      { offset: -2, delay: 3 },
    ];
    expect(bestSample(samples, 8)).toBe(samples[1]);
  });

  it('looks only at the last `window` samples, so an old lucky one ages out', () => {
    const samples = [{ offset: 50, delay: 0.1 }, ...Array.from({ length: 8 }, (_, i) => ({ offset: i, delay: 5 + i }))];
    expect(bestSample(samples, 8)).toEqual({ offset: 0, delay: 5 });
  });

  it('prefers the newer of two equal delays, and returns null for none', () => {
    const a = { offset: 1, delay: 2 };
    const b = { offset: 3, delay: 2 };
    expect(bestSample([a, b], 8)).toBe(b);
    expect(bestSample([], 8)).toBeNull();
  });
});
