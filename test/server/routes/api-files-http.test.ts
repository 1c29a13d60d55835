import { describe, expect, it } from 'vitest';
import { bodyStart, contentDisposition, guessBodyStart, matchesIfNoneMatch, parseRange, planDownload } from '../../../server/routes/api-files-http.js';

describe('Range (RFC 9110 §14)', () => {
  it('parses the single-range forms against the size', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=90-500', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-500', 100)).toEqual({ start: 0, end: 99 });
  });
  it('is unsatisfiable past the end, ignored when malformed or multiple', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    for (const h of [undefined, '', 'items=0-1', 'bytes=0-1,5-6', 'bytes=5-1', 'bytes=-', 'bytes=a-b']) expect(parseRange(h, 100)).toBeNull();
  });
});

describe('Content-Disposition (RFC 6266)', () => {
  it('gives an ASCII fallback and the exact UTF-8 name', () => {
    expect(contentDisposition('report.pdf')).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
    expect(contentDisposition('naïve "quote"\\.txt')).toBe(`attachment; filename="na_ve _quote__.txt"; filename*=UTF-8''na%C3%AFve%20%22quote%22%5C.txt`);
    expect(contentDisposition("it's (1).txt")).toContain(`filename*=UTF-8''it%27s%20%281%29.txt`);
  });
});

describe('If-None-Match', () => {
  it('matches strong, weak and * tags', () => {
    expect(matchesIfNoneMatch('"abc"', '"abc"')).toBe(true);
    expect(matchesIfNoneMatch('W/"x", "abc"', '"abc"')).toBe(true);
    expect(matchesIfNoneMatch('*', '"abc"')).toBe(true);
    expect(matchesIfNoneMatch('"abd"', '"abc"')).toBe(false);
    expect(matchesIfNoneMatch(undefined, '"abc"')).toBe(false);
  });
});

describe('planDownload (RFC 9110 §13.2.2: If-None-Match, then If-Range, then Range)', () => {
  const entry = { size: 100, sha256: 'abc' };
  it('answers from the entry it is given', () => {
    expect(planDownload({}, entry)).toEqual({ kind: 'whole' });
    expect(planDownload({ ifNoneMatch: '"abc"', range: 'bytes=0-9' }, entry)).toEqual({ kind: 'not-modified' });
    expect(planDownload({ range: 'bytes=10-19' }, entry)).toEqual({ kind: 'range', start: 10, end: 19 });
    expect(planDownload({ range: 'bytes=100-' }, entry)).toEqual({ kind: 'unsatisfiable' });
  });
  it('If-Range: the range only for the same version, compared strongly; a date or weak tag never matches', () => {
    expect(planDownload({ range: 'bytes=10-', ifRange: '"abc"' }, entry)).toEqual({ kind: 'range', start: 10, end: 99 });
    for (const ifRange of ['"abd"', 'W/"abc"', 'Wed, 25 Nov 2026 10:00:00 GMT']) expect(planDownload({ range: 'bytes=10-', ifRange }, entry)).toEqual({ kind: 'whole' });
    // a stale partial copy past the new end still gets the whole new file, not a 416
    expect(planDownload({ range: 'bytes=500-', ifRange: '"old"' }, entry)).toEqual({ kind: 'whole' });
  });
  it('bodyStart and guessBodyStart', () => {
    expect(bodyStart({ kind: 'whole' })).toBe(0);
    expect(bodyStart({ kind: 'range', start: 7, end: 9 })).toBe(7);
    expect(bodyStart({ kind: 'not-modified' })).toBeNull();
    expect(bodyStart({ kind: 'unsatisfiable' })).toBeNull();
    expect(guessBodyStart({})).toBe(0);
    expect(guessBodyStart({ range: 'bytes=500-' })).toBe(500);
    expect(guessBodyStart({ range: 'bytes=5-1' })).toBe(0); // ignored: the whole file
    expect(guessBodyStart({ range: 'bytes=-10' })).toBeUndefined();
    expect(guessBodyStart({ ifNoneMatch: '"abc"' })).toBeUndefined();
  });
});
