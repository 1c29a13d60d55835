// Who is logged in. The cookie is httpOnly, so the page learns its session only through GET /api/me.
import type { LoginRequest, Me } from '../../../protocol/api.js';
import { ApiRequestError, apiJson, errorFromBody, errorInfo } from './api.js';

/** Shown on the login form when a session this tab had ended without the user logging out here. */
export const SESSION_ENDED_NOTICE = 'Your session has ended — the server restarted or you were logged out. Please log in again.';
export const LOGGED_OUT_NOTICE = 'You are logged out.';

export class Session {
  me = $state<Me | null>(null);
  /** true until the first /api/me answer, so the page does not flash the login form */
  loading = $state(true);
  error = $state<{ code: string; message: string } | null>(null);
  /** why the login form is showing, when it is not the first visit: session ended, or logged out */
  notice = $state<string | null>(null);
  busy = $state(false);

  isAdmin = $derived(this.me?.role === 'admin');

  async restore(): Promise<void> {
    try {
      this.me = await apiJson<Me>('/api/me');
    } catch {
      this.me = null;
    } finally {
      this.loading = false;
    }
  }

  /** Re-reads the session; when it has ended (logout elsewhere, expiry, gateway restart) the page returns to login and says why. */
  async check(): Promise<void> {
    try {
      this.me = await apiJson<Me>('/api/me');
    } catch (err) {
      if (err instanceof ApiRequestError && (err.status === 401 || err.status === 403)) this.#ended();
    }
  }

  /** A request refused for want of a session: the session ended under this tab. */
  #ended(): void {
    if (this.me) this.notice = SESSION_ENDED_NOTICE;
    this.me = null;
  }

  /** The form was edited: an old error or notice no longer describes what is on it. */
  clearMessages(): void {
    this.error = null;
  }

  async login(credentials: LoginRequest): Promise<void> {
    this.busy = true;
    this.error = null;
    try {
      const me = await postLogin(credentials);
      this.me = me && typeof me.username === 'string' ? me : await apiJson<Me>('/api/me');
      this.notice = null;
    } catch (err) {
      this.error = errorInfo(err);
    } finally {
      this.busy = false;
    }
  }

  async logout(): Promise<void> {
    try {
      await apiJson('/api/logout', { method: 'POST', body: {} });
    } catch {
      // the session ends in this tab either way
    }
    this.notice = LOGGED_OUT_NOTICE;
    this.me = null;
  }
}

/** POST /api/login; a 429 says how long to wait, from Retry-After (seconds), which apiJson does not expose. */
async function postLogin(credentials: LoginRequest): Promise<Me | undefined> {
  let res: Response;
  try {
    res = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
  } catch {
    throw new ApiRequestError('NETWORK', 'The gateway cannot be reached', 0);
  }
  const text = await res.text().catch(() => '');
  if (res.status === 429) {
    const seconds = Number.parseInt(res.headers.get('retry-after') ?? '', 10);
    const wait = Number.isFinite(seconds) && seconds > 0 ? `try again in ${seconds} s` : 'try again in a minute';
    throw new ApiRequestError(errorFromBody(res.status, res.statusText, text).code, `Too many attempts — ${wait}`, 429);
  }
  if (!res.ok) throw errorFromBody(res.status, res.statusText, text);
  return text ? (JSON.parse(text) as Me) : undefined;
}
