// `sockbridge ls|get|put` against a hostile files service (a test double of a malicious peer on
// 127.0.0.1:0): nothing it sends reaches the terminal with a control character in it, and its sha256
// never becomes part of a path (audit2 #3, #7); put's resume message against the real service, and bad
// local paths. Runs the built CLI (`npm run build:server`).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrameHead } from '../../../../protocol/frame-codec.js';
import { connect, eventually, RawPeer, startFiles, stopFiles } from '../../../backends/files/harness.js';
import { runCli, stopAllCli } from '../../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../../helpers/tmp.js';
import { closeHostileServices, hostileService } from '../hostile-service.js';

const ESC = '\u001b]0;PWNED\u0007\u001b[2J'; // OSC retitle + clear screen
const SHA = 'ab'.repeat(32);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

afterEach(async () => {
  await stopFiles();
  await stopAllCli();
  await closeHostileServices();
  await removeTempDirs();
});

/** A files service whose list reply holds `entries` as they are. */
function listing(entries: unknown[]): Promise<number> {
  return hostileService((socket, request) => {
    if (request.cmd !== 'list') return;
    const body = Buffer.from(JSON.stringify(entries));
    socket.write(encodeFrame({ cmd: 'list', count: entries.length, size: body.length }, body));
  });
}

describe('sockbridge ls from a hostile files service', () => {
  it.each([
    ['size', { size: `1${ESC}` }],
    ['sha256', { sha256: `abc${ESC}` }],
  ])('refuses a listing whose %s is not what it must be, in one line, and exits 1', async (field, change) => {
    const port = await listing([{ name: 'a.txt', size: 1, mtime: 0, sha256: SHA, ...change }]);
    const { code, stdout, stderr } = await runCli(['ls', `127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    // One line naming the field (whether the CLI or FilesClient refuses the reply, and under which code).
    expect(stderr).toMatch(new RegExp(`^sockbridge: [^\n]*files service reply: "${field}" is not ${field === 'size' ? 'a non-negative integer' : '64 lowercase hex digits'}\n$`));
  });

  it('prints a name holding ESC or an 8-bit CSI (0x9B) JSON-quoted with both escaped', async () => {
    const port = await listing([{ name: 'a\u009b2Jb\u001b[1mc', size: 1, mtime: 0, sha256: SHA }]);
    const { code, stdout } = await runCli(['ls', `127.0.0.1:${port}`]);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(CONTROL);
    expect(stdout).toContain(`  ${SHA}  "a\\u009b2Jb\\u001b[1mc"\n`);
  });
});

describe('sockbridge get from a hostile files service', () => {
  it("prints the service's error message without its control characters", async () => {
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'stat') socket.write(encodeFrame({ cmd: 'error', code: 'SB_ERR_FILE_NOT_FOUND', message: `no such file${ESC}\r\nsockbridge: forged` }));
    });
    const { code, stderr } = await runCli(['get', `127.0.0.1:${port}`, 'a.txt'], { cwd: await tempDir() });
    expect(code).toBe(1);
    expect(stderr).toBe('sockbridge: no such file]0;PWNED[2J sockbridge: forged\n');
  });

  it('refuses a sha256 that is a path, and writes nothing outside the target directory', async () => {
    const evil = '/../../escaped-x'; // partPath used its first 16 characters
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'stat') socket.write(encodeFrame({ cmd: 'stat', exists: true, name: 'a.txt', total: 3, mtime: 0, sha256: evil }));
      if (request.cmd === 'get') socket.write(encodeFrame({ cmd: 'data', name: 'a.txt', total: 3, offset: 0, mtime: 0, sha256: evil }, Buffer.from('abc')));
    });
    const root = await tempDir();
    const downloads = join(root, 'downloads');
    await mkdir(join(downloads, 'a.txt.'), { recursive: true });
    const { code, stderr } = await runCli(['get', `127.0.0.1:${port}`, 'a.txt'], { cwd: downloads });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sockbridge: [^\n]*files service reply: "sha256" is not 64 lowercase hex digits\n$/);
    expect(await readdir(root, { recursive: true })).toEqual(['downloads', join('downloads', 'a.txt.')]);
  });
});

describe('sockbridge put to a hostile files service', () => {
  it("refuses a kept partial whose size is not a byte count before using it as the offset", async () => {
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'stat') {
        socket.write(encodeFrame({ cmd: 'stat', exists: false, name: 'a.txt', total: 0, mtime: 0, sha256: '', partial: { size: `1${ESC}`, mtime: 0 } }));
      }
      if (request.cmd === 'put') socket.end(encodeFrame({ cmd: 'error', code: 'SB_ERR_BAD_REQUEST', message: 'bad request: offset' }));
    });
    const dir = await tempDir();
    await writeFile(join(dir, 'a.txt'), 'hello');
    const { code, stderr } = await runCli(['put', `127.0.0.1:${port}`, join(dir, 'a.txt')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sockbridge: [^\n]*files service stat reply: "partial" size is not a non-negative integer\n$/);
  });
});

describe('sockbridge put resuming a kept partial upload', () => {
  it('says where it resumes in the same words as get: sizes in KiB/MiB of the whole', async () => {
    const { port, root } = await startFiles();
    const data = randomBytes(500_000);
    const local = join(await tempDir(), 'r2.bin');
    await writeFile(local, data);
    const peer = await RawPeer.connect(port);
    await peer.write(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'r2.bin' }, data.length), data.subarray(0, 200_000)]));
    await eventually(async () => (await readdir(join(root, '.partial')).catch(() => [])).length === 1, 'the partial upload');
    peer.socket.destroy();
    const client = await connect(port);
    await eventually(async () => (await client.stat('r2.bin').catch(() => undefined))?.partial?.size === 200_000, 'the kept partial');

    const { code, stderr } = await runCli(['put', `127.0.0.1:${port}`, local]);
    expect(code).toBe(0);
    expect(stderr).toBe('resuming r2.bin at 195.3 KiB of 488.3 KiB\n');
  });
});

describe('sockbridge put and get with a bad local path', () => {
  it('put of a file that does not exist says so in words, in one line, exit 2, before connecting', async () => {
    const missing = join(await tempDir(), 'missing.txt');
    const { code, stderr } = await runCli(['put', '127.0.0.1:1', missing]);
    expect(code).toBe(2);
    expect(stderr).toBe(`sockbridge: cannot read ${missing}: no such file\n`);
  });

  it('get into a directory that does not exist names it, in one line, exit 2, before connecting (not the lock file it could not create)', async () => {
    const dir = join(await tempDir(), 'no-such-dir');
    const { code, stderr } = await runCli(['get', '127.0.0.1:1', 'a.txt', join(dir, 'a.txt')]);
    expect(code).toBe(2);
    expect(stderr).toBe(`sockbridge: cannot write ${join(dir, 'a.txt')}: no directory ${dir}\n`);
  });
});
