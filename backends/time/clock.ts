// A wall clock with real sub-millisecond resolution for NTP timestamps. Date.now() has 1 ms
// steps, far too coarse for an offset "under 1 ms"; process.hrtime.bigint() has ns resolution
// but no epoch. So the monotonic clock is anchored to the wall clock once, at the instant
// Date.now() ticks over to a new millisecond (that edge is known to within a microsecond or so),
// and re-anchored if the wall clock is stepped (an administrator or ntpd setting the time):
// the answer then follows the system clock, as a server's must.

/**
 * How far the anchored clock may run from Date.now() before it counts as a step of the wall clock
 * and is re-anchored. Date.now() truncates, so while the anchor holds, anchored − Date.now() is in
 * [0, 1 ms); a step larger than this tolerance outside that window is followed.
 */
const STEP_TOLERANCE_NS = 2_000_000n;
const TRUNCATION_NS = 1_000_000n;
/** An edge bracketed wider than this was disturbed (preempted, GC): measure it again. */
const EDGE_WIDTH_NS = 20_000n;
const MAX_EDGE_ATTEMPTS = 20;

export class WallClock {
  private anchorUnixNs = 0n;
  private anchorHr = 0n;

  constructor() {
    this.anchor();
  }

  /** Unix time in nanoseconds. */
  nowNs(): bigint {
    const ns = this.anchorUnixNs + (process.hrtime.bigint() - this.anchorHr);
    // A step shows as a drift outside the window; so does being preempted between the two reads
    // on a busy machine, so a drift must be seen twice in a row before the clock is re-anchored.
    if (this.outOfWindow(ns) && this.outOfWindow(this.anchorUnixNs + (process.hrtime.bigint() - this.anchorHr))) {
      this.anchor();
      return this.anchorUnixNs + (process.hrtime.bigint() - this.anchorHr);
    }
    return ns;
  }

  private outOfWindow(ns: bigint): boolean {
    const drift = ns - BigInt(Date.now()) * 1_000_000n;
    return drift < -STEP_TOLERANCE_NS || drift > TRUNCATION_NS + STEP_TOLERANCE_NS;
  }

  private anchor(): void {
    // Spin (about 1 ms) until Date.now() ticks over. The tick happened after the previous read
    // and before this one, so its monotonic time is bracketed by the hrtime reads around them;
    // a narrow bracket pins the wall clock to within microseconds. On a busy machine the thread
    // can be preempted inside the bracket, so a wide one is measured again (best one kept).
    let best: { width: bigint; hr: bigint; unixMs: number } | undefined;
    for (let attempt = 0; attempt < MAX_EDGE_ATTEMPTS; attempt++) {
      const start = Date.now();
      let before = process.hrtime.bigint();
      let now = start;
      let after = before;
      while (now === start) {
        before = after;
        now = Date.now();
        after = process.hrtime.bigint();
      }
      const width = after - before;
      if (!best || width < best.width) best = { width, hr: before + width / 2n, unixMs: now };
      if (width <= EDGE_WIDTH_NS) break;
    }
    this.anchorUnixNs = BigInt(best!.unixMs) * 1_000_000n;
    this.anchorHr = best!.hr;
  }
}

/**
 * The clock's precision as NTP states it (RFC 5905 §7.3 "Precision"): log2 of the smallest
 * step between two reads, in seconds. Measured, so chrony weighs our samples fairly.
 */
export function measurePrecision(reads = 200): number {
  let smallest = Infinity;
  let last = process.hrtime.bigint();
  for (let i = 0; i < reads; i++) {
    const now = process.hrtime.bigint();
    const step = Number(now - last);
    if (step > 0 && step < smallest) smallest = step;
    last = now;
  }
  if (!Number.isFinite(smallest)) return -20;
  // Clamp to the values real clocks report: -29 (~2 ns) .. -10 (~1 ms).
  return Math.max(-29, Math.min(-10, Math.ceil(Math.log2(smallest / 1e9))));
}
