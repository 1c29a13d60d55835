// Authentication for HTTP and WebSocket routes. The session id lives in the httpOnly cookie
// `sb_session` (SameSite=Strict, Path=/, Secure when `secureCookies`): page scripts cannot read it and
// cross-site requests do not carry it. onRequest resolves it to request.session, checked against the
// account as it is now (accounts/account-check.ts); wsGuard() refuses an upgrade with 401/403 before any
// 101 is sent; liveSockets closes a session's open sockets with 1008 (RFC 6455 §7.4.1 policy violation)
// the moment it logs out, expires or is revoked, and a socket whose route needs a role the session no
// longer has the moment the role drops.
//
// The per-account socket limit (limits.maxSocketsPerUser) is the one refusal made after the 101: a
// browser sees nothing of a refused upgrade but close code 1006, which a page cannot tell from a
// gateway that is down, so an account over its limit gets the upgrade and at once a Close frame with
// 1013 and the reason SB_ERR_TOO_MANY_SOCKETS, which the page puts in words ("close other tabs").

import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, preValidationAsyncHookHandler } from 'fastify';
import type { WebSocket } from 'ws';
import { sbError, WS_CLOSE } from '../../protocol/errors.js';
import type { Role, ServiceName } from '../../protocol/api.js';
import type { GatewayOptions } from '../gateway-options.js';
import type { Session, SessionEndReason, SessionStore } from '../accounts/session-store.js';
import type { AccountCheck } from '../accounts/account-check.js';
import type { LiveUploads } from '../accounts/live-uploads.js';
import { roleAllows, type UserStore } from '../accounts/user-store.js';
import type { HealthRegistry } from '../upstream/health-registry.js';
import { foreignOriginReason, isAllowedOrigin } from './origin.js';
import { closeWithGrace } from './ws-close.js';

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
     * connect and disconnect lines, with address and Origin when given the request. False when the
     * socket was refused and is closing (no session, or the account is at limits.maxSocketsPerUser).
     */
    liveSockets: { add(sessionId: string, ws: WebSocket, request?: FastifyRequest): boolean };
    /** backend health, shown by GET /api/health */
    health: { markUp(service: ServiceName): void; markDown(service: ServiceName, reason: string): void };
    /** the validated options */
    gatewayOptions: GatewayOptions;
    /** login sessions (in memory) */
    sessions: SessionStore;
    /** accounts (DATA/users.sqlite) */
    users: UserStore;
    /** uploads in flight per session: aborted when the session ends or its role drops */
    liveUploads: LiveUploads;
    /** re-checks sessions against their accounts (removed, new password, role changed) */
    accountCheck: AccountCheck;
    /** the full health registry behind `health` */
    healthRegistry: HealthRegistry;
  }
}


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
  if (!roleAllows(session.role, role)) throw sbError('SB_ERR_FORBIDDEN', `this needs the ${role} role`);
  return session;
}


const END_REASONS: Record<SessionEndReason, string> = { logout: 'logged out', expired: 'session expired', revoked: 'account changed' };

const endingHooks = new WeakMap<WebSocket, Set<() => void>>();

/**
 * Runs `hook` the moment the gateway ends `ws` for a session reason (endSocket), before the peer has
 * answered the Close frame: what the socket drives upstream (a backend link) stops at once.
 */
export function onSocketEnding(ws: WebSocket, hook: () => void): void {
  let hooks = endingHooks.get(ws);
  if (!hooks) endingHooks.set(ws, (hooks = new Set()));
  hooks.add(hook);
  ws.once('close', () => hooks.delete(hook));
}

/**
 * Ends a socket whose session (or role) no longer allows it: its upstream stops now, a Close frame
 * is sent, and the connection is destroyed if the peer has not completed the close after CLOSE_GRACE_MS.
 */
export function endSocket(ws: WebSocket, code: number, reason: string): void {
  const hooks = endingHooks.get(ws);
  endingHooks.delete(ws);
  for (const hook of hooks ?? []) hook();
  closeWithGrace(ws, code, reason);
}

/** The role each guarded upgrade needed (set by wsGuard), so liveSockets knows what a socket needs. */
const guardedRole = new WeakMap<FastifyRequest, Role>();

/** Who a socket or upgrade belongs to, for the connect, disconnect and refusal log lines. */
export function socketPeer(request: FastifyRequest): { user: string | undefined; remote: string; origin: string | undefined } {
  return { user: request.session?.username, remote: request.ip, origin: request.headers.origin };
}

/**
 * Tracks open WebSockets per session (with the role each one's route needed) and per user; closes them
 * when their session ends or its role drops below what they need.
 */
export class LiveSockets {
  private readonly bySession = new Map<string, Map<WebSocket, Role>>();
  private readonly perUser = new Map<string, number>();

  constructor(
    private readonly sessions: SessionStore,
    private readonly log: FastifyBaseLogger,
  ) {
    sessions.onEnd((session, why) => this.closeSession(session.id, END_REASONS[why]));
  }

  /**
   * Registers an open socket with its session and logs its connect and disconnect lines. With the
   * request, both lines say who and from where (user, address, Origin, path; never contents, cookies
   * or the client's close reason, which is text it chose). The role the socket needs is what wsGuard
   * checked for the request (`user` without one). An account that already has `maxPerUser` open
   * sockets gets this one closed at once with SB_ERR_TOO_MANY_SOCKETS (1013) and false; counting here,
   * where the socket is registered in the same tick, keeps concurrent upgrades from overshooting.
   */
  add(sessionId: string, ws: WebSocket, request?: FastifyRequest, maxPerUser = Infinity): boolean {
    const session = this.sessions.get(sessionId);
    const log = request?.log ?? this.log;
    const who = request ? { ...socketPeer(request), user: session?.username, url: request.url } : { user: session?.username };
    if (!session) {
      log.info({ ...who, code: 'SB_ERR_AUTH_REQUIRED' }, 'websocket refused');
      ws.close(WS_CLOSE.POLICY_VIOLATION, 'session ended');
      return false;
    }
    if (this.countForUser(session.username) >= maxPerUser) {
      const err = sbError('SB_ERR_TOO_MANY_SOCKETS', session.username, maxPerUser);
      log.info({ ...who, code: err.code, sockets: this.countForUser(session.username) }, 'websocket refused');
      // The reason is the code alone: short (RFC 6455 §5.5 allows 123 bytes), stable, and no text of
      // another protocol on a /ws/raw socket, which carries binary only.
      closeWithGrace(ws, err.wsClose, err.code);
      return false;
    }
    let set = this.bySession.get(sessionId);
    if (!set) this.bySession.set(sessionId, (set = new Map()));
    set.set(ws, (request && guardedRole.get(request)) ?? 'user');
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
    return true;
  }

  countForUser(username: string): number {
    return this.perUser.get(username) ?? 0;
  }

  closeSession(sessionId: string, reason: string, code: number = WS_CLOSE.POLICY_VIOLATION): void {
    const set = this.bySession.get(sessionId);
    if (!set) return;
    this.bySession.delete(sessionId);
    for (const ws of set.keys()) endSocket(ws, code, reason);
  }

  /** The session's role is now `role`: its sockets whose route needs more are closed with 1008. */
  applyRole(sessionId: string, role: Role): void {
    for (const [ws, needed] of this.bySession.get(sessionId) ?? []) {
      if (!roleAllows(role, needed)) endSocket(ws, WS_CLOSE.POLICY_VIOLATION, `needs the ${needed} role`);
    }
  }

  /** Shutdown: 1001 "going away" (RFC 6455 §7.4.1), so clients know to reconnect later. */
  closeAll(): void {
    for (const id of [...this.bySession.keys()]) this.closeSession(id, 'server shutting down', WS_CLOSE.GOING_AWAY);
  }
}

export function registerAuth(app: FastifyInstance, deps: { sessions: SessionStore; accountCheck: AccountCheck; liveSockets: LiveSockets }): void {
  const options = app.gatewayOptions;
  app.decorateRequest('session', null);
  app.addHook('onRequest', async (request) => {
    const session = deps.sessions.get(request.cookies[SESSION_COOKIE]);
    // Accounts are changed by `sockbridge user …`, another process: re-read the account (one indexed
    // SQLite lookup) so a removed account or a new password logs out at once and a role change applies
    // at once. The periodic check (app.ts) does the same for sessions that make no request.
    request.session = session ? deps.accountCheck.check(session) : null;
  });

  app.decorate('liveSockets', {
    add: (sessionId: string, ws: WebSocket, request?: FastifyRequest) => deps.liveSockets.add(sessionId, ws, request, options.limits.maxSocketsPerUser),
  });

  app.decorate('wsGuard', (opts: { role?: Role } = {}): preValidationAsyncHookHandler => {
    return async function wsGuard(request: FastifyRequest) {
      const origin = request.headers.origin;
      const who = { ...socketPeer(request), url: request.url };
      try {
        // Browsers always send Origin on a WebSocket handshake (RFC 6455 §4.1); a client without one
        // is not a browser and cannot be driven by a hostile page, so only a present Origin is checked.
        if (origin !== undefined && !isAllowedOrigin(origin, request, options.origins)) {
          throw sbError('SB_ERR_ORIGIN_REJECTED', foreignOriginReason(origin));
        }
        requireSession(request, opts.role ?? 'user');
        guardedRole.set(request, opts.role ?? 'user');
        // The socket limit is checked after the 101, by liveSockets.add (see the header comment).
      } catch (err) {
        request.log.info({ ...who, code: (err as { code?: string }).code }, 'websocket refused');
        throw err;
      }
      // debug: the 'websocket connected' line that follows the 101 says the same at info
      request.log.debug(who, 'websocket admitted');
    };
  });
}
