import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../server/gateway-options.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await removeTempDirs();
});

export async function testApp(extra: Record<string, unknown> = {}) {
  const data = await tempDir();
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: { data, webRoot: `${data}/no-web`, ...extra } });
  const app = await buildApp(options, { logger: pino({ level: 'silent' }), probeHealth: false });
  apps.push(app);
  await app.users.add('alice', 'alice-password', 'user');
  await app.users.add('root', 'root-password', 'admin');
  return app;
}

describe('buildApp', () => {
  it('logs in, reports me, logs out', async () => {
    const app = await testApp();
    const bad = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'alice', password: 'nope-nope' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.code).toBe('SB_ERR_AUTH_FAILED');
    const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'alice', password: 'alice-password' } });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === 'sb_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    expect(cookie.path).toBe('/');
    const me = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie.value } });
    expect(me.json()).toEqual({ username: 'alice', role: 'user' });
    const out = await app.inject({ method: 'POST', url: '/api/logout', cookies: { sb_session: cookie.value } });
    expect(out.statusCode).toBe(204);
    const after = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie.value } });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('SB_ERR_AUTH_REQUIRED');
  });
});
