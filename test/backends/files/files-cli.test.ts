// Integration: `sockbridge serve files`, `put`, `get`, `ls` as child processes (needs `npm run build:server`).
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesClient } from '../../../backends/files/files-client.js';
import { encodeFrameHead } from '../../../protocol/frame-codec.js';
import { runCli, startCli, stopAllCli, type CliProcess } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { eventually, RawPeer, sha256, stopFiles } from './harness.js';

afterEach(async () => {
  await stopAllCli();
  await stopFiles();
  await removeTempDirs();
});

async function serve(existing?: { dir: string }): Promise<{ root: string; target: string; dir: string; proc: CliProcess }> {
  const dir = existing?.dir ?? (await tempDir());
  const root = join(dir, 'root');
  const proc = startCli(['serve', 'files', '--port', '0', '--root', root]);
  const m = await proc.waitFor(/sockbridge files listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
  return { root, dir, target: `127.0.0.1:${m[1]}`, proc };
}

describe('sockbridge put/get/ls', () => {
  it('round-trips a file and lists it as a table', async () => {
    const { root, dir, target } = await serve();
    const local = join(dir, 'local.bin');
    const data = randomBytes(300_000);
    await writeFile(local, data);

    const put = await runCli(['put', target, local, 'stored.bin']);
    expect(put.code).toBe(0);
    expect(put.stdout).toBe(`stored.bin\t${data.length}\t${sha256(data)}\n`);
    expect(put.stderr).toBe(''); // not a TTY: no progress bar
    expect((await readFile(join(root, 'stored.bin'))).equals(data)).toBe(true);

    const ls = await runCli(['ls', target]);
    expect(ls.code).toBe(0);
    const lines = ls.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s*SIZE\s+MTIME\s+SHA256\s+NAME$/);
    expect(lines[1]).toMatch(new RegExp(`^\\s*${data.length}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+${sha256(data)}\\s+stored\\.bin$`));

    const back = join(dir, 'back.bin');
    const get = await runCli(['get', target, 'stored.bin', back]);
    expect(get.code).toBe(0);
    expect((await readFile(back)).equals(data)).toBe(true);
    // The temp file was renamed, not left behind.
    expect((await readdir(dir)).filter((n) => n.includes('sockbridge-part'))).toEqual([]);
    // A directory as FILE: the file goes into it under its name.
    const into = await runCli(['get', target, 'stored.bin', root + '/..']);
    expect(into.code).toBe(0);
    expect((await readFile(join(dir, 'stored.bin'))).equals(data)).toBe(true);
  });

  it('resumes on its own when the service keeps a matching partial upload', async () => {
    const { root, dir, target } = await serve();
    const data = randomBytes(500_000);
    const local = join(dir, 'resume.bin');
    await writeFile(local, data);
    const peer = await RawPeer.connect(Number(target.split(':')[1]));
    await peer.write(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'resume.bin' }, data.length), data.subarray(0, 200_000)]));
    await eventually(async () => (await readdir(join(root, '.partial'))).length === 1, 'the partial upload');
    peer.socket.destroy();
    // The service keeps the partial once it has seen the connection close.
    const client = await FilesClient.connect('127.0.0.1', Number(target.split(':')[1]));
    await eventually(async () => (await client.stat('resume.bin').catch(() => undefined))?.partial?.size === 200_000, 'the kept partial');
    await client.close();

    const put = await runCli(['put', target, local]);
    expect(put.code).toBe(0);
    expect(put.stderr).toContain('resuming resume.bin at 195.3 KiB of 488.3 KiB');
    expect((await readFile(join(root, 'resume.bin'))).equals(data)).toBe(true);
  });

  it('keeps nothing visible when the service is killed mid-upload, and resumes after a restart (issue 5)', async () => {
    const first = await serve();
    const data = randomBytes(400_000);
    const local = join(first.dir, 'killed.bin');
    await writeFile(local, data);
    const peer = await RawPeer.connect(Number(first.target.split(':')[1]));
    await peer.write(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'killed.bin' }, data.length), data.subarray(0, 150_000)]));
    await eventually(async () => (await readdir(join(first.root, '.partial'))).length === 1, 'the partial upload');
    await eventually(async () => (await lstat(join(first.root, '.partial', (await readdir(join(first.root, '.partial')))[0]!))).size === 150_000, 'the bytes on disk');
    await first.proc.stop('SIGKILL');
    expect((await readdir(first.root)).filter((n) => !n.startsWith('.'))).toEqual([]);

    const second = await serve({ dir: first.dir });
    const put = await runCli(['put', second.target, local]);
    expect(put.code).toBe(0);
    expect(put.stderr).toContain('resuming killed.bin at 146.5 KiB of 390.6 KiB');
    expect((await readFile(join(second.root, 'killed.bin'))).equals(data)).toBe(true);
  });

  it('reports a refused connection in one line with exit code 1', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), 'x');
    for (const args of [['put', '127.0.0.1:1', join(dir, 'f')], ['get', '127.0.0.1:1', 'f', join(dir, 'g')], ['ls', '127.0.0.1:1']]) {
      const r = await runCli(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^sockbridge: cannot connect to 127\.0\.0\.1:1: ECONNREFUSED\n$/);
    }
  });

  it('reports bad arguments in one line with exit code 2', async () => {
    for (const args of [['put'], ['put', 'nohostport', 'x'], ['get', '127.0.0.1:7003'], ['ls', '127.0.0.1:7003', 'extra'], ['put', '127.0.0.1:7003', 'x', '../bad']]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^sockbridge: /);
    }
  });

  it('exits 1 with the service code when the file does not exist', async () => {
    const { dir, target } = await serve();
    const r = await runCli(['get', target, 'missing', join(dir, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('sockbridge: no such file: "missing"\n');
    expect(await readdir(dir)).toEqual(['root']);
  });
});
