// FilesClient against a real FilesService: queueing, refusals, broken sources, lost connections.
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesClient } from '../../../backends/files/files-client.js';
import { encodeFrameHead } from '../../../protocol/frame-codec.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { connect, eventually, sha256, startFiles, stopFiles } from './harness.js';


afterEach(async () => {
  await stopFiles();
  await removeTempDirs();
});

describe('FilesClient', () => {
  it('queues requests made at once and answers each in call order', async () => {
    const { port } = await startFiles();
    const client = await connect(port);
    const a = Buffer.from('first');
    const results = await Promise.all([
      client.put('a', Readable.from([a]), a.length),
      client.stat('a'),
      client.list(),
      client.stat('nope').catch((err: { code: string }) => err.code),
      client.delete('a'),
      client.list(),
    ]);
    expect(results[0]).toMatchObject({ name: 'a', size: 5, sha256: sha256(a) });
    expect(results[1]).toMatchObject({ exists: true, size: 5 });
    expect(results[2]).toHaveLength(1);
    expect(results[3]).toBe('SB_ERR_FILE_NOT_FOUND');
    expect(results[5]).toEqual([]);
  });

  it('waits as long as its own reader needs: a paused download is not a stalled service', async () => {
    const { port } = await startFiles();
    const client = await FilesClient.connect('127.0.0.1', port, { replyTimeoutMs: 300 });
    const data = randomBytes(4 * 1024 * 1024);
    await client.put('paused', Readable.from([data]), data.length);
    const { stream } = await client.get('paused');
    await new Promise((r) => setTimeout(r, 900)); // three reply timeouts without reading
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    await client.close();
  });

  it('gives up a download whose service stops sending mid-body (SB_ERR_TIMEOUT), and a put whose service stops reading', async () => {
    // A hostile or hung peer: answers a get with a data header and 3 of 10 bytes, and never reads a put.
    const hung = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', (d) => {
        if (d.includes('"get"')) s.write(Buffer.concat([encodeFrameHead({ cmd: 'data', name: 'a', total: 10, offset: 0, mtime: 0, sha256: 'a'.repeat(64) }, 10), Buffer.from('abc')]));
        else s.pause();
      });
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    try {
      const getter = await FilesClient.connect('127.0.0.1', port, { replyTimeoutMs: 300 });
      const { stream } = await getter.get('a');
      const outcome = await new Promise<string>((resolve) => {
        stream.on('data', () => undefined);
        stream.on('end', () => resolve('end'));
        stream.on('error', (err: { code?: string }) => resolve(err.code ?? 'error'));
      });
      expect(outcome).toBe('SB_ERR_TIMEOUT');

      const putter = await FilesClient.connect('127.0.0.1', port, { replyTimeoutMs: 300 });
      const big = Buffer.alloc(64 * 1024 * 1024); // more than the socket buffers hold
      await expect(putter.put('b', Readable.from([big]), big.length)).rejects.toMatchObject({ code: 'SB_ERR_TIMEOUT' });
    } finally {
      hung.close();
    }
  }, 10_000);

  it('ends the connection with SB_ERR_BACKEND_DOWN on a malformed reply instead of throwing out of its socket handler', async () => {
    // A broken or hostile peer: a get answered with a bad sha256, then with an offset past the end.
    const replies = [
      { cmd: 'data', name: 'a', total: 3, offset: 0, mtime: 0, sha256: 'zz' },
      { cmd: 'data', name: 'a', total: 3, offset: 7, mtime: 0, sha256: 'a'.repeat(64) },
    ];
    const bad = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.write(Buffer.concat([encodeFrameHead(replies.shift()!, 3), Buffer.from('abc')])));
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    const port = (bad.address() as AddressInfo).port;
    try {
      for (let i = 0; i < 2; i++) {
        const client = await FilesClient.connect('127.0.0.1', port, { replyTimeoutMs: 2000 });
        await expect(client.get('a')).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN', message: expect.stringContaining('malformed reply') });
      }
    } finally {
      bad.close();
    }
  });

  it('lists owners as given, null for a service older than owners, and refuses an owner that is no name', async () => {
    const entry = { name: 'a', size: 3, mtime: 0, sha256: 'a'.repeat(64) };
    const bodies = [[{ ...entry, owner: 'alice' }, { ...entry, name: 'b', owner: null }], [entry], [{ ...entry, owner: 42 }], [{ ...entry, owner: '' }]];
    const peer = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => {
        const body = Buffer.from(JSON.stringify(bodies.shift()));
        s.write(Buffer.concat([encodeFrameHead({ cmd: 'list', count: 1 }, body.length), body]));
      });
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    const port = (peer.address() as AddressInfo).port;
    const list = async () => {
      const client = await FilesClient.connect('127.0.0.1', port, { replyTimeoutMs: 2000 });
      return client.list().finally(() => client.close());
    };
    try {
      expect((await list()).map((f) => f.owner)).toEqual(['alice', null]);
      expect(await list()).toEqual([{ ...entry, owner: null }]);
      for (let i = 0; i < 2; i++) await expect(list()).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN', message: expect.stringContaining('owner') });
    } finally {
      peer.close();
    }
  });

  it('rejects a get on a connection that is already gone, instead of never settling', async () => {
    const { port } = await startFiles({ idleTimeoutMs: 150 });
    const client = await connect(port);
    await client.list();
    await new Promise((r) => setTimeout(r, 600)); // the service closed the idle connection meanwhile
    const outcome = await Promise.race([
      client.get('anything').then(() => 'resolved', (err: { code?: string }) => err.code ?? 'rejected'),
      new Promise((r) => setTimeout(() => r('never settled'), 3000)),
    ]);
    expect(outcome).toMatch(/^SB_ERR_/);
  });

  it('delivers a download it was not reading yet, byte-exact, once it reads', async () => {
    const { port } = await startFiles();
    const client = await connect(port);
    const data = randomBytes(4 * 1024 * 1024);
    await client.put('slow', Readable.from([data]), data.length);
    const { stream } = await client.get('slow');
    await new Promise((r) => setTimeout(r, 100)); // the service fills the socket, then waits for drain
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(await client.list()).toHaveLength(1); // the connection is usable after the body
  });

  it('rejects a source shorter than declared with SB_ERR_BAD_REQUEST and publishes nothing', async () => {
    const { port } = await startFiles();
    const client = await connect(port);
    await expect(client.put('short', Readable.from([Buffer.from('abc')]), 10)).rejects.toMatchObject({ code: 'SB_ERR_BAD_REQUEST' });
    const other = await connect(port);
    await eventually(async () => (await other.stat('short').catch(() => undefined))?.partial?.size === 3, 'the kept partial');
    expect(await other.list()).toEqual([]);
  });

  it('rejects with the source error when the source fails mid-body, and closes that connection', async () => {
    const { port } = await startFiles();
    const client = await connect(port);
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1000));
        this.destroy(new Error('disk read failed'));
      },
    });
    await expect(client.put('broken', failing, 5000)).rejects.toThrow('disk read failed');
    await expect(client.list()).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
    expect(await (await connect(port)).list()).toEqual([]);
  });

  it('reports a refused connection as SB_ERR_CONNECT and a lost one as SB_ERR_BACKEND_DOWN', async () => {
    await expect(FilesClient.connect('127.0.0.1', 1)).rejects.toMatchObject({ code: 'SB_ERR_CONNECT' });
    const { port, service } = await startFiles();
    const client = await connect(port);
    expect(await client.list()).toEqual([]);
    await service.close();
    await expect(client.list()).rejects.toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
  });
});
