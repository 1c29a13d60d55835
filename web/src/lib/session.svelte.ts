// Who is logged in. The cookie is httpOnly, so the page learns its session only through GET /api/me.
import type { LoginRequest, Me } from '../../../protocol/api.js';
import { ApiRequestError, apiJson, errorInfo } from './api.js';

/** Shown on the login form when a session this tab had ended without the user logging out here. */
const SESSION_ENDED_NOTICE = 'Your session has ended — the server restarted or you were logged out. Please log in again.';
const LOGGED_OUT_NOTICE = 'You are logged out.';

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
      const me = await apiJson<Me | undefined>('/api/login', { method: 'POST', body: credentials });
      this.me = me && typeof me.username === 'string' ? me : await apiJson<Me>('/api/me');
      this.notice = null;
    } catch (err) {
      this.error = errorInfo(err);
      if (err instanceof ApiRequestError && err.status === 429) {
        const wait = err.retryAfterS ? `try again in ${err.retryAfterS} s` : 'try again in a minute';
        this.error = { code: err.code, message: `Too many attempts — ${wait}` };
      }
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
