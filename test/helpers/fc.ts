// fast-check runs with a fixed seed (FC_SEED, set in vitest.config.ts) so CI is repeatable;
// FUZZ_RUNS raises the number of runs for `npm run fuzz`.
import fc from 'fast-check';

export const fcOptions = (runs = 200): fc.Parameters<unknown> => ({
  seed: Number(process.env['FC_SEED'] ?? 20261125),
  numRuns: Number(process.env['FUZZ_RUNS'] ?? runs),
});

/** Split `data` at the given cut points (any numbers; reduced modulo the length and sorted). */
export function splitAt(data: Uint8Array, cuts: number[]): Uint8Array[] {
  if (data.length === 0) return [data];
  const points = [...new Set(cuts.map((c) => Math.abs(c) % data.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    parts.push(data.subarray(last, p));
    last = p;
  }
  parts.push(data.subarray(last));
  return parts;
}

/** The usual xxd-style dump, used to keep byte dumps in docs/ honest. */
export function hexdump(buf: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i += 16) {
    const b = [...buf.subarray(i, i + 16)];
    const hex = b.map((x) => x.toString(16).padStart(2, '0'));
    const ascii = b.map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.slice(0, 8).join(' ').padEnd(23)}  ${hex.slice(8).join(' ').padEnd(23)}  |${ascii}|`);
  }
  return lines.join('\n');
}
