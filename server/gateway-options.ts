// The gateway's options: one schema with defaults, validated once by loadConfig (server/config.ts).
// Backends are reached by URL; raw relay targets are named here and only here (never chosen by a client).

import net from 'node:net';
import { sbError } from '../protocol/errors.js';
import { HOST_PORT_PATTERN } from './config.js';
import { relayLimitsSchemaProperties } from './relay/relay-limits.js';
import type { FromSchemaLike } from './schema-types.js';

export const gatewayOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, default: '127.0.0.1' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    /** data directory: accounts, secrets */
    data: { type: 'string', minLength: 1, default: './data' },
    chat: { type: 'string', pattern: '^tcp://', default: 'tcp://127.0.0.1:7001' },
    exec: { type: 'string', pattern: '^tcp://', default: 'tcp://127.0.0.1:7002' },
    files: { type: 'string', pattern: '^tcp://', default: 'tcp://127.0.0.1:7003' },
    time: { type: 'string', pattern: '^udp://', default: 'udp://127.0.0.1:7004' },
    /** the exec service's shared secret, or a file holding it (default DATA/exec.secret) */
    execSecret: { type: 'string', minLength: 16 },
    execSecretFile: { type: 'string' },
    /** the chat service's gateway token, or a file holding it (default DATA/chat-gateway.secret) */
    chatGatewayToken: { type: 'string', minLength: 16 },
    chatGatewayTokenFile: { type: 'string' },
    /** raw relay targets, name → host:port (CLI: --raw name=host:port, repeatable) */
    raw: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: HOST_PORT_PATTERN },
      propertyNames: { pattern: '^[A-Za-z0-9_-]{1,64}$' },
      default: {},
    },
    /** extra allowed Origins for WebSocket upgrades besides the gateway's own (e.g. a dev server) */
    origins: { type: 'array', items: { type: 'string', pattern: '^https?://' }, default: [] },
    /**
     * behind a reverse proxy you run: the proxies' addresses/CIDRs (["127.0.0.1", "10.0.0.0/8"]) or how
     * many proxies are in front (1); `true` means 1 (see trustProxySetting). The client address is then
     * the nearest X-Forwarded-For entry not written by a trusted proxy, never one the client chose.
     */
    trustProxy: {
      anyOf: [{ type: 'boolean' }, { type: 'integer', minimum: 0 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }],
      default: false,
    },
    /** how often every live session is checked against its account (removed, new password, role) */
    accountCheckIntervalMs: { type: 'integer', minimum: 100, default: 5000 },
    /** send Secure cookies (set when served over HTTPS by a proxy) */
    secureCookies: { type: 'boolean', default: false },
    sessionTtlMs: { type: 'integer', minimum: 60_000, default: 12 * 3600_000 },
    /** served static web client (default: dist/web next to the code) */
    webRoot: { type: 'string' },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** largest WebSocket message on chat, exec control and time sockets */
        wsMaxMessageBytes: { type: 'integer', minimum: 1024, default: 64 * 1024 },
        /** largest WebSocket message on the raw relay */
        rawMaxMessageBytes: { type: 'integer', minimum: 1024, default: 1024 * 1024 },
        /** the raw relay's timeouts: the same minimums and defaults as `sockbridge relay`'s flags */
        rawConnectTimeoutMs: relayLimitsSchemaProperties.connectTimeoutMs,
        rawIdleTimeoutMs: relayLimitsSchemaProperties.idleTimeoutMs,
        rawLingerMs: relayLimitsSchemaProperties.lingerMs,
        /** stdin bytes one /ws/exec socket may have waiting in the gateway beyond its commands' windows */
        execMaxQueuedStdinBytes: { type: 'integer', minimum: 0, default: 4 * 1024 * 1024 },
        /** bufferedAmount above which the upstream socket is paused */
        wsHighWaterBytes: { type: 'integer', minimum: 1024, default: 1024 * 1024 },
        maxUploadBytes: { type: 'integer', minimum: 1, default: 8 * 1024 ** 3 },
        maxUploadFiles: { type: 'integer', minimum: 1, default: 100 },
        loginAttemptsPerMinute: { type: 'integer', minimum: 1, default: 10 },
        /** open WebSockets per account: a web client tab uses 1 to 3 (docs/api.md § WebSockets) */
        maxSocketsPerUser: { type: 'integer', minimum: 1, default: 32 },
        /** the whole request, body included, must arrive within this (an upload too: raise it for huge files on slow links) */
        requestTimeoutMs: { type: 'integer', minimum: 1000, default: 30 * 60_000 },
        headersTimeoutMs: { type: 'integer', minimum: 1000, default: 15_000 },
        heartbeatMs: { type: 'integer', minimum: 1000, default: 30_000 },
        /** request line + headers; larger → 431 (RFC 6585 §5) */
        maxHeaderBytes: { type: 'integer', minimum: 1024, default: 16 * 1024 },
      },
    },
  },
} as const;

export type GatewayOptions = FromSchemaLike<{
  host: string;
  port: number;
  data: string;
  chat: string;
  exec: string;
  files: string;
  time: string;
  execSecret?: string;
  execSecretFile?: string;
  chatGatewayToken?: string;
  chatGatewayTokenFile?: string;
  raw: Record<string, string>;
  origins: string[];
  trustProxy: boolean | number | string[];
  accountCheckIntervalMs: number;
  secureCookies: boolean;
  sessionTtlMs: number;
  webRoot?: string;
  limits: {
    wsMaxMessageBytes: number;
    rawMaxMessageBytes: number;
    rawConnectTimeoutMs: number;
    rawIdleTimeoutMs: number;
    rawLingerMs: number;
    execMaxQueuedStdinBytes: number;
    wsHighWaterBytes: number;
    maxUploadBytes: number;
    maxUploadFiles: number;
    loginAttemptsPerMinute: number;
    maxSocketsPerUser: number;
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    heartbeatMs: number;
    maxHeaderBytes: number;
  };
}>;

/** proxy-addr's names for address ranges, accepted in a trustProxy list as Fastify accepts them */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/**
 * What Fastify's trustProxy gets. `true` would make Fastify take the LEFTMOST X-Forwarded-For entry,
 * which the client writes itself (a proxy appends the address it saw), so any client could pick its
 * own address and with it its login rate-limit key. `true` is read as one hop (the gateway's peer is
 * the proxy; the client is the address it appended), which is what a single reverse proxy means.
 * A list is checked here, so a typo fails at start-up with a message instead of inside Fastify.
 */
export function trustProxySetting(value: GatewayOptions['trustProxy']): false | string[] | ((address: string, hop: number) => boolean) {
  if (value === false || value === 0) return false;
  // n hops, as proxy-addr reads a number (Fastify's types leave the number form out): the socket's
  // peer is hop 0, the last X-Forwarded-For entry hop 1, and so on; the client is the first untrusted one.
  if (value === true || typeof value === 'number') {
    const hops = value === true ? 1 : value;
    return (_address, hop) => hop < hops;
  }
  for (const entry of value) {
    if (PROXY_RANGE_NAMES.includes(entry)) continue;
    const [address, prefix, ...rest] = entry.split('/');
    const family = net.isIP(address ?? '');
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || rest.length > 0) {
      throw sbError(
        'SB_ERR_CONFIG_INVALID',
        `"trustProxy" entry ${JSON.stringify(entry)} is not an IP address or CIDR; list the proxies' addresses (e.g. ["127.0.0.1", "10.0.0.0/8"]) or give their number (e.g. 1)`,
      );
    }
  }
  return [...value];
}
