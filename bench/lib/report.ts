// Benchmarks print figures side by side with their baseline; nothing here asserts a speed.
export interface Row {
  name: string;
  value: number;
  unit: string;
  /** the figure this row is compared with, same unit */
  baseline?: number;
  goal?: string;
}

export function printTable(title: string, rows: Row[]): void {
  process.stdout.write(`\n## ${title}\n`);
  const width = Math.max(...rows.map((r) => r.name.length), 10);
  for (const r of rows) {
    const ratio = r.baseline ? `  ${((r.value / r.baseline) * 100).toFixed(0)}% of baseline (${fmt(r.baseline)} ${r.unit})` : '';
    const goal = r.goal ? `  goal: ${r.goal}` : '';
    process.stdout.write(`${r.name.padEnd(width)}  ${fmt(r.value).padStart(10)} ${r.unit}${ratio}${goal}\n`);
  }
}

const fmt = (v: number) => (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));

export const MB = 1024 * 1024;
export const GB = 1024 * MB;

export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / MB / (ms / 1000);
}

/** Peak resident memory (VmHWM) of a process, in MB, from /proc. */
export async function peakRssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}
