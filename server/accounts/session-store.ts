// Login sessions, kept in memory: a gateway restart logs everyone out (documented in docs/api.md).
// That is deliberate: no session secret ever touches the disk, and a restart is a clean revocation.
// Ids are 256 random bits (base64url), so guessing one is hopeless; each expires after its TTL.

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
  /** how often expired sessions are swept (and their sockets closed) */
  sweepIntervalMs?: number;
  now?: () => number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly listeners = new Set<SessionEndListener>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: SessionStoreOptions) {
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 30_000);
    this.sweeper.unref();
  }

  create(account: { username: string; role: Role; credentialsVersion: number }): Session {
    const { username, role, credentialsVersion } = account;
    const session: Session = { id: randomBytes(32).toString('base64url'), username, role, credentialsVersion, expiresAt: this.now() + this.ttlMs };
    this.sessions.set(session.id, session);
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

  /** The live sessions (expired ones not yet swept included), for the account check. */
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

  sweep(): void {
    const now = this.now();
    for (const session of [...this.sessions.values()]) if (session.expiresAt <= now) this.end(session, 'expired');
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sessions.clear();
    this.listeners.clear();
  }

  private end(session: Session, why: SessionEndReason): void {
    this.sessions.delete(session.id);
    for (const listener of this.listeners) listener(session, why);
  }
}
