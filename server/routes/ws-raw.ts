// /ws/raw/:target: the websockify-compatible binary relay (subprotocol `binary`) to a target named in
// the gateway's configuration (`--raw vnc=127.0.0.1:5900`). The name is the only thing a client
// chooses: it is looked up as an exact own key of options.raw, so a host:port, an encoded or IPv6
// address, a decimal IP or a metadata host in the path or the query is refused with 404
// SB_ERR_RAW_TARGET_UNKNOWN — after the login check (wsGuard: 401 first, so names are not probed
// anonymously), before any connection to anything and before any 101. Otherwise this is
// `sockbridge relay` behind a login: the same core (server/relay/websocket-tcp-bridge.ts).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sbError } from '../../protocol/errors.js';
import type { GatewayOptions } from '../gateway-options.js';
import type { RelayLimits } from '../relay/relay-limits.js';
import { parseRelayTarget } from '../relay/relay-server.js';
import { checkSubprotocolOffer, offeredSubprotocols, RELAY_SUBPROTOCOL } from '../relay/subprotocol.js';
import { bridgeWebSocketToTcp, type RelayTarget } from '../relay/websocket-tcp-bridge.js';
import { acceptBrowserSocket } from './ws-common.js';

/** Query keys that try to name a destination: refused outright rather than silently ignored. */
const TARGET_QUERY_KEYS = ['target', 'host', 'hostname', 'port', 'addr', 'address', 'dest', 'destination'];

declare module 'fastify' {
  interface FastifyRequest {
    rawRelayTarget?: RelayTarget;
  }
}

export async function wsRawRoutes(app: FastifyInstance, opts: { options: GatewayOptions }): Promise<void> {
  const { options } = opts;
  const targets = new Map<string, RelayTarget>(Object.entries(options.raw).map(([name, hostPort]) => [name, parseRelayTarget(hostPort)]));
  const limits: RelayLimits = {
    maxMessageBytes: options.limits.rawMaxMessageBytes,
    highWaterBytes: options.limits.wsHighWaterBytes,
    connectTimeoutMs: options.limits.rawConnectTimeoutMs,
    idleTimeoutMs: options.limits.rawIdleTimeoutMs,
    lingerMs: options.limits.rawLingerMs,
  };

  /** preValidation, after wsGuard: resolves the configured target or refuses the upgrade. */
  async function resolveTarget(request: FastifyRequest): Promise<void> {
    const name = (request.params as { '*'?: string })['*'] ?? '';
    const query = (request.query ?? {}) as Record<string, unknown>;
    const target = targets.get(name); // Map, not an object: `__proto__` or `constructor` is just unknown
    const namesAnother = TARGET_QUERY_KEYS.some((key) => Object.hasOwn(query, key));
    if (!target || namesAnother) {
      throw sbError('SB_ERR_RAW_TARGET_UNKNOWN', JSON.stringify(namesAnother ? request.url : name).slice(0, 80));
    }
    const refusal = checkSubprotocolOffer(request.headers['sec-websocket-protocol']);
    if (refusal) throw refusal;
    // ws answers with the first subprotocol offered unless told otherwise, and the shared WebSocket
    // server has no per-route handleProtocols: narrow the offer to the one we speak.
    if (offeredSubprotocols(request.headers['sec-websocket-protocol']).length > 0) {
      request.raw.headers['sec-websocket-protocol'] = RELAY_SUBPROTOCOL;
    }
    request.rawRelayTarget = target;
  }

  app.get('/ws/raw/*', { websocket: true, preValidation: [app.wsGuard(), resolveTarget] }, (socket, request) => {
    const target = request.rawRelayTarget!;
    const accepted = acceptBrowserSocket(app, socket, request, 'raw');
    if (!accepted) return;
    const who = { user: accepted.username, remote: request.ip, target: (request.params as { '*': string })['*'] };
    request.log.info(who, 'raw relay connected');
    void bridgeWebSocketToTcp(socket, target, limits, request.log).then((stats) => request.log.info({ ...who, ...stats }, 'raw relay closed'));
  });
}
