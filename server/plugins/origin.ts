// Origin checks: the defence against cross-site WebSocket hijacking and CSRF (RFC 6454 origins,
// RFC 6455 §10.2). An Origin is allowed when it equals, as a whole serialized origin (scheme, host,
// port), the gateway's own origin as seen in this request (Host header + the request's scheme), or one
// of `options.origins`. Comparing whole origins (never prefixes or suffixes) rejects look-alikes such as
// `http://127.0.0.1:8080.evil.com`, scheme downgrades (`http://` for an `https://` gateway) and other
// ports; the opaque origin `null` (sandboxed frames, file://) is never allowed.
//
// State-changing HTTP requests (POST, PUT, PATCH, DELETE) must carry an allowed Origin; browsers send
// one on every such request. Without an Origin header (curl, scripts) the request is accepted only
// when its body is not one an HTML form can send (application/x-www-form-urlencoded, multipart/form-data,
// text/plain): a cross-site form can then never reach us without an Origin we would check.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sbError } from '../../protocol/errors.js';

/** `scheme://host[:port]` in canonical form, or null when the text is not a tuple origin. */
export function canonicalOrigin(text: string): string | null {
  if (text === 'null') return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return null;
  return url.origin;
}

/** The gateway's own origin for this request: its scheme (https behind a trusted proxy) and Host. */
export function ownOrigin(request: Pick<FastifyRequest, 'protocol' | 'headers'>): string | null {
  const host = request.headers.host;
  if (!host) return null;
  return canonicalOrigin(`${request.protocol}://${host}`);
}

export function isAllowedOrigin(origin: string, request: Pick<FastifyRequest, 'protocol' | 'headers'>, extra: readonly string[]): boolean {
  const candidate = canonicalOrigin(origin);
  if (candidate === null) return false;
  if (candidate === ownOrigin(request)) return true;
  return extra.some((allowed) => canonicalOrigin(allowed) === candidate);
}

const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'];
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Throws SB_ERR_ORIGIN_REJECTED unless a state-changing request is same-origin (see the header comment). */
export function checkRequestOrigin(request: FastifyRequest, extra: readonly string[]): void {
  if (!STATE_CHANGING.has(request.method)) return;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (!isAllowedOrigin(origin, request, extra)) throw sbError('SB_ERR_ORIGIN_REJECTED', foreignOriginReason(origin));
    return;
  }
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (FORM_TYPES.includes(type)) {
    throw sbError(
      'SB_ERR_ORIGIN_REJECTED',
      `a ${request.method} with a ${type} body must carry an Origin header (browsers send one; from a script, send the gateway's own origin)`,
    );
  }
}

/** The refusal's words for an Origin that is not allowed (shared with the WebSocket upgrade check). */
export function foreignOriginReason(origin: string): string {
  return `Origin ${JSON.stringify(origin.slice(0, 100))} is neither this gateway's own origin nor one of the configured "origins"`;
}

export function registerOriginCheck(app: FastifyInstance, extra: readonly string[]): void {
  app.addHook('onRequest', async (request) => {
    // WebSocket upgrades are GETs: checked by wsGuard (auth.ts), which also knows the route's role.
    try {
      checkRequestOrigin(request, extra);
    } catch (err) {
      request.log.info({ remote: request.ip, origin: request.headers.origin, url: request.url }, 'cross-origin request refused');
      throw err;
    }
  });
}
