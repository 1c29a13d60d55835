// Login sessions, kept in memory: a gateway restart logs everyone out (documented in docs/api.md).
// That is deliberate: no session secret ever touches the disk, and a restart is a clean revocation.
// Ids are 256 random bits (base64url), so guessing one is hopeless; each expires after its TTL, ended
// by a timer of its own at that moment (its sockets are closed then, not at some later sweep).

import { randomBytes } from 'node:crypto';
import type { Role } from '../../protocol/api.js';

export interface Session {
  id: string;
  username: string;
  role: Role;
  /** the account's credentials version at login (user-store.ts): a different one ends the session */
  credentialsVersion: number;
  /** ms since epoch */
  expiresAt: number;
}

export type SessionEndReason = 'logout' | 'expired' | 'revoked';
export type SessionEndListener = (session: Session, why: SessionEndReason) => void;

export interface SessionStoreOptions {
  ttlMs: number;
  now?: () => number;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days); a longer one fires at once (Node warns). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** each live session's expiry timer */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly listeners = new Set<SessionEndListener>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: SessionStoreOptions) {
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
  }

  create(account: { username: string; role: Role; credentialsVersion: number }): Session {
    const { username, role, credentialsVersion } = account;
    const session: Session = { id: randomBytes(32).toString('base64url'), username, role, credentialsVersion, expiresAt: this.now() + this.ttlMs };
    this.sessions.set(session.id, session);
    this.scheduleExpiry(session);
    return session;
  }

  /** The live session with this id, or null (unknown or expired: an expired one is ended on the spot). */
  get(id: string | undefined): Session | null {
    if (!id) return null;
    const session = this.sessions.get(id);
    if (!session) return null;
    if (session.expiresAt <= this.now()) {
      this.end(session, 'expired');
      return null;
    }
    return session;
  }

  delete(id: string): void {
    const session = this.sessions.get(id);
    if (session) this.end(session, 'logout');
  }

  /** Ends a session whose account was removed or whose credentials changed. */
  revoke(id: string): void {
    const session = this.sessions.get(id);
    if (session) this.end(session, 'revoked');
  }

  /** The live sessions, for the account check. */
  all(): Session[] {
    return [...this.sessions.values()];
  }

  onEnd(listener: SessionEndListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.sessions.size;
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.sessions.clear();
    this.listeners.clear();
  }

  /**
   * Ends the session when its time is up, even if it makes no request: an idle WebSocket is closed at
   * its session's expiry. A TTL beyond setTimeout's range is waited for in steps.
   */
  private scheduleExpiry(session: Session): void {
    const timer = setTimeout(
      () => {
        this.timers.delete(session.id);
        if (this.sessions.get(session.id) !== session) return;
        if (session.expiresAt <= this.now()) this.end(session, 'expired');
        else this.scheduleExpiry(session);
      },
      Math.min(Math.max(0, session.expiresAt - this.now()), MAX_TIMER_MS),
    );
    // a pending expiry never keeps the process alive
    timer.unref();
    this.timers.set(session.id, timer);
  }

  private end(session: Session, why: SessionEndReason): void {
    this.sessions.delete(session.id);
    clearTimeout(this.timers.get(session.id));
    this.timers.delete(session.id);
    for (const listener of this.listeners) listener(session, why);
  }
}
