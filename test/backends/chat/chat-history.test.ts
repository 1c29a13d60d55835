import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CHAT_DB_FILE, ChatHistory, RECENT_DIRECT_SQL } from '../../../backends/chat/chat-history.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const open: ChatHistory[] = [];
/** appendDirect's `account`: sent by an account, whose own messages its direct-message history holds */
const ACCOUNT = true;
afterEach(async () => {
  for (const h of open.splice(0)) h.close();
  await removeTempDirs();
});

describe('ChatHistory', () => {
  it('appends with increasing ids, returns the last N of a room oldest first, and keeps rooms apart', async () => {
    const h = new ChatHistory(await tempDir());
    open.push(h);
    const a = h.append('lobby', 'alice', 'one', 1000);
    const b = h.append('dev', 'bob', 'two', 2000);
    const c = h.append('lobby', 'alice', 'three', 3000);
    expect(b.id).toBeGreaterThan(a.id);
    expect(h.recent('lobby', 10)).toEqual([a, c]);
    expect(h.recent('lobby', 1)).toEqual([c]);
    expect(h.recent('dev', 10)).toEqual([b]);
    expect(h.recent('empty', 10)).toEqual([]);
  });

  it('stores direct messages apart from rooms, and everything survives reopening', async () => {
    const dir = await tempDir();
    const h = new ChatHistory(dir);
    const m = h.append('lobby', 'alice', 'hi', 1);
    const d = h.appendDirect('alice', 'bob', 'psst', 2, undefined, ACCOUNT);
    h.close();
    const again = new ChatHistory(dir);
    open.push(again);
    expect(again.recent('lobby', 100)).toEqual([m]);
    expect(again.recentDirect('bob', 100)).toEqual([d]);
    expect(again.recentDirect('alice', 100)).toEqual([d]);
    expect(again.recentDirect('carol', 100)).toEqual([]);
    expect(again.append('lobby', 'x', 'y').id).toBeGreaterThan(d.id);
  });
});

describe('ChatHistory: direct-message history', () => {
  it("returns a nick's own direct messages only, both directions, oldest first, bounded", async () => {
    const h = new ChatHistory(await tempDir());
    open.push(h);
    const toAlice = h.appendDirect('bob', 'alice', 'to alice', 1, undefined, ACCOUNT);
    h.appendDirect('bob', 'carol', 'bob to carol', 2, undefined, ACCOUNT);
    h.append('lobby', 'alice', 'a room message', 3);
    const byAlice = h.appendDirect('alice', 'carol', 'by alice', 4, undefined, ACCOUNT);
    h.appendDirect('carol', 'bob', 'carol to bob', 5, undefined, ACCOUNT);
    const self = h.appendDirect('alice', 'alice', 'note to self', 6, undefined, ACCOUNT);
    expect(h.recentDirect('alice', 10)).toEqual([toAlice, byAlice, self]);
    expect(h.recentDirect('alice', 2)).toEqual([byAlice, self]);
    expect(h.recentDirect('alice', 0)).toEqual([]);
    expect(h.recentDirect('bob', 10).map((m) => m.text)).toEqual(['to alice', 'bob to carol', 'carol to bob']);
    expect(h.recentDirect('dave', 10)).toEqual([]);
  });

  it('keeps the newest when one direction has more than the limit', async () => {
    const h = new ChatHistory(await tempDir());
    open.push(h);
    for (let i = 0; i < 5; i++) h.appendDirect('alice', 'bob', `out ${i}`, i, undefined, ACCOUNT);
    const late = h.appendDirect('bob', 'alice', 'in late', 10, undefined, ACCOUNT);
    const early = h.recentDirect('alice', 3);
    expect(early.map((m) => m.text)).toEqual(['out 3', 'out 4', 'in late']);
    expect(early.at(-1)).toEqual(late);
  });

  it('answers from the indexes, never by scanning the table or sorting it whole', async () => {
    const dir = await tempDir();
    new ChatHistory(dir).close();
    const db = new Database(join(dir, CHAT_DB_FILE), { readonly: true });
    try {
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${RECENT_DIRECT_SQL}`).all({ nick: 'alice', limit: 50 }) as { detail: string }[];
      const details = plan.map((p) => p.detail);
      expect(details).toEqual(expect.arrayContaining([
        expect.stringMatching(/SEARCH messages USING (COVERING )?INDEX messages_by_recipient \(recipient=\?\)/),
        expect.stringMatching(/SEARCH messages USING (COVERING )?INDEX direct_messages_by_sender \(sender=\?\)/),
      ]));
      expect(details.filter((d) => /^SCAN messages\b/.test(d))).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe('ChatHistory: refs of sent messages (idempotent send)', () => {
  const refRows = (dir: string) => {
    const db = new Database(join(dir, CHAT_DB_FILE), { readonly: true });
    try {
      return db.prepare('SELECT sender, ref, ts FROM sent_refs ORDER BY ts').all();
    } finally {
      db.close();
    }
  };

  it('finds a message by its sender and ref within refWindowMs, room or direct, and nothing else', async () => {
    const h = new ChatHistory(await tempDir(), { refWindowMs: 1000 });
    open.push(h);
    const room = h.append('lobby', 'alice', 'hi', 10_000, 'a1');
    const direct = h.appendDirect('alice', 'bob', 'psst', 10_001, 'a2');
    h.append('lobby', 'alice', 'no ref', 10_002);

    expect(h.sentWithRef('alice', 'a1', 10_500)).toEqual({ kind: 'room', message: room });
    expect(h.sentWithRef('alice', 'a2', 10_500)).toEqual({ kind: 'direct', message: direct });
    expect(h.sentWithRef('bob', 'a1', 10_500)).toBeUndefined();
    expect(h.sentWithRef('alice', 'a3', 10_500)).toBeUndefined();
    expect(h.sentWithRef('alice', 'a1', 11_000)).toEqual({ kind: 'room', message: room });
    expect(h.sentWithRef('alice', 'a1', 11_001)).toBeUndefined();
  });

  it('keeps at most one window of refs on disk: each append with a ref deletes the expired ones, and an expired ref is free again', async () => {
    const dir = await tempDir();
    const h = new ChatHistory(dir, { refWindowMs: 1000 });
    open.push(h);
    for (let i = 0; i < 5; i++) h.append('lobby', 'alice', `m${i}`, i * 400, `r${i}`);
    // the last append, at 1600, deleted those before 600
    expect(refRows(dir)).toEqual([
      { sender: 'alice', ref: 'r2', ts: 800 },
      { sender: 'alice', ref: 'r3', ts: 1200 },
      { sender: 'alice', ref: 'r4', ts: 1600 },
    ]);
    const reused = h.append('lobby', 'alice', 'later', 2300, 'r3');
    expect(h.sentWithRef('alice', 'r3', 2300)).toEqual({ kind: 'room', message: reused });
    expect(h.recent('lobby', 10).map((m) => m.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'later']);
  });

  it('remembers refs across a reopen of the same data dir', async () => {
    const dir = await tempDir();
    const first = new ChatHistory(dir);
    const m = first.append('lobby', 'alice', 'kept', Date.now(), 'k');
    first.close();
    const again = new ChatHistory(dir);
    open.push(again);
    expect(again.sentWithRef('alice', 'k')).toEqual({ kind: 'room', message: m });
  });
});

describe('ChatHistory: a data dir that cannot be used', () => {
  it('says so with SB_ERR_CONFIG_INVALID', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    expect(() => new ChatHistory(file)).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
  });
});

describe('ChatHistory: file modes', () => {
  const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

  it('creates chat.sqlite and its -wal and -shm readable by the owner only (they hold direct messages)', async () => {
    const dir = await tempDir();
    const h = new ChatHistory(dir);
    open.push(h);
    h.appendDirect('alice', 'bob', 'private', 1);
    const path = join(dir, CHAT_DB_FILE);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(await modeOf(file), file).toBe(0o600);
  });

  it('tightens a chat.sqlite (and -wal) that an older version left world-readable', async () => {
    const dir = await tempDir();
    const path = join(dir, CHAT_DB_FILE);
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE t (x)');
    await Promise.all([chmod(path, 0o644), chmod(`${path}-wal`, 0o644)]);
    const h = new ChatHistory(dir);
    open.push(h);
    old.close();
    expect(await modeOf(path)).toBe(0o600);
    h.appendDirect('alice', 'bob', 'private', 1);
    expect(await modeOf(`${path}-wal`)).toBe(0o600);
  });
});

describe('ChatHistory: accounts', () => {
  it('stores whether the sender was an account, and returns it with every message, after reopening too', async () => {
    const dir = await tempDir();
    const h = new ChatHistory(dir);
    const byAccount = h.append('lobby', 'admin', 'real', 1, undefined, true);
    const byGuest = h.append('lobby', 'admin', 'fake', 2);
    const dmByGuest = h.appendDirect('admin', 'bob', 'send me your password', 3);
    expect([byAccount.account, byGuest.account, dmByGuest.account]).toEqual([true, false, false]);
    h.close();
    const again = new ChatHistory(dir);
    open.push(again);
    expect(again.recent('lobby', 10)).toEqual([byAccount, byGuest]);
    expect(again.recentDirect('bob', 10)).toEqual([dmByGuest]);
  });

  it("leaves out of a nick's direct-message history what a non-account sent under that nick (it is not theirs)", async () => {
    const h = new ChatHistory(await tempDir());
    open.push(h);
    h.appendDirect('bob', 'alice', 'sent by whoever held "bob" on a raw port', 1);
    const own = h.appendDirect('bob', 'alice', 'sent by the account bob', 2, undefined, true);
    expect(h.recentDirect('bob', 10)).toEqual([own]);
    expect(h.recentDirect('alice', 10).map((m) => m.account)).toEqual([false, true]);
  });

  it('reserves nicknames for good, whatever their case, across a reopen', async () => {
    const dir = await tempDir();
    const h = new ChatHistory(dir);
    expect(h.isReserved('admin')).toBe(false);
    h.reserveNick('admin');
    h.reserveNick('admin'); // idempotent
    expect([h.isReserved('admin'), h.isReserved('Admin'), h.isReserved('ADMIN'), h.isReserved('admin2')]).toEqual([true, true, true, false]);
    h.close();
    const again = new ChatHistory(dir);
    open.push(again);
    expect(again.isReserved('admin')).toBe(true);
  });

  // Regression (review): the flag was added as NOT NULL DEFAULT 0, so after an upgrade every old
  // message read as a guest's and an account's own earlier DMs left its direct-message history.
  it('opens a chat.sqlite from before the account flag: old messages are of unknown sender (no account field), and a nick keeps the DMs it sent then', async () => {
    const dir = await tempDir();
    const old = new Database(join(dir, CHAT_DB_FILE));
    // the schema before the flag, indexes included
    old.exec(`CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT, sender TEXT NOT NULL, recipient TEXT, text TEXT NOT NULL, ts INTEGER NOT NULL);
      CREATE INDEX messages_by_room ON messages (room, id) WHERE room IS NOT NULL;
      CREATE INDEX messages_by_recipient ON messages (recipient, id) WHERE recipient IS NOT NULL;
      CREATE INDEX direct_messages_by_sender ON messages (sender, id) WHERE recipient IS NOT NULL;
      INSERT INTO messages (room, sender, recipient, text, ts) VALUES ('lobby', 'alice', NULL, 'from before', 1);
      INSERT INTO messages (room, sender, recipient, text, ts) VALUES (NULL, 'alice', 'bob', 'my dm from before', 2);
      INSERT INTO messages (room, sender, recipient, text, ts) VALUES (NULL, 'bob', 'alice', 'a reply from before', 3)`);
    old.close();

    const h = new ChatHistory(dir);
    open.push(h);
    const added = h.append('lobby', 'alice', 'now', 4, undefined, true);
    const byGuest = h.appendDirect('alice', 'bob', 'a guest as alice, now', 5, undefined, false);
    expect(h.recent('lobby', 10)).toEqual([{ id: 1, room: 'lobby', from: 'alice', text: 'from before', ts: 1 }, added]);
    expect(added.account).toBe(true);
    expect(h.recentDirect('alice', 10)).toEqual([
      { id: 2, from: 'alice', to: 'bob', text: 'my dm from before', ts: 2 },
      { id: 3, from: 'bob', to: 'alice', text: 'a reply from before', ts: 3 },
    ]);
    expect(h.recentDirect('bob', 10).map((m) => m.id)).toEqual([2, 3, byGuest.id]);
    h.close();
    // opening it again neither migrates again nor changes what the old rows say
    const again = new ChatHistory(dir);
    open.push(again);
    expect(again.recent('lobby', 1)).toEqual([added]);
    expect(again.recentDirect('alice', 10).map((m) => [m.id, m.account])).toEqual([[2, undefined], [3, undefined]]);
  });
});
