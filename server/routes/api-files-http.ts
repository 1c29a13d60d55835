// HTTP details of file downloads, kept pure for testing: Range (RFC 9110 §14), Content-Disposition
// with a UTF-8 name (RFC 6266 §4.3 + RFC 8187), ETag from the content hash (RFC 9110 §8.8.3).

/** One satisfiable byte range, inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a Range header against a file of `size` bytes.
 * - `null`: no usable Range (absent, another unit, several ranges, or malformed): serve the whole file,
 *   as RFC 9110 §14.2 allows a server to ignore it.
 * - `'unsatisfiable'`: answer 416 with `Content-Range: bytes *\/size`.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  const [first, last] = [m[1]!, m[2]!];
  if (first === '') {
    // suffix range: the last N bytes
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  if (last !== '' && Number(last) < start) return null;
  return { start, end };
}

/** `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266 §4.3). */
export function contentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

export const etagOf = (sha256: string): string => `"${sha256}"`;

/** If-None-Match: `*` or a list of (weak or strong) tags; weak comparison (RFC 9110 §13.1.2). */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
