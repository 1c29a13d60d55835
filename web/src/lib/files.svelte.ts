// The files panel's state: the listing from GET /api/files and uploads in flight.
// Uploads go one XMLHttpRequest per file, because only XHR reports upload progress (fetch cannot yet),
// which gives each file its own progress bar and its own cancel. Each is a raw PUT /api/files/:name, not a
// multipart POST: browsers escape `"`, CR and LF in a multipart filename as %22, %0D and %0A without
// escaping `%` itself (WHATWG HTML, multipart/form-data encoding algorithm), so the gateway could not tell
// `a"b` from a literal `a%22b`; a percent-encoded URL path says either exactly.
import type { FileList, ListedFile, Me, UploadLimits } from '../../../protocol/api.js';
import { fileNameProblem } from '../../../protocol/file-name-rule.js';
import { mayChange } from '../../../protocol/files-messages.js';
import { apiJson, errorFromBody, errorInfo, type ApiRequestError } from './api.js';
import { formatBytes } from './format.js';

export interface Upload {
  id: number;
  name: string;
  size: number;
  loaded: number;
  /** 'cancelling': aborted, and the listing is being read to learn whether the server had already stored it */
  state: 'queued' | 'uploading' | 'cancelling' | 'done' | 'failed' | 'cancelled';
  error?: string;
  /** what the row says instead of its bare state, e.g. that a Cancel came too late */
  note?: string;
}

/** An upload that has not come to an end yet (nor to the end of a Cancel). */
const isActive = (u: Upload): boolean => u.state === 'queued' || u.state === 'uploading' || u.state === 'cancelling';

/** Parallel uploads; more only split the same bandwidth and delay the first file. */
const CONCURRENT_UPLOADS = 2;

/**
 * An aborted upload whose body had reached the gateway in full is stored all the same, moments later
 * (the files service commits once the last byte is in). The listing is read at once and, if the file is
 * not there yet, once more after this long, before the row says "cancelled".
 */
const ABORT_SETTLE_MS = 1_000;

/** Codes that mean the files service (or the gateway) is not there, rather than a refusal. */
const UNAVAILABLE = new Set(['SB_ERR_BACKEND_DOWN', 'NETWORK', 'HTTP_502', 'HTTP_503', 'HTTP_504']);

export class FilesStore {
  files = $state<ListedFile[]>([]);
  loading = $state(false);
  lastError = $state<{ code: string; message: string } | null>(null);
  /** the last listing failed because the service could not be reached: stale rows, no changes offered */
  unavailable = $derived(this.lastError !== null && UNAVAILABLE.has(this.lastError.code));
  /** a plain line about one file, e.g. "report.txt no longer exists" */
  notice = $state<string | null>(null);
  uploads = $state<Upload[]>([]);

  activeUploads = $derived(this.uploads.filter(isActive).length);

  #nextId = 1;
  #queue: { upload: Upload; file: File; me: Me | null | undefined }[] = [];
  #requests = new Map<number, XMLHttpRequest>();
  /** set by cancelAll: aborts are not settled against the listing */
  #closing = false;

  async refresh(): Promise<void> {
    this.loading = true;
    try {
      const list = await apiJson<FileList>('/api/files');
      this.files = [...list.files].sort((a, b) => a.name.localeCompare(b.name));
      this.lastError = null;
    } catch (err) {
      this.#fail(err);
    } finally {
      this.loading = false;
    }
  }

  downloadUrl(name: string): string {
    return fileUrl(name);
  }

  /** Re-reads the listing before a download, so a file deleted meanwhile is named instead of a silently failed download. */
  async stillExists(name: string): Promise<boolean> {
    await this.refresh();
    if (this.lastError) return true; // cannot tell: let the download try and the browser report it
    if (this.files.some((f) => f.name === name)) return true;
    this.notice = `${name} no longer exists`;
    return false;
  }

  /**
   * Whether `me` may replace or delete `file`, by the files service's own rule: only such files are
   * offered Delete. The service decides again, so a listing out of date at worst gets its 403 shown.
   */
  mayChange(file: ListedFile, me: Me | null | undefined): boolean {
    return me !== null && me !== undefined && mayChange({ name: me.username, admin: me.role === 'admin' }, file.owner);
  }

  async remove(name: string): Promise<void> {
    try {
      await apiJson(fileUrl(name), { method: 'DELETE' });
      this.files = this.files.filter((f) => f.name !== name);
      this.lastError = null;
    } catch (err) {
      // Refused by the owner rule (the listing was out of date: someone replaced the file): said as a
      // notice, which the refresh below does not clear as it clears lastError.
      const info = errorInfo(err);
      if (info.code === 'SB_ERR_FILE_NOT_OWNER') this.notice = `${info.message} (${info.code})`;
      else this.#fail(err);
    }
    void this.refresh();
  }

  /**
   * Queues files for upload. What the gateway would refuse (too large, a bad name, too many in one go,
   * a listed file `me` may not replace) fails here at once with a plain reason, and none of it is sent.
   */
  upload(fileList: Iterable<File>, me: Me | null | undefined): void {
    const picked = [...fileList];
    const limits = me?.limits;
    const tooMany = limits !== undefined && picked.length > limits.maxUploadFiles;
    for (const file of picked) {
      const upload: Upload = { id: this.#nextId++, name: file.name, size: file.size, loaded: 0, state: 'queued' };
      const refusal = tooMany ? `at most ${limits.maxUploadFiles} files at a time` : (refusalOf(file, limits) ?? this.#ownerRefusal(file.name, me));
      if (refusal) {
        upload.state = 'failed';
        upload.error = refusal;
      }
      this.uploads.push(upload);
      // read back through the proxy so later writes are seen by the page
      if (!refusal) this.#queue.push({ upload: this.uploads[this.uploads.length - 1]!, file, me });
    }
    this.#pump();
  }

  cancel(id: number): void {
    const xhr = this.#requests.get(id);
    if (xhr) xhr.abort();
    const queued = this.#queue.findIndex((q) => q.upload.id === id);
    if (queued >= 0) {
      this.#queue[queued]!.upload.state = 'cancelled';
      this.#queue.splice(queued, 1);
    }
  }

  clearFinished(): void {
    this.uploads = this.uploads.filter(isActive);
  }

  /** The page is going away: everything in flight is dropped, with no listing read to settle it. */
  cancelAll(): void {
    this.#closing = true;
    for (const xhr of this.#requests.values()) xhr.abort();
    this.#queue = [];
  }

  #pump(): void {
    while (this.#requests.size < CONCURRENT_UPLOADS && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      this.#send(next.upload, next.file, next.me);
    }
  }

  #send(upload: Upload, file: File, me: Me | null | undefined): void {
    const xhr = new XMLHttpRequest();
    this.#requests.set(upload.id, xhr);
    upload.state = 'uploading';
    // the version listed now, so that after a Cancel a file stored by this very upload can be told apart from it
    const before = this.files.find((f) => f.name === upload.name);
    xhr.upload.onprogress = (e) => {
      upload.loaded = Math.min(upload.size, e.loaded);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        upload.loaded = upload.size;
        upload.state = 'done';
      } else {
        upload.state = 'failed';
        upload.error = plainUploadError(errorFromBody(xhr.status, xhr.statusText, xhr.responseText), upload.name);
      }
      // stored or refused, the listing shows what is there now (a refusal may come from a newer version)
      void this.refresh();
    };
    xhr.onerror = () => {
      upload.state = 'failed';
      upload.error = 'The gateway cannot be reached';
    };
    xhr.onabort = () => {
      if (this.#closing) upload.state = 'cancelled';
      else void this.#settleAborted(upload, before, me);
    };
    xhr.onloadend = () => {
      this.#requests.delete(upload.id);
      this.#pump();
    };
    xhr.open('PUT', fileUrl(file.name));
    xhr.setRequestHeader('accept', 'application/json');
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.send(file);
  }

  /**
   * After an abort: the gateway stores a file only once its whole body is in, but a Cancel may come after
   * that (the progress bar lags the bytes, and the reply may still be on its way). So the listing is read
   * again, and the row says "cancelled" only if this upload's file is not there.
   */
  async #settleAborted(upload: Upload, before: ListedFile | undefined, me: Me | null | undefined): Promise<void> {
    upload.state = 'cancelling';
    for (const wait of [0, ABORT_SETTLE_MS]) {
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await this.refresh();
      if (this.lastError) {
        upload.state = 'cancelled';
        upload.note = 'cancelled; whether it had already been stored is not known (the listing failed)';
        return;
      }
      const now = this.files.find((f) => f.name === upload.name);
      if (now && isThisUpload(now, upload, before, me)) {
        upload.state = 'done';
        upload.loaded = upload.size;
        upload.note = 'stored before it could be cancelled';
        return;
      }
    }
    upload.state = 'cancelled';
  }

  #ownerRefusal(name: string, me: Me | null | undefined): string | null {
    const listed = this.files.find((f) => f.name === name);
    if (!listed || this.mayChange(listed, me)) return null;
    return listed.owner === null ? `${name} has no owner: only an admin may replace it` : `${name} belongs to ${listed.owner}: only they or an admin may replace it`;
  }

  #fail(err: unknown): void {
    this.lastError = errorInfo(err);
  }
}

const fileUrl = (name: string): string => `/api/files/${encodeURIComponent(name)}`;

/**
 * Whether `listed` is the version `upload` would have stored: its size, owned by the uploader, and not
 * the version that was listed when the upload started.
 */
function isThisUpload(listed: ListedFile, upload: Upload, before: ListedFile | undefined, me: Me | null | undefined): boolean {
  if (listed.size !== upload.size) return false;
  if (me && listed.owner !== me.username) return false;
  return before === undefined || listed.sha256 !== before.sha256 || listed.mtime !== before.mtime;
}

/** Why the gateway would refuse this file, in words, or null. */
function refusalOf(file: File, limits: UploadLimits | undefined): string | null {
  const problem = fileNameProblem(file.name);
  if (problem) return `This name is not allowed: it ${problem}`;
  if (limits && file.size > limits.maxUploadBytes) return `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(limits.maxUploadBytes)}`;
  return null;
}

/** The gateway's refusal of an upload in words; its code stays in the message for a bug report. */
function plainUploadError(err: ApiRequestError, name: string): string {
  if (err.code === 'SB_ERR_FILE_TOO_LARGE') return `${name} is larger than the gateway allows (${err.code})`;
  if (UNAVAILABLE.has(err.code)) return `The files service is unavailable; try again later (${err.code})`;
  return `Upload failed: ${err.message} (${err.code})`;
}
