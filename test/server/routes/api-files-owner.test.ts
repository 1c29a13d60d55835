// Files have an owner: through the gateway, a user may replace or delete only the files they
// uploaded; an admin any; a file without an owner (the seed's client, or older than owners) only an
// admin. Real gateway, real files service, the seed's own client.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { eventually } from '../../backends/files/harness.js';
import { closeAll, login, multipart, ORIGIN, testGateway } from '../app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function setup() {
  const gateway = await testGateway({ files: true });
  await gateway.app.users.add('bob', 'bob-password', 'user');
  const cookies = { alice: await login(gateway.app, 'alice'), bob: await login(gateway.app, 'bob'), root: await login(gateway.app, 'root') };
  return { ...gateway, root: gateway.filesRoot!, cookies };
}

type Who = 'alice' | 'bob' | 'root';
type Setup = Awaited<ReturnType<typeof setup>>;

const post = (s: Setup, who: Who, filename: string, data: Buffer) =>
  s.app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: s.cookies[who] }, ...multipart([{ filename, data }]) });
const put = (s: Setup, who: Who, name: string, data: Buffer) =>
  s.app.inject({
    method: 'PUT',
    url: `/api/files/${encodeURIComponent(name)}`,
    headers: { origin: ORIGIN, 'content-type': 'application/octet-stream' },
    cookies: { sb_session: s.cookies[who] },
    payload: data,
  });
const del = (s: Setup, who: Who, name: string) =>
  s.app.inject({ method: 'DELETE', url: `/api/files/${encodeURIComponent(name)}`, headers: { origin: ORIGIN }, cookies: { sb_session: s.cookies[who] } });
const owners = async (s: Setup, who: Who = 'alice') => {
  const res = await s.app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: s.cookies[who] } });
  return Object.fromEntries((res.json().files as Array<{ name: string; owner: string | null }>).map((f) => [f.name, f.owner]));
};
const code = (res: { json: () => unknown }) => (res.json() as { error: { code: string } }).error.code;

function filesPort(app: FastifyInstance): number {
  return Number(new URL(app.gatewayOptions.files).port);
}

describe('files API: owners', () => {
  it("refuses another user's delete and replacement with 403 SB_ERR_FILE_NOT_OWNER, leaving the owner's bytes; the owner deletes", async () => {
    const s = await setup();
    const mine = randomBytes(50_000);
    expect((await post(s, 'alice', 'mine.bin', mine)).statusCode).toBe(201);
    expect(await owners(s, 'bob')).toEqual({ 'mine.bin': 'alice' });

    const deleted = await del(s, 'bob', 'mine.bin');
    expect(deleted.statusCode).toBe(403);
    expect(code(deleted)).toBe('SB_ERR_FILE_NOT_OWNER');
    expect(deleted.json().error.message).toContain('alice');

    for (const replace of [post, put]) {
      const replaced = await replace(s, 'bob', 'mine.bin', randomBytes(1000));
      expect(replaced.statusCode).toBe(403);
      expect(code(replaced)).toBe('SB_ERR_FILE_NOT_OWNER');
    }
    expect((await readFile(join(s.root, 'mine.bin'))).equals(mine)).toBe(true);
    expect(await owners(s)).toEqual({ 'mine.bin': 'alice' });

    // the owner replaces and deletes their own file
    const again = randomBytes(100);
    expect((await put(s, 'alice', 'mine.bin', again)).statusCode).toBe(201);
    expect((await readFile(join(s.root, 'mine.bin'))).equals(again)).toBe(true);
    expect((await del(s, 'alice', 'mine.bin')).statusCode).toBe(204);
    expect(await owners(s)).toEqual({});
  });

  it("lets an admin delete and replace a user's file; a user's upload of a new name is theirs", async () => {
    const s = await setup();
    expect((await post(s, 'alice', 'a.txt', Buffer.from('alice a'))).statusCode).toBe(201);
    expect((await post(s, 'alice', 'b.txt', Buffer.from('alice b'))).statusCode).toBe(201);
    expect((await post(s, 'bob', 'c.txt', Buffer.from('bob c'))).statusCode).toBe(201);
    expect(await owners(s)).toEqual({ 'a.txt': 'alice', 'b.txt': 'alice', 'c.txt': 'bob' });

    expect((await del(s, 'root', 'a.txt')).statusCode).toBe(204);
    // the admin's version is the admin's: alice may no longer change it
    expect((await put(s, 'root', 'b.txt', Buffer.from('root b'))).statusCode).toBe(201);
    expect(await owners(s)).toEqual({ 'b.txt': 'root', 'c.txt': 'bob' });
    expect(code(await del(s, 'alice', 'b.txt'))).toBe('SB_ERR_FILE_NOT_OWNER');
    expect(await readFile(join(s.root, 'b.txt'), 'utf8')).toBe('root b');
  });

  it("gives a file stored by the seed's client no owner: users may neither replace nor delete it, an admin may", async () => {
    const s = await setup();
    const dir = await tempDir();
    const source = join(dir, 'seed.txt');
    const content = Buffer.from('from the seed client\n');
    await writeFile(source, content);
    const script = fileURLToPath(new URL('../../fixtures/seed_ftp_client.py', import.meta.url));
    await promisify(execFile)('python3', [script, '127.0.0.1', String(filesPort(s.app)), source]);
    await eventually(async () => 'seed.txt' in (await owners(s)), 'the seed upload to be listed');
    expect(await owners(s)).toEqual({ 'seed.txt': null });

    for (const attempt of [() => del(s, 'alice', 'seed.txt'), () => post(s, 'alice', 'seed.txt', Buffer.from('x')), () => put(s, 'bob', 'seed.txt', Buffer.from('y'))]) {
      const res = await attempt();
      expect(res.statusCode).toBe(403);
      expect(code(res)).toBe('SB_ERR_FILE_NOT_OWNER');
    }
    expect((await readFile(join(s.root, 'seed.txt'))).equals(content)).toBe(true);
    expect((await del(s, 'root', 'seed.txt')).statusCode).toBe(204);
    expect(await owners(s)).toEqual({});
  });
});
