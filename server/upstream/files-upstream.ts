// The gateway's side of the files service: one FilesClient connection per HTTP request (a download
// streams on its connection until done), failures reported to the health registry, and uploads
// spooled to DATA/tmp because the files protocol needs each file's size before its bytes (a
// multipart part has no size up front). The spool is bounded by the upload limit, private (0600),
// and always deleted; it costs one extra disk write per upload, never memory.

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import type { FileEntry } from '../../protocol/api.js';
import { FilesClient } from '../../backends/files/files-client.js';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl, type BackendAddress } from './backend-url.js';
import type { HealthRegistry } from './health-registry.js';

export class FilesUpstream {
  private readonly address: BackendAddress;
  private readonly spoolDir: string;

  constructor(
    options: Pick<GatewayOptions, 'files' | 'data'>,
    private readonly health: Pick<HealthRegistry, 'markUp' | 'markDown'>,
  ) {
    this.address = parseBackendUrl(options.files, 'tcp', '--files');
    this.spoolDir = join(options.data, 'tmp');
  }

  /** Runs `fn` with a fresh connection, closed afterwards unless `keepOpen` (then the caller closes it). */
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

  /** Spools `source` (at most `maxBytes`) to a private temp file, stores it as `name`, deletes the spool. */
  async upload(name: string, source: Readable, maxBytes: number): Promise<FileEntry> {
    await mkdir(this.spoolDir, { recursive: true, mode: 0o700 });
    const spool = join(this.spoolDir, `upload-${randomBytes(12).toString('hex')}`);
    try {
      let seen = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          if (seen > maxBytes) done(sbError('SB_ERR_FILE_TOO_LARGE', `more than ${maxBytes}`, maxBytes));
          else done(null, chunk);
        },
      });
      await pipeline(source, limit, createWriteStream(spool, { flags: 'wx', mode: 0o600 }));
      const { size } = await stat(spool);
      const entry = await this.with((client) => client.put(name, createReadStream(spool), size, { resumable: false }));
      // the reply's size shares its key with the frame body length: the spooled size is the truth
      return { ...entry, size };
    } finally {
      await unlink(spool).catch(() => undefined);
    }
  }

  private noteFailure(err: unknown): void {
    // Only a lost or refused connection says the service is down; a refusal (bad name, not found) does not.
    if (isSockbridgeError(err, 'SB_ERR_CONNECT') || isSockbridgeError(err, 'SB_ERR_BACKEND_DOWN') || isSockbridgeError(err, 'SB_ERR_TIMEOUT')) {
      this.health.markDown('files', err.code === 'SB_ERR_TIMEOUT' ? 'timeout' : 'connection failed');
    }
  }
}
