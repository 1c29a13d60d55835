// The chunked put (protocol/files-messages.ts): a file of unknown length in chunk frames, against a
// real FilesService on 127.0.0.1:0, through FilesClient and through raw frames split anywhere.
import { randomBytes, randomInt } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FILES_CHUNK_MAX_BYTES } from '../../../protocol/files-messages.js';
import { encodeFrameHead } from '../../../protocol/frame-codec.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { connect, eventually, RawPeer, sha256, startFiles, stopFiles, visible } from './harness.js';

const partials = (root: string) => readdir(join(root, '.partial'));

/** `data` cut at random places into pieces of 1 byte to 3 MiB (bigger than one chunk frame). */
function randomSlices(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = Math.min(data.length - at, randomInt(1, 3) === 1 ? randomInt(1, 4096) : randomInt(1, 3 * FILES_CHUNK_MAX_BYTES));
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** A chunked put as raw bytes: put header, one chunk frame per piece, the empty end chunk. */
function chunkedPutBytes(header: Record<string, unknown>, pieces: Buffer[], end = true): Buffer {
  const frames: Buffer[] = [encodeFrameHead({ cmd: 'put', chunked: true, ...header })];
  for (const piece of pieces) frames.push(encodeFrameHead({ cmd: 'chunk' }, piece.length), piece);
  if (end) frames.push(encodeFrameHead({ cmd: 'chunk' }));
  return Buffer.concat(frames);
}

afterEach(async () => {
  await stopFiles();
  await removeTempDirs();
});

describe('FilesService: chunked put', () => {
  it('stores several MB byte-exact from a source of unknown length, split at random boundaries', async () => {
    const { port, root } = await startFiles();
    const client = await connect(port);
    const data = randomBytes(6 * 1024 * 1024 + 17);
    const entry = await client.put('big.bin', Readable.from(randomSlices(data)), undefined, { sha256: sha256(data) });
    expect(entry).toMatchObject({ name: 'big.bin', size: data.length, sha256: sha256(data) });
    expect((await readFile(join(root, 'big.bin'))).equals(data)).toBe(true);
    expect(await partials(root)).toEqual([]);
    // the connection is in sync afterwards
    expect(await client.list()).toHaveLength(1);
  });

  it('decodes chunk frames whose bytes arrive cut at arbitrary places; an empty upload is an empty file', async () => {
    const { port, root } = await startFiles();
    const data = randomBytes(2 * FILES_CHUNK_MAX_BYTES + 1);
    const pieces = [data.subarray(0, 1), data.subarray(1, 1 + FILES_CHUNK_MAX_BYTES), data.subarray(1 + FILES_CHUNK_MAX_BYTES)];
    const wire = chunkedPutBytes({ filename: 'raw.bin', sha256: sha256(data) }, pieces);
    const peer = await RawPeer.connect(port);
    for (let at = 0; at < wire.length; ) {
      const n = randomInt(1, 200_000);
      await peer.write(wire.subarray(at, at + n));
      at += n;
    }
    const ok = await peer.next();
    expect(ok.header).toMatchObject({ cmd: 'ok', op: 'put', name: 'raw.bin', total: data.length, sha256: sha256(data) });
    expect((await readFile(join(root, 'raw.bin'))).equals(data)).toBe(true);

    await peer.write(chunkedPutBytes({ filename: 'empty' }, []));
    expect((await peer.next()).header).toMatchObject({ cmd: 'ok', name: 'empty', total: 0 });
    expect((await readFile(join(root, 'empty'))).length).toBe(0);
  });

  it('refuses the chunk that passes maxFileSize, mid-stream, and deletes the temp file even when resumable', async () => {
    const { port, root } = await startFiles({ maxFileSize: 3 * 1024 * 1024 });
    const peer = await RawPeer.connect(port);
    const chunk = randomBytes(FILES_CHUNK_MAX_BYTES);
    // three chunks fit exactly; the fourth header is refused before its body is read
    await peer.write(chunkedPutBytes({ filename: 'too-big.bin', resumable: true }, [chunk, chunk, chunk], false));
    await eventually(async () => (await partials(root)).length === 1, 'the upload in progress');
    await peer.write(encodeFrameHead({ cmd: 'chunk' }, 1));
    const refusal = await peer.next();
    expect(refusal.header).toMatchObject({ cmd: 'error', code: 'SB_ERR_FILE_TOO_LARGE' });
    await peer.closed;
    await eventually(async () => (await partials(root)).length === 0, 'the temp file to be deleted');
    expect(await visible(root)).toEqual([]);

    // through the client: the same refusal, nothing kept
    const client = await connect(port);
    const source = Readable.from(randomSlices(randomBytes(4 * 1024 * 1024)));
    await expect(client.put('too-big.bin', source, undefined)).rejects.toMatchObject({ code: 'SB_ERR_FILE_TOO_LARGE' });
    await eventually(async () => (await partials(root)).length === 0, 'the temp file to be deleted');
    expect(await visible(root)).toEqual([]);
  });

  it('counts the running total against the quota and refuses the moment it is exceeded', async () => {
    const { port, root } = await startFiles({ quotaBytes: 3 * 1024 * 1024 });
    const client = await connect(port);
    const first = randomBytes(2 * 1024 * 1024);
    await client.put('first.bin', Readable.from([first]), undefined);
    // 1 MiB left: a 1 MiB upload fits exactly, 1 MiB + 1 does not
    const fits = randomBytes(1024 * 1024);
    await client.put('fits.bin', Readable.from(randomSlices(fits)), undefined);
    await client.delete('fits.bin');
    await expect(client.put('over.bin', Readable.from(randomSlices(randomBytes(1024 * 1024 + 1))), undefined)).rejects.toMatchObject({ code: 'SB_ERR_FILE_QUOTA' });
    await eventually(async () => (await partials(root)).length === 0, 'the temp file to be deleted');
    expect(await visible(root)).toEqual(['first.bin']);
  });

  it('an interrupted non-resumable chunked put leaves nothing; a resumable one is kept and resumes', async () => {
    const { port, root } = await startFiles();
    const data = randomBytes(3 * 1024 * 1024);
    const head = data.subarray(0, 2 * FILES_CHUNK_MAX_BYTES);

    const gone = await RawPeer.connect(port);
    await gone.write(chunkedPutBytes({ filename: 'gone.bin', resumable: false }, [head.subarray(0, FILES_CHUNK_MAX_BYTES), head.subarray(FILES_CHUNK_MAX_BYTES)], false));
    await eventually(async () => (await partials(root)).length === 1, 'the upload in progress');
    gone.socket.destroy();
    await eventually(async () => (await partials(root)).length === 0, 'the interrupted upload to be deleted');
    expect(await visible(root)).toEqual([]);

    const kept = await RawPeer.connect(port);
    await kept.write(chunkedPutBytes({ filename: 'kept.bin' }, [head.subarray(0, FILES_CHUNK_MAX_BYTES), head.subarray(FILES_CHUNK_MAX_BYTES)], false));
    const client = await connect(port);
    await eventually(async () => (await client.stat('kept.bin').catch(() => undefined))?.partial?.size === head.length || (kept.socket.destroy(), false), 'the partial to be kept');
    expect(await visible(root)).toEqual([]);
    const entry = await client.put('kept.bin', Readable.from([data.subarray(head.length)]), undefined, { offset: head.length, sha256: sha256(data) });
    expect(entry).toMatchObject({ size: data.length, sha256: sha256(data) });
    expect((await readFile(join(root, 'kept.bin'))).equals(data)).toBe(true);
  });

  it('refuses a wrong sha256 after the last chunk, keeps nothing, and keeps the connection', async () => {
    const { port, root } = await startFiles();
    const client = await connect(port);
    const data = randomBytes(1500 * 1024);
    await expect(client.put('bad.bin', Readable.from(randomSlices(data)), undefined, { sha256: sha256('something else') })).rejects.toMatchObject({ code: 'SB_ERR_FILE_CHECKSUM' });
    expect(await visible(root)).toEqual([]);
    expect(await partials(root)).toEqual([]);
    expect(await client.list()).toEqual([]);
  });

  it('closes the connection on a misused chunked put', async () => {
    const { port, root } = await startFiles();
    const cases: Array<[Buffer, string]> = [
      [encodeFrameHead({ cmd: 'chunk' }, 0), 'SB_ERR_BAD_REQUEST'],
      [Buffer.concat([encodeFrameHead({ cmd: 'chunk' }, 3), Buffer.from('abc')]), 'SB_ERR_BAD_REQUEST'],
      [Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'x', chunked: true }), encodeFrameHead({ cmd: 'list' })]), 'SB_ERR_BAD_REQUEST'],
      [Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'x', chunked: true }), encodeFrameHead({ cmd: 'chunk' }, FILES_CHUNK_MAX_BYTES + 1)]), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
      [encodeFrameHead({ cmd: 'put', filename: 'x', chunked: true }, 10), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
      [encodeFrameHead({ cmd: 'put', filename: 'x', chunked: 'yes' }), 'SB_ERR_BAD_REQUEST'],
    ];
    for (const [bytes, code] of cases) {
      const peer = await RawPeer.connect(port);
      await peer.write(bytes);
      expect((await peer.next()).header).toMatchObject({ cmd: 'error', code });
      await peer.closed;
    }
    await eventually(async () => (await partials(root)).length <= 1, 'aborted uploads to settle');
    expect(await visible(root)).toEqual([]);
    // the service is still up
    expect(await (await connect(port)).list()).toEqual([]);
  });
});

describe('FilesClient: chunked put', () => {
  it('reads the source no faster than the socket drains: a peer that stops reading stops the source', async () => {
    // A peer that accepts and never reads (a stalled network), not a files service.
    const accepted: net.Socket[] = [];
    const stalled = net.createServer((socket) => accepted.push(socket.pause()));
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    try {
      const client = await connect((stalled.address() as AddressInfo).port);
      let pulled = 0;
      const block = randomBytes(64 * 1024);
      const endless = new Readable({
        read() {
          pulled += block.length;
          this.push(block);
        },
      });
      const put = client.put('endless.bin', endless, undefined);
      put.catch(() => undefined);
      // Wait until the source is no longer read: the kernel's socket buffers are full.
      let last = -1;
      while (pulled !== last) {
        last = pulled;
        await new Promise((r) => setTimeout(r, 250));
      }
      // Without backpressure the source would be read without end (gigabytes in seconds).
      expect(pulled).toBeGreaterThan(0);
      expect(pulled).toBeLessThan(64 * 1024 * 1024);
      await client.close();
      await expect(put).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => stalled.close(resolve));
    }
  });
});
