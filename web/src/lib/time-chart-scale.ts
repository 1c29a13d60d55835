// The time chart's vertical scale: fitted to the typical samples, not to one outlier. The first ping
// after a connect pays for the socket's warm-up (tens of ms against a usual 1 ms), and scaling to it
// flattened every later sample onto the zero line.
import type { OffsetSample } from './clock-filter.js';

/** a sample this many times the median extent (plus a little, for a near-zero median) is off the scale */
const OUTLIER_FACTOR = 4;
const OUTLIER_SLACK_MS = 0.5;
const MIN_SPAN_MS = 0.5;

/** How far a sample's uncertainty band reaches from zero. */
export function extent(sample: OffsetSample): number {
  return Math.abs(sample.offset) + sample.delay / 2;
}

/** The smallest of 1, 2, 5 × 10^k at or above `value`, so the axis labels are round numbers. */
export function niceCeil(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * The half-height of the chart in ms: the largest extent among the samples that are not outliers
 * (beyond OUTLIER_FACTOR × the median extent), rounded up to a round number. Outliers are drawn
 * clamped to the edge, marked as off the scale.
 */
export function chartSpan(samples: readonly OffsetSample[]): number {
  if (samples.length === 0) return 1;
  const extents = samples.map(extent).sort((a, b) => a - b);
  const median = extents[Math.floor((extents.length - 1) / 2)]!;
  const limit = median * OUTLIER_FACTOR + OUTLIER_SLACK_MS;
  const typical = extents.filter((e) => e <= limit);
  return niceCeil(Math.max(MIN_SPAN_MS, ...typical));
}
