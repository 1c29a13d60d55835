// Accounts in SQLite (DATA/users.sqlite): username, role, scrypt hash. Shared by the gateway (login)
// and `sockbridge user …` (another process), so every call reads the database; WAL mode lets both
// work at once.

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

export const ROLES: readonly Role[] = ['admin', 'user'];
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

interface Row {
  username: string;
  role: Role;
  hash: string;
}

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
      created_at INTEGER NOT NULL
    )`);
  }

  async add(username: string, password: string, role: Role = 'user'): Promise<Account> {
    validateUsername(username);
    validatePassword(password);
    validateRole(role);
    const hash = await hashPassword(password);
    try {
      this.db.prepare('INSERT INTO users (username, role, hash, created_at) VALUES (?, ?, ?, ?)').run(username, role, hash, Date.now());
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
    this.db.prepare('UPDATE users SET hash = ? WHERE username = ?').run(hash, username);
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

  list(): Account[] {
    return this.db.prepare('SELECT username, role FROM users ORDER BY username').all() as Account[];
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  /** The account if the password is right, else null; the same work is done for unknown users. */
  async verify(username: string, password: string): Promise<Account | null> {
    if (password.length > MAX_PASSWORD_LENGTH) return null;
    const row = this.db.prepare('SELECT username, role, hash FROM users WHERE username = ?').get(username) as Row | undefined;
    if (!row) return verifyAgainstNothing(password).then(() => null);
    return (await verifyPassword(password, row.hash)) ? { username: row.username, role: row.role } : null;
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
