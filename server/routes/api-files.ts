// Files over HTTP (docs/api.md): list, multipart upload (several files per request), streamed
// download with Range/ETag, delete. Every route needs a session; names are checked by the files
// service's own validateFileName before anything is sent upstream, so `..`, separators and NUL get a
// 400 here and never reach the service.

import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyMultipart from '@fastify/multipart';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import type { FileEntry, FileList, UploadFailure, UploadResult } from '../../protocol/api.js';
import { validateFileName } from '../../backends/files/file-name.js';
import type { FilesClient } from '../../backends/files/files-client.js';
import { requireSession } from '../plugins/auth.js';
import { FilesUpstream } from '../upstream/files-upstream.js';
import { contentDisposition, etagOf, matchesIfNoneMatch, parseRange } from './api-files-http.js';

const nameParams = {
  params: {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 1024 } },
  },
} as const;

/** Stops a stream after `count` bytes (a Range that ends before the file does). */
function take(source: Readable, count: number): Readable {
  const out = new PassThrough();
  let left = count;
  source.on('data', (chunk: Buffer) => {
    const piece = chunk.length <= left ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!out.write(piece)) source.pause();
    if (left === 0) {
      out.end();
      source.destroy();
    }
  });
  out.on('drain', () => source.resume());
  source.on('end', () => out.end());
  source.on('error', (err) => out.destroy(err));
  out.on('close', () => source.destroy());
  return out;
}

export async function apiFilesRoutes(app: FastifyInstance): Promise<void> {
  const options = app.gatewayOptions;
  const limits = options.limits;
  const upstream = new FilesUpstream(options, app.healthRegistry);

  await app.register(fastifyMultipart, {
    limits: {
      // one byte over the limit, so the upload's own check (FilesClient.put maxBytes) sees the excess
      // and refuses the file (at exactly the limit busboy would silently truncate, looking complete)
      fileSize: limits.maxUploadBytes + 1,
      files: limits.maxUploadFiles,
      // non-file fields are ignored, but counted: 1,001 empty parts stop at the limit, not at 1,001
      fields: 16,
      parts: limits.maxUploadFiles + 16,
      headerPairs: 64,
      fieldSize: 1024,
    },
  });

  app.get('/api/files', async (request) => {
    requireSession(request);
    const files = await upstream.with((client) => client.list());
    const body: FileList = { files: files.map(({ name, size, mtime, sha256 }) => ({ name, size, mtime, sha256 })) };
    return body;
  });

  app.post('/api/files', async (request: FastifyRequest, reply: FastifyReply) => {
    const session = requireSession(request);
    if (!request.isMultipart()) throw sbError('SB_ERR_UPLOAD_INVALID', 'send multipart/form-data with one or more file parts');
    const stored: FileEntry[] = [];
    try {
      for await (const part of request.parts()) {
        if (part.type !== 'file') continue;
        let name: string;
        try {
          // busboy has already reduced the filename to its last path component, as browsers send it.
          name = validateFileName(part.filename);
          // Two parts with one name (`a/x.txt` and `b/x.txt` both become `x.txt`) would silently
          // replace the first with the second.
          if (stored.some((entry) => entry.name === name)) throw sbError('SB_ERR_UPLOAD_INVALID', `two file parts are named "${name}"`);
        } catch (err) {
          part.file.resume();
          throw err;
        }
        // Streamed part by part into a chunked put: each file appears whole or not at all.
        const entry = await upstream.upload(name, part.file, limits.maxUploadBytes);
        stored.push(entry);
        request.log.info({ user: session.username, file: name, size: entry.size }, 'file uploaded');
      }
    } catch (err) {
      // Files already stored stay: each one is complete and verified, and deleting one that replaced
      // an older file of the same name would lose both versions. The error lists them.
      const mapped = mapMultipartError(err, limits.maxUploadFiles, limits.maxUploadBytes);
      if (stored.length === 0 || !isSockbridgeError(mapped)) throw mapped;
      const body: UploadFailure = { error: mapped.toJSON(), files: stored };
      return reply.code(mapped.status).send(body);
    }
    if (stored.length === 0) throw sbError('SB_ERR_UPLOAD_INVALID', 'no file part');
    const body: UploadResult = { files: stored };
    return reply.code(201).send(body);
  });

  app.get<{ Params: { name: string } }>('/api/files/:name', { schema: nameParams }, async (request, reply) => {
    requireSession(request);
    const name = validateFileName(request.params.name);
    const client = await upstream.connect();
    try {
      const info = await fileInfo(client, name);
      const etag = etagOf(info.sha256);
      reply.header('etag', etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache');
      if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) {
        void client.close();
        return reply.code(304).send();
      }
      // If-Range (RFC 9110 §13.1.5): a Range for another version of the file gets the whole file.
      const ifRange = request.headers['if-range'];
      const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, info.size);
      if (range === 'unsatisfiable') {
        reply.header('content-range', `bytes */${info.size}`);
        throw sbError('SB_ERR_RANGE_NOT_SATISFIABLE', JSON.stringify(request.headers.range ?? ''), info.size);
      }
      const start = range?.start ?? 0;
      const length = range ? range.end - range.start + 1 : info.size;
      const { stream } = await client.get(name, { offset: start });
      const body = range && range.end < info.size - 1 ? take(stream, length) : stream;
      body.once('close', () => void client.close());
      reply
        .code(range ? 206 : 200)
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', contentDisposition(name))
        .header('content-length', String(length));
      if (range) reply.header('content-range', `bytes ${range.start}-${range.end}/${info.size}`);
      return reply.send(body);
    } catch (err) {
      void client.close();
      throw err;
    }
  });

  // PUT /api/files/:name with the raw bytes as the body (`curl -T FILE`): the declared Content-Length
  // is the file's size, so the body streams straight to the files service: no spool, no buffering.
  // The parser hands over the unread request stream; Fastify's bodyLimit does not apply, the upload
  // limit does (checked against Content-Length before a byte is read).
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  app.put<{ Params: { name: string } }>('/api/files/:name', { schema: nameParams }, async (request, reply) => {
    const session = requireSession(request);
    const name = validateFileName(request.params.name);
    const declared = request.headers['content-length'];
    if (declared === undefined || !/^\d+$/.test(declared)) {
      throw sbError('SB_ERR_UPLOAD_INVALID', 'send the file with a Content-Length (or use multipart POST /api/files)');
    }
    const size = Number(declared);
    if (size > limits.maxUploadBytes) throw sbError('SB_ERR_FILE_TOO_LARGE', size, limits.maxUploadBytes);
    const body = request.body as Readable | undefined;
    if (!body || typeof body.pipe !== 'function') throw sbError('SB_ERR_UPLOAD_INVALID', 'send Content-Type: application/octet-stream');
    const stored = await upstream.with((client) => client.put(name, body, size, { resumable: false }));
    const entry: FileEntry = { ...stored, size };
    request.log.info({ user: session.username, file: name, size }, 'file uploaded');
    return reply.code(201).send({ files: [entry] } satisfies UploadResult);
  });

  app.delete<{ Params: { name: string } }>('/api/files/:name', { schema: nameParams }, async (request, reply) => {
    const session = requireSession(request);
    const name = validateFileName(request.params.name);
    await upstream.with((client) => client.delete(name));
    request.log.info({ user: session.username, file: name }, 'file deleted');
    return reply.code(204).send();
  });
}

/**
 * Size and hash of a stored file, from one stat (the entry travels as `total`, not the frame's
 * `size`, see toWireEntry, so it always arrives with exists: true).
 */
async function fileInfo(client: FilesClient, name: string): Promise<FileEntry> {
  const info = await client.stat(name);
  if (!info.exists) throw sbError('SB_ERR_FILE_NOT_FOUND', JSON.stringify(name));
  return info;
}

function mapMultipartError(err: unknown, maxFiles: number, maxBytes: number): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') return sbError('SB_ERR_UPLOAD_TOO_MANY_PARTS', maxFiles);
  if (code === 'FST_REQ_FILE_TOO_LARGE') return sbError('SB_ERR_FILE_TOO_LARGE', `more than ${maxBytes}`, maxBytes);
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || code === 'FST_PROTO_VIOLATION') return sbError('SB_ERR_UPLOAD_INVALID', code);
  return err;
}
