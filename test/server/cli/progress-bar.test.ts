// The put/get progress line: human-readable sizes (binary units, one decimal) and the rate, drawn
// only on a terminal.
import { describe, expect, it } from 'vitest';
import { formatBytes, formatProgress, progressBar } from '../../../server/cli/progress-bar.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'], // 1023.999 KiB rounds up into the next unit, never "1024.0 KiB"
    [12.34 * 1024 ** 2, '12.3 MiB'],
    [3.25 * 1024 ** 3, '3.3 GiB'],
    [5 * 1024 ** 4, '5.0 TiB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatProgress', () => {
  it('shows the share, done / total in units, and the rate', () => {
    const line = formatProgress({ label: 'get big.iso', done: 1.25 * 1024 ** 3, total: 2.5 * 1024 ** 3, bytesPerSecond: 38.5 * 1024 ** 2, columns: 80 });
    expect(line).toMatch(/^get big\.iso \[#+ +\]  50%  1\.3 GiB \/ 2\.5 GiB  38\.5 MiB\/s$/);
    expect(line.length).toBeLessThanOrEqual(80);
  });

  it('leaves the rate out until there is one, and counts an empty file as complete', () => {
    expect(formatProgress({ label: 'put x', done: 0, total: 0, bytesPerSecond: undefined, columns: 80 })).toMatch(/\] 100%  0 B \/ 0 B$/);
  });
});

describe('progressBar', () => {
  const stream = (isTTY: boolean) => {
    const written: string[] = [];
    return { written, out: { isTTY, columns: 80, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream };
  };

  it('draws on a terminal and ends the line when done', () => {
    const { written, out } = stream(true);
    const bar = progressBar('get f', 2048, 1024, out);
    bar.update(1536);
    bar.done();
    expect(written.at(-2)).toMatch(/^\rget f \[#+\] 100%  2\.0 KiB \/ 2\.0 KiB\x1b\[K$/);
    expect(written.at(-1)).toBe('\n');
  });

  it('writes nothing when stderr is not a terminal', () => {
    const { written, out } = stream(false);
    const bar = progressBar('get f', 2048, 0, out);
    bar.update(2048);
    bar.done();
    bar.stop();
    expect(written).toEqual([]);
  });
});
