// POST /api/login, POST /api/logout, GET /api/me (docs/api.md).

import type { FastifyInstance } from 'fastify';
import { sbError } from '../../protocol/errors.js';
import type { LoginRequest, Me } from '../../protocol/api.js';
import { MAX_PASSWORD_LENGTH } from '../accounts/user-store.js';
import { clearSessionCookie, requireSession, setSessionCookie, SESSION_COOKIE } from '../plugins/auth.js';
import { LoginLimiter } from '../plugins/login-limiter.js';

const loginSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password'],
    properties: {
      username: { type: 'string', minLength: 1, maxLength: 64 },
      password: { type: 'string', minLength: 1, maxLength: MAX_PASSWORD_LENGTH },
    },
  },
} as const;

export async function apiAuthRoutes(app: FastifyInstance): Promise<void> {
  const options = app.gatewayOptions;
  // Two budgets of loginAttemptsPerMinute: per client address, and per username, so guesses at one
  // account from many addresses (a botnet, a rotated IPv6 /64) are as slow as from one. The per-username
  // window is a minute and counts every name, existing or not (a 429 must not tell which exist): an
  // attacker can keep an account's logins refused only while it keeps spending its own attempts.
  const addressLimiter = new LoginLimiter(options.limits.loginAttemptsPerMinute);
  const usernameLimiter = new LoginLimiter(options.limits.loginAttemptsPerMinute);

  app.post<{ Body: LoginRequest }>('/api/login', { schema: loginSchema, bodyLimit: 8 * 1024 }, async (request, reply) => {
    const { username, password } = request.body;
    try {
      addressLimiter.hit(request.ip);
      // usernames are case-insensitive (COLLATE NOCASE): ADMIN and admin share a budget
      usernameLimiter.hit(username.toLowerCase());
    } catch (err) {
      reply.header('retry-after', String((err as { retryAfter?: number }).retryAfter ?? 60));
      request.log.warn({ user: username.slice(0, 64), remote: request.ip }, 'login rate limited');
      throw err;
    }
    const account = await app.users.verifyForLogin(username, password);
    if (!account) {
      request.log.info({ user: username.slice(0, 64), remote: request.ip }, 'login failed');
      throw sbError('SB_ERR_AUTH_FAILED');
    }
    // A fresh id on every login (no session fixation); the old one, if any, ends.
    const previous = request.cookies[SESSION_COOKIE];
    if (previous) app.sessions.delete(previous);
    const session = app.sessions.create(account);
    setSessionCookie(reply, session, options);
    request.log.info({ user: account.username, remote: request.ip }, 'login');
    return meOf(account);
  });

  app.post('/api/logout', async (request, reply) => {
    const session = request.session;
    if (session) {
      app.sessions.delete(session.id);
      request.log.info({ user: session.username, remote: request.ip }, 'logout');
    }
    clearSessionCookie(reply, options);
    return reply.code(204).send();
  });

  app.get('/api/me', async (request) => {
    const session = requireSession(request);
    return meOf(session);
  });

  function meOf(who: { username: string; role: Me['role'] }): Me {
    const { maxUploadBytes, maxUploadFiles } = options.limits;
    return { username: who.username, role: who.role, limits: { maxUploadBytes, maxUploadFiles } };
  }
}
