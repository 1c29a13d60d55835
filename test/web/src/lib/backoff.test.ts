import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../../../web/src/lib/backoff.js';

describe('backoffDelay', () => {
  it('doubles from the minimum and stops at the maximum', () => {
    const top = () => 1; // random() at its upper end: the delay equals the base
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, 500, 15_000, top))).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
  });

  it('jitters within [base/2, base]', () => {
    expect(backoffDelay(3, 500, 15_000, () => 0)).toBe(2000);
    expect(backoffDelay(3, 500, 15_000, () => 0.5)).toBe(3000);
  });

  it('never overflows to Infinity after many failures', () => {
    expect(backoffDelay(5000, 500, 15_000, () => 1)).toBe(15_000);
  });
});
