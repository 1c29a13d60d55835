// Integration: `sockbridge get` resumes an interrupted download from its .part, against a real files
// service on 127.0.0.1:0 (needs `npm run build:server`). The interruption is real: a proxy in the
// test forwards only the first bytes of the service's reply, then cuts both connections.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { partPath } from '../../../server/cli/resumable-download.js';
import { runCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { connect, sha256, startFiles, stopFiles } from '../../backends/files/harness.js';

const proxies: net.Server[] = [];

afterEach(async () => {
  await stopAllCli();
  for (const p of proxies.splice(0)) p.close();
  await stopFiles();
  await removeTempDirs();
});

/** Forwards to the service, but only `budget` bytes of replies; then cuts the connection. */
async function cuttingProxy(port: number, budget: number): Promise<number> {
  const server = net.createServer((down) => {
    const up = net.connect({ host: '127.0.0.1', port });
    let left = budget;
    down.pipe(up);
    up.on('data', (chunk: Buffer) => {
      down.write(chunk.subarray(0, left));
      left -= Math.min(left, chunk.length);
      if (left === 0) {
        up.destroy();
        down.end(() => down.destroy());
      }
    });
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
  });
  proxies.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

async function publish(port: number, name: string, data: Buffer): Promise<void> {
  const client = await connect(port);
  await client.put(name, Readable.from([data]), data.length);
}

/** A files service holding NAME (random bytes), and where the test downloads it to. */
async function served(name: string, size: number): Promise<{ port: number; dir: string; data: Buffer; file: string }> {
  const { port } = await startFiles();
  const dir = await tempDir();
  const data = randomBytes(size);
  await publish(port, name, data);
  return { port, dir, data, file: join(dir, name) };
}

const partsIn = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.sockbridge-part'));

/** A .part of `data` from a real interrupted `get`: [the part's path, its size]. */
async function interruptedGet(port: number, name: string, file: string, data: Buffer): Promise<[string, number]> {
  const proxy = await cuttingProxy(port, 300_000);
  const cut = await runCli(['get', `127.0.0.1:${proxy}`, name, file]);
  expect(cut.code).toBe(1);
  const part = partPath(file, sha256(data));
  expect(cut.stderr).toContain(`the bytes so far are kept in ${part}; run the same command again to resume`);
  await expect(stat(file)).rejects.toThrow(/ENOENT/); // never a half file under the real name
  const size = (await stat(part)).size;
  expect(size).toBeGreaterThan(0);
  expect(size).toBeLessThan(data.length);
  expect((await readFile(part)).equals(data.subarray(0, size))).toBe(true);
  return [part, size];
}

describe('sockbridge get: resume', () => {
  it('continues an interrupted download from its .part and ends byte-identical', async () => {
    const { port, dir, data, file } = await served('big.bin', 2_000_000);
    const [, size] = await interruptedGet(port, 'big.bin', file, data);

    const again = await runCli(['get', `127.0.0.1:${port}`, 'big.bin', file]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(new RegExp(`^resuming big\\.bin at [\\d.]+ (KiB|MiB) of 1\\.9 MiB \\(big\\.bin\\.${sha256(data).slice(0, 16)}\\.sockbridge-part\\)\\n$`));
    expect(again.stdout).toBe(`big.bin\t${data.length}\t${sha256(data)}\n`);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await partsIn(dir)).toEqual([]);
    expect(size).toBeGreaterThan(0);
  });

  it('resumes a truncated .part too (any prefix of the same version)', async () => {
    const { port, dir, data, file } = await served('f.bin', 500_000);
    await writeFile(partPath(file, sha256(data)), data.subarray(0, 123_457));
    const r = await runCli(['get', `127.0.0.1:${port}`, 'f.bin', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('resuming f.bin at 120.6 KiB of 488.3 KiB');
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await partsIn(dir)).toEqual([]);
  });

  it('starts over, saying why, when the remote file changed since the .part was started', async () => {
    const { port, dir, data: first, file } = await served('v.bin', 1_000_000);
    const [oldPart] = await interruptedGet(port, 'v.bin', file, first);

    const second = randomBytes(1_000_000);
    await publish(port, 'v.bin', second);
    const r = await runCli(['get', `127.0.0.1:${port}`, 'v.bin', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`v.bin has changed on the service since ${oldPart.split('/').pop()} was started; removed it, starting over\n`);
    expect((await readFile(file)).equals(second)).toBe(true);
    expect(await partsIn(dir)).toEqual([]);
  });

  it('a damaged .part fails the final sha256: removed and downloaded again, never renamed into place', async () => {
    const { port, dir, data, file } = await served('d.bin', 400_000);
    await writeFile(partPath(file, sha256(data)), randomBytes(100_000)); // right name, wrong bytes
    const r = await runCli(['get', `127.0.0.1:${port}`, 'd.bin', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^resuming d\.bin at 97\.7 KiB .*\nchecksum mismatch for "d\.bin": .*; starting over\n$/);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await partsIn(dir)).toEqual([]);
  });

  it('--no-resume discards the .part and downloads from the start', async () => {
    const { port, dir, data, file } = await served('n.bin', 300_000);
    await writeFile(partPath(file, sha256(data)), data.subarray(0, 1000));
    const r = await runCli(['get', '--no-resume', `127.0.0.1:${port}`, 'n.bin', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await partsIn(dir)).toEqual([]);
  });

  it('never writes through a symlink planted at the .part name', async () => {
    const { port, dir, data, file } = await served('s.bin', 10_000);
    const victim = join(dir, 'victim');
    await writeFile(victim, 'keep me');
    await symlink(victim, partPath(file, sha256(data)));
    const r = await runCli(['get', `127.0.0.1:${port}`, 's.bin', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ELOOP/);
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it('one get at a time per FILE: a live lock holder is named (exit 2), a dead one is taken over', async () => {
    const { port, dir, data, file } = await served('l.bin', 50_000);
    const lock = `${file}.sockbridge-lock`;
    await writeFile(lock, `${process.pid}\n`); // this test's process: alive
    const busy = await runCli(['get', `127.0.0.1:${port}`, 'l.bin', file]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toBe(`sockbridge: another sockbridge get (pid ${process.pid}) is downloading to ${file}; wait for it, or stop it and run again (or remove ${lock})\n`);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);

    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    await writeFile(lock, `${gone.pid}\n`); // a get that was killed
    const r = await runCli(['get', `127.0.0.1:${port}`, 'l.bin', file]);
    expect(r.code).toBe(0);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await readdir(dir)).toEqual(['l.bin']); // lock and .part gone
  });

  it('never takes over a lock it cannot read a holder from (regression: an empty lock, as a get leaves for an instant, was taken as stale)', async () => {
    const { port, file } = await served('e.bin', 10_000);
    await writeFile(`${file}.sockbridge-lock`, '');
    const r = await runCli(['get', `127.0.0.1:${port}`, 'e.bin', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/another sockbridge get \(unknown process\) is downloading/);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it('two gets to one FILE at once: one downloads, the other gives way, and FILE is byte-exact', async () => {
    const { port, data, file } = await served('t.bin', 3_000_000);
    const [a, b] = await Promise.all([runCli(['get', `127.0.0.1:${port}`, 't.bin', file]), runCli(['get', `127.0.0.1:${port}`, 't.bin', file])]);
    expect([a.code, b.code].sort()).toEqual([0, 2]);
    expect((await readFile(file)).equals(data)).toBe(true);
  });

  it('refuses to resume a .part it cannot trust: writable by others, or with other links', async () => {
    const { port, dir, file, data } = await served('p.bin', 20_000);
    const sha = createHash('sha256').update(data).digest('hex');
    const part = partPath(file, sha);
    await writeFile(part, data.subarray(0, 1000), { mode: 0o666 });
    await chmod(part, 0o666); // as another user would leave it in a shared directory
    const r = await runCli(['get', `127.0.0.1:${port}`, 'p.bin', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is writable by other users; remove it and run again');
    await chmod(part, 0o644);
    await link(part, join(dir, 'second-name'));
    const linked = await runCli(['get', `127.0.0.1:${port}`, 'p.bin', file]);
    expect(linked.code).toBe(2);
    expect(linked.stderr).toContain('has other links to it');
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});

describe('partPath', () => {
  it('names the .part by the first 16 hex digits of the sha256', () => {
    expect(partPath('/d/a.txt', 'ab'.repeat(32))).toBe(`/d/a.txt.${'ab'.repeat(8)}.sockbridge-part`);
  });

  it.each([['/../../escaped-x'], ['AB'.repeat(32)], ['ab'.repeat(8)], ['']])('refuses %j, which is no sha256, with SB_ERR_MESSAGE_INVALID (audit2 #7)', (sha) => {
    expect(() => partPath('/d/a.txt', sha)).toThrow(expect.objectContaining({ code: 'SB_ERR_MESSAGE_INVALID' }));
  });
});
