// The gateway's side of the files service: one FilesClient connection per HTTP request (a download
// streams on its connection until done), failures reported to the health registry, and uploads of
// unknown length (a multipart part) streamed as a chunked put: nothing is spooled to disk or held in
// memory, and the part is read only as fast as the files service takes it.

import type { Readable } from 'node:stream';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import type { FileEntry } from '../../protocol/api.js';
import { FilesClient } from '../../backends/files/files-client.js';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl, type BackendAddress } from './backend-url.js';
import type { HealthRegistry } from './health-registry.js';

export class FilesUpstream {
  private readonly address: BackendAddress;

  constructor(
    options: Pick<GatewayOptions, 'files'>,
    private readonly health: Pick<HealthRegistry, 'markUp' | 'markDown'>,
  ) {
    this.address = parseBackendUrl(options.files, 'tcp', '--files');
  }

  /** Runs `fn` with a fresh connection, closed afterwards (a download uses connect() and closes it when its stream ends). */
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

  async connect(): Promise<FilesClient> {
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
   * Streams `source` (at most `maxBytes`, else SB_ERR_FILE_TOO_LARGE) into a non-resumable chunked
   * put: if the source fails or ends the connection early, the files service deletes the upload.
   */
  upload(name: string, source: Readable, maxBytes: number): Promise<FileEntry> {
    return this.with((client) => client.put(name, source, undefined, { resumable: false, maxBytes }));
  }

  private noteFailure(err: unknown): void {
    // Only a lost or refused connection says the service is down; a refusal (bad name, not found) does not.
    if (isSockbridgeError(err, 'SB_ERR_CONNECT') || isSockbridgeError(err, 'SB_ERR_BACKEND_DOWN') || isSockbridgeError(err, 'SB_ERR_TIMEOUT')) {
      this.health.markDown('files', err.code === 'SB_ERR_TIMEOUT' ? 'timeout' : 'connection failed');
    }
  }
}
