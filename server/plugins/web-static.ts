// The built web client (dist/web, or options.webRoot) with an SPA fallback: a GET for an unknown path
// outside /api and /ws that accepts HTML gets index.html, so client-side routes survive a reload.
// Without a build, `/` says how to make one instead of a bare 404.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { sbError } from '../../protocol/errors.js';
import { sendError } from './error-handler.js';

/** dist/web beside the compiled server (dist/server/plugins → dist/web), or the repo's dist/web under tsx/vitest. */
export function defaultWebRoot(): string {
  const candidates = ['../../web', '../../dist/web'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((dir) => existsSync(`${dir}/index.html`)) ?? candidates[0]!;
}

const NO_BUILD_PAGE = `<!doctype html><meta charset="utf-8"><title>sockbridge</title>
<p>The web client has not been built. Run <code>npm run build</code>, then reload.</p>`;

export async function registerWebStatic(app: FastifyInstance, webRoot: string): Promise<void> {
  const hasBuild = existsSync(`${webRoot}/index.html`);
  if (hasBuild) {
    // wildcard: files added by a rebuild while running are served too; misses fall through to the handler below
    await app.register(fastifyStatic, { root: webRoot, wildcard: true, index: ['index.html'], cacheControl: true, maxAge: 0 });
  } else {
    app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(NO_BUILD_PAGE));
  }
  app.setNotFoundHandler(async (request, reply) => {
    const isApi = request.url.startsWith('/api/') || request.url === '/api' || request.url.startsWith('/ws/');
    const wantsHtml = (request.headers.accept ?? '').includes('text/html');
    if (hasBuild && !isApi && (request.method === 'GET' || request.method === 'HEAD') && wantsHtml) {
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    }
    return sendError(reply, sbError('SB_ERR_ROUTE_NOT_FOUND', request.method, request.url.split('?')[0]!.slice(0, 200)));
  });
}
