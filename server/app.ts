// buildApp(options): the gateway as a Fastify instance, built but not listening (main listens; tests
// use inject() or listen on port 0). Every piece is registered here in order, and everything that
// holds a socket, a timer or a database is torn down in onClose.

import http from 'node:http';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
import type { Logger } from 'pino';
import { defaultLogger } from './logger.js';
import { WS_CLOSE, sbError } from '../protocol/errors.js';
import { trustProxySetting, type GatewayOptions } from './gateway-options.js';
import { AccountCheck } from './accounts/account-check.js';
import { LiveUploads } from './accounts/live-uploads.js';
import { SessionStore } from './accounts/session-store.js';
import { UserStore } from './accounts/user-store.js';
import { LiveSockets, registerAuth } from './plugins/auth.js';
import { registerErrorHandler, sendError, toSockbridgeError } from './plugins/error-handler.js';
import { registerOriginCheck } from './plugins/origin.js';
import { registerSecurityHeaders } from './plugins/security-headers.js';
import { websocketErrorHandler } from './plugins/ws-errors.js';
import { defaultWebRoot, registerWebStatic } from './plugins/web-static.js';
import { HealthRegistry } from './upstream/health-registry.js';
import { HealthMonitor } from './upstream/health-monitor.js';
import { apiAuthRoutes } from './routes/api-auth.js';
import { apiFilesRoutes } from './routes/api-files.js';
import { apiHealthRoutes } from './routes/api-health.js';
import { wsChatRoutes } from './routes/ws-chat.js';
import { wsExecRoutes } from './routes/ws-exec.js';
import { wsRawRoutes } from './routes/ws-raw.js';
import { wsTimeRoutes } from './routes/ws-time.js';

export interface AppDeps {
  logger?: Logger;
  /** start the background health probes (default true; tests of single routes may turn them off) */
  probeHealth?: boolean;
}

export async function buildApp(options: GatewayOptions, deps: AppDeps = {}): Promise<FastifyInstance> {
  const limits = options.limits;
  const app = Fastify({
    loggerInstance: (deps.logger ?? defaultLogger()) as FastifyBaseLogger,
    trustProxy: trustProxySetting(options.trustProxy),
    // Node's own slow-client defences (slowloris): the whole header block within headersTimeout, the
    // whole request within requestTimeout; checked every second rather than Node's default 30 s.
    serverFactory: (handler) =>
      http.createServer(
        {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
          connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
          maxHeaderSize: limits.maxHeaderBytes,
        },
        handler,
      ),
    bodyLimit: 64 * 1024,
    // A file name may be 255 UTF-8 bytes, up to 765 characters once percent-encoded in
    // /api/files/:name; the router's default (100) answered 414 for valid names.
    routerOptions: { maxParamLength: 1024 },
    // Errors the router raises before any route runs (a malformed or over-long URL) answer in our
    // format too, `{error:{code,message}}`, not Fastify's own.
    frameworkErrors: (err, _request, reply) => sendError(reply, toSockbridgeError(err) ?? sbError('SB_ERR_BAD_REQUEST', err.message)),
    // Strict input: an unknown key or a wrong type is a 400, never silently dropped or coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.decorate('gatewayOptions', options);
  const users = new UserStore(join(options.data, 'users.sqlite'));
  const sessions = new SessionStore({ ttlMs: options.sessionTtlMs });
  const liveSockets = new LiveSockets(sessions, app.log);
  const liveUploads = new LiveUploads(sessions);
  const accountCheck = new AccountCheck(users, sessions, app.log, (session) => {
    liveSockets.applyRole(session.id, session.role);
    liveUploads.applyRole(session.id, session.role);
  });
  const healthRegistry = new HealthRegistry();
  app.decorate('users', users);
  app.decorate('sessions', sessions);
  app.decorate('liveUploads', liveUploads);
  app.decorate('accountCheck', accountCheck);
  app.decorate('healthRegistry', healthRegistry);
  app.decorate('health', {
    markUp: (service) => healthRegistry.markUp(service),
    markDown: (service, reason) => healthRegistry.markDown(service, reason),
  });

  registerErrorHandler(app);
  registerSecurityHeaders(app);
  await app.register(fastifyCookie);
  registerAuth(app, { sessions, accountCheck, liveSockets });
  registerOriginCheck(app, options.origins);

  await app.register(fastifyWebsocket, {
    // ws has one maxPayload for the whole server: the largest route limit (the raw relay's). Each
    // route enforces its own smaller limit with 1009 (ws-common.ts onBrowserMessage).
    options: { maxPayload: Math.max(limits.wsMaxMessageBytes, limits.rawMaxMessageBytes) },
    // Client protocol errors logged at info and closed with a full closing handshake (see ws-errors.ts).
    errorHandler: websocketErrorHandler,
    // Shutdown closes every socket with 1001 "going away" (RFC 6455 §7.4.1) instead of the plugin's
    // code-less close, so browsers can tell a restart from a refusal and reconnect.
    preClose(done) {
      liveSockets.closeAll();
      for (const client of app.websocketServer.clients) client.close(WS_CLOSE.GOING_AWAY, 'server shutting down');
      app.websocketServer.close();
      done();
    },
  });
  await app.register(apiHealthRoutes);
  await app.register(apiAuthRoutes);
  await app.register(apiFilesRoutes);
  await app.register(wsChatRoutes, { options });
  await app.register(wsExecRoutes, { options });
  await app.register(wsTimeRoutes, { options });
  await app.register(wsRawRoutes, { options });
  await registerWebStatic(app, options.webRoot ?? defaultWebRoot());

  const monitor = new HealthMonitor(options, healthRegistry, app.log);
  if (deps.probeHealth ?? true) app.addHook('onReady', async () => monitor.start());
  // `sockbridge user …` changes accounts from another process: sessions that make no request (an
  // open exec socket) are checked every accountCheckIntervalMs.
  app.addHook('onReady', async () => accountCheck.start(options.accountCheckIntervalMs));
  app.addHook('onClose', async () => {
    accountCheck.stop();
    monitor.stop();
    sessions.close();
    users.close();
  });
  return app;
}
