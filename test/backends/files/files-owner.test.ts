// Owners in the files service: a put's `actor` owns what it published; another non-admin actor may
// neither replace nor delete it (SB_ERR_FILE_NOT_OWNER), decided with the rename or unlink itself.
// Real services on 127.0.0.1:0 over temp roots; FileStore directly where a race must be staged.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../../backends/files/file-store.js';
import { FilesService } from '../../../backends/files/files-service.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import type { FileActor } from '../../../protocol/files-messages.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { connect, RawPeer, startFiles, stopFiles } from './harness.js';

const ALICE: FileActor = { name: 'alice', admin: false };
const BOB: FileActor = { name: 'bob', admin: false };
const ROOT: FileActor = { name: 'root', admin: true };

const stores: FileStore[] = [];
async function openStore(root: string): Promise<FileStore> {
  const store = new FileStore({ root, maxFileSize: 1024 * 1024, quotaBytes: 0, partialTtlMs: 60_000 });
  await store.open();
  stores.push(store);
  return store;
}

async function putBytes(store: FileStore, name: string, data: Buffer, actor?: FileActor) {
  const upload = await store.beginUpload(name, { size: data.length, resumable: false, ...(actor ? { actor } : {}) });
  if (!upload.write(data)) await upload.drained();
  return upload.complete();
}

const owners = async (store: FileStore) => Object.fromEntries((await store.list()).map((f) => [f.name, f.owner]));
const refusedAsNotOwner = { code: 'SB_ERR_FILE_NOT_OWNER' };

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await stopFiles();
  await removeTempDirs();
});

describe('files service: owners', () => {
  it("refuses another actor's put and delete, lists the owner, and lets the owner, an admin and a direct client act", async () => {
    const { port, root } = await startFiles();
    const client = await connect(port);
    const data = Buffer.from('alice wrote this');
    await client.put('a.txt', Readable.from([data]), data.length, { actor: ALICE });
    await client.put('b.txt', Readable.from([data]), data.length, { actor: ALICE });
    await client.put('c.txt', Readable.from([data]), data.length);
    expect(await client.list()).toEqual([
      expect.objectContaining({ name: 'a.txt', owner: 'alice' }),
      expect.objectContaining({ name: 'b.txt', owner: 'alice' }),
      expect.objectContaining({ name: 'c.txt', owner: null }),
    ]);

    await expect(client.delete('a.txt', { actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
    // a refused put is refused at its header, before the body: the connection ends
    const bob = await connect(port);
    await expect(bob.put('a.txt', Readable.from([Buffer.from('bob')]), 3, { actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
    const bob2 = await connect(port);
    await expect(bob2.put('c.txt', Readable.from([Buffer.from('bob')]), undefined, { actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
    expect(await readFile(join(root, 'a.txt'))).toEqual(data);
    expect(await readFile(join(root, 'c.txt'))).toEqual(data);

    await client.delete('a.txt', { actor: ALICE });
    await client.delete('b.txt', { actor: ROOT });
    await client.delete('c.txt');
    expect(await client.list()).toEqual([]);
  });

  it('keeps owners across a restart of the service', async () => {
    const root = join(await tempDir('sockbridge-files-'), 'root');
    const first = new FilesService({ root, port: 0 });
    const { port } = await first.start();
    const client = await connect(port);
    await client.put('kept.txt', Readable.from([Buffer.from('v1')]), 2, { actor: ALICE });
    await client.close();
    await first.close();

    const second = new FilesService({ root, port: 0 });
    const again = await second.start();
    try {
      const after = await connect(again.port);
      expect(await after.list()).toEqual([expect.objectContaining({ name: 'kept.txt', owner: 'alice' })]);
      await expect(after.delete('kept.txt', { actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
      await after.delete('kept.txt', { actor: ALICE });
    } finally {
      await stopFiles();
      await second.close();
    }
  });

  it('refuses a malformed actor with SB_ERR_BAD_REQUEST', async () => {
    const { port } = await startFiles();
    for (const fields of [{ actor: '' }, { actor: 42 }, { actor: 'a\nb' }, { actor: 'x'.repeat(129) }, { actorRole: 'admin' }, { actor: 'a', actorRole: 'root' }]) {
      const peer = await RawPeer.connect(port);
      await peer.write(encodeFrame({ cmd: 'delete', filename: 'x', ...fields }));
      expect({ fields, reply: (await peer.next()).header }).toEqual({ fields, reply: expect.objectContaining({ cmd: 'error', code: 'SB_ERR_BAD_REQUEST' }) });
    }
  });
});

describe('FileStore: owners', () => {
  it('a resumed upload keeps the rule: only the actor that started it may resume or delete the kept partial', async () => {
    const store = await openStore(join(await tempDir('sockbridge-store-'), 'root'));
    const data = Buffer.from('0123456789');
    const started = await store.beginUpload('r.bin', { size: data.length, resumable: true, actor: ALICE });
    started.write(data.subarray(0, 4));
    await started.abort();
    expect((await store.stat('r.bin')).partial).toMatchObject({ size: 4 });

    await expect(store.beginUpload('r.bin', { offset: 4, size: 6, actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
    // a fresh resumable put would overwrite the kept partial: refused too
    await expect(store.beginUpload('r.bin', { size: 1, resumable: true, actor: BOB })).rejects.toMatchObject(refusedAsNotOwner);
    await expect(store.delete('r.bin', BOB)).rejects.toMatchObject(refusedAsNotOwner);
    expect((await store.stat('r.bin')).partial).toMatchObject({ size: 4 });

    const resumed = await store.beginUpload('r.bin', { offset: 4, size: 6, actor: ALICE });
    resumed.write(data.subarray(4));
    await resumed.complete();
    expect(await owners(store)).toEqual({ 'r.bin': 'alice' });
  });

  it('decides with the rename: an upload allowed at its start is refused at publish if the name became someone else’s meanwhile', async () => {
    // Two stores on one root (two services, or a second process): the early check of one cannot see
    // what the other publishes meanwhile; the check under the lock at the rename does.
    const root = join(await tempDir('sockbridge-store-'), 'root');
    const mine = await openStore(root);
    const other = await openStore(root);
    const bobs = await mine.beginUpload('late.txt', { size: 3, resumable: false, actor: BOB });
    bobs.write(Buffer.from('bob'));
    await putBytes(other, 'late.txt', Buffer.from('alice'), ALICE);
    await expect(bobs.complete()).rejects.toMatchObject(refusedAsNotOwner);
    expect(await readFile(join(root, 'late.txt'), 'utf8')).toBe('alice');
    expect(await owners(mine)).toEqual({ 'late.txt': 'alice' });
  });
});
