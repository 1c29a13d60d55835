// Issue 5, files over TCP: each hostile request is refused with its code, nothing outside the root
// is touched, and a well-behaved client is still served afterwards.
import { readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fcOptions, splitAt } from '../helpers/fc.js';
import { FilesClient } from '../../backends/files/files-client.js';
import { encodeFrame } from '../../protocol/frame-codec.js';
import { removeTempDirs } from '../helpers/tmp.js';
import { RawPeer, rawHead, sha256, startFiles, stopFiles, type Started } from '../backends/files/harness.js';

const clients: FilesClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await stopFiles();
  await removeTempDirs();
});

/** A fresh, well-behaved client does a full put/get round trip. */
async function stillServes({ port }: Started): Promise<void> {
  const client = await FilesClient.connect('127.0.0.1', port);
  clients.push(client);
  const data = Buffer.from(`well behaved ${Math.random()}`);
  await client.put('well-behaved.txt', Readable.from([data]), data.length, { sha256: sha256(data) });
  const { stream } = await client.get('well-behaved.txt');
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  expect(Buffer.concat(parts)).toEqual(data);
}

/** Sends a raw put (header exactly as given, size set from the body unless declared) and returns the refusal code. */
async function refusedPut(port: number, header: Record<string, unknown>, body: Buffer = Buffer.alloc(0)): Promise<unknown> {
  const peer = await RawPeer.connect(port);
  const declared = 'size' in header || 'filesize' in header ? header : { ...header, size: body.length };
  await peer.write(Buffer.concat([rawHead(declared), body]));
  const reply = await peer.next();
  await peer.closed;
  return reply.header['code'];
}

describe('files over TCP, adversarial', () => {
  it('refuses names over 255 UTF-8 bytes (ASCII and multibyte)', async () => {
    const s = await startFiles();
    for (const name of ['a'.repeat(256), 'é'.repeat(128), '字'.repeat(86)]) {
      expect(await refusedPut(s.port, { cmd: 'put', filename: name }, Buffer.from('x'))).toBe('SB_ERR_FILE_NAME_INVALID');
    }
    expect((await readdir(s.root)).filter((n) => !n.startsWith('.'))).toEqual([]);
    await stillServes(s);
  });

  it('takes percent-encoded traversal literally, never decoding it', async () => {
    const s = await startFiles();
    const client = await FilesClient.connect('127.0.0.1', s.port);
    clients.push(client);
    for (const name of ['%2e%2e%2f', '%2e%2e%2fescape.txt', '%2E%2E%5Cescape', 'a..%2f..%2fescape']) {
      await client.put(name, Readable.from([Buffer.from(name)]), Buffer.byteLength(name));
      expect(await readFile(join(s.root, name), 'utf8')).toBe(name);
    }
    // Half-decoded: still starts with "." and is refused as such.
    expect(await refusedPut(s.port, { cmd: 'put', filename: '..%2fescape.txt' }, Buffer.from('x'))).toBe('SB_ERR_FILE_NAME_INVALID');
    expect(await readdir(s.outside)).toEqual([]);
    expect((await readdir(join(s.root, '..'))).sort()).toEqual(['outside', 'root']);
    await stillServes(s);
  });

  it('refuses creating through a dangling symlink, leaving its target uncreated', async () => {
    const s = await startFiles();
    await symlink(join(s.outside, 'planted'), join(s.root, 'trap'));
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'trap' }, Buffer.from('payload'))).toBe('SB_ERR_FILE_NAME_INVALID');
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'trap', offset: 0, resumable: false }, Buffer.from('payload'))).toBe('SB_ERR_FILE_NAME_INVALID');
    expect(await readdir(s.outside)).toEqual([]);
    await stillServes(s);
  });

  it('honours the size limit at the header, before any byte of the body', async () => {
    const s = await startFiles({ maxFileSize: 1024 });
    // 2^32-1 declared: refused from the header alone (no body is ever sent).
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'huge', filesize: 2 ** 32 - 1 })).toBe('SB_ERR_FRAME_BODY_TOO_LARGE');
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'huge', size: 1025 })).toBe('SB_ERR_FRAME_BODY_TOO_LARGE');
    // A resume cannot grow a file past the limit either.
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'huge', offset: 1000 }, Buffer.alloc(100))).toBe('SB_ERR_FILE_TOO_LARGE');
    expect(await readdir(join(s.root, '.partial'))).toEqual([]);
    await stillServes(s);
  });

  it('honours the quota, counting the declared size before accepting bytes', async () => {
    const s = await startFiles({ quotaBytes: 4096 });
    const client = await FilesClient.connect('127.0.0.1', s.port);
    clients.push(client);
    await client.put('first', Readable.from([Buffer.alloc(3000)]), 3000);
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'second', size: 2 ** 32 - 1 })).toBe('SB_ERR_FILE_QUOTA');
    expect(await refusedPut(s.port, { cmd: 'put', filename: 'second' }, Buffer.alloc(1500))).toBe('SB_ERR_FILE_QUOTA');
    expect((await readdir(s.root)).filter((n) => !n.startsWith('.'))).toEqual(['first']);
    await client.delete('first');
    await stillServes(s);
  });

  it('refuses a header length of 2^32-1 (int32 -1) and of 2^31-1', async () => {
    const s = await startFiles();
    for (const length of [0xffffffff, 0x7fffffff]) {
      const peer = await RawPeer.connect(s.port);
      await peer.write(rawHead({ cmd: 'list' }, length));
      expect((await peer.next()).header).toMatchObject({ cmd: 'error', code: 'SB_ERR_FRAME_HEADER_LENGTH' });
      await peer.closed;
    }
    await stillServes(s);
  });

  it('refuses non-string, absent and object file names without crashing', async () => {
    const s = await startFiles();
    const peer = await RawPeer.connect(s.port);
    await peer.write(Buffer.concat([encodeFrame({ cmd: 'get' }), encodeFrame({ cmd: 'stat', filename: { toString: 'x' } }), encodeFrame({ cmd: 'delete', filename: ['a'] })]));
    for (let i = 0; i < 3; i++) expect((await peer.next()).header).toMatchObject({ cmd: 'error', code: 'SB_ERR_FILE_NAME_INVALID' });
    await stillServes(s);
  });

  it('survives random bytes and random cuts of valid requests, and keeps serving', async () => {
    const s = await startFiles({ maxFileSize: 4096 });
    const valid = Buffer.concat([rawHead({ cmd: 'put', filename: 'fuzz', size: 3 }), Buffer.from('abc'), encodeFrame({ cmd: 'list' })]);
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.integer({ min: 0, max: valid.length }), fc.uint8Array({ maxLength: 40 })).map(([at, junk]) => Buffer.concat([valid.subarray(0, at), junk])),
    );
    await fc.assert(
      fc.asyncProperty(input, fc.array(fc.nat(), { maxLength: 6 }), async (bytes, cuts) => {
        const peer = await RawPeer.connect(s.port);
        for (const part of splitAt(bytes, cuts)) await peer.write(part).catch(() => undefined);
        peer.socket.destroy();
        await peer.closed;
      }),
      fcOptions(40),
    );
    await stillServes(s);
    expect(await readdir(s.outside)).toEqual([]);
  });
});
