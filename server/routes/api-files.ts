// Files over HTTP (docs/api.md): list, multipart upload (several files per request), streamed
// download with Range/ETag, delete. Every route needs a session; names are checked by the files
// service's own validateFileName before anything is sent upstream, so `..`, separators and NUL get a
// 400 here and never reach the service. Uploads and deletes name the session's account as their
// actor: the files service decides, with the rename or unlink itself, whether it owns the file
// (SB_ERR_FILE_NOT_OWNER, 403), so no check here could race with it. That actor is sent before the
// body, so an upload is registered with its session (accounts/live-uploads.ts) and aborted when the
// session ends or its role drops: the files service then discards it, and publishes nothing.

import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyMultipart from '@fastify/multipart';
import { isSockbridgeError, sbError } from '../../protocol/errors.js';
import type { FileEntry, FileList, UploadFailure, UploadResult } from '../../protocol/api.js';
import type { FileActor } from '../../protocol/files-messages.js';
import type { Session } from '../accounts/session-store.js';
import type { LiveUploads } from '../accounts/live-uploads.js';
import { validateFileName } from '../../backends/files/file-name.js';
import { requireSession } from '../plugins/auth.js';
import { FilesUpstream } from '../upstream/files-upstream.js';
import { bodyStart, contentDisposition, etagOf, guessBodyStart, planDownload, type DownloadRequest } from './api-files-http.js';

const nameParams = {
  params: {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 1024 } },
  },
} as const;

/**
 * Exactly `length` bytes of `source`, the announced Content-Length: extra bytes are never written
 * (on a keep-alive connection they would be read as the next response), and a source that ends or
 * fails short destroys the result, so the response is cut rather than ended as if complete.
 */
function exactly(source: Readable, length: number): Readable {
  const out = new PassThrough();
  let left = length;
  const finish = () => {
    source.off('data', onData);
    source.destroy();
  };
  const onData = (chunk: Buffer) => {
    const piece = chunk.length <= left ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!out.write(piece)) source.pause();
    if (left === 0) {
      finish();
      out.end();
    }
  };
  if (length === 0) {
    source.destroy();
    out.end();
    return out;
  }
  source.on('data', onData);
  out.on('drain', () => source.resume());
  source.on('error', (err) => out.destroy(err));
  source.on('close', () => {
    if (left > 0) out.destroy(sbError('SB_ERR_BACKEND_DOWN', 'files', `the download ended ${left} bytes short`));
  });
  out.on('close', finish);
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
    const body: FileList = { files: files.map(({ name, size, mtime, sha256, owner }) => ({ name, size, mtime, sha256, owner })) };
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
          // The name is taken as sent. Browsers send `"`, CR and LF as %22, %0D and %0A but leave `%`
          // alone (WHATWG HTML, multipart/form-data encoding algorithm; whatwg/html#7575), so undoing
          // that would turn a literal `%22` into `"`; like busboy, PHP and the browsers' own parsers, the
          // escape is left. Exact names go as PUT /api/files/:name, which the web client uses.
          name = validateFileName(part.filename);
          // Two parts with one name (`a/x.txt` and `b/x.txt` both become `x.txt`) would silently
          // replace the first with the second.
          if (stored.some((entry) => entry.name === name)) throw sbError('SB_ERR_UPLOAD_INVALID', `two file parts are named "${name}"`);
        } catch (err) {
          part.file.resume();
          throw err;
        }
        // Streamed part by part into a chunked put: each file appears whole or not at all.
        const entry = await sessionUpload(app.liveUploads, session, part.file, (body, actor) => upstream.upload(name, body, limits.maxUploadBytes, actor));
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

  // GET and HEAD: every header is derived from the entry of the version whose bytes are sent (see
  // FilesUpstream.download). A HEAD, a 304 and a 416 send no bytes, so a stat's entry is enough.
  app.route<{ Params: { name: string } }>({
    method: ['GET', 'HEAD'],
    url: '/api/files/:name',
    schema: nameParams,
    handler: async (request, reply) => {
      requireSession(request);
      const name = validateFileName(request.params.name);
      const conditions: DownloadRequest = {
        range: request.headers.range,
        // repeated, it is no single validator and matches nothing
        ifRange: [request.headers['if-range']].flat().join(', ') || undefined,
        ifNoneMatch: request.headers['if-none-match'],
      };
      const head = request.method === 'HEAD';
      const { entry, stream } = await upstream.download(
        name,
        (candidate) => (head ? null : bodyStart(planDownload(conditions, candidate))),
        head ? undefined : guessBodyStart(conditions),
      );
      // the plan the download settled on: the same function of the same entry
      const plan = planDownload(conditions, entry);
      reply.header('etag', etagOf(entry.sha256)).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache');
      if (plan.kind === 'not-modified') return reply.code(304).send();
      if (plan.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${entry.size}`);
        throw sbError('SB_ERR_RANGE_NOT_SATISFIABLE', JSON.stringify(conditions.range ?? ''), entry.size);
      }
      const [start, end] = plan.kind === 'range' ? [plan.start, plan.end] : [0, entry.size - 1];
      const length = end - start + 1;
      reply
        .code(plan.kind === 'range' ? 206 : 200)
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', contentDisposition(name))
        .header('content-length', String(length));
      if (plan.kind === 'range') reply.header('content-range', `bytes ${start}-${end}/${entry.size}`);
      return reply.send(stream ? exactly(stream, length) : undefined);
    },
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
    const entry = await sessionUpload(app.liveUploads, session, body, (bytes, actor) => upstream.with((client) => client.put(name, bytes, size, { resumable: false, actor })));
    request.log.info({ user: session.username, file: name, size: entry.size }, 'file uploaded');
    return reply.code(201).send({ files: [entry] } satisfies UploadResult);
  });

  app.delete<{ Params: { name: string } }>('/api/files/:name', { schema: nameParams }, async (request, reply) => {
    const session = requireSession(request);
    const name = validateFileName(request.params.name);
    await upstream.with((client) => client.delete(name, { actor: actorOf(session) }));
    request.log.info({ user: session.username, file: name }, 'file deleted');
    return reply.code(204).send();
  });
}

/**
 * Runs `send` on a stream of `source`'s bytes, registered as an upload of `session` and acting for
 * it. If the session ends or its role drops meanwhile, that stream fails with the reason: the files
 * client drops its connection mid-body (the service discards the non-resumable upload) and `send`
 * rejects with the reason, which the request answers. `source` itself is drained, never destroyed,
 * so the answer can still be sent.
 */
async function sessionUpload<T>(uploads: LiveUploads, session: Session, source: Readable, send: (body: Readable, actor: FileActor) => Promise<T>): Promise<T> {
  const body = new PassThrough();
  const failBody = (err: Error) => body.destroy(err);
  const letGo = () => {
    source.unpipe(body);
    if (!source.readableEnded) source.resume();
  };
  const unregister = uploads.add(session, failBody);
  // pipe() forwards neither a failure nor an end that is not one: both must fail the upload
  source.once('error', failBody);
  source.once('close', () => {
    if (!source.readableEnded) failBody(sbError('SB_ERR_UPLOAD_INVALID', 'the upload ended early'));
  });
  body.once('close', letGo);
  source.pipe(body);
  try {
    return await send(body, actorOf(session));
  } finally {
    unregister();
    letGo();
  }
}

function actorOf(session: Session): FileActor {
  return { name: session.username, admin: session.role === 'admin' };
}

function mapMultipartError(err: unknown, maxFiles: number, maxBytes: number): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') return sbError('SB_ERR_UPLOAD_TOO_MANY_PARTS', maxFiles);
  if (code === 'FST_REQ_FILE_TOO_LARGE') return sbError('SB_ERR_FILE_TOO_LARGE', `more than ${maxBytes}`, maxBytes);
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || code === 'FST_PROTO_VIOLATION') return sbError('SB_ERR_UPLOAD_INVALID', code);
  return err;
}
