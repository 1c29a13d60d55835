// The progress line of `sockbridge put` and `get` on stderr:
//   get big.iso [##########          ]  50%  1.2 GiB / 2.4 GiB  38.5 MiB/s
// Drawn only when stderr is a terminal (a pipe or a log file gets no carriage-return noise), at most
// ten times a second. The rate counts this run's bytes only, so a resumed transfer does not claim
// the bytes it already had as speed.

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 512 B, 1.5 KiB, 12.0 MiB, 3.2 GiB: binary units, one decimal. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": show it as the next unit instead.
  if (Number(value.toFixed(1)) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

export interface ProgressState {
  label: string;
  /** bytes of the whole file done, including any resumed from before */
  done: number;
  total: number;
  /** this run's average, or undefined before there is a meaningful one */
  bytesPerSecond: number | undefined;
  /** terminal width */
  columns: number;
}

/** One progress line (no carriage return, no newline). */
export function formatProgress({ label, done, total, bytesPerSecond, columns }: ProgressState): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 1;
  const figures =
    `${(ratio * 100).toFixed(0).padStart(3)}%  ${formatBytes(done)} / ${formatBytes(total)}` +
    (bytesPerSecond === undefined ? '' : `  ${formatBytes(Math.round(bytesPerSecond))}/s`);
  const width = Math.max(10, Math.min(40, columns - label.length - figures.length - 5));
  const filled = Math.round(ratio * width);
  return `${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${figures}`;
}

export interface ProgressBar {
  /** `done`: bytes of the whole file so far */
  update(done: number): void;
  /** draws the final state and ends the line */
  done(): void;
  /** ends the line as it stands (a failure: the error goes on a line of its own) */
  stop(): void;
}

const NO_BAR: ProgressBar = { update: () => undefined, done: () => undefined, stop: () => undefined };

/** `start`: bytes already there before this run (a resumed transfer). */
export function progressBar(label: string, total: number, start = 0, out: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!out.isTTY) return NO_BAR;
  const began = Date.now();
  let last = 0;
  let latest = start;
  let drawn = false;
  const draw = () => {
    drawn = true;
    const seconds = (Date.now() - began) / 1000;
    const bytesPerSecond = seconds >= 0.5 ? (latest - start) / seconds : undefined;
    out.write(`\r${formatProgress({ label, done: latest, total, bytesPerSecond, columns: out.columns || 80 })}\x1b[K`);
  };
  return {
    update(done) {
      latest = done;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw();
    },
    done() {
      latest = Math.max(latest, total);
      draw();
      out.write('\n');
    },
    stop() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}
