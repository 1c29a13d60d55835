import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatHistory } from '../../../backends/chat/chat-history.js';
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

describe('ChatHistory: a data dir that cannot be used', () => {
  it('says so with SB_ERR_CONFIG_INVALID', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    expect(() => new ChatHistory(file)).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
  });
});
