import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionStore } from '../../../server/accounts/session-store.js';
import { UserStore } from '../../../server/accounts/user-store.js';
import { hashPassword } from '../../../server/accounts/password-hash.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const open: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) o.close();
  await removeTempDirs();
});

async function store(): Promise<UserStore> {
  const s = new UserStore(join(await tempDir(), 'users.sqlite'));
  open.push(s);
  return s;
}

describe('UserStore', () => {
  it('stores salted scrypt hashes with their parameters, never the password', async () => {
    const s = await store();
    await s.add('ann', 'ann-password-1', 'user');
    await s.add('ben', 'ann-password-1', 'user');
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(s.path, { readonly: true });
    const rows = db.prepare('SELECT hash FROM users').all() as Array<{ hash: string }>;
    db.close();
    expect(rows[0]!.hash).toMatch(/^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(rows[0]!.hash).not.toBe(rows[1]!.hash); // random salt
    expect(rows.map((r) => r.hash).join()).not.toContain('ann-password-1');
  });

  it('verifies, refuses wrong passwords and unknown users alike, and enforces names and lengths', async () => {
    const s = await store();
    await s.add('ann', 'ann-password-1', 'admin');
    expect(await s.verify('ann', 'ann-password-1')).toEqual({ username: 'ann', role: 'admin' });
    expect(await s.verify('ann', 'ann-password-2')).toBeNull();
    expect(await s.verify('nobody', 'ann-password-1')).toBeNull();
    await expect(s.add('ANN', 'another-pass', 'user')).rejects.toMatchObject({ code: 'SB_ERR_USER_EXISTS' });
    await expect(s.add('../x', 'another-pass', 'user')).rejects.toMatchObject({ code: 'SB_ERR_USER_INVALID' });
    await expect(s.add('cat', 'short', 'user')).rejects.toMatchObject({ code: 'SB_ERR_USER_INVALID' });
    expect(() => s.remove('nobody')).toThrow(expect.objectContaining({ code: 'SB_ERR_USER_NOT_FOUND' }));
  });

  it('creates the first admin once, with a generated password when none is given', async () => {
    const s = await store();
    const first = await s.ensureAdmin();
    expect(first.created).toBe(true);
    expect(await s.verify('admin', first.generatedPassword!)).toEqual({ username: 'admin', role: 'admin' });
    expect(await s.ensureAdmin()).toEqual({ created: false, generatedPassword: null });
  });
});

describe('UserStore credentials versions', () => {
  it('a new password and a new account under an old name get versions never seen before; a role change keeps it', async () => {
    const s = await store();
    await s.add('ann', 'ann-password-1', 'admin');
    const added = s.state('ann')!.credentialsVersion;
    expect((await s.verifyForLogin('ann', 'ann-password-1'))!.credentialsVersion).toBe(added);
    s.setRole('ann', 'user');
    expect(s.state('ann')).toEqual({ username: 'ann', role: 'user', credentialsVersion: added });
    await s.passwd('ann', 'ann-password-2');
    const changed = s.state('ann')!.credentialsVersion;
    expect(changed).toBeGreaterThan(added);
    // remove + add: even with the same password the version differs from every earlier one
    s.remove('ann');
    expect(s.state('ann')).toBeNull();
    await s.add('ann', 'ann-password-2', 'user');
    expect([added, changed]).not.toContain(s.state('ann')!.credentialsVersion);
    // another connection (the CLI) sees the same versions; states() answers several names in one query
    const other = new UserStore(s.path);
    open.push(other);
    await s.add('ben', 'ben-password-1', 'user');
    expect(other.states(['ANN', 'ben', 'nobody'])).toEqual(
      new Map([
        ['ANN', s.state('ann')],
        ['ben', s.state('ben')],
      ]),
    );
  });

  it('migrates a users.sqlite from before credentials versions in place, keeping its accounts and passwords', async () => {
    const path = join(await tempDir(), 'users.sqlite');
    const Database = (await import('better-sqlite3')).default;
    const old = new Database(path);
    // the schema sockbridge created before credentials versions existed
    old.exec(`CREATE TABLE users (
      username TEXT PRIMARY KEY COLLATE NOCASE,
      role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`);
    const hash = await hashPassword('old-password-1');
    old.prepare('INSERT INTO users (username, role, hash, created_at) VALUES (?, ?, ?, ?)').run('olga', 'admin', hash, 1);
    old.close();

    const s = new UserStore(path);
    open.push(s);
    expect(await s.verifyForLogin('olga', 'old-password-1')).toEqual({ username: 'olga', role: 'admin', credentialsVersion: 0 });
    await s.passwd('olga', 'new-password-1');
    expect(s.state('olga')!.credentialsVersion).toBeGreaterThan(0);
    // opening it again (the gateway and the CLI both do) changes nothing
    const again = new UserStore(path);
    open.push(again);
    expect(again.state('olga')).toEqual(s.state('olga'));
    await again.add('pat', 'pat-password-1', 'user');
    expect(again.state('pat')!.credentialsVersion).toBeGreaterThan(s.state('olga')!.credentialsVersion);
  });
});

describe('SessionStore', () => {
  it('issues 256-bit ids, expires them after the TTL and tells listeners why a session ended', () => {
    let now = 1_000_000;
    const sessions = new SessionStore({ ttlMs: 60_000, now: () => now });
    open.push(sessions);
    const ended: string[] = [];
    sessions.onEnd((s, why) => ended.push(`${s.username}:${why}`));
    const a = sessions.create({ username: 'ann', role: 'user', credentialsVersion: 1 });
    const b = sessions.create({ username: 'ben', role: 'user', credentialsVersion: 1 });
    expect(Buffer.from(a.id, 'base64url')).toHaveLength(32);
    expect(a.id).not.toBe(b.id);
    expect(sessions.get(a.id)).toEqual(a);
    sessions.delete(b.id);
    now += 60_000;
    expect(sessions.get(a.id)).toBeNull();
    expect(ended).toEqual(['ben:logout', 'ann:expired']);
    expect(sessions.get('made-up')).toBeNull();
  });
});
