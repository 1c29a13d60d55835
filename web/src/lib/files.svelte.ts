// The files panel's state: the listing from GET /api/files and uploads in flight.
// Uploads go one XMLHttpRequest per file, because only XHR reports upload progress (fetch cannot yet),
// which gives each file its own progress bar and its own cancel.
import type { FileEntry, FileList } from '../../../protocol/api.js';
import { apiJson, errorFromBody, errorInfo } from './api.js';

export interface Upload {
  id: number;
  name: string;
  size: number;
  loaded: number;
  state: 'queued' | 'uploading' | 'done' | 'failed' | 'cancelled';
  error?: string;
}

/** Parallel uploads; more only split the same bandwidth and delay the first file. */
const CONCURRENT_UPLOADS = 2;

export class FilesStore {
  files = $state<FileEntry[]>([]);
  loading = $state(false);
  lastError = $state<{ code: string; message: string } | null>(null);
  uploads = $state<Upload[]>([]);

  activeUploads = $derived(this.uploads.filter((u) => u.state === 'queued' || u.state === 'uploading').length);

  #nextId = 1;
  #queue: { upload: Upload; file: File }[] = [];
  #requests = new Map<number, XMLHttpRequest>();

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
    return `/api/files/${encodeURIComponent(name)}`;
  }

  async remove(name: string): Promise<void> {
    try {
      await apiJson(`/api/files/${encodeURIComponent(name)}`, { method: 'DELETE' });
      this.files = this.files.filter((f) => f.name !== name);
      this.lastError = null;
    } catch (err) {
      this.#fail(err);
    }
  }

  upload(fileList: Iterable<File>): void {
    for (const file of fileList) {
      this.uploads.push({ id: this.#nextId++, name: file.name, size: file.size, loaded: 0, state: 'queued' });
      // read back through the proxy so later writes are seen by the page
      const upload = this.uploads[this.uploads.length - 1]!;
      this.#queue.push({ upload, file });
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
    this.uploads = this.uploads.filter((u) => u.state === 'queued' || u.state === 'uploading');
  }

  cancelAll(): void {
    for (const xhr of this.#requests.values()) xhr.abort();
    this.#queue = [];
  }

  #pump(): void {
    while (this.#requests.size < CONCURRENT_UPLOADS && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      this.#send(next.upload, next.file);
    }
  }

  #send(upload: Upload, file: File): void {
    const xhr = new XMLHttpRequest();
    this.#requests.set(upload.id, xhr);
    upload.state = 'uploading';
    xhr.upload.onprogress = (e) => {
      // the multipart envelope adds a few hundred bytes; clamp so the bar never passes the file size
      upload.loaded = Math.min(upload.size, e.loaded);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        upload.loaded = upload.size;
        upload.state = 'done';
        void this.refresh();
      } else {
        upload.state = 'failed';
        upload.error = readError(xhr);
      }
    };
    xhr.onerror = () => {
      upload.state = 'failed';
      upload.error = 'The gateway cannot be reached';
    };
    xhr.onabort = () => {
      upload.state = 'cancelled';
    };
    xhr.onloadend = () => {
      this.#requests.delete(upload.id);
      this.#pump();
    };
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.open('POST', '/api/files');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.send(form);
  }

  #fail(err: unknown): void {
    this.lastError = errorInfo(err);
  }
}

function readError(xhr: XMLHttpRequest): string {
  const err = errorFromBody(xhr.status, xhr.statusText, xhr.responseText);
  return `Upload failed: ${err.message} (${err.code})`;
}
