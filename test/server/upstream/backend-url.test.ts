import { describe, expect, it } from 'vitest';
import { formatBackendUrl, parseBackendUrl } from '../../../server/upstream/backend-url.js';

describe('backend URLs', () => {
  it('parses tcp and udp URLs, IPv6 included, and formats them back', () => {
    expect(parseBackendUrl('tcp://127.0.0.1:7001', 'tcp')).toEqual({ scheme: 'tcp', host: '127.0.0.1', port: 7001 });
    expect(parseBackendUrl('udp://time.local:7004', 'udp')).toEqual({ scheme: 'udp', host: 'time.local', port: 7004 });
    const v6 = parseBackendUrl('tcp://[::1]:7003', 'tcp');
    expect(v6.host).toBe('::1');
    expect(formatBackendUrl(v6)).toBe('tcp://[::1]:7003');
  });

  it('refuses the wrong scheme, a missing or out-of-range port, and junk with SB_ERR_CONFIG_INVALID', () => {
    for (const [text, scheme] of [
      ['udp://127.0.0.1:7001', 'tcp'],
      ['tcp://127.0.0.1', 'tcp'],
      ['tcp://127.0.0.1:0', 'tcp'],
      ['tcp://127.0.0.1:70000', 'tcp'],
      ['http://a:1', 'tcp'],
      ['tcp://user@host:1', 'tcp'],
    ] as const) {
      expect(() => parseBackendUrl(text, scheme)).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID' }));
    }
  });
});
