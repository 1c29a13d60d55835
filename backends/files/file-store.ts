// FileStore: a flat namespace of files in one root directory, and the only code that touches it.
//
//   ROOT/NAME                 visible files (NAME passes validateFileName: one path component)
//   ROOT/.partial/r-<h>       a resumable upload of NAME in progress or interrupted (h = sha256(NAME))
//   ROOT/.partial/t-<random>  a non-resumable upload in progress (deleted the moment it fails)
//   ROOT/.meta/<h>.json       cached sha256 of ROOT/NAME, trusted only while size, mtime and inode match,
//                             and its owner (file-owner.ts), trusted while the inode matches
//   ROOT/.meta/p-<h>.json     the same for the kept partial upload of NAME
//
// Safety rules, in the order they apply:
// - A name is validated before it is joined to the root, so no request can name a path outside it.
// - Symbolic links are never followed: visible files are opened with O_NOFOLLOW and checked with
//   lstat, and a symlink (dangling or not, pointing anywhere) is refused for read, write and delete.
//   rename(2) replaces a link rather than following it, but we refuse anyway: a link in the root was
//   put there by someone else, and silently replacing it would hide that.
// - An upload becomes visible by one rename(2), after every byte arrived, was flushed (fdatasync) and
//   matched the declared sha256. A reader sees the old file or the new one, never a mix.
// - Partials count toward the quota, expire after partialTtlMs and are swept at open and periodically.
// - Ownership (file-owner.ts) is decided under the name's lock, in the same critical section as the
//   rename that publishes an upload or the unlink that deletes a file: no check-then-act gap. An early
//   check at beginUpload only spares sending a body that would be refused anyway.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants as fsc, createReadStream, createWriteStream, type Stats, type WriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { sbError, isSockbridgeError, type SockbridgeError } from '../../protocol/errors.js';
import { mayChange, type FileActor, type FileEntry, type ListedFile, type PartialInfo } from '../../protocol/files-messages.js';
import { validateFileName } from './file-name.js';
import { checkMayChange, notOwner } from './file-owner.js';

export interface FileStoreOptions {
  root: string;
  /** Largest file, in bytes. */
  maxFileSize: number;
  /** Total bytes of visible files plus partial uploads; 0 means no quota (the disk is the limit). */
  quotaBytes: number;
  /** An interrupted resumable upload is deleted after this long without a write. */
  partialTtlMs: number;
}

export interface UploadRequest {
  /**
   * bytes that this request will write (the file will be offset + size bytes); undefined for a
   * streamed upload whose length is known only at complete() (each write must first get room())
   */
  size?: number;
  offset?: number;
  sha256?: string;
  resumable?: boolean;
  /** the account the upload acts for, its owner once published; undefined: a direct client */
  actor?: FileActor;
}

export interface ReadResult {
  entry: FileEntry;
  offset: number;
  /** total - offset bytes, or null when there are none to send */
  stream: Readable | null;
}

const PARTIAL_DIR = '.partial';
const META_DIR = '.meta';
const READ_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;
const WRITE_STREAM_HWM = 1024 * 1024;
// Flushed to disk every so often while the upload runs, so the fdatasync before the rename does not
// have to write a whole large file at the end (disk I/O overlaps the network instead of following it).
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;
// A streamed upload claims quota in steps this big (or what is left), so the quota's directory scan
// runs once per step rather than once per chunk.
const QUOTA_STEP_BYTES = 64 * 1024 * 1024;

const nameHash = (name: string) => createHash('sha256').update(name, 'utf8').digest('hex');
const mtimeOf = (st: Stats) => Math.floor(st.mtimeMs);
const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

interface MetaRecord {
  name: string;
  size: number;
  mtime: number;
  ino: number;
  sha256: string;
  /** the account that uploaded this inode; absent in records older than owners (= null) */
  owner?: string | null;
  /**
   * The file this one replaces: the record is written before the rename that publishes the new file,
   * so whichever of the two is visible after a crash (or a failed rename) still finds its owner.
   */
  previous?: { ino: number; owner: string | null };
}

/** The owner a record gives the inode `ino`: null when the record is about another file or none. */
function ownerIn(meta: MetaRecord | undefined, ino: number): string | null {
  const owner = meta?.ino === ino ? meta.owner : meta?.previous?.ino === ino ? meta.previous.owner : null;
  return typeof owner === 'string' ? owner : null;
}

export class FileStore {
  readonly options: Readonly<FileStoreOptions>;
  private root = '';
  private partialDir = '';
  private metaDir = '';
  private readonly active = new Map<string, Upload>();
  /** partials the sweep is deleting right now, by path */
  private readonly removing = new Map<string, Promise<void>>();
  /** per name: the tail of the operations that read and change its owner record (see exclusive) */
  private readonly locks = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: FileStoreOptions) {
    this.options = { ...options };
  }

  /** Creates the root and its hidden folders if needed, sweeps leftovers, starts the periodic sweep. */
  async open(): Promise<void> {
    await mkdir(this.options.root, { recursive: true, mode: 0o700 });
    this.root = await realpath(this.options.root);
    this.partialDir = join(this.root, PARTIAL_DIR);
    this.metaDir = join(this.root, META_DIR);
    for (const dir of [this.partialDir, this.metaDir]) {
      await mkdir(dir, { mode: 0o700 }).catch((err: unknown) => {
        if (errno(err) !== 'EEXIST') throw err;
      });
      const st = await lstat(dir);
      if (!st.isDirectory()) throw sbError('SB_ERR_CONFIG_INVALID', `${dir} must be a directory, not a link or a file`);
    }
    // A t- file at start belongs to a process that died mid-upload: it can never be resumed.
    await this.sweep({ startup: true });
    const every = Math.max(1000, Math.min(this.options.partialTtlMs, 60 * 60 * 1000));
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), every).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.active.values()].map((u) => u.abort()));
  }

  get rootDir(): string {
    return this.root;
  }

  /** Deletes expired resumable partials and orphaned non-resumable ones. Returns how many went. */
  async sweep({ startup = false, now = Date.now() }: { startup?: boolean; now?: number } = {}): Promise<number> {
    let removed = 0;
    for (const file of await readdir(this.partialDir)) {
      const path = join(this.partialDir, file);
      if (this.inUse(path)) continue;
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      const orphan = file.startsWith('t-') || (startup && !file.startsWith('r-'));
      const expired = now - st.mtimeMs > this.options.partialTtlMs;
      // "In use" is decided again after the awaits above, in the same tick as the rm starts: an
      // upload that resumed this partial meanwhile is in `active` (registered before it opens the
      // file), and one that begins while the rm runs waits for it (see beginUpload).
      if ((orphan || expired) && !this.inUse(path)) {
        const record = file.startsWith('r-') ? join(this.metaDir, `p-${file.slice(2)}.json`) : undefined;
        const removal = Promise.all([rm(path, { force: true, recursive: true }), record && rm(record, { force: true })])
          .then(() => undefined)
          .finally(() => this.removing.delete(path));
        this.removing.set(path, removal);
        await removal;
        removed++;
      }
    }
    return removed;
  }

  private inUse(path: string): boolean {
    for (const upload of this.active.values()) if (upload.path === path) return true;
    return false;
  }

  /** Every visible file with its owner, sorted by name. Symlinks, directories and invalid names are not listed. */
  async list(): Promise<ListedFile[]> {
    const entries: ListedFile[] = [];
    for (const dirent of await readdir(this.root, { withFileTypes: true })) {
      if (!dirent.isFile() || !isListable(dirent.name)) continue;
      try {
        entries.push(await this.entry(dirent.name));
      } catch (err) {
        // Deleted or replaced by a symlink between readdir and lstat: not listed.
        if (!isSockbridgeError(err)) throw err;
      }
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The visible file's entry and, if one is kept, the partial upload of the same name. */
  async stat(name: string): Promise<{ exists: boolean; entry: FileEntry; partial?: PartialInfo }> {
    validateFileName(name);
    let entry: FileEntry | undefined;
    try {
      entry = await this.entry(name);
    } catch (err) {
      if (!isSockbridgeError(err, 'SB_ERR_FILE_NOT_FOUND')) throw err;
    }
    const partial = this.active.has(name) ? undefined : await this.partialInfo(name);
    if (!entry && !partial) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
    return {
      exists: entry !== undefined,
      entry: entry ?? { name, size: 0, mtime: 0, sha256: '' },
      ...(partial ? { partial } : {}),
    };
  }

  /** Opens NAME for reading from offset. The stream reads the file as it was when opened. */
  async read(name: string, offset = 0): Promise<ReadResult> {
    validateFileName(name);
    const handle = await this.openVisible(name);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
      const { sha256 } = await this.recordOf(name, st, handle);
      const entry: FileEntry = { name, size: st.size, mtime: mtimeOf(st), sha256 };
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > st.size) {
        throw sbError('SB_ERR_FILE_OFFSET', JSON.stringify(name), offset, `the file has ${st.size} bytes`);
      }
      if (offset === st.size) {
        await handle.close();
        return { entry, offset, stream: null };
      }
      const stream = handle.createReadStream({ start: offset, end: st.size - 1, highWaterMark: 1024 * 1024, autoClose: true });
      return { entry, offset, stream };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Deletes the visible file and any kept partial upload of the name, when `actor` may change them
   * (file-owner.ts): a visible file it may not change refuses the delete; a partial it may not change
   * stays, and refuses the delete only when there is nothing else.
   */
  async delete(name: string, actor?: FileActor): Promise<void> {
    validateFileName(name);
    return this.exclusive(name, async () => {
      const path = join(this.root, name);
      let found = false;
      const st = await lstat(path).catch((err: unknown) => {
        if (errno(err) === 'ENOENT') return undefined;
        throw err;
      });
      if (st) {
        if (st.isSymbolicLink()) throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name), 'is a symbolic link');
        if (!st.isFile()) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
        checkMayChange(name, actor, await this.ownerOf(name, this.metaPath(name), st.ino));
        await unlink(path);
        await rm(this.metaPath(name), { force: true });
        found = true;
      }
      if (!this.active.has(name)) {
        const partial = this.resumablePath(name);
        const kept = await lstat(partial).catch(() => undefined);
        if (kept) {
          const owner = await this.ownerOf(name, this.partialMetaPath(name), kept.ino);
          if (mayChange(actor, owner)) {
            await rm(partial, { force: true });
            await rm(this.partialMetaPath(name), { force: true });
            found = true;
          } else if (!found) {
            throw notOwner(name, owner);
          }
        }
      }
      if (!found) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
    });
  }

  /**
   * Starts an upload. Feed it with write() (false: wait for drained()), then complete() makes it
   * visible, or abort() drops it (kept for a resume when resumable).
   */
  async beginUpload(name: string, request: UploadRequest): Promise<Upload> {
    validateFileName(name);
    const offset = request.offset ?? 0;
    const resumable = request.resumable ?? true;
    const total = request.size === undefined ? undefined : offset + request.size;
    if (!Number.isSafeInteger(offset) || offset < 0) throw sbError('SB_ERR_FILE_OFFSET', JSON.stringify(name), offset, 'not a non-negative integer');
    if ((total ?? offset) > this.options.maxFileSize) throw sbError('SB_ERR_FILE_TOO_LARGE', total ?? offset, this.options.maxFileSize);
    if (this.active.has(name)) throw sbError('SB_ERR_FILE_BUSY', JSON.stringify(name));
    await this.refuseLinkedTarget(name);

    const path = offset > 0 || resumable ? this.resumablePath(name) : join(this.partialDir, `t-${randomBytes(12).toString('hex')}`);
    // Registered before any await that could interleave with another put of the same name.
    const upload = new Upload(this, name, path, { offset, total, resumable, sha256: request.sha256, actor: request.actor });
    this.active.set(name, upload);
    let handle: FileHandle | undefined;
    try {
      // A sweep already deleting this expired partial finishes first: the resume then finds no
      // partial and is refused (SB_ERR_FILE_OFFSET), rather than appending to an unlinked file.
      await this.removing.get(path);
      await this.refuseOthersFiles(name, request.actor, offset > 0 || resumable);
      await this.checkQuota(upload.reserved);
      const hash = createHash('sha256');
      if (offset > 0) {
        const st = await lstat(path).catch(() => undefined);
        if (!st || !st.isFile() || st.size !== offset) {
          throw sbError('SB_ERR_FILE_OFFSET', JSON.stringify(name), offset, st?.isFile() ? `the kept partial upload has ${st.size} bytes` : 'no partial upload is kept');
        }
        handle = await open(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_NOFOLLOW);
        // The declared sha256 covers the whole file: the kept prefix is hashed again.
        await hashInto(hash, path);
      } else {
        // A fresh partial has no owner until its upload stops (notePartial); an older record must
        // not give it one should its inode number be reused.
        if (resumable) await rm(this.partialMetaPath(name), { force: true });
        const excl = resumable ? fsc.O_TRUNC : fsc.O_EXCL;
        handle = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW | excl, 0o600);
      }
      if (upload.stopped) {
        // Aborted while the file was being opened or its prefix hashed (close() of the store): the
        // abort found no handle to close and, for a fresh upload, no file yet to delete. Left
        // attached, the handle would stay open until garbage collection closed it.
        if (!resumable) await rm(path, { force: true });
        throw sbError('SB_ERR_BACKEND_DOWN', 'files', 'the files service is closing');
      }
      upload.attach(handle, hash);
      return upload;
    } catch (err) {
      this.release(upload);
      await handle?.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- for Upload ----

  /**
   * @internal Grows a streamed upload's quota claim to at least `need` bytes: a step more when the
   * quota allows, exactly `need` when only that fits. The claim is raised before the scan, so two
   * uploads growing at once each see the other's claim and together never exceed the quota.
   */
  async claim(upload: Upload, need: number): Promise<void> {
    upload.reserved = Math.min(Math.max(need, upload.size + QUOTA_STEP_BYTES), this.options.maxFileSize);
    const excess = (await this.usedBytes()) - this.options.quotaBytes;
    if (excess <= 0) return;
    if (upload.reserved - excess < need) {
      upload.reserved = upload.size;
      throw sbError('SB_ERR_FILE_QUOTA', `${need} bytes`, this.options.quotaBytes);
    }
    upload.reserved -= excess;
  }

  /** @internal */
  release(upload: Upload): void {
    if (this.active.get(upload.name) === upload) this.active.delete(upload.name);
  }

  /**
   * @internal Moves a finished upload over the visible name, recording its hash and owner. The
   * owner check that counts is here, under the name's lock with the rename: a delete or another
   * publish of the name cannot run between them.
   */
  async publish(upload: Upload, sha256: string): Promise<FileEntry> {
    const { name } = upload;
    return this.exclusive(name, async () => {
      await this.refuseLinkedTarget(name);
      const target = join(this.root, name);
      const metaPath = this.metaPath(name);
      const replaced = await lstat(target).catch(() => undefined);
      const previous = replaced && { ino: replaced.ino, owner: await this.ownerOf(name, metaPath, replaced.ino) };
      if (previous) checkMayChange(name, upload.actor, previous.owner);
      // rename(2) keeps the inode, size and mtime, so the record written now already describes the
      // published file, and `previous` keeps describing the old one until the rename happens.
      const st = await lstat(upload.path);
      await this.writeMeta(metaPath, { name, st, sha256, owner: upload.actor?.name ?? null, ...(previous ? { previous } : {}) });
      await rename(upload.path, target);
      if (upload.path === this.resumablePath(name)) await rm(this.partialMetaPath(name), { force: true });
      return { name, size: st.size, mtime: mtimeOf(st), sha256 };
    });
  }

  // ---- internals ----

  private resumablePath(name: string): string {
    return join(this.partialDir, `r-${nameHash(name)}`);
  }

  /** The owner that `metaPath`'s record names for the file with inode `ino` (null: none recorded). */
  private async ownerOf(name: string, metaPath: string, ino: number): Promise<string | null> {
    return ownerIn(await this.readMeta(name, metaPath), ino);
  }

  private metaPath(name: string): string {
    return join(this.metaDir, `${nameHash(name)}.json`);
  }

  /**
   * Runs `fn` once every earlier `exclusive` call for `name` has settled. Owner records are read,
   * checked and changed only inside it, so a check and the change it allows are one step.
   */
  private async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name);
    const run = (before ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(name, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }

  /**
   * The early owner check of an upload, before its body is read: the visible file, and the kept
   * partial when the upload would resume or overwrite it. (publish checks the visible file again.)
   */
  private async refuseOthersFiles(name: string, actor: FileActor | undefined, touchesPartial: boolean): Promise<void> {
    if (actor === undefined || actor.admin) return;
    const visible = await lstat(join(this.root, name)).catch(() => undefined);
    if (visible) checkMayChange(name, actor, await this.ownerOf(name, this.metaPath(name), visible.ino));
    const kept = touchesPartial ? await lstat(this.resumablePath(name)).catch(() => undefined) : undefined;
    if (kept) checkMayChange(name, actor, await this.ownerOf(name, this.partialMetaPath(name), kept.ino));
  }

  /** Writing is refused when the visible name is a symlink (dangling or not) or not a regular file. */
  private async refuseLinkedTarget(name: string): Promise<void> {
    const st = await lstat(join(this.root, name)).catch((err: unknown) => {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (st?.isSymbolicLink()) throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name), 'is a symbolic link');
    if (st && !st.isFile()) throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name), 'is not a regular file');
  }

  private async openVisible(name: string): Promise<FileHandle> {
    try {
      return await open(join(this.root, name), READ_FLAGS);
    } catch (err) {
      // O_NOFOLLOW makes open(2) fail with ELOOP on a symlink: that is the refusal.
      if (errno(err) === 'ELOOP') throw sbError('SB_ERR_FILE_NAME_INVALID', JSON.stringify(name), 'is a symbolic link');
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
      throw err;
    }
  }

  private async entry(name: string): Promise<ListedFile> {
    const handle = await this.openVisible(name);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
      const { sha256, owner } = await this.recordOf(name, st, handle);
      return { name, size: st.size, mtime: mtimeOf(st), sha256, owner };
    } finally {
      await handle.close();
    }
  }

  private recordOf(name: string, st: Stats, handle: FileHandle): Promise<{ sha256: string; owner: string | null }> {
    return this.recorded(name, st, join(this.root, name), this.metaPath(name), (hash) => hashHandle(hash, handle));
  }

  /**
   * The owner recorded at `metaPath` for st's inode, and the sha256 recorded for exactly this `st`;
   * without one, `hashBytes` hashes the file and the hash is recorded, keeping the owner.
   */
  private async recorded(name: string, st: Stats, subject: string, metaPath: string, hashBytes: (hash: Hash) => Promise<void>): Promise<{ sha256: string; owner: string | null }> {
    const meta = await this.readMeta(name, metaPath);
    const owner = ownerIn(meta, st.ino);
    if (meta && meta.ino === st.ino && meta.size === st.size && meta.mtime === st.mtimeMs) return { sha256: meta.sha256, owner };
    const hash = createHash('sha256');
    await hashBytes(hash);
    const sha256 = hash.digest('hex');
    // Recorded only if `subject` is still this inode with this owner: a publish or delete of the name
    // while the bytes were hashed wrote the record that counts, which this one must not overwrite.
    await this.exclusive(name, async () => {
      const now = await lstat(subject).catch(() => undefined);
      if (now?.ino !== st.ino || await this.ownerOf(name, metaPath, st.ino) !== owner) return;
      await this.writeMeta(metaPath, { name, st, sha256, owner });
    }).catch(() => undefined);
    return { sha256, owner };
  }

  private async writeMeta(path: string, fields: { name: string; st: Stats; sha256: string; owner: string | null; previous?: MetaRecord['previous'] }): Promise<void> {
    const { name, st, sha256, owner, previous } = fields;
    const record: MetaRecord = { name, size: st.size, mtime: st.mtimeMs, ino: st.ino, sha256, owner, ...(previous ? { previous } : {}) };
    const tmp = join(this.metaDir, `.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await rename(tmp, path);
  }

  /** The record at `path` when it is about `name` (a hash collision or a broken file is none). */
  private async readMeta(name: string, path: string): Promise<MetaRecord | undefined> {
    const meta = await readFile(path, 'utf8')
      .then((text) => JSON.parse(text) as MetaRecord)
      .catch(() => undefined);
    return meta && typeof meta === 'object' && meta.name === name ? meta : undefined;
  }

  /**
   * @internal Records a kept partial's prefix hash (known for free at abort), so stat need not reread
   * it, and its owner: the account whose put last wrote to it, the one that may resume it.
   */
  async notePartial(name: string, path: string, sha256: string, owner: string | null): Promise<void> {
    await this.exclusive(name, async () => {
      const st = await lstat(path);
      await this.writeMeta(this.partialMetaPath(name), { name, st, sha256, owner });
    });
  }

  private partialMetaPath(name: string): string {
    return join(this.metaDir, `p-${nameHash(name)}.json`);
  }

  private async partialInfo(name: string): Promise<PartialInfo | undefined> {
    const path = this.resumablePath(name);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    // Without a record (the service was killed mid-upload) the bytes that are there are hashed.
    const { sha256 } = await this.recorded(name, st, path, this.partialMetaPath(name), (hash) => hashInto(hash, path));
    return { size: st.size, mtime: mtimeOf(st), sha256 };
  }

  /** Bytes in use: visible files, kept partials, and what uploads in progress have claimed (Upload.reserved). */
  async usedBytes(): Promise<number> {
    const inUse = new Set<string>();
    let reserved = 0;
    for (const upload of this.active.values()) {
      inUse.add(upload.path);
      reserved += upload.reserved;
    }
    let used = reserved;
    for (const [dir, skipHidden] of [[this.root, true], [this.partialDir, false]] as const) {
      for (const dirent of await readdir(dir, { withFileTypes: true })) {
        if (!dirent.isFile() || (skipHidden && dirent.name.startsWith('.'))) continue;
        const path = join(dir, dirent.name);
        if (inUse.has(path)) continue;
        used += (await lstat(path).catch(() => undefined))?.size ?? 0;
      }
    }
    return used;
  }

  private async checkQuota(total: number): Promise<void> {
    if (this.options.quotaBytes <= 0) return;
    // The upload being checked is already registered, so its declared total is counted once.
    if ((await this.usedBytes()) > this.options.quotaBytes) {
      throw sbError('SB_ERR_FILE_QUOTA', `${total} bytes`, this.options.quotaBytes);
    }
  }
}

function isListable(name: string): boolean {
  try {
    validateFileName(name);
    return true;
  } catch {
    return false;
  }
}

// Streams over the handle's numeric fd, so the FileHandle stays ours to close: a FileHandle's own
// createReadStream/createWriteStream with autoClose:false holds a reference that makes close() wait forever.
function readFd(handle: FileHandle) {
  return createReadStream('', { fd: handle.fd, start: 0, autoClose: false, highWaterMark: 256 * 1024 });
}

async function hashHandle(hash: Hash, handle: FileHandle): Promise<void> {
  for await (const chunk of readFd(handle)) hash.update(chunk as Buffer);
}

async function hashInto(hash: Hash, path: string): Promise<void> {
  const handle = await open(path, READ_FLAGS);
  try {
    await hashHandle(hash, handle);
  } finally {
    await handle.close();
  }
}

/** One upload in progress. Bytes go to a temp file under .partial/; nothing is visible until complete(). */
export class Upload {
  private handle: FileHandle | undefined;
  private stream: WriteStream | undefined;
  private hash: Hash | undefined;
  private received = 0;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  private failure: SockbridgeError | undefined;
  private settled = false;
  private aborting: Promise<void> | undefined;
  private digested = false;
  readonly offset: number;
  /** the declared final size; undefined for a streamed upload */
  readonly total: number | undefined;
  /** bytes counted against the quota: the declared total, or what a streamed upload has claimed so far */
  reserved: number;
  readonly resumable: boolean;
  /** the account the upload acts for (undefined: a direct client) */
  readonly actor: FileActor | undefined;
  private readonly declaredSha256: string | undefined;

  constructor(
    private readonly store: FileStore,
    readonly name: string,
    readonly path: string,
    init: { offset: number; total: number | undefined; resumable: boolean; sha256: string | undefined; actor: FileActor | undefined },
  ) {
    this.offset = init.offset;
    this.total = init.total;
    this.reserved = init.total ?? init.offset;
    this.resumable = init.resumable;
    this.declaredSha256 = init.sha256;
    this.actor = init.actor;
  }

  /** @internal */
  attach(handle: FileHandle, hash: Hash): void {
    this.handle = handle;
    this.hash = hash;
    this.stream = createWriteStream('', { fd: handle.fd, autoClose: false, highWaterMark: WRITE_STREAM_HWM });
    this.stream.on('error', (err) => {
      this.failure ??= errno(err) === 'ENOSPC' ? sbError('SB_ERR_FILE_NO_SPACE', JSON.stringify(this.name)) : sbError('SB_ERR_INTERNAL', 'write failed');
      // A failed write is never resumed: give the space back now, whatever the caller does next.
      void rm(this.path, { force: true });
    });
  }

  /** abort() has been called (an upload aborted before it was attached is never attached) */
  get stopped(): boolean {
    return this.aborting !== undefined;
  }

  /** Bytes of the file written so far (offset included). */
  get size(): number {
    return this.offset + this.received;
  }

  /**
   * A streamed upload must call this before writing `bytes` more (a sized one may, it is a no-op).
   * Refuses with SB_ERR_FILE_TOO_LARGE or SB_ERR_FILE_QUOTA the moment the running total would pass
   * the limit; the upload is then failed, so abort() deletes it even when resumable. Returns a
   * promise only when the quota has to be consulted.
   */
  room(bytes: number): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const need = this.size + bytes;
    if (this.total !== undefined || need <= this.reserved) return undefined;
    const max = this.store.options.maxFileSize;
    if (need > max) throw (this.failure = sbError('SB_ERR_FILE_TOO_LARGE', `at least ${need}`, max));
    if (this.store.options.quotaBytes <= 0) {
      this.reserved = need;
      return undefined;
    }
    return this.store.claim(this, need).catch((err: unknown) => {
      this.failure ??= isSockbridgeError(err) ? err : sbError('SB_ERR_INTERNAL', 'quota check failed');
      throw this.failure;
    });
  }

  /** Writes one chunk; false means wait for drained() before the next. The chunk must not be reused. */
  write(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    const limit = this.total ?? this.reserved;
    if (this.size + chunk.length > limit) {
      throw this.total !== undefined ? sbError('SB_ERR_BAD_REQUEST', 'more bytes than declared') : sbError('SB_ERR_INTERNAL', 'a streamed upload wrote without room()');
    }
    this.hash!.update(chunk);
    this.received += chunk.length;
    this.unsynced += chunk.length;
    if (this.unsynced >= SYNC_EVERY_BYTES && !this.syncing) this.syncInBackground();
    return this.stream!.write(chunk);
  }

  private syncInBackground(): void {
    this.unsynced = 0;
    const handle = this.handle!;
    this.syncing = handle
      .datasync()
      .catch((err: unknown) => {
        this.failure ??= errno(err) === 'ENOSPC' ? sbError('SB_ERR_FILE_NO_SPACE', JSON.stringify(this.name)) : sbError('SB_ERR_INTERNAL', 'sync failed');
      })
      .finally(() => (this.syncing = undefined));
  }

  /** Resolves when the write buffer has room again; rejects if writing failed (e.g. disk full). */
  drained(): Promise<void> {
    const stream = this.stream!;
    if (this.failure) return Promise.reject(this.failure);
    if (!stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('error', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      stream.on('drain', done);
      stream.on('error', done);
    });
  }

  /** Flushes, verifies size and sha256, and renames over the visible name. */
  async complete(): Promise<FileEntry> {
    try {
      await this.flushAndClose();
      if (this.total !== undefined && this.size !== this.total) throw sbError('SB_ERR_BAD_REQUEST', `received ${this.size} of ${this.total} bytes`);
      const sha256 = this.hash!.digest('hex');
      this.digested = true;
      if (this.declaredSha256 !== undefined && this.declaredSha256 !== sha256) {
        // The bytes are wrong somewhere: a resume would only extend a bad prefix, so nothing is kept.
        await rm(this.path, { force: true });
        throw sbError('SB_ERR_FILE_CHECKSUM', JSON.stringify(this.name), this.declaredSha256, sha256);
      }
      const entry = await this.store.publish(this, sha256);
      this.settled = true;
      return entry;
    } catch (err) {
      await this.discard(err);
      throw this.mapError(err);
    } finally {
      this.store.release(this);
    }
  }

  /**
   * Stops the upload: a resumable one is kept for a later put {offset}, any other is deleted. A second
   * call (FileStore.close while the connection's own abort runs) waits for the first to finish.
   */
  abort(): Promise<void> {
    if (this.settled) return this.aborting ?? Promise.resolve();
    this.settled = true;
    this.aborting = this.stop();
    return this.aborting;
  }

  private async stop(): Promise<void> {
    try {
      await this.flushAndClose().catch(() => undefined);
      if (!this.resumable || this.failure) await rm(this.path, { force: true });
      // complete() may have finalised the hash before a shutdown abort arrives: nothing to note then.
      else if (this.hash && !this.digested) {
        await this.store.notePartial(this.name, this.path, this.hash.copy().digest('hex'), this.actor?.name ?? null).catch(() => undefined);
      }
    } finally {
      this.store.release(this);
    }
  }

  private async flushAndClose(): Promise<void> {
    const stream = this.stream;
    const handle = this.handle;
    this.stream = undefined;
    this.handle = undefined;
    if (!stream || !handle) return;
    try {
      await this.syncing;
      if (!this.failure) {
        await new Promise<void>((resolve, reject) => {
          stream.once('error', reject);
          stream.end(() => resolve());
        });
        // Durable before it becomes visible (or before a resume trusts it).
        await handle.datasync();
      }
    } catch (err) {
      this.failure ??= errno(err) === 'ENOSPC' ? sbError('SB_ERR_FILE_NO_SPACE', JSON.stringify(this.name)) : sbError('SB_ERR_INTERNAL', 'write failed');
    } finally {
      await handle.close().catch(() => undefined);
    }
    if (this.failure) throw this.failure;
  }

  private async discard(err: unknown): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    // A resumable upload that only lost its connection is kept; a failed write (disk full) is not.
    const refused = ['SB_ERR_FILE_CHECKSUM', 'SB_ERR_FILE_NAME_INVALID', 'SB_ERR_FILE_NOT_OWNER'] as const;
    const keep = this.resumable && !this.failure && !refused.some((code) => isSockbridgeError(err, code));
    if (!keep) await rm(this.path, { force: true });
  }

  private mapError(err: unknown): unknown {
    if (errno(err) === 'ENOSPC') return sbError('SB_ERR_FILE_NO_SPACE', JSON.stringify(this.name));
    return err;
  }
}
