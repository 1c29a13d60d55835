// Keeps login sessions true to the accounts they were made from. Accounts change in another process
// (`sockbridge user remove|passwd|role|add` writes DATA/users.sqlite), so the gateway looks: on every
// HTTP request for that request's session, and every `intervalMs` for all live sessions at once (one
// query by primary key over their distinct usernames), so a removed account or a changed password
// ends sessions, and closes their sockets, even when the user makes no further request.
//
// A session ends when its account is gone or its credentials version differs (a new password, or a
// new account under the same name). A role change keeps the session and applies at once; the owner of
// the session learns of a demotion through onRoleChange (auth.ts closes the sockets that needed more).

import type { FastifyBaseLogger } from 'fastify';
import type { Role } from '../../protocol/api.js';
import type { Session, SessionStore } from './session-store.js';
import type { AccountState, UserStore } from './user-store.js';

export class AccountCheck {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly users: UserStore,
    private readonly sessions: SessionStore,
    private readonly log: FastifyBaseLogger,
    private readonly onRoleChange: (session: Session, before: Role) => void,
  ) {}

  /** The session if its account still allows it (its role brought up to date), else null (revoked). */
  check(session: Session): Session | null {
    return this.apply(session, this.users.state(session.username));
  }

  /** Checks every live session against the database in one query. */
  checkAll(): void {
    const live = this.sessions.all();
    if (live.length === 0) return;
    const accounts = this.users.states([...new Set(live.map((s) => s.username))]);
    for (const session of live) this.apply(session, accounts.get(session.username) ?? null);
  }

  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => {
      try {
        this.checkAll();
      } catch (err) {
        // SQLITE_BUSY beyond busy_timeout, a database replaced underneath: the next round tries again.
        this.log.warn({ err }, 'account check failed');
      }
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private apply(session: Session, account: AccountState | null): Session | null {
    if (!account || account.credentialsVersion !== session.credentialsVersion) {
      this.log.info({ user: session.username, reason: account ? 'credentials changed' : 'account removed' }, 'session revoked');
      this.sessions.revoke(session.id);
      return null;
    }
    if (account.role !== session.role) {
      const before = session.role;
      session.role = account.role;
      this.log.info({ user: session.username, role: account.role }, 'session role changed');
      this.onRoleChange(session, before);
    }
    return session;
  }
}
