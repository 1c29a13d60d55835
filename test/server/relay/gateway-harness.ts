// A real gateway (buildApp, listening on 127.0.0.1:0) with raw relay targets and a logged-in user,
// for the /ws/raw tests: a ws client gets the session cookie and the gateway's own Origin.
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { buildApp } from '../../../server/app.js';
import { loadConfig } from '../../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../../server/gateway-options.js';
import { tempDir } from '../../helpers/tmp.js';

export interface RawGateway {
  app: FastifyInstance;
  base: string;
  origin: string;
  /** headers a logged-in browser sends on the upgrade */
  headers: Record<string, string>;
}

export async function startRawGateway(raw: Record<string, string>, limits: Record<string, number> = {}): Promise<RawGateway> {
  const data = await tempDir();
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: { data, webRoot: `${data}/no-web`, port: 0, raw, limits } });
  const app = await buildApp(options, { logger: pino({ level: 'silent' }), probeHealth: false });
  await app.users.add('alice', 'alice-password', 'user');
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const res = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'alice', password: 'alice-password' } });
  const cookie = res.cookies.find((c) => c.name === 'sb_session');
  if (!cookie) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return { app, base: `ws://127.0.0.1:${port}`, origin, headers: { origin, cookie: `sb_session=${cookie.value}` } };
}
