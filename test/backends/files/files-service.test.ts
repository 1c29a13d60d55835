// Integration: FilesService and FilesClient on real sockets, 127.0.0.1, port 0.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrameHead } from '../../../protocol/frame-codec.js';
import { isServiceRefusal } from '../../../backends/files/files-client.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { connect, eventually, RawPeer, rawHead, sha256, startFiles, stopFiles, visible } from './harness.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

afterEach(async () => {
  await stopFiles();
  await removeTempDirs();
});

describe('FilesService: put, get, list, stat, delete', () => {
  it('round-trips a file with its sha256 on every reply', async () => {
    const { port, root } = await startFiles();
    const client = await connect(port);
    const data = Buffer.from('hello, sockets\n');
    const put = await client.put('hello.txt', Readable.from([data]), data.length, { sha256: sha256(data) });
    expect(put).toMatchObject({ name: 'hello.txt', size: data.length, sha256: sha256(data) });
    expect(await readFile(join(root, 'hello.txt'))).toEqual(data);

    const { entry, offset, stream } = await client.get('hello.txt');
    expect(offset).toBe(0);
    expect(entry.sha256).toBe(sha256(data));
    expect(await readAll(stream)).toEqual(data);

    const ranged = await client.get('hello.txt', { offset: 7 });
    expect(await readAll(ranged.stream)).toEqual(data.subarray(7));

    expect(await client.list()).toEqual([{ ...put, owner: null }]);
    expect(await client.stat('hello.txt')).toMatchObject({ exists: true, name: 'hello.txt', size: data.length, sha256: sha256(data) });
    await client.delete('hello.txt');
    await expect(client.stat('hello.txt')).rejects.toMatchObject({ code: 'SB_ERR_FILE_NOT_FOUND' });
    await expect(client.get('hello.txt')).rejects.toMatchObject({ code: 'SB_ERR_FILE_NOT_FOUND' });
    await expect(client.delete('hello.txt')).rejects.toMatchObject({ code: 'SB_ERR_FILE_NOT_FOUND' });
    // File-level refusals keep the connection: the same client still works.
    expect(await client.list()).toEqual([]);
  });

  it('moves several MB byte-exact both ways', async () => {
    const { port } = await startFiles();
    const client = await connect(port);
    const data = randomBytes(6 * 1024 * 1024 + 17);
    const chunks = Array.from({ length: Math.ceil(data.length / 65_536) }, (_, i) => data.subarray(i * 65_536, (i + 1) * 65_536));
    let progress = 0;
    const put = await client.put('big.bin', Readable.from(chunks), data.length, { sha256: sha256(data), onProgress: (n) => (progress = n) });
    expect(progress).toBe(data.length);
    expect(put.sha256).toBe(sha256(data));
    const { entry, stream } = await client.get('big.bin');
    const back = await readAll(stream);
    expect(back.equals(data)).toBe(true);
    expect(entry).toEqual(put);
  });

  it('refuses a put whose declared sha256 differs, keeps nothing, and keeps serving', async () => {
    const { port, root } = await startFiles();
    const client = await connect(port);
    const data = Buffer.from('the real bytes');
    await expect(client.put('x.txt', Readable.from([data]), data.length, { sha256: sha256('other bytes') })).rejects.toMatchObject({
      code: 'SB_ERR_FILE_CHECKSUM',
    });
    expect(await visible(root)).toEqual([]);
    expect(await readdir(join(root, '.partial'))).toEqual([]);
    expect(await client.list()).toEqual([]);
  });

  it('decodes a put and a get sent one byte at a time', async () => {
    const { port } = await startFiles();
    const peer = await RawPeer.connect(port);
    const body = Buffer.from('split across many reads');
    const bytes = Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'split.txt' }, body.length), body, encodeFrame({ cmd: 'get', filename: 'split.txt' })]);
    for (const byte of bytes) await peer.write(Buffer.of(byte));
    expect((await peer.next()).header).toMatchObject({ cmd: 'ok', op: 'put', name: 'split.txt', sha256: sha256(body) });
    const data = await peer.next();
    expect(data.header).toMatchObject({ cmd: 'data', size: body.length, total: body.length, offset: 0, sha256: sha256(body) });
    expect(data.body).toEqual(body);
  });

  it('answers many requests sent in one chunk, in order', async () => {
    const { port } = await startFiles();
    const peer = await RawPeer.connect(port);
    const a = Buffer.from('aaa');
    await peer.write(
      Buffer.concat([
        encodeFrameHead({ cmd: 'put', filename: 'a' }, a.length),
        a,
        encodeFrame({ cmd: 'stat', filename: 'a' }),
        encodeFrame({ cmd: 'stat', filename: 'missing' }),
        encodeFrame({ cmd: 'list' }),
        encodeFrame({ cmd: 'get', filename: 'a' }),
        encodeFrame({ cmd: 'delete', filename: 'a' }),
        encodeFrame({ cmd: 'list' }),
      ]),
    );
    expect((await peer.next()).header).toMatchObject({ cmd: 'ok', op: 'put', name: 'a' });
    expect((await peer.next()).header).toMatchObject({ cmd: 'stat', exists: true, total: 3 });
    expect((await peer.next()).header).toMatchObject({ cmd: 'error', code: 'SB_ERR_FILE_NOT_FOUND' });
    const list = await peer.next();
    expect(list.header).toMatchObject({ cmd: 'list', count: 1 });
    expect(JSON.parse(list.body.toString())).toEqual([expect.objectContaining({ name: 'a', size: 3, sha256: sha256(a) })]);
    expect((await peer.next()).body).toEqual(a);
    expect((await peer.next()).header).toMatchObject({ cmd: 'ok', op: 'delete', name: 'a' });
    const empty = await peer.next();
    expect(JSON.parse(empty.body.toString())).toEqual([]);
  });

  it('stores a byte-identical file from the seed client (python3 MYTCPClient.put: filesize, line by line, close without reading)', async () => {
    const { port, root } = await startFiles();
    const dir = await tempDir();
    const source = join(dir, 'seed upload.txt');
    const content = Buffer.concat([Buffer.from('line one\nline two\r\n'), randomBytes(200_000), Buffer.from('\nno newline at the end')]);
    await writeFile(source, content);
    const script = fileURLToPath(new URL('../../fixtures/seed_ftp_client.py', import.meta.url));
    await promisify(execFile)('python3', [script, '127.0.0.1', String(port), source]);
    await eventually(async () => (await visible(root)).includes('seed upload.txt'), 'the seed upload to be visible');
    expect((await readFile(join(root, 'seed upload.txt'))).equals(content)).toBe(true);
  });

  it('refuses traversal names and symlinks, and touches nothing outside the root', async () => {
    const { port, root, outside } = await startFiles();
    const secret = join(outside, 'secret.txt');
    await writeFile(secret, 'outside');
    await symlink(secret, join(root, 'link'));
    await symlink(join(outside, 'created-through-link'), join(root, 'dangling'));
    const client = await connect(port);
    for (const name of ['../x', '../outside/secret.txt', '/etc/passwd', 'a\\b', 'a\0b', '..', '.', '.partial', 'link', 'dangling']) {
      await expect(client.get(name), name).rejects.toMatchObject({ code: 'SB_ERR_FILE_NAME_INVALID' });
      await expect(client.delete(name), name).rejects.toMatchObject({ code: 'SB_ERR_FILE_NAME_INVALID' });
      const put = await connect(port); // a refused put closes its connection
      await expect(put.put(name, Readable.from([Buffer.from('pwned')]), 5), name).rejects.toMatchObject({ code: 'SB_ERR_FILE_NAME_INVALID' });
    }
    expect(await readFile(secret, 'utf8')).toBe('outside');
    expect(await readdir(outside)).toEqual(['secret.txt']);
    expect((await lstat(join(root, 'link'))).isSymbolicLink()).toBe(true);
    expect((await lstat(join(root, 'dangling'))).isSymbolicLink()).toBe(true);
    // Symlinks are not listed either.
    expect(await client.list()).toEqual([]);
  });

  it('leaves nothing visible when an upload is cut, and resumes it to a correct file', async () => {
    const { port, root } = await startFiles();
    const data = randomBytes(1024 * 1024);
    const cut = 300_000;
    const peer = await RawPeer.connect(port);
    await peer.write(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'resume.bin' }, data.length), data.subarray(0, cut)]));
    peer.socket.destroy();

    const client = await connect(port);
    await eventually(async () => (await client.stat('resume.bin').catch(() => undefined))?.partial?.size === cut, 'the partial to be kept');
    expect(await visible(root)).toEqual([]);
    expect(await client.list()).toEqual([]);
    const st = await client.stat('resume.bin');
    expect(st).toMatchObject({ exists: false, partial: { size: cut, sha256: sha256(data.subarray(0, cut)) } });

    // A wrong offset is refused; the right one completes the file, verified against the whole-file hash.
    const wrong = await connect(port);
    await expect(wrong.put('resume.bin', Readable.from([data.subarray(cut - 1)]), data.length - cut + 1, { offset: cut - 1 })).rejects.toMatchObject({
      code: 'SB_ERR_FILE_OFFSET',
    });
    const entry = await client.put('resume.bin', Readable.from([data.subarray(cut)]), data.length - cut, { offset: cut, sha256: sha256(data) });
    expect(entry).toMatchObject({ size: data.length, sha256: sha256(data) });
    expect((await readFile(join(root, 'resume.bin'))).equals(data)).toBe(true);
    expect(await readdir(join(root, '.partial'))).toEqual([]);
  });

  it('deletes a cut upload at once when it said resumable: false', async () => {
    const { port, root } = await startFiles();
    const peer = await RawPeer.connect(port);
    await peer.write(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'once.bin', resumable: false }, 1000), Buffer.alloc(400)]));
    await eventually(async () => (await readdir(join(root, '.partial'))).length === 1, 'the temp file to exist');
    peer.socket.destroy();
    await eventually(async () => (await readdir(join(root, '.partial'))).length === 0, 'the temp file to be deleted');
    expect(await visible(root)).toEqual([]);
  });

  describe('malformed frames close that connection only', () => {
    const cases: [string, Buffer, string][] = [
      ['header length 0', rawHead({ cmd: 'list' }, 0), 'SB_ERR_FRAME_HEADER_LENGTH'],
      ['header length 2^31-1', rawHead({ cmd: 'list' }, 2 ** 31 - 1), 'SB_ERR_FRAME_HEADER_LENGTH'],
      ['header length one past the limit', rawHead({ cmd: 'list' }, 1024 + 1), 'SB_ERR_FRAME_HEADER_LENGTH'],
      ['invalid JSON', Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('{cmd:')]), 'SB_ERR_FRAME_HEADER_JSON'],
      ['__proto__ key', Buffer.concat([Buffer.from([36, 0, 0, 0]), Buffer.from('{"cmd":"list","__proto__":{"x":1}}  ')]), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY'],
      ['unknown cmd', rawHead({ cmd: 'rm -rf' }), 'SB_ERR_FRAME_CMD_UNKNOWN'],
      ['a body on list', rawHead({ cmd: 'list', size: 10 }), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
    ];
    for (const [what, bytes, code] of cases) {
      it(what, async () => {
        const { port } = await startFiles({ maxHeaderBytes: 1024 });
        const good = await connect(port);
        const bad = await RawPeer.connect(port);
        await bad.write(bytes);
        expect((await bad.next()).header).toMatchObject({ cmd: 'error', code });
        await bad.closed;
        expect(await good.list()).toEqual([]);
        const again = await connect(port);
        expect(await again.list()).toEqual([]);
      });
    }
  });

  it('creates its root, .partial and .meta when missing', async () => {
    const base = await tempDir();
    const root = join(base, 'a', 'b');
    const { service } = await startFiles({ root });
    expect(service.store.rootDir).toBe(root);
    expect((await readdir(root)).sort()).toEqual(['.meta', '.partial']);
    await mkdir(join(root, 'sub'));
    const client = await connect(service.address().port);
    expect(await client.list()).toEqual([]);
  });
});

describe('FilesService limits', () => {
  it('refuses connections past maxConnections with SB_ERR_RATE_LIMITED, and serves again once one closes', async () => {
    const { port } = await startFiles({ maxConnections: 1 });
    const first = await connect(port);
    expect(await first.list()).toEqual([]);
    const second = await RawPeer.connect(port);
    expect((await second.next()).header).toMatchObject({ cmd: 'error', code: 'SB_ERR_RATE_LIMITED' });
    await second.closed;
    await first.close();
    await eventually(async () => {
      const c = await connect(port);
      return (await c.list().catch(() => undefined)) !== undefined;
    }, 'a free connection slot');
  });

  it('closes an idle connection after idleTimeoutMs, saying so in a SB_ERR_TIMEOUT frame', async () => {
    const { port } = await startFiles({ idleTimeoutMs: 200 });
    const peer = await RawPeer.connect(port);
    expect((await peer.next()).header).toMatchObject({ cmd: 'error', code: 'SB_ERR_TIMEOUT' });
    await peer.closed;
    expect(peer.isClosed).toBe(true);
  });

  it('answers a put whose sender stalls past idleTimeoutMs with SB_ERR_TIMEOUT, a refusal from the service itself', async () => {
    const { port, root } = await startFiles({ idleTimeoutMs: 300 });
    const client = await connect(port);
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(1000, 1)); // then nothing: the sender stalled
    const err = await client.put('stalled.bin', source, 2000, { resumable: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SB_ERR_TIMEOUT' });
    expect(isServiceRefusal(err)).toBe(true);
    await eventually(async () => (await readdir(join(root, '.partial'))).length === 0, 'the stalled non-resumable upload dropped');
  });

  it('cuts a get whose reader stalls past idleTimeoutMs without writing an error frame into the body', async () => {
    const { port, root } = await startFiles({ idleTimeoutMs: 300 });
    const data = randomBytes(32 * 1024 * 1024);
    await writeFile(join(root, 'big.bin'), data);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    socket.write(rawHead({ cmd: 'get', filename: 'big.bin' }));
    socket.pause(); // a reader that stops reading: the service blocks on 'drain' and goes idle
    await new Promise((r) => setTimeout(r, 1000));
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.resume();
    await new Promise((r) => socket.once('close', r));
    const bytes = Buffer.concat(received);
    const headLength = bytes.readUInt32LE(0);
    const body = bytes.subarray(4 + headLength);
    expect(body.length).toBeLessThan(data.length);
    // every byte after the header is the file's: no error frame was mixed into the body
    expect(body.equals(data.subarray(0, body.length))).toBe(true);
  });
});
