// The gateway's side of the files service: one FilesClient connection per HTTP request (a download
// streams on its connection until done), failures reported to the health registry, and uploads of
// unknown length (a multipart part) streamed as a chunked put: nothing is spooled to disk or held in
// memory, and the part is read only as fast as the files service takes it.
//
// A download's headers (ETag, Content-Length, Content-Range) describe the bytes it sends only if
// both come from one reply: the `get` reply names the version (size, sha256) its body is, so the
// decision what to send is made on that entry, never on an earlier stat (a PUT landing between a
// stat and a get would otherwise serve another version's bytes under the first one's headers).

import type { Readable } from 'node:stream';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import type { FileEntry } from '../../protocol/api.js';
import type { FileActor } from '../../protocol/files-messages.js';
import { FilesClient, isServiceRefusal, type GetResult } from '../../backends/files/files-client.js';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl, type BackendAddress } from './backend-url.js';
import type { HealthRegistry } from './health-registry.js';

/** Gets of one download before giving up on a file that is replaced faster than it can be read. */
const DOWNLOAD_ATTEMPTS = 4;

/**
 * Picks the first byte to send of the version `entry` describes, or null when the answer has no
 * body (304, 416, HEAD).
 */
export type PickStart = (entry: FileEntry) => number | null;

export interface Download {
  /** the version the answer is about: its bytes are `stream` */
  entry: FileEntry;
  /**
   * entry.size - start bytes of that version, from the start `pick` chose; null when it chose none.
   * The connection closes when the stream does.
   */
  stream: Readable | null;
}

export class FilesUpstream {
  private readonly address: BackendAddress;

  constructor(
    options: Pick<GatewayOptions, 'files'>,
    private readonly health: Pick<HealthRegistry, 'markUp' | 'markDown'>,
  ) {
    this.address = parseBackendUrl(options.files, 'tcp', '--files');
  }

  /** Runs `fn` with a fresh connection, closed afterwards. */
  async with<T>(fn: (client: FilesClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await fn(client);
    } catch (err) {
      this.noteFailure(err);
      throw err;
    } finally {
      void client.close();
    }
  }

  private async connect(): Promise<FilesClient> {
    try {
      const client = await FilesClient.connect(this.address.host, this.address.port, { connectTimeoutMs: 5000 });
      this.health.markUp('files');
      return client;
    } catch (err) {
      this.noteFailure(err);
      throw isSockbridgeError(err, 'SB_ERR_CONNECT') ? sbError('SB_ERR_BACKEND_DOWN', 'files', 'cannot connect') : err;
    }
  }

  /**
   * Fetches a file for a download: `pick` sees the entry of the version a `get` reply actually
   * carries and chooses where its body starts. When the bytes fetched start elsewhere (the first
   * guess was wrong, or the file was replaced meanwhile), they are dropped and fetched again from
   * the right offset: the entry returned is always the one the stream's bytes belong to.
   * `guess`: where to start the first get; undefined asks for a stat first (a suffix range, or a
   * request likely to need no body at all: a stat's answer is enough when no bytes go out).
   */
  async download(name: string, pick: PickStart, guess: number | undefined): Promise<Download> {
    let client = await this.connect();
    try {
      let known: FileEntry | undefined = guess === undefined ? await statEntry(client, name) : undefined;
      let offset = guess ?? 0;
      for (let attempt = 1; ; attempt++) {
        if (known) {
          const start = pick(known);
          if (start === null) {
            void client.close();
            return { entry: known, stream: null };
          }
          offset = start;
        }
        if (attempt > DOWNLOAD_ATTEMPTS) throw sbError('SB_ERR_FILE_BUSY', JSON.stringify(name));
        let got: GetResult;
        try {
          got = await client.get(name, { offset });
        } catch (err) {
          // Past the end of the current version (a Range beyond it, or a file that shrank): the
          // connection is still in step, and a stat says what to answer (416, or the whole file).
          if (!isSockbridgeError(err, 'SB_ERR_FILE_OFFSET')) throw err;
          known = await statEntry(client, name);
          continue;
        }
        const start = pick(got.entry);
        if (start === offset) {
          const held = client;
          got.stream.once('close', () => void held.close());
          return { entry: got.entry, stream: got.stream };
        }
        // Not the bytes wanted: dropping the body mid-frame ends this connection.
        got.stream.destroy();
        void client.close();
        if (start === null) return { entry: got.entry, stream: null };
        known = got.entry;
        client = await this.connect();
      }
    } catch (err) {
      void client.close();
      this.noteFailure(err);
      throw err;
    }
  }

  /**
   * Streams `source` (at most `maxBytes`, else SB_ERR_FILE_TOO_LARGE) into a non-resumable chunked
   * put for `actor`: if the source fails or ends the connection early, the files service deletes the upload.
   */
  upload(name: string, source: Readable, maxBytes: number, actor: FileActor): Promise<FileEntry> {
    return this.with((client) => client.put(name, source, undefined, { resumable: false, maxBytes, actor }));
  }

  private noteFailure(err: unknown): void {
    // Only a lost or refused connection, or a service that stopped answering, says the service is
    // down. Anything it said itself in an error frame (bad name, not found, or its idle timeout closing
    // an upload whose sender stalled) shows it is up.
    if (isServiceRefusal(err)) return;
    if (isSockbridgeError(err, 'SB_ERR_CONNECT') || isSockbridgeError(err, 'SB_ERR_BACKEND_DOWN') || isSockbridgeError(err, 'SB_ERR_TIMEOUT')) {
      this.health.markDown('files', err.code === 'SB_ERR_TIMEOUT' ? 'timeout' : 'connection failed');
    }
  }
}

/** Size and hash of a stored file, from one stat (the kept partial of a name that has no file is not one). */
async function statEntry(client: FilesClient, name: string): Promise<FileEntry> {
  const info = await client.stat(name);
  if (!info.exists) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
  return { name: info.name, size: info.size, mtime: info.mtime, sha256: info.sha256 };
}
