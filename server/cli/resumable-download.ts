// `sockbridge get`'s download into a file that is either absent or whole and verified, never half.
// Bytes go to FILE.<sha256 prefix>.sockbridge-part beside FILE and are renamed to FILE only once all
// of them are there and their sha256 is the one the service reports. A re-run after an interruption
// continues from the .part's size (the files service's `get {offset}`); a .part of another version
// of the file (the remote one has changed since) is removed, with a message, and the download
// starts over. One `get` at a time writes to a FILE: a lock file beside it says which process.

import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sbError, type SockbridgeError } from '../../protocol/errors.js';
import { isSha256Hex, type FileEntry } from '../../protocol/files-messages.js';
import { FilesClient } from '../../backends/files/files-client.js';
import { formatBytes, progressBar } from './progress-bar.js';

export interface DownloadRequest {
  host: string;
  port: number;
  /** the name on the service */
  name: string;
  /** where the file ends up */
  file: string;
  /** false: discard any .part and start from byte 0 */
  resume: boolean;
}

/** Downloads `name` into `file`; resolves with the service's entry once `file` is complete and verified. */
export async function downloadResumable(request: DownloadRequest): Promise<FileEntry> {
  const unlock = await lockDestination(request.file);
  try {
    let resume = request.resume;
    // A second try only when the first found its .part unusable (the remote file changed as the
    // download began, or a resumed .part turned out damaged); the second starts from byte 0.
    for (let attempt = 1; ; attempt++) {
      const outcome = await downloadOnce({ ...request, resume });
      if ('entry' in outcome) return outcome.entry;
      if (attempt === 2) throw outcome.failure;
      process.stderr.write(`${outcome.failure.message}; starting over\n`);
      resume = false;
    }
  } finally {
    await unlock();
  }
}

/**
 * `FILE.sockbridge-lock`, holding the pid of the `get` writing FILE: two at once would append to the
 * same .part and could rename a mix into place. Taking it is atomic: the pid is written to a file of
 * our own, which is then hard-linked to the lock name (link(2) fails if the name exists), so no
 * other `get` ever sees an empty lock. A lock whose process is gone (killed) is taken over by
 * renaming it aside and checking that what was moved is that dead holder's lock, not one a
 * concurrent `get` has just taken (that one is put back, and we give way).
 */
async function lockDestination(file: string): Promise<() => Promise<void>> {
  const lock = `${file}.sockbridge-lock`;
  const mine = `${lock}.${process.pid}.${randomBytes(6).toString('hex')}`;
  await writeFile(mine, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
  try {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await link(mine, lock);
        return () => rm(lock, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const seen = await readFile(lock, 'utf8').catch(() => undefined);
      if (seen === undefined) continue; // released meanwhile: try again
      const holder = Number(seen.trim());
      if (!(Number.isInteger(holder) && holder > 0) || isRunning(holder)) {
        throw sbError('SB_ERR_USAGE', `another sockbridge get (${holder > 0 ? `pid ${holder}` : 'unknown process'}) is downloading to ${file}; wait for it, or stop it and run again (or remove ${lock})`);
      }
      const aside = `${lock}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
      try {
        await rename(lock, aside);
      } catch {
        continue; // someone else moved it first
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      if (moved !== seen) {
        // Not the dead holder's: a live get took the lock between our read and our rename.
        await link(aside, lock).catch(() => undefined);
        await rm(aside, { force: true });
        throw sbError('SB_ERR_USAGE', `another sockbridge get is downloading to ${file}; wait for it and run again`);
      }
      await rm(aside, { force: true });
    }
    throw sbError('SB_ERR_USAGE', `could not take ${lock}: other sockbridge gets keep taking it`);
  } finally {
    await rm(mine, { force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where `get` keeps the bytes of one version of a file until all of them are there and verified:
 * `FILE.<first 16 hex digits of its sha256>.sockbridge-part`. The hash in the name ties the bytes to
 * the version they came from, so a re-run resumes only the same version.
 */
export function partPath(file: string, sha256: string): string {
  // The service's word goes into a path: anything but a sha256 (a "/../" in it) is refused here too,
  // not only where the reply is parsed.
  if (!isSha256Hex(sha256)) throw sbError('SB_ERR_MESSAGE_INVALID', 'files service reply: "sha256" is not 64 lowercase hex digits');
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

/**
 * Opens FILE's .part for appending: a new one exclusively (O_EXCL), an existing one only if it is
 * ours to trust — a regular file (O_NOFOLLOW refuses a symlink), owned by us, with one link and
 * writable by nobody else. A .part planted by another user in a shared directory would otherwise
 * be adopted: they could read the bytes as they arrive and change the "verified" file afterwards.
 */
async function openPart(part: string): Promise<FileHandle> {
  const flags = constants.O_RDWR | constants.O_APPEND | constants.O_NOFOLLOW;
  try {
    return await open(part, flags | constants.O_CREAT | constants.O_EXCL, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const out = await open(part, flags);
  const st = await out.stat();
  const uid = process.getuid?.();
  const problem = !st.isFile()
    ? 'is not a regular file'
    : uid !== undefined && st.uid !== uid
      ? `belongs to another user (uid ${st.uid})`
      : st.nlink !== 1
        ? 'has other links to it'
        : (st.mode & 0o022) !== 0
          ? 'is writable by other users'
          : undefined;
  if (problem) {
    await out.close();
    throw sbError('SB_ERR_USAGE', `${part} ${problem}; remove it and run again`);
  }
  return out;
}

type Outcome = { entry: FileEntry } | { failure: SockbridgeError };

/**
 * One download into FILE's .part, resumed from the .part's size when `resume` and the .part is of
 * the same version; renamed to FILE only once every byte is there and the sha256 matches. An
 * interrupted download keeps its .part for the next run.
 */
async function downloadOnce({ host, port, name, file, resume }: DownloadRequest): Promise<Outcome> {
  let client: FilesClient | undefined;
  try {
    const remote = await statRemote(host, port, name);
    if (!remote.exists) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
    const part = partPath(file, remote.sha256);
    for (const other of await partsOf(file)) {
      if (other === part && resume) continue;
      await rm(other, { force: true });
      if (other !== part) process.stderr.write(`${name} has changed on the service since ${basename(other)} was started; removed it, starting over\n`);
    }
    const out = await openPart(part);
    let kept = 0;
    try {
      const st = await out.stat();
      if (st.size > remote.size) await out.truncate(0);
      const offset = st.size > remote.size ? 0 : st.size;
      kept = offset;
      const hash = createHash('sha256');
      if (offset > 0) {
        for await (const chunk of out.createReadStream({ start: 0, end: offset - 1, autoClose: false })) hash.update(chunk as Buffer);
        process.stderr.write(`resuming ${name} at ${formatBytes(offset)} of ${formatBytes(remote.size)} (${basename(part)})\n`);
      }

      // Hashing a big .part can outlast the service's idle timeout: the get has a connection of its own.
      client = await FilesClient.connect(host, port);
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
      // What is on disk, not only what came over the wire, must be the file: anything else appended
      // to the .part (which the lock should make impossible) is caught here, before the rename.
      const onDisk = (await out.stat()).size;
      if (onDisk !== entry.size) throw sbError('SB_ERR_FILE_CHECKSUM', JSON.stringify(name), `${entry.size} bytes`, `${onDisk} bytes in ${part}`);
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
    await client?.close();
  }
}

/** The service's entry for `name`, on a connection used for nothing else. */
async function statRemote(host: string, port: number, name: string) {
  const client = await FilesClient.connect(host, port);
  try {
    return await client.stat(name);
  } finally {
    await client.close();
  }
}
