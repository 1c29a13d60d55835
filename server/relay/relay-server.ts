// `sockbridge relay`: a standalone websockify-compatible relay on `http` + `ws`, sharing its core
// (websocket-tcp-bridge.ts) with the gateway's /ws/raw/:target. Like websockify it needs no login;
// unlike an open relay, its target is fixed at start: the request path and query are ignored, so no
// client can choose where it connects.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { WS_CLOSE, sbError, type SockbridgeError } from '../../protocol/errors.js';
import { silentLogger } from '../../backends/lib/tcp-service.js';
import { HOST_PORT_PATTERN, loadConfig } from '../config.js';
import { relayLimitsSchemaProperties, type RelayLimits } from './relay-limits.js';
import { checkSubprotocolOffer, selectRelaySubprotocol } from './subprotocol.js';
import { bridgeWebSocketToTcp, type RelayTarget } from './websocket-tcp-bridge.js';
import { startHeartbeat } from '../routes/ws-common.js';
import { CLOSE_GRACE_MS } from '../plugins/ws-close.js';

export const relayOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['target'],
  properties: {
    host: { type: 'string', minLength: 1, default: '127.0.0.1' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 6080 },
    /** the one target every connection is relayed to, host:port */
    target: { type: 'string', pattern: HOST_PORT_PATTERN },
    /** allowed Origin headers (exact match); empty: any, as websockify */
    origins: { type: 'array', items: { type: 'string', pattern: '^https?://' }, default: [] },
    maxConnections: { type: 'integer', minimum: 1, default: 1024 },
    /** ping interval; a browser that misses a whole interval is dropped */
    heartbeatMs: { type: 'integer', minimum: 1000, default: 30_000 },
    ...relayLimitsSchemaProperties,
  },
} as const;

export interface RelayOptions extends RelayLimits {
  host: string;
  port: number;
  target: string;
  origins: string[];
  maxConnections: number;
  heartbeatMs: number;
}

/** `host:port` or `[v6]:port` → parts (the schema has already checked the shape). */
export function parseRelayTarget(text: string): RelayTarget {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(colon + 1));
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw sbError('SB_ERR_CONFIG_INVALID', `relay target "${text}" is not HOST:PORT`);
  return { host, port };
}

export class RelayServer {
  readonly options: Readonly<RelayOptions>;
  private readonly target: RelayTarget;
  private readonly logger: Logger;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly relays = new Set<Promise<unknown>>();

  constructor(options: Partial<RelayOptions>, deps: { logger?: Logger } = {}) {
    this.options = loadConfig<RelayOptions>(relayOptionsSchema, { base: options });
    this.target = parseRelayTarget(this.options.target);
    this.logger = deps.logger ?? silentLogger;
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false, // compression costs more CPU than the relay itself, and leaks (CRIME)
      maxPayload: this.options.maxMessageBytes, // checked as each frame length is read → 1009
      handleProtocols: selectRelaySubprotocol,
      clientTracking: true,
    });
    this.http = http.createServer({ requestTimeout: 30_000, headersTimeout: 15_000, maxHeaderSize: 16 * 1024 }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' });
      res.end('sockbridge relay: connect with a WebSocket (subprotocol "binary")\n');
    });
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /** Open relays. */
  get connectionCount(): number {
    return this.wss.clients.size;
  }

  /** Bytes queued towards each browser (for tests and metrics: bounded by highWaterBytes plus one read). */
  bufferedAmounts(): number[] {
    return [...this.wss.clients].map((ws) => ws.bufferedAmount);
  }

  start(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', reject);
        this.http.on('error', (err) => this.logger.error({ err }, 'relay server error'));
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /**
   * Stops listening and ends every relay with 1001 "going away" (RFC 6455 §7.4.1), as the gateway
   * does, so a client can tell a restart from a failure; a client that has not finished the closing
   * handshake within CLOSE_GRACE_MS is dropped, so Ctrl-C stays prompt.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    const open = [...this.wss.clients];
    for (const ws of open) ws.close(WS_CLOSE.GOING_AWAY, 'server shutting down');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all(open.map(closedSocket)),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
      ]);
    } finally {
      // whatever happened during the grace, the shutdown is finished: no client keeps the port
      clearTimeout(timer);
      for (const ws of this.wss.clients) ws.terminate();
      this.http.closeAllConnections();
      await Promise.allSettled([...this.relays]);
    }
    if (this.http.listening) await closed;
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refusal = this.refusal(req);
    if (refusal) {
      this.logger.info({ code: refusal.code, remote: req.socket.remoteAddress, origin: req.headers.origin }, 'relay refused');
      const body = JSON.stringify({ error: refusal.toJSON() });
      socket.end(
        `HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? ''}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // RFC 6455 §5.5.2 pings; a browser that misses a whole interval is gone (the gateway's heartbeat).
      startHeartbeat(ws, this.options.heartbeatMs);
      this.logger.info({ remote: req.socket.remoteAddress, origin: req.headers.origin }, 'relay connected');
      const relay = bridgeWebSocketToTcp(ws, this.target, this.options, this.logger).then((stats) =>
        this.logger.info({ remote: req.socket.remoteAddress, ...stats }, 'relay closed'),
      );
      this.relays.add(relay);
      void relay.finally(() => this.relays.delete(relay));
    });
  }

  private refusal(req: http.IncomingMessage): SockbridgeError | undefined {
    const origin = req.headers.origin;
    if (this.options.origins.length > 0 && (!origin || !this.options.origins.includes(origin))) {
      return sbError('SB_ERR_ORIGIN_REJECTED', JSON.stringify(origin ?? null).slice(0, 100));
    }
    if (this.wss.clients.size >= this.options.maxConnections) {
      return sbError('SB_ERR_RATE_LIMITED', `the relay already has ${this.options.maxConnections} connections`);
    }
    return checkSubprotocolOffer(req.headers['sec-websocket-protocol']);
  }
}

/**
 * Resolves once `ws` has closed. A client that answers the Close frame with a bad frame makes ws
 * emit 'error' before 'close' (events.once would reject on it): that is the client's fault, logged
 * by the bridge, and no reason for close() to fail.
 */
function closedSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
}
