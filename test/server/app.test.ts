import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, login, ORIGIN, testGateway } from './app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const json = (username: string, password: string) => ({ username, password });

describe('buildApp: accounts and sessions', () => {
  it('logs in with a hardened cookie, reports me, logs out', async () => {
    const { app } = await testGateway();
    const bad = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'nope-nope') });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.code).toBe('SB_ERR_AUTH_FAILED');
    const unknown = await app.inject({ method: 'POST', url: '/api/login', payload: json('nobody', 'nope-nope') });
    expect(unknown.json().error.code).toBe('SB_ERR_AUTH_FAILED');

    const res = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'alice-password') });
    expect(res.statusCode).toBe(200);
    const cookie = res.cookies.find((c) => c.name === 'sb_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Strict');
    expect(cookie.path).toBe('/');
    expect(cookie.secure).toBeFalsy();
    expect(Buffer.from(cookie.value, 'base64url')).toHaveLength(32);

    const me = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie.value } });
    expect(me.json()).toMatchObject({ username: 'alice', role: 'user' });
    const out = await app.inject({ method: 'POST', url: '/api/logout', cookies: { sb_session: cookie.value } });
    expect(out.statusCode).toBe(204);
    const after = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie.value } });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('SB_ERR_AUTH_REQUIRED');
  });

  it('marks the cookie Secure when secureCookies is set', async () => {
    const { app } = await testGateway({ extra: { secureCookies: true } });
    const res = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'alice-password') });
    expect(res.cookies.find((c) => c.name === 'sb_session')!.secure).toBe(true);
  });

  it('rate-limits logins per client address and ignores X-Forwarded-For without trustProxy', async () => {
    const { app } = await testGateway({ extra: { limits: { loginAttemptsPerMinute: 3 } } });
    // a different name each time, so only the per-address budget can be what runs out
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url: '/api/login', payload: json(`guess${i}`, 'wrong-pass'), headers: { 'x-forwarded-for': `10.0.0.${i}` } });
      expect(res.statusCode).toBe(401);
    }
    const limited = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'alice-password'), headers: { 'x-forwarded-for': '10.9.9.9' } });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('SB_ERR_RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // another client address has its own budget
    const other = await app.inject({ method: 'POST', url: '/api/login', payload: json('root', 'root-password'), remoteAddress: '127.0.0.2' });
    expect(other.statusCode).toBe(200);
  });

  it('with trustProxy, keys the limit on the forwarded client address', async () => {
    const { app } = await testGateway({ extra: { trustProxy: true, limits: { loginAttemptsPerMinute: 1 } } });
    const first = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'wrong-pass'), headers: { 'x-forwarded-for': '10.0.0.1' } });
    expect(first.statusCode).toBe(401);
    const sameClient = await app.inject({ method: 'POST', url: '/api/login', payload: json('root', 'wrong-pass'), headers: { 'x-forwarded-for': '10.0.0.1' } });
    expect(sameClient.statusCode).toBe(429);
    const otherClient = await app.inject({ method: 'POST', url: '/api/login', payload: json('root', 'root-password'), headers: { 'x-forwarded-for': '10.0.0.2' } });
    expect(otherClient.statusCode).toBe(200);
  });

  // audit M3: a proxy appends the address it saw to the client's own X-Forwarded-For, so the leftmost
  // entries are the client's to choose; Fastify's `trustProxy: true` took the leftmost.
  const spoofedGuesses = async (trustProxy: unknown, remoteAddress: string) => {
    const { app } = await testGateway({ extra: { trustProxy, limits: { loginAttemptsPerMinute: 3 } } });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/login',
        remoteAddress,
        // a different account each time, so only the per-address budget is at work
        payload: json(`guess${i}`, 'wrong-pass'),
        headers: { 'x-forwarded-for': `10.9.${i}.1, 203.0.113.7` },
      });
      codes.push(res.statusCode);
    }
    return { codes };
  };

  it('trustProxy: true trusts one hop: a spoofed leftmost X-Forwarded-For does not give a fresh budget', async () => {
    expect((await spoofedGuesses(true, '127.0.0.1')).codes).toEqual([401, 401, 401, 429, 429]);
  });

  it('trustProxy as a list of proxies: the client is the nearest untrusted address; a non-proxy peer is the client itself', async () => {
    expect((await spoofedGuesses(['127.0.0.1'], '127.0.0.1')).codes).toEqual([401, 401, 401, 429, 429]);
    // two proxies listed (the second by CIDR): the client is the entry before 203.0.113.7, a new one each time
    expect((await spoofedGuesses(['127.0.0.0/8', '203.0.113.0/24'], '127.0.0.1')).codes).toEqual([401, 401, 401, 401, 401]);
    // a peer that is not a listed proxy cannot forward anything
    const direct = await spoofedGuesses(['192.0.2.1'], '127.0.0.1');
    expect(direct.codes).toEqual([401, 401, 401, 429, 429]);
  });

  it('a trustProxy entry that is not an address or CIDR fails at start-up with SB_ERR_CONFIG_INVALID', async () => {
    for (const bad of [['nginx.local'], ['10.0.0.0/33'], ['1.2.3.4/8/1']]) {
      await expect(testGateway({ extra: { trustProxy: bad } })).rejects.toMatchObject({ code: 'SB_ERR_CONFIG_INVALID', message: expect.stringContaining('trustProxy') });
    }
  });

  it('limits login attempts per username too, whatever the address (audit M3: rotating addresses)', async () => {
    const { app } = await testGateway({ extra: { limits: { loginAttemptsPerMinute: 3 } } });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      // case differs too: usernames are case-insensitive, and so is their budget
      const username = i % 2 === 0 ? 'root' : 'ROOT';
      const res = await app.inject({ method: 'POST', url: '/api/login', remoteAddress: `127.0.1.${i}`, payload: json(username, 'wrong-pass') });
      codes.push(res.statusCode);
    }
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    const right = await app.inject({ method: 'POST', url: '/api/login', remoteAddress: '127.0.2.1', payload: json('root', 'root-password') });
    expect(right.statusCode).toBe(429);
    expect(right.json().error.code).toBe('SB_ERR_RATE_LIMITED');
    // bounded: the refusal lasts at most the rest of the one-minute window
    const retryAfter = Number(right.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // other accounts are not affected
    const alice = await app.inject({ method: 'POST', url: '/api/login', remoteAddress: '127.0.2.2', payload: json('alice', 'alice-password') });
    expect(alice.statusCode).toBe(200);
  });

  it('answers schema violations with 400 SB_ERR_BAD_REQUEST', async () => {
    const { app } = await testGateway();
    for (const payload of [{ username: 'alice' }, { username: 'alice', password: 'x', extra: 1 }, { username: 5, password: {} }]) {
      const res = await app.inject({ method: 'POST', url: '/api/login', payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('SB_ERR_BAD_REQUEST');
    }
    const huge = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'alice', password: 'x'.repeat(20_000) } });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('SB_ERR_MESSAGE_TOO_LARGE');
    const notJson = await app.inject({ method: 'POST', url: '/api/login', payload: '{"username":', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.code).toBe('SB_ERR_BAD_REQUEST');
  });

  it('sends security headers and JSON 404s for unknown API routes', async () => {
    const { app } = await testGateway();
    const res = await app.inject({ method: 'GET', url: '/api/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('SB_ERR_ROUTE_NOT_FOUND');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('without a built web client, / says to run npm run build', async () => {
    const { app } = await testGateway();
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('npm run build');
  });

  it('serves the web client with an SPA fallback to index.html', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { tempDir } = await import('../helpers/tmp.js');
    const web = await tempDir();
    await mkdir(`${web}/assets`);
    await writeFile(`${web}/index.html`, '<!doctype html><title>sb</title>');
    await writeFile(`${web}/assets/app.js`, 'console.log(1)');
    const { app } = await testGateway({ extra: { webRoot: web } });
    expect((await app.inject({ method: 'GET', url: '/' })).body).toContain('<title>sb</title>');
    expect((await app.inject({ method: 'GET', url: '/assets/app.js' })).body).toBe('console.log(1)');
    const deep = await app.inject({ method: 'GET', url: '/files/some/view', headers: { accept: 'text/html' } });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toContain('<title>sb</title>');
    const api = await app.inject({ method: 'GET', url: '/api/unknown', headers: { accept: 'text/html' } });
    expect(api.statusCode).toBe(404);
  });

  it('reports health without a login', async () => {
    const { app } = await testGateway();
    app.health.markUp('chat');
    app.health.markDown('exec', 'ECONNREFUSED');
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    const body = res.json();
    expect(body.services.chat.status).toBe('up');
    expect(body.services.exec).toMatchObject({ status: 'down', reason: 'ECONNREFUSED' });
    expect(Object.keys(body.services).sort()).toEqual(['chat', 'exec', 'files', 'time']);
  });

  it('logs out with a matching Origin and refuses a cross-site one (CSRF)', async () => {
    const { app } = await testGateway();
    const cookie = await login(app);
    const evil = await app.inject({ method: 'POST', url: '/api/logout', headers: { origin: 'http://evil.example' }, cookies: { sb_session: cookie } });
    expect(evil.statusCode).toBe(403);
    expect(evil.json().error.code).toBe('SB_ERR_ORIGIN_REJECTED');
    expect((await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie } })).statusCode).toBe(200);
    // no Origin: a body type an HTML form can send is refused, JSON (which forms cannot send) is not
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const form = await app.inject({ method: 'POST', url: '/api/login', payload: '{"username":"alice","password":"alice-password"}', headers: { 'content-type': type } });
      expect({ type, status: form.statusCode }).toEqual({ type, status: 403 });
    }
    const nullOrigin = await app.inject({ method: 'POST', url: '/api/login', payload: json('alice', 'alice-password'), headers: { origin: 'null' } });
    expect(nullOrigin.statusCode).toBe(403);
    const ok = await app.inject({ method: 'POST', url: '/api/logout', headers: { origin: ORIGIN }, cookies: { sb_session: cookie } });
    expect(ok.statusCode).toBe(204);
  });

  it('applies account changes made by another process at once: removal logs out, a role change applies', async () => {
    const { app } = await testGateway();
    const alice = await login(app, 'alice');
    const root = await login(app, 'root');
    app.users.setRole('alice', 'admin');
    expect((await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: alice } })).json()).toMatchObject({ username: 'alice', role: 'admin' });
    app.users.remove('root');
    const gone = await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: root } });
    expect(gone.statusCode).toBe(401);
    expect(app.sessions.get(root)).toBeNull();
  });
});
