// `sockbridge put HOST:PORT FILE [NAME]`, `get HOST:PORT NAME [FILE]`, `ls HOST:PORT`.
// put hashes the local file first (so the service verifies every byte) and resumes on its own when
// the service keeps a partial upload whose prefix hash matches the local file. get downloads into
// FILE.<sha256 prefix>.sockbridge-part beside the target and renames it to FILE only once the
// sha256 matches; a re-run resumes an interrupted download from the .part's size (`get` with an
// offset), and starts over when the remote file has changed since. Progress goes to stderr, and
// only when stderr is a terminal; stdout carries one result line (or the ls table) for scripts.

import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../../protocol/errors.js';
import type { FileEntry } from '../../../protocol/files-messages.js';
import { FilesClient } from '../../../backends/files/files-client.js';
import { validateFileName } from '../../../backends/files/file-name.js';
import { parseCommandLine, parseHostPort } from '../args.js';
import { formatBytes, progressBar } from '../progress-bar.js';

const PUT_USAGE = 'sockbridge put HOST:PORT FILE [NAME]';
const GET_USAGE = 'sockbridge get [--no-resume] HOST:PORT NAME [FILE]';
const LS_USAGE = 'sockbridge ls HOST:PORT';

export async function put(argv: string[]): Promise<number> {
  const { positionals } = parseCommandLine(argv, {}, PUT_USAGE);
  const [target, file, nameArg, ...extra] = positionals;
  if (!file || extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT FILE [NAME]\nusage: ${PUT_USAGE}`);
  const { host, port } = parseHostPort(target, PUT_USAGE);
  const name = checkName(nameArg ?? basename(file), PUT_USAGE);
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw sbError('SB_ERR_USAGE', `cannot read ${file}: ${err.code ?? err.message}`);
  });
  if (!st.isFile()) throw sbError('SB_ERR_USAGE', `${file} is not a regular file`);

  const client = await FilesClient.connect(host, port);
  try {
    const remote = await client.stat(name).catch((err: unknown) => {
      if (isSockbridgeError(err, 'SB_ERR_FILE_NOT_FOUND')) return undefined;
      throw err;
    });
    const partial = remote?.partial;
    // One pass over the local file: the whole-file hash, and the prefix hash at the partial's size.
    const { sha256, prefixSha256 } = await hashFile(file, partial && partial.size <= st.size ? partial.size : undefined);
    const offset = partial && prefixSha256 === partial.sha256 ? partial.size : 0;
    if (offset > 0) process.stderr.write(`resuming ${name} at byte ${offset}\n`);
    const progress = progressBar(`put ${name}`, st.size, offset);
    const entry = await client.put(name, createReadStream(file, { start: offset }), st.size - offset, {
      sha256,
      offset,
      onProgress: (sent) => progress.update(offset + sent),
    }).catch((err: unknown) => {
      progress.stop();
      throw err;
    });
    progress.done();
    process.stdout.write(`${entry.name}\t${entry.size}\t${entry.sha256}\n`);
    return 0;
  } finally {
    await client.close();
  }
}

export async function get(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { 'no-resume': { type: 'boolean' } }, GET_USAGE);
  const [target, name, fileArg, ...extra] = positionals;
  if (!name || extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT NAME [FILE]\nusage: ${GET_USAGE}`);
  const { host, port } = parseHostPort(target, GET_USAGE);
  checkName(name, GET_USAGE);
  // Like cp: a directory as FILE means "into it, under NAME".
  const file = fileArg === undefined ? name : (await stat(fileArg).then((st) => st.isDirectory(), () => false)) ? join(fileArg, name) : fileArg;

  let resume = values['noResume'] !== true;
  // A second try only when the first found its .part unusable (the remote file changed as the
  // download began, or a resumed .part turned out damaged); the second starts from byte 0.
  for (let attempt = 1; ; attempt++) {
    const outcome = await downloadOnce(host, port, name, file, resume);
    if ('entry' in outcome) {
      process.stdout.write(`${outcome.entry.name}\t${outcome.entry.size}\t${outcome.entry.sha256}\n`);
      return 0;
    }
    if (attempt === 2) throw outcome.failure;
    process.stderr.write(`${outcome.failure.message}; starting over\n`);
    resume = false;
  }
}

/**
 * Where `get` keeps the bytes of one version of a file until all of them are there and verified:
 * `FILE.<first 16 hex digits of its sha256>.sockbridge-part`. The hash in the name ties the bytes to
 * the version they came from, so a re-run resumes only the same version.
 */
export function partPath(file: string, sha256: string): string {
  return `${file}.${sha256.slice(0, 16)}${PART_SUFFIX}`;
}

const PART_SUFFIX = '.sockbridge-part';

/** The .part files of earlier `get`s to FILE, of any version. */
async function partsOf(file: string): Promise<string[]> {
  const dir = dirname(file);
  const prefix = `${basename(file)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(prefix) && n.endsWith(PART_SUFFIX) && /^[0-9a-f]{16}$/.test(n.slice(prefix.length, -PART_SUFFIX.length)))
    .map((n) => join(dir, n));
}

type Outcome = { entry: FileEntry } | { failure: SockbridgeError };

/**
 * One download into FILE's .part, resumed from the .part's size when `resume` and the .part is of
 * the same version; renamed to FILE only once every byte is there and the sha256 matches. An
 * interrupted download keeps its .part for the next run.
 */
async function downloadOnce(host: string, port: number, name: string, file: string, resume: boolean): Promise<Outcome> {
  const client = await FilesClient.connect(host, port);
  try {
    const remote = await client.stat(name);
    if (!remote.exists) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
    const part = partPath(file, remote.sha256);
    for (const other of await partsOf(file)) {
      if (other === part && resume) continue;
      await rm(other, { force: true });
      if (other !== part) process.stderr.write(`${name} has changed on the service since ${basename(other)} was started; removed it, starting over\n`);
    }
    // O_NOFOLLOW: a symlink planted at the .part name is refused, never written through.
    const out = await open(part, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o644);
    let kept = 0;
    try {
      const st = await out.stat();
      if (!st.isFile()) throw sbError('SB_ERR_USAGE', `${part} is not a regular file; remove it`);
      if (st.size > remote.size) await out.truncate(0);
      const offset = st.size > remote.size ? 0 : st.size;
      kept = offset;
      const hash = createHash('sha256');
      if (offset > 0) {
        for await (const chunk of out.createReadStream({ start: 0, end: offset - 1, autoClose: false })) hash.update(chunk as Buffer);
        process.stderr.write(`resuming ${name} at ${formatBytes(offset)} of ${formatBytes(remote.size)} (${basename(part)})\n`);
      }

      const { entry, stream } = await client.get(name, offset > 0 ? { offset } : {});
      if (entry.sha256 !== remote.sha256) {
        stream.destroy();
        return { failure: sbError('SB_ERR_FILE_CHECKSUM', JSON.stringify(name), remote.sha256, entry.sha256) };
      }
      const bar = progressBar(`get ${name}`, entry.size, offset);
      try {
        for await (const chunk of stream) {
          hash.update(chunk as Buffer);
          await out.write(chunk as Buffer);
          kept += (chunk as Buffer).length;
          bar.update(kept);
        }
      } catch (err) {
        bar.stop();
        throw err;
      }
      const sha256 = hash.digest('hex');
      if (sha256 !== entry.sha256) {
        bar.stop();
        kept = 0;
        const failure = sbError('SB_ERR_FILE_CHECKSUM', JSON.stringify(name), entry.sha256, sha256);
        // A resumed .part whose first bytes were not what the service has: damaged on this side.
        if (offset > 0) return { failure };
        throw failure;
      }
      bar.done();
      await out.datasync();
      await out.close();
      await rename(part, file);
      return { entry };
    } catch (err) {
      if (kept > 0) process.stderr.write(`the bytes so far are kept in ${part}; run the same command again to resume\n`);
      throw err;
    } finally {
      await out.close().catch(() => undefined);
      // Nothing worth keeping (refused, checksum mismatch, not a byte yet): no .part left behind.
      if (kept === 0) await rm(part, { force: true }).catch(() => undefined);
    }
  } finally {
    await client.close();
  }
}

export async function ls(argv: string[]): Promise<number> {
  const { positionals } = parseCommandLine(argv, {}, LS_USAGE);
  const [target, ...extra] = positionals;
  if (extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT\nusage: ${LS_USAGE}`);
  const { host, port } = parseHostPort(target, LS_USAGE);
  const client = await FilesClient.connect(host, port);
  try {
    process.stdout.write(formatTable(await client.list()));
    return 0;
  } finally {
    await client.close();
  }
}

/** A NAME the service would refuse is a usage error here: caught before connecting, exit code 2. */
function checkName(name: string, usage: string): string {
  try {
    return validateFileName(name);
  } catch (err) {
    throw sbError('SB_ERR_USAGE', `${(err as Error).message}\nusage: ${usage}`);
  }
}

/** `SIZE  MTIME  SHA256  NAME`, sizes right-aligned; names are JSON-quoted only if they need it. */
export function formatTable(files: readonly FileEntry[]): string {
  const rows = files.map((f) => [String(f.size), new Date(f.mtime).toISOString().replace(/\.\d+Z$/, 'Z'), f.sha256, displayName(f.name)] as const);
  const width = Math.max(4, ...rows.map((r) => r[0].length));
  const lines = [`${'SIZE'.padStart(width)}  ${'MTIME'.padEnd(20)}  ${'SHA256'.padEnd(64)}  NAME`];
  for (const [size, mtime, sha, name] of rows) lines.push(`${size.padStart(width)}  ${mtime.padEnd(20)}  ${sha}  ${name}`);
  return `${lines.join('\n')}\n`;
}

const displayName = (name: string) => (/^[\x21-\x7e\u00a0-\uffff]+$/.test(name) && !name.includes('"') ? name : JSON.stringify(name));

async function hashFile(file: string, prefixBytes: number | undefined): Promise<{ sha256: string; prefixSha256?: string }> {
  const hash = createHash('sha256');
  let seen = 0;
  let prefixSha256 = prefixBytes === 0 ? hash.copy().digest('hex') : undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    if (prefixBytes !== undefined && prefixSha256 === undefined && seen + buf.length >= prefixBytes) {
      const cut = prefixBytes - seen;
      hash.update(buf.subarray(0, cut));
      prefixSha256 = hash.copy().digest('hex');
      hash.update(buf.subarray(cut));
    } else {
      hash.update(buf);
    }
    seen += buf.length;
  }
  return { sha256: hash.digest('hex'), ...(prefixSha256 !== undefined ? { prefixSha256 } : {}) };
}
