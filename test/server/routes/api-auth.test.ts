// GET /api/me and the login reply tell the client its upload limits, so the page can refuse a file
// the gateway would refuse before sending any of it.
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, login, testGateway } from '../app-fixture.js';

afterEach(closeAll);

describe('GET /api/me', () => {
  it('reports the configured upload limits, in the login reply too', async () => {
    const { app } = await testGateway({ extra: { limits: { maxUploadBytes: 1234567, maxUploadFiles: 7 } } });
    const loggedIn = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'alice', password: 'alice-password' } });
    expect(loggedIn.json()).toEqual({ username: 'alice', role: 'user', limits: { maxUploadBytes: 1234567, maxUploadFiles: 7 } });
    const me = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: await login(app) } });
    expect(me.json()).toEqual({ username: 'alice', role: 'user', limits: { maxUploadBytes: 1234567, maxUploadFiles: 7 } });
  });

  it('reports the defaults when none are configured', async () => {
    const { app } = await testGateway();
    const me = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: await login(app, 'root') } });
    expect(me.json().limits).toEqual({ maxUploadBytes: 8 * 1024 ** 3, maxUploadFiles: 100 });
  });
});
