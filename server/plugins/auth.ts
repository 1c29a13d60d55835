// Authentication for HTTP and WebSocket routes. The session id lives in the httpOnly cookie
// `sb_session` (SameSite=Strict, Path=/, Secure when `secureCookies`): page scripts cannot read it and
// cross-site requests do not carry it. onRequest resolves it to request.session; wsGuard() refuses an
// upgrade with 401/403 before any 101 is sent; liveSockets closes a session's open sockets with 1008
// (RFC 6455 §7.4.1 policy violation) the moment it logs out, expires or is revoked.

import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, preValidationAsyncHookHandler } from 'fastify';
import type { WebSocket } from 'ws';
import { sbError, WS_CLOSE } from '../../protocol/errors.js';
import type { Role, ServiceName } from '../../protocol/api.js';
import type { GatewayOptions } from '../gateway-options.js';
import type { Session, SessionStore } from '../accounts/session-store.js';
import type { UserStore } from '../accounts/user-store.js';
import type { HealthRegistry } from '../upstream/health-registry.js';
import { isAllowedOrigin } from './origin.js';

export type { Session } from '../accounts/session-store.js';

export const SESSION_COOKIE = 'sb_session';

declare module 'fastify' {
  interface FastifyRequest {
    /** from the httpOnly cookie `sb_session`; null when absent, unknown or expired */
    session: Session | null;
  }
  interface FastifyInstance {
    /** preValidation hook for WebSocket routes: 401 without a session, 403 for a wrong role or a bad Origin — before any 101 */
    wsGuard(opts?: { role?: Role }): preValidationAsyncHookHandler;
    /**
     * open sockets of a session: closed with 1008 when it logs out or expires. Logs the socket's
     * connect and disconnect lines, with address and Origin when given the request.
     */
    liveSockets: { add(sessionId: string, ws: WebSocket, request?: FastifyRequest): void };
    /** backend health, shown by GET /api/health */
    health: { markUp(service: ServiceName): void; markDown(service: ServiceName, reason: string): void };
    /** the validated options */
    gatewayOptions: GatewayOptions;
    /** login sessions (in memory) */
    sessions: SessionStore;
    /** accounts (DATA/users.sqlite) */
    users: UserStore;
    /** the full health registry behind `health` */
    healthRegistry: HealthRegistry;
  }
}

const ROLE_RANK: Record<Role, number> = { user: 0, admin: 1 };

export function sessionCookieOptions(options: GatewayOptions, maxAgeSeconds?: number) {
  return {
    httpOnly: true,
    sameSite: 'strict' as const,
    path: '/',
    secure: options.secureCookies,
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  };
}

export function setSessionCookie(reply: FastifyReply, session: Session, options: GatewayOptions): void {
  const maxAge = Math.max(1, Math.floor((session.expiresAt - Date.now()) / 1000));
  reply.setCookie(SESSION_COOKIE, session.id, sessionCookieOptions(options, maxAge));
}

export function clearSessionCookie(reply: FastifyReply, options: GatewayOptions): void {
  reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(options));
}

/** Throws 401 without a session, 403 when the session's role is below `role`. */
export function requireSession(request: FastifyRequest, role: Role = 'user'): Session {
  const session = request.session;
  if (!session) throw sbError('SB_ERR_AUTH_REQUIRED');
  if (ROLE_RANK[session.role] < ROLE_RANK[role]) throw sbError('SB_ERR_FORBIDDEN', `this needs the ${role} role`);
  return session;
}

/** Who a socket or upgrade belongs to, for the connect, disconnect and refusal log lines. */
export function socketPeer(request: FastifyRequest): { user: string | undefined; remote: string; origin: string | undefined } {
  return { user: request.session?.username, remote: request.ip, origin: request.headers.origin };
}

/** Tracks open WebSockets per session and per user; closes them when their session ends. */
export class LiveSockets {
  private readonly bySession = new Map<string, Set<WebSocket>>();
  private readonly perUser = new Map<string, number>();

  constructor(
    private readonly sessions: SessionStore,
    private readonly log: FastifyBaseLogger,
  ) {
    sessions.onEnd((session, why) => this.closeSession(session.id, why === 'expired' ? 'session expired' : 'logged out'));
  }

  /**
   * Registers an open socket with its session and logs its connect and disconnect lines. With the
   * request, both lines say who and from where (user, address, Origin, path; never contents, cookies
   * or the client's close reason, which is text it chose).
   */
  add(sessionId: string, ws: WebSocket, request?: FastifyRequest): void {
    const session = this.sessions.get(sessionId);
    const log = request?.log ?? this.log;
    const who = request ? { ...socketPeer(request), user: session?.username, url: request.url } : { user: session?.username };
    if (!session) {
      log.info({ ...who, code: 'SB_ERR_AUTH_REQUIRED' }, 'websocket refused');
      ws.close(WS_CLOSE.POLICY_VIOLATION, 'session ended');
      return;
    }
    let set = this.bySession.get(sessionId);
    if (!set) this.bySession.set(sessionId, (set = new Set()));
    set.add(ws);
    this.perUser.set(session.username, (this.perUser.get(session.username) ?? 0) + 1);
    log.info({ ...who, sockets: set.size }, 'websocket connected');
    ws.once('close', (code: number) => {
      log.info({ ...who, code }, 'websocket disconnected');
      set.delete(ws);
      if (set.size === 0 && this.bySession.get(sessionId) === set) this.bySession.delete(sessionId);
      const left = (this.perUser.get(session.username) ?? 1) - 1;
      if (left <= 0) this.perUser.delete(session.username);
      else this.perUser.set(session.username, left);
    });
  }

  countForUser(username: string): number {
    return this.perUser.get(username) ?? 0;
  }

  closeSession(sessionId: string, reason: string, code: number = WS_CLOSE.POLICY_VIOLATION): void {
    const set = this.bySession.get(sessionId);
    if (!set) return;
    this.bySession.delete(sessionId);
    for (const ws of set) ws.close(code, reason);
  }

  /** Shutdown: 1001 "going away" (RFC 6455 §7.4.1), so clients know to reconnect later. */
  closeAll(): void {
    for (const id of [...this.bySession.keys()]) this.closeSession(id, 'server shutting down', WS_CLOSE.GOING_AWAY);
  }
}

export function registerAuth(app: FastifyInstance, deps: { sessions: SessionStore; users: UserStore; liveSockets: LiveSockets }): void {
  const options = app.gatewayOptions;
  app.decorateRequest('session', null);
  app.addHook('onRequest', async (request) => {
    const session = deps.sessions.get(request.cookies[SESSION_COOKIE]);
    // Accounts are changed by `sockbridge user …`, another process: re-read the account (one indexed
    // SQLite lookup) so a removed account is logged out at once and a changed role applies at once.
    const account = session ? deps.users.get(session.username) : null;
    if (session && !account) deps.sessions.revokeUser(session.username);
    else if (session && account && account.role !== session.role) session.role = account.role;
    request.session = account ? session : null;
  });

  app.decorate('liveSockets', {
    add: (sessionId: string, ws: WebSocket, request?: FastifyRequest) => {
      deps.liveSockets.add(sessionId, ws, request);
    },
  });

  app.decorate('wsGuard', (opts: { role?: Role } = {}): preValidationAsyncHookHandler => {
    return async function wsGuard(request: FastifyRequest) {
      const origin = request.headers.origin;
      const who = { ...socketPeer(request), url: request.url };
      try {
        // Browsers always send Origin on a WebSocket handshake (RFC 6455 §4.1); a client without one
        // is not a browser and cannot be driven by a hostile page, so only a present Origin is checked.
        if (origin !== undefined && !isAllowedOrigin(origin, request, options.origins)) {
          throw sbError('SB_ERR_ORIGIN_REJECTED', JSON.stringify(origin.slice(0, 100)));
        }
        const session = requireSession(request, opts.role ?? 'user');
        if (deps.liveSockets.countForUser(session.username) >= options.limits.maxSocketsPerUser) {
          throw sbError('SB_ERR_RATE_LIMITED', `at most ${options.limits.maxSocketsPerUser} open sockets per user`);
        }
      } catch (err) {
        request.log.info({ ...who, code: (err as { code?: string }).code }, 'websocket refused');
        throw err;
      }
      // debug: the 'websocket connected' line that follows the 101 says the same at info
      request.log.debug(who, 'websocket admitted');
    };
  });
}
