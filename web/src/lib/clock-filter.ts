// The NTP clock filter, reduced to what a browser needs (RFC 5905 §10): of the recent samples, the one
// with the lowest round-trip delay is the most trustworthy, because its offset error is bounded by ±delay/2.

export interface OffsetSample {
  offset: number;
  delay: number;
}

/** The lowest-delay sample among the last `window` ones; the latest wins a tie. Null when there are none. */
export function bestSample<T extends OffsetSample>(samples: readonly T[], window: number): T | null {
  let best: T | null = null;
  for (const sample of samples.slice(-window)) {
    if (best === null || sample.delay <= best.delay) best = sample;
  }
  return best;
}
