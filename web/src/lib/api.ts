// The HTTP half of the browser ↔ gateway contract (docs/api.md, protocol/api.ts).
// Every failure becomes an ApiRequestError carrying the gateway's stable error code.
import type { ApiError } from '../../../protocol/api.js';

export class ApiRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** from a 429's Retry-After header: how long to wait, in seconds */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/** What a panel shows for a failed call: the gateway's code and message, or UNKNOWN for anything else thrown. */
export function errorInfo(err: unknown): { code: string; message: string } {
  return err instanceof ApiRequestError ? { code: err.code, message: err.message } : { code: 'UNKNOWN', message: String(err) };
}

/** Reads `{error:{code,message}}` from a failed response's body (fetch or XHR); falls back to the HTTP status. */
export function errorFromBody(status: number, statusText: string, body: string): ApiRequestError {
  try {
    const parsed = JSON.parse(body) as Partial<ApiError>;
    if (parsed.error && typeof parsed.error.code === 'string') {
      return new ApiRequestError(parsed.error.code, parsed.error.message ?? parsed.error.code, status);
    }
  } catch {
    // not JSON: a proxy or a crash page
  }
  return new ApiRequestError(`HTTP_${status}`, statusText || `HTTP ${status}`, status);
}

/** Same-origin JSON request; the session travels in the httpOnly cookie, never in script. */
export async function apiJson<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      credentials: 'same-origin',
      headers: init.body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch {
    throw new ApiRequestError('NETWORK', 'The gateway cannot be reached', 0);
  }
  if (!res.ok) {
    const err = errorFromBody(res.status, res.statusText, await res.text().catch(() => ''));
    const retryAfterS = Number.parseInt(res.headers.get('retry-after') ?? '', 10);
    throw Number.isFinite(retryAfterS) && retryAfterS > 0 ? new ApiRequestError(err.code, err.message, err.status, retryAfterS) : err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** ws:// or wss:// URL of a gateway WebSocket route on this page's own origin (the Origin check expects it). */
export function wsUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}
