// Reconnect delays: exponential, capped, with jitter so many tabs do not reconnect in lockstep
// after a gateway restart (the "equal jitter" of AWS's backoff analysis: half fixed, half random).

/** Delay before retry number `attempt` (0-based): in [base/2, base], base = min(maxMs, minMs·2^attempt). */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return base / 2 + random() * (base / 2);
}
