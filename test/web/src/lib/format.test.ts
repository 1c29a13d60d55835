import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../../../web/src/lib/format.js';

describe('formatBytes', () => {
  it('uses binary units, one decimal below 10 and none above', () => {
    expect([0, 512, 1536, 12 * 1024 * 1024, 29.4 * 1024 * 1024].map(formatBytes)).toEqual(['0 B', '512 B', '1.5 KiB', '12 MiB', '29 MiB']);
  });

  it('never shows 1024 of a unit: what rounds up to it is the next unit', () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe('1.0 MiB');
    expect(formatBytes(1024 * 1024)).toBe('1.0 MiB');
    expect(formatBytes(1023)).toBe('1023 B');
  });
});
