import { describe, expect, it } from 'vitest';
import { chartSpan, niceCeil } from '../../../../web/src/lib/time-chart-scale.js';

describe('chartSpan (the time chart scale)', () => {
  it('ignores a warm-up outlier, so the typical samples fill the chart', () => {
    const samples = [{ offset: -24, delay: 20 }, ...Array.from({ length: 12 }, (_, i) => ({ offset: 0.1 * (i % 3), delay: 1 + 0.1 * i }))];
    // typical extents reach 0.2 + 2.1 / 2 = 1.25 ms; the outlier's 34 ms does not count
    expect(chartSpan(samples)).toBe(2);
  });

  it('keeps samples that are all large: a real offset is not an outlier', () => {
    expect(chartSpan([{ offset: 30, delay: 2 }, { offset: 31, delay: 2 }, { offset: 29, delay: 3 }])).toBe(50);
  });

  it('has a floor and a default', () => {
    expect(chartSpan([{ offset: 0.01, delay: 0.02 }])).toBe(0.5);
    expect(chartSpan([])).toBe(1);
  });

  it('rounds up to 1, 2 or 5 × 10^k', () => {
    expect([0.3, 1, 1.01, 2.5, 7, 10, 120].map(niceCeil)).toEqual([0.5, 1, 2, 5, 10, 10, 200]);
  });
});
