import { describe, expect, it } from 'vitest';
import { canonicalOrigin, isAllowedOrigin } from '../../../server/plugins/origin.js';

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
