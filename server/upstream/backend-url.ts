// Backend addresses as URLs: `tcp://host:port` for chat, exec and files, `udp://host:port` for time.
// Parsed once at start-up with errors that say what to write instead.

import { sbError } from '../../protocol/errors.js';

export interface BackendAddress {
  scheme: 'tcp' | 'udp';
  host: string;
  port: number;
}

export function parseBackendUrl(text: string, expected: 'tcp' | 'udp', what = 'backend'): BackendAddress {
  const m = /^(tcp|udp):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(text);
  if (!m) {
    throw sbError('SB_ERR_CONFIG_INVALID', `${what} address "${text}" is not ${expected}://HOST:PORT (e.g. ${expected}://127.0.0.1:7003)`);
  }
  const [, scheme, rawHost, rawPort] = m as unknown as [string, 'tcp' | 'udp', string, string];
  if (scheme !== expected) {
    throw sbError('SB_ERR_CONFIG_INVALID', `${what} address "${text}" must use ${expected}://, not ${scheme}://`);
  }
  const port = Number(rawPort);
  if (port < 1 || port > 65535) {
    throw sbError('SB_ERR_CONFIG_INVALID', `${what} address "${text}" has port ${port}; use 1..65535`);
  }
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  return { scheme, host, port };
}

export function formatBackendUrl(address: BackendAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${address.scheme}://${host}:${address.port}`;
}
