// Who is logged in. The cookie is httpOnly, so the page learns its session only through GET /api/me.
import type { LoginRequest, Me } from '../../../protocol/api.js';
import { ApiRequestError, apiJson, errorInfo } from './api.js';

export class Session {
  me = $state<Me | null>(null);
  /** true until the first /api/me answer, so the page does not flash the login form */
  loading = $state(true);
  error = $state<{ code: string; message: string } | null>(null);
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

  /** Re-reads the session; when it has ended (logout elsewhere, expiry, gateway restart) the page returns to login. */
  async check(): Promise<void> {
    try {
      this.me = await apiJson<Me>('/api/me');
    } catch (err) {
      if (err instanceof ApiRequestError && (err.status === 401 || err.status === 403)) this.me = null;
    }
  }

  async login(credentials: LoginRequest): Promise<void> {
    this.busy = true;
    this.error = null;
    try {
      const me = await apiJson<Me | undefined>('/api/login', { method: 'POST', body: credentials });
      this.me = me && typeof me.username === 'string' ? me : await apiJson<Me>('/api/me');
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
    this.me = null;
  }
}
