import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter, type LineItem } from '../../../backends/chat/line-splitter.js';
import { fcOptions, splitAt } from '../../helpers/fc.js';

const feed = (splitter: LineSplitter, chunks: Uint8Array[]): LineItem[] => chunks.flatMap((c) => splitter.push(Buffer.from(c)));

describe('LineSplitter', () => {
  it('splits on LF, drops the CR of CR LF, keeps a partial line until flush', () => {
    const s = new LineSplitter(100);
    expect(s.push(Buffer.from('a\r\nb\nc'))).toEqual([
      { type: 'line', text: 'a' },
      { type: 'line', text: 'b' },
    ]);
    expect(s.hasPartial).toBe(true);
    expect(s.flush()).toEqual([{ type: 'line', text: 'c' }]);
    expect(s.flush()).toEqual([]);
  });

  it('refuses a line over the limit once, skips the rest of it, and resumes at the next line', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcd'))).toEqual([]);
    expect(s.push(Buffer.from('efg'))).toEqual([{ type: 'too-long', bytes: 7 }]);
    expect(s.push(Buffer.from('hij'))).toEqual([]);
    expect(s.push(Buffer.from('k\nok\n'))).toEqual([{ type: 'line', text: 'ok' }]);
    expect(s.push(Buffer.from('abcd\r\n'))).toEqual([{ type: 'line', text: 'abcd' }]);
  });

  it('a flush ends a refused line that has no newline, so the next bytes start a new line (the seed client sends none)', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcdefg'))).toEqual([{ type: 'too-long', bytes: 7 }]);
    expect(s.isSkipping).toBe(true);
    expect(s.flush()).toEqual([]);
    expect(s.isSkipping).toBe(false);
    expect(s.push(Buffer.from('ok'))).toEqual([]);
    expect(s.flush()).toEqual([{ type: 'line', text: 'ok' }]);
  });

  it('decodes a multi-byte character split across chunks, and replaces invalid UTF-8', () => {
    const s = new LineSplitter(100);
    const bytes = Buffer.from('né\n');
    expect(s.push(bytes.subarray(0, 2))).toEqual([]);
    expect(s.push(bytes.subarray(2))).toEqual([{ type: 'line', text: 'né' }]);
    expect(s.push(Buffer.from([0x61, 0xff, 0x0a]))).toEqual([{ type: 'line', text: 'a\ufffd' }]);
  });

  it('yields the same lines however the input is chunked', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 8 }), fc.array(fc.nat()), (lines, cuts) => {
        const input = Buffer.from(lines.map((l) => l.replace(/[\r\n]/g, '') + '\n').join(''));
        const whole = feed(new LineSplitter(40), [input]);
        expect(feed(new LineSplitter(40), splitAt(input, cuts))).toEqual(whole);
      }),
      fcOptions(),
    );
  });
});
