import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CHAT_DB_FILE, ChatHistory, RECENT_DIRECT_SQL } from '../../../backends/chat/chat-history.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const open: ChatHistory[] = [];
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
    const d = h.appendDirect('alice', 'bob', 'psst', 2);
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
    const toAlice = h.appendDirect('bob', 'alice', 'to alice', 1);
    h.appendDirect('bob', 'carol', 'bob to carol', 2);
    h.append('lobby', 'alice', 'a room message', 3);
    const byAlice = h.appendDirect('alice', 'carol', 'by alice', 4);
    h.appendDirect('carol', 'bob', 'carol to bob', 5);
    const self = h.appendDirect('alice', 'alice', 'note to self', 6);
    expect(h.recentDirect('alice', 10)).toEqual([toAlice, byAlice, self]);
    expect(h.recentDirect('alice', 2)).toEqual([byAlice, self]);
    expect(h.recentDirect('alice', 0)).toEqual([]);
    expect(h.recentDirect('bob', 10).map((m) => m.text)).toEqual(['to alice', 'bob to carol', 'carol to bob']);
    expect(h.recentDirect('dave', 10)).toEqual([]);
  });

  it('keeps the newest when one direction has more than the limit', async () => {
    const h = new ChatHistory(await tempDir());
    open.push(h);
    for (let i = 0; i < 5; i++) h.appendDirect('alice', 'bob', `out ${i}`, i);
    const late = h.appendDirect('bob', 'alice', 'in late', 10);
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

describe('ChatHistory: a data dir that cannot be used', () => {
  it('says so with SB_ERR_CONFIG_INVALID', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    expect(() => new ChatHistory(file)).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
  });
});
