import { describe, expect, it } from 'vitest';
import { measurePrecision, WallClock } from '../../../backends/time/clock.js';

describe('WallClock', () => {
  it('tells wall-clock time with sub-millisecond digits, never running backwards', () => {
    const clock = new WallClock();
    let last = clock.nowNs();
    let subMs = 0;
    for (let i = 0; i < 1000; i++) {
      const now = clock.nowNs();
      expect(now).toBeGreaterThanOrEqual(last);
      if (now % 1_000_000n !== 0n) subMs++;
      last = now;
    }
    expect(subMs).toBeGreaterThan(900);
    // Anchored to Date.now(): same wall clock, within the 1 ms truncation plus scheduling noise.
    expect(Math.abs(Number(clock.nowNs() / 1_000_000n) - Date.now())).toBeLessThan(50);
  });

  it('two independently anchored clocks agree to well under a millisecond', () => {
    const diffs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const a = new WallClock();
      const b = new WallClock();
      const x = a.nowNs();
      const y = b.nowNs();
      const z = a.nowNs();
      diffs.push(Math.abs(Number(y - (x + z) / 2n)));
    }
    // The best of five (a preempted one can be off): the anchor is at a millisecond edge, not anywhere in it.
    expect(Math.min(...diffs)).toBeLessThan(200_000);
  });

  it('states its precision as an RFC 5905 log2-seconds exponent', () => {
    const p = measurePrecision();
    expect(Number.isInteger(p)).toBe(true);
    expect(p).toBeGreaterThanOrEqual(-29);
    expect(p).toBeLessThanOrEqual(-10);
  });
});
