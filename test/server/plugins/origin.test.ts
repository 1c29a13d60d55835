import { afterEach, describe, expect, it } from 'vitest';
import { canonicalOrigin, isAllowedOrigin } from '../../../server/plugins/origin.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { closeAll, login, multipart, testGateway } from '../app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const req = (host: string, protocol: 'http' | 'https' = 'http') => ({ protocol, headers: { host } });

describe('origin checks', () => {
  it('canonicalizes tuple origins and rejects everything else', () => {
    expect(canonicalOrigin('HTTP://Example.COM:80')).toBe('http://example.com');
    expect(canonicalOrigin('https://a.example:443/')).toBe('https://a.example');
    for (const bad of ['null', 'file:///etc', 'ws://a', 'http://u:p@a', 'http://a/path', 'http://a?q', 'not a url', '']) {
      expect(canonicalOrigin(bad)).toBeNull();
    }
  });

  it('allows only the exact own origin or a configured one', () => {
    const r = req('127.0.0.1:8080');
    expect(isAllowedOrigin('http://127.0.0.1:8080', r, [])).toBe(true);
    for (const bad of ['http://127.0.0.1:8080.evil.com', 'http://127.0.0.1.evil.com:8080', 'https://127.0.0.1:8080', 'http://127.0.0.1:8081', 'http://127.0.0.1', 'null', 'http://localhost:8080']) {
      expect({ bad, ok: isAllowedOrigin(bad, r, []) }).toEqual({ bad, ok: false });
    }
    expect(isAllowedOrigin('http://localhost:5173', r, ['http://localhost:5173'])).toBe(true);
    expect(isAllowedOrigin('https://localhost:5173', r, ['http://localhost:5173'])).toBe(false);
  });

  it('follows the request scheme: an https gateway refuses its http origin', () => {
    expect(isAllowedOrigin('https://sb.example', req('sb.example', 'https'), [])).toBe(true);
    expect(isAllowedOrigin('http://sb.example', req('sb.example', 'https'), [])).toBe(false);
  });

  it('without a Host header nothing is its own origin', () => {
    expect(isAllowedOrigin('http://a', { protocol: 'http', headers: {} }, [])).toBe(false);
  });
});

describe('origin refusals say what is wrong in words', () => {
  it('regression: a form-type request without Origin reads as one sentence (was "origin (none): … is not allowed")', async () => {
    const { app } = await testGateway();
    const cookie = await login(app);
    const { origin: _origin, ...headers } = multipart([{ filename: 'a.txt', data: 'x' }]).headers;
    const post = await app.inject({ method: 'POST', url: '/api/files', cookies: { sb_session: cookie }, headers, payload: 'x' });
    expect(post.statusCode).toBe(403);
    expect(post.json().error).toEqual({
      code: 'SB_ERR_ORIGIN_REJECTED',
      message:
        "cross-origin request refused: a POST with a multipart/form-data body must carry an Origin header (browsers send one; from a script, send the gateway's own origin)",
    });
    const put = await app.inject({ method: 'PUT', url: '/api/files/a.txt', cookies: { sb_session: cookie }, headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect(put.statusCode).toBe(403);
    expect(put.json().error.message).toBe(
      "cross-origin request refused: a PUT with a text/plain body must carry an Origin header (browsers send one; from a script, send the gateway's own origin)",
    );
  });

  it('a foreign Origin is named', async () => {
    const { app } = await testGateway();
    const res = await app.inject({ method: 'POST', url: '/api/logout', headers: { origin: 'http://evil.example' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toEqual({
      code: 'SB_ERR_ORIGIN_REJECTED',
      message: 'cross-origin request refused: Origin "http://evil.example" is neither this gateway\'s own origin nor one of the configured "origins"',
    });
  });
});
