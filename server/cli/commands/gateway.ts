// `sockbridge gateway --port 8080 --chat tcp://… --exec tcp://… --files tcp://… --time udp://…
//  [--raw name=host:port]… [--origin URL]… [--data DIR] [--config FILE]`: the gateway alone.
// The first start creates the `admin` account (password from SOCKBRIDGE_ADMIN_PASSWORD, else random
// and printed once) and prints `sockbridge: open http://HOST:PORT/`, a line scripts and tests parse.

import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { sbError } from '../../../protocol/errors.js';
import { buildApp } from '../../app.js';
import { loadConfig } from '../../config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../gateway-options.js';
import { UserStore } from '../../accounts/user-store.js';
import { parseCommandLine, rejectPositionals, type OptionSpecs } from '../args.js';
import { runUntilSignal } from '../run-service.js';
import { checkFlagValues } from '../flag-values.js';

const USAGE =
  'sockbridge gateway [--host H] [--port P] [--chat tcp://H:P] [--exec tcp://H:P] [--files tcp://H:P] [--time udp://H:P] ' +
  '[--raw NAME=HOST:PORT]… [--origin URL]… [--data DIR] [--web-root DIR] [--trust-proxy] [--secure-cookies] [--config FILE]';

export const GATEWAY_FLAGS: OptionSpecs = {
  host: { type: 'string' },
  port: { type: 'string' },
  data: { type: 'string' },
  chat: { type: 'string' },
  exec: { type: 'string' },
  files: { type: 'string' },
  time: { type: 'string' },
  raw: { type: 'string', multiple: true },
  origin: { type: 'string', multiple: true },
  'web-root': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  'secure-cookies': { type: 'boolean' },
};

/** `--raw a=h:1 --raw b=h:2` → {a: 'h:1', b: 'h:2'} */
export function parseRawTargets(values: unknown): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const targets: Record<string, string> = {};
  for (const item of values as string[]) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw sbError('SB_ERR_USAGE', `--raw ${item}: write NAME=HOST:PORT (e.g. --raw vnc=127.0.0.1:5900)`);
    targets[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return targets;
}

/** Command-line values → gateway option keys, each checked against its schema under the flag's name. */
export function gatewayCliValues(values: Record<string, unknown>): Record<string, unknown> {
  const { raw, origin, ...rest } = values;
  const cli: Record<string, unknown> = { ...rest };
  if (raw !== undefined) cli['raw'] = parseRawTargets(raw);
  if (origin !== undefined) cli['origins'] = origin;
  return checkFlagValues(gatewayOptionsSchema, cli, { origins: '--origin' });
}

/** Creates `admin` on first start; prints a generated password once. */
export async function ensureAdminAccount(data: string): Promise<void> {
  const store = new UserStore(join(data, 'users.sqlite'));
  try {
    const { created, generatedPassword } = await store.ensureAdmin(process.env['SOCKBRIDGE_ADMIN_PASSWORD'] || undefined);
    if (generatedPassword) {
      process.stdout.write(`sockbridge: created account admin with password ${generatedPassword}\n`);
      process.stdout.write(`sockbridge: it is shown only this once; change it with: sockbridge user passwd admin --data ${data}\n`);
    }
    else if (created) process.stdout.write('sockbridge: created account admin with the password from SOCKBRIDGE_ADMIN_PASSWORD\n');
  } finally {
    store.close();
  }
}

/** 0.0.0.0 and :: are where a server listens, not an address a browser can open. */
const isAnyAddress = (address: string) => address === '0.0.0.0' || address === '::';

/** A URL a person can open on this machine: loopback when the server listens on every interface. */
export function httpUrl(address: AddressInfo): string {
  const local = address.address === '::' ? '::1' : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  const host = local.includes(':') ? `[${local}]` : local;
  return `http://${host}:${address.port}/`;
}

/** Creates the first admin if needed, builds and listens. */
export async function startGateway(options: GatewayOptions, logger?: Logger): Promise<FastifyInstance> {
  await ensureAdminAccount(options.data);
  const app = await buildApp(options, logger ? { logger } : {});
  await app.listen({ host: options.host, port: options.port });
  return app;
}

/** The line scripts and tests wait for (`sockbridge: open URL`), then where else it is reachable. */
export function openLines(app: FastifyInstance): string[] {
  const address = app.server.address() as AddressInfo;
  const lines = [`sockbridge: open ${httpUrl(address)}`];
  if (isAnyAddress(address.address)) {
    lines.push(`sockbridge: listening on all interfaces (${address.address === '::' ? '[::]' : address.address}:${address.port}): other machines reach it at this machine's addresses`);
  }
  return lines;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(argv, GATEWAY_FLAGS, USAGE);
  rejectPositionals(positionals, USAGE);
  const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { cli: gatewayCliValues(values), configFile });
  let app: FastifyInstance | undefined;
  return runUntilSignal(
    'gateway',
    {
      start: async () => {
        app = await startGateway(options);
        return app.server.address() as AddressInfo;
      },
      close: async () => app?.close(),
    },
    () => openLines(app!),
  );
}
