// A full disk: the upload fails with SB_ERR_FILE_NO_SPACE, leaves no visible or partial file, and
// the service keeps serving. The disk is a 1 MiB tmpfs mounted by the test (root only: CI runs as
// root, where a failed mount fails the test; elsewhere the test says why it cannot run).
import { execFileSync } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesClient } from '../../../backends/files/files-client.js';
import { FilesService } from '../../../backends/files/files-service.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const mounted: string[] = [];
const services: FilesService[] = [];

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const dir of mounted.splice(0)) execFileSync('umount', [dir]);
  await removeTempDirs();
});

function mountSmallDisk(dir: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    mounted.push(dir);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('FilesService on a full disk', () => {
  it('refuses an upload that does not fit with SB_ERR_FILE_NO_SPACE, keeps nothing, and keeps serving', async (ctx) => {
    const disk = join(await tempDir('sockbridge-enospc-'), 'disk');
    await mkdir(disk);
    const failure = mountSmallDisk(disk);
    if (failure) {
      if (process.env['CI']) throw new Error(`cannot mount a tmpfs for the full-disk test: ${failure}`);
      ctx.skip(`needs root to mount a 1 MiB tmpfs (${failure.split('\n')[0]})`);
    }
    const root = join(disk, 'files');
    const service = new FilesService({ root, port: 0 });
    services.push(service);
    const { port } = await service.start();

    const client = await FilesClient.connect('127.0.0.1', port);
    const big = Buffer.alloc(2 * 1024 * 1024, 7);
    const err = await client.put('big.bin', Readable.from([big]), big.length).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('SB_ERR_FILE_NO_SPACE');
    await client.close().catch(() => undefined);

    expect((await readdir(root)).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(await readdir(join(root, '.partial'))).toEqual([]);

    // the space is free again and the service still serves
    const again = await FilesClient.connect('127.0.0.1', port);
    const small = Buffer.from('still here\n');
    const entry = await again.put('small.txt', Readable.from([small]), small.length);
    expect(entry.size).toBe(small.length);
    expect((await again.list()).map((f) => f.name)).toEqual(['small.txt']);
    await again.close();
  });
});
