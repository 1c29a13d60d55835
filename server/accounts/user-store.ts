// Accounts in SQLite (DATA/users.sqlite): username, role, scrypt hash, credentials version. Shared by
// the gateway (login) and `sockbridge user …` (another process), so every call reads the database; WAL
// mode lets both work at once.
//
// The credentials version is what a login session is bound to: it changes when the password changes,
// and an account added (again) under a name gets a version no earlier account of that name had, so a
// session from before `passwd` or `remove` + `add` no longer matches (server/plugins/auth.ts). Versions
// come from one counter (credentials_sequence) that only grows: a deleted row takes nothing with it.

import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { sbError } from '../../protocol/errors.js';
import type { Role } from '../../protocol/api.js';
import { hashPassword, verifyAgainstNothing, verifyPassword } from './password-hash.js';

export interface Account {
  username: string;
  role: Role;
}

/** What a login session is checked against: the account's role and credentials version. */
export interface AccountState extends Account {
  credentialsVersion: number;
}

export const ROLES: readonly Role[] = ['admin', 'user'];

const ROLE_RANK: Record<Role, number> = { user: 0, admin: 1 };

/** Whether `role` is enough for something that needs `needed`. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[needed];
}
/** Letters, digits, `._-`, 1..32, starting with a letter or digit: safe in logs, URLs and chat nicks. */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
export const MIN_PASSWORD_LENGTH = 8;
/** scrypt takes any length; a cap stops a megabyte "password" from being hashed on every attempt. */
export const MAX_PASSWORD_LENGTH = 1024;

export function validateUsername(username: string): void {
  if (!USERNAME.test(username)) {
    throw sbError('SB_ERR_USER_INVALID', 'a username is 1-32 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
}

export function validatePassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw sbError('SB_ERR_USER_INVALID', `a password is ${MIN_PASSWORD_LENGTH}..${MAX_PASSWORD_LENGTH} characters`);
  }
}

export function validateRole(role: string): asserts role is Role {
  if (!ROLES.includes(role as Role)) throw sbError('SB_ERR_USER_INVALID', `role must be admin or user, not "${role}"`);
}

interface Row extends AccountState {
  hash: string;
}

const STATE_COLUMNS = 'username, role, credentials_version AS credentialsVersion';

export class UserStore {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    // password hashes: readable by the owner only (SQLite gives its -wal/-shm files the same mode)
    chmodSync(path, 0o600);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS users (
      username TEXT PRIMARY KEY COLLATE NOCASE,
      role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      credentials_version INTEGER NOT NULL DEFAULT 0
    )`);
    this.migrate();
  }

  /**
   * Brings a database made by an older sockbridge up to date in place, in one transaction (the CLI and
   * the gateway may open it at the same moment): accounts from before credentials versions get 0.
   */
  private migrate(): void {
    this.db.transaction(() => {
      const columns = this.db.prepare('PRAGMA table_info(users)').all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === 'credentials_version')) {
        this.db.exec('ALTER TABLE users ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0');
      }
      this.db.exec('CREATE TABLE IF NOT EXISTS credentials_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)');
      this.db.prepare('INSERT OR IGNORE INTO credentials_sequence (id, last) SELECT 1, COALESCE(MAX(credentials_version), 0) FROM users').run();
    }).immediate();
  }

  /** The next credentials version (call inside a transaction): never handed out before, in any account. */
  private nextCredentialsVersion(): number {
    return (this.db.prepare('UPDATE credentials_sequence SET last = last + 1 WHERE id = 1 RETURNING last').get() as { last: number }).last;
  }

  async add(username: string, password: string, role: Role = 'user'): Promise<Account> {
    validateUsername(username);
    validatePassword(password);
    validateRole(role);
    const hash = await hashPassword(password);
    try {
      this.db
        .transaction(() => {
          const version = this.nextCredentialsVersion();
          this.db
            .prepare('INSERT INTO users (username, role, hash, created_at, credentials_version) VALUES (?, ?, ?, ?, ?)')
            .run(username, role, hash, Date.now(), version);
        })
        .immediate();
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw sbError('SB_ERR_USER_EXISTS', username);
      throw err;
    }
    return { username, role };
  }

  remove(username: string): void {
    const { changes } = this.db.prepare('DELETE FROM users WHERE username = ?').run(username);
    if (changes === 0) throw sbError('SB_ERR_USER_NOT_FOUND', username);
  }

  async passwd(username: string, password: string): Promise<void> {
    validatePassword(password);
    if (!this.get(username)) throw sbError('SB_ERR_USER_NOT_FOUND', username);
    const hash = await hashPassword(password);
    this.db
      .transaction(() => {
        const version = this.nextCredentialsVersion();
        const { changes } = this.db.prepare('UPDATE users SET hash = ?, credentials_version = ? WHERE username = ?').run(hash, version, username);
        // removed while the hash was computed
        if (changes === 0) throw sbError('SB_ERR_USER_NOT_FOUND', username);
      })
      .immediate();
  }

  setRole(username: string, role: Role): void {
    validateRole(role);
    const { changes } = this.db.prepare('UPDATE users SET role = ? WHERE username = ?').run(role, username);
    if (changes === 0) throw sbError('SB_ERR_USER_NOT_FOUND', username);
  }

  get(username: string): Account | null {
    const row = this.db.prepare('SELECT username, role FROM users WHERE username = ?').get(username) as Account | undefined;
    return row ?? null;
  }

  /** Role and credentials version, or null when there is no such account (one indexed lookup). */
  state(username: string): AccountState | null {
    return (this.db.prepare(`SELECT ${STATE_COLUMNS} FROM users WHERE username = ?`).get(username) as AccountState | undefined) ?? null;
  }

  /** The accounts among `usernames` that exist, by their username as given: one query, by primary key. */
  states(usernames: readonly string[]): Map<string, AccountState> {
    const found = new Map<string, AccountState>();
    // SQLite's default limit on bound parameters is 32766; chunks keep far below it.
    for (let i = 0; i < usernames.length; i += 500) {
      const chunk = usernames.slice(i, i + 500);
      const rows = this.db.prepare(`SELECT ${STATE_COLUMNS} FROM users WHERE username IN (${chunk.map(() => '?').join(',')})`).all(...chunk) as AccountState[];
      const byFolded = new Map(rows.map((r) => [r.username.toLowerCase(), r]));
      for (const name of chunk) {
        const row = byFolded.get(name.toLowerCase());
        if (row) found.set(name, row);
      }
    }
    return found;
  }

  list(): Account[] {
    return this.db.prepare('SELECT username, role FROM users ORDER BY username').all() as Account[];
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  /** The account if the password is right, else null; the same work is done for unknown users. */
  async verify(username: string, password: string): Promise<Account | null> {
    const state = await this.verifyForLogin(username, password);
    return state && { username: state.username, role: state.role };
  }

  /**
   * verify() with the credentials version read in the same query as the hash, so a session is bound to
   * the password it was made with even when `passwd` runs while this one is being checked.
   */
  async verifyForLogin(username: string, password: string): Promise<AccountState | null> {
    if (password.length > MAX_PASSWORD_LENGTH) return null;
    const row = this.db.prepare(`SELECT ${STATE_COLUMNS}, hash FROM users WHERE username = ?`).get(username) as Row | undefined;
    if (!row) return verifyAgainstNothing(password).then(() => null);
    if (!(await verifyPassword(password, row.hash))) return null;
    const { hash: _hash, ...state } = row;
    return state;
  }

  /**
   * First start: with no account at all, creates `admin` with the given password or a random one.
   * Returns the generated password (to be printed once), or null when nothing was generated.
   */
  async ensureAdmin(password?: string): Promise<{ created: boolean; generatedPassword: string | null }> {
    if (this.count() > 0) return { created: false, generatedPassword: null };
    const generated = password ? null : randomBytes(12).toString('base64url');
    await this.add('admin', password ?? generated!, 'admin');
    return { created: true, generatedPassword: generated };
  }

  close(): void {
    this.db.close();
  }
}
