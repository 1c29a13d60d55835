// One error handler for every HTTP route: a SockbridgeError becomes `{error:{code,message}}` with its
// registry status; a Fastify schema-validation failure becomes 400 SB_ERR_BAD_REQUEST; Fastify's own
// client errors (body too large, bad content type, …) keep their 4xx status under SB_ERR_BAD_REQUEST;
// anything else is logged and answered 500 SB_ERR_INTERNAL with no internals.

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../protocol/errors.js';
import type { ApiError } from '../../protocol/api.js';

export function sendError(reply: FastifyReply, err: SockbridgeError): FastifyReply {
  const body: ApiError = { error: err.toJSON() };
  return reply.code(err.status).type('application/json; charset=utf-8').send(body);
}

export function toSockbridgeError(err: unknown, bodyLimit?: number): SockbridgeError | null {
  if (isSockbridgeError(err)) return err;
  const e = err as FastifyError & { validation?: unknown; statusCode?: number };
  if (e?.validation) return sbError('SB_ERR_BAD_REQUEST', e.message);
  if (e?.statusCode === 413) return sbError('SB_ERR_MESSAGE_TOO_LARGE', 'a request body of more than', bodyLimit ?? 'the route\'s');
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return Object.assign(sbError('SB_ERR_BAD_REQUEST', e.message), { status: e.statusCode });
  }
  return null;
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const known = toSockbridgeError(err, request.routeOptions.bodyLimit);
    if (known) {
      if (known.status >= 500) request.log.warn({ code: known.code }, known.message);
      return sendError(reply, known);
    }
    // A client that hangs up mid-request (a closed tab during an upload) is its own business, not a
    // gateway fault: logging it at error level would let any client flood the error log.
    if (request.raw.aborted || request.raw.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
      request.log.info({ remote: request.ip, url: request.url }, 'client aborted the request');
      return sendError(reply, sbError('SB_ERR_BAD_REQUEST', 'request aborted by the client'));
    }
    request.log.error({ err }, 'unhandled error');
    return sendError(reply, sbError('SB_ERR_INTERNAL', 'see the gateway log'));
  });
}
