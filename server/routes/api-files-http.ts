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

/** The conditional and range headers of a download request. */
export interface DownloadRequest {
  range?: string | undefined;
  ifRange?: string | undefined;
  ifNoneMatch?: string | undefined;
}

/** What a download request gets from one version of the file. */
export type DownloadPlan =
  | { kind: 'not-modified' }
  | { kind: 'unsatisfiable' }
  | { kind: 'whole' }
  | { kind: 'range'; start: number; end: number };

/**
 * The answer to `request` for the version `entry` (RFC 9110 §13.2.2 order: If-None-Match, then
 * If-Range, then Range). Every header of the response must come from the same entry as its bytes.
 */
export function planDownload(request: DownloadRequest, entry: { size: number; sha256: string }): DownloadPlan {
  const etag = etagOf(entry.sha256);
  if (matchesIfNoneMatch(request.ifNoneMatch, etag)) return { kind: 'not-modified' };
  // If-Range (RFC 9110 §13.1.5) compares strongly: a weak tag, another version's tag or a date (no
  // Last-Modified is ever sent) means the client's partial copy is stale, so it gets the whole file.
  if (request.range && request.ifRange !== undefined && request.ifRange.trim() !== etag) return { kind: 'whole' };
  const range = parseRange(request.range, entry.size);
  if (range === 'unsatisfiable') return { kind: 'unsatisfiable' };
  return range === null ? { kind: 'whole' } : { kind: 'range', ...range };
}

/** The first byte a plan sends, or null when it sends no body. */
export function bodyStart(plan: DownloadPlan): number | null {
  return plan.kind === 'whole' ? 0 : plan.kind === 'range' ? plan.start : null;
}

/**
 * The offset a download is likely to start at, read from the headers alone (the file's size and
 * ETag are not known yet), or undefined when it cannot be guessed: a suffix range, a Range past any
 * real size, or an If-None-Match that may well end in a bodyless 304.
 */
export function guessBodyStart(request: DownloadRequest): number | undefined {
  if (request.ifNoneMatch) return undefined;
  if (request.range?.trim().startsWith('bytes=-')) return undefined;
  const range = parseRange(request.range, Number.MAX_SAFE_INTEGER);
  if (range === 'unsatisfiable') return undefined;
  return range === null ? 0 : range.start;
}
