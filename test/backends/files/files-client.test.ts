// FilesClient against a real FilesService: queueing, refusals, broken sources, lost connections.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesClient } from '../../../backends/files/files-client.js';
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
