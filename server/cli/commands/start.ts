// `sockbridge start`: the four backends and the gateway in one process, with embedded defaults:
// data in ./data, everything on loopback (the gateway on --host), the exec secret and the chat
// gateway token generated into DATA/*.secret (0600) on first start, the admin account created on
// first start. Once everything listens it prints each backend's address (one line each, the ports
// really bound, so `--chat-port 0` is usable) and then `sockbridge: open http://127.0.0.1:PORT/`
// (127.0.0.1 too with --host 0.0.0.0, then a line saying it listens on all interfaces).
//
// --config FILE is JSON: start's own options at the top level, camelCased as every config file
// (data, host, port, chatPort, chatLinePort, execPort, filesPort, timePort; a flag wins over the file),
// and optional sections {gateway, chat, exec, files, time}, each holding that component's own options
// (the same keys as its `serve`/`gateway` command's config file). An unknown key is refused, and so is
// a section key start sets itself (chat.port: the file would be silently overridden). Every section is
// checked against its component's schema, with what start sets merged in, before anything is created
// or started; errors name the key by its place in the file ("files.maxFileSize").

import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { defaultLogger } from '../../logger.js';
import { sbError } from '../../../protocol/errors.js';
import { ChatService, chatOptionsSchema } from '../../../backends/chat/chat-service.js';
import { ExecService, execOptionsSchema } from '../../../backends/exec/exec-service.js';
import { FilesService, filesOptionsSchema } from '../../../backends/files/files-service.js';
import { TimeService, timeOptionsSchema } from '../../../backends/time/time-service.js';
import { checkConfigSection, loadConfig, portSchema, type JsonSchema } from '../../config.js';
import { gatewayOptionsSchema, trustProxySetting, type GatewayOptions } from '../../gateway-options.js';
import { ensureSecretFile } from '../../accounts/secret-files.js';
import { parseCommandLine, rejectPositionals } from '../args.js';
import { checkFlagValues } from '../flag-values.js';
import { openLines, startGateway } from './gateway.js';
import { formatAddress, runUntilSignal } from '../run-service.js';
import type { FastifyInstance } from 'fastify';

const USAGE =
  'sockbridge start [--data DIR] [--host H] [--port P] [--chat-port P] [--chat-line-port P] [--exec-port P] ' +
  '[--files-port P] [--time-port P] [--config FILE]   (port 0 = any free port)';

const LOOPBACK = '127.0.0.1';

interface Stoppable {
  close(): Promise<void>;
}

const SECTION = { type: 'object' } as const;

/** start's options: its flags (checked by flag-values.ts) and the top level of its config file. */
export const startOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** no default here: the gateway section's data, else ./data */
    data: { type: 'string', minLength: 1 },
    /** the gateway's; no default here: the gateway section's (or the gateway's own) applies */
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    chatPort: portSchema(7001),
    chatLinePort: portSchema(7005),
    execPort: portSchema(7002),
    filesPort: portSchema(7003),
    timePort: portSchema(7004),
    gateway: SECTION,
    chat: SECTION,
    exec: SECTION,
    files: SECTION,
    time: SECTION,
  },
} as const;

type SectionName = 'gateway' | 'chat' | 'exec' | 'files' | 'time';

/** Section keys start sets itself, and what to write instead. */
const SET_BY_START: Record<SectionName, Record<string, string>> = {
  gateway: {
    chat: 'start connects the gateway to its own chat',
    exec: 'start connects the gateway to its own exec',
    files: 'start connects the gateway to its own files',
    time: 'start connects the gateway to its own time',
    execSecretFile: 'start uses DATA/exec.secret',
    chatGatewayTokenFile: 'start uses DATA/chat-gateway.secret',
  },
  chat: { host: 'backends listen on 127.0.0.1', port: 'use "chatPort" (--chat-port)', linePort: 'use "chatLinePort" (--chat-line-port)', dataDir: 'use "data" (--data)', gatewayToken: 'start uses DATA/chat-gateway.secret' },
  exec: { host: 'backends listen on 127.0.0.1', port: 'use "execPort" (--exec-port)', secret: 'start uses DATA/exec.secret' },
  files: { host: 'backends listen on 127.0.0.1', port: 'use "filesPort" (--files-port)', root: 'start uses DATA/files' },
  time: { host: 'backends listen on 127.0.0.1', port: 'use "timePort" (--time-port)' },
};

/** A section of the (already validated) config, refusing the keys start sets itself. */
function section(config: Readonly<Record<string, unknown>>, name: SectionName): Record<string, unknown> {
  // A copy: loadConfig froze the file's objects, and each component's own loadConfig fills its
  // defaults into them (a partial gateway.limits would otherwise stay partial and be refused).
  const value = structuredClone((config[name] ?? {}) as Record<string, unknown>);
  for (const key of Object.keys(value)) {
    const instead = SET_BY_START[name][key];
    if (instead) throw sbError('SB_ERR_CONFIG_INVALID', `"${name}.${key}" cannot be set in a start config: ${instead}`);
  }
  return value;
}

type Sections = Record<SectionName, Record<string, unknown>>;

/** Each section's component and the schema its options are checked against. */
const SECTION_SCHEMAS: Record<SectionName, JsonSchema> = {
  gateway: gatewayOptionsSchema,
  chat: chatOptionsSchema,
  exec: execOptionsSchema,
  files: filesOptionsSchema,
  time: timeOptionsSchema,
};

interface Fixed {
  data: string;
  ports: { chat: number; chatLine: number; exec: number; files: number; time: number };
  chatToken: string;
  execSecret: string;
}

/** A backend's options: its section of the config with what start sets itself on top. */
function backendOptions(sections: Sections, fixed: Fixed): Omit<Sections, 'gateway'> {
  const { data, ports } = fixed;
  return {
    chat: { ...sections.chat, host: LOOPBACK, port: ports.chat, linePort: ports.chatLine, dataDir: data, gatewayToken: fixed.chatToken },
    exec: { ...sections.exec, host: LOOPBACK, port: ports.exec, secret: fixed.execSecret },
    files: { ...sections.files, host: LOOPBACK, port: ports.files, root: join(data, 'files') },
    time: { ...sections.time, host: LOOPBACK, port: ports.time },
  };
}

/** The gateway's config base: its section with its backends (their bound ports) and DATA's secrets on top. */
function gatewayBase(sections: Sections, data: string, backendPorts: Omit<Fixed['ports'], 'chatLine'>): Record<string, unknown> {
  return {
    ...sections.gateway,
    data,
    chat: `tcp://${LOOPBACK}:${backendPorts.chat}`,
    exec: `tcp://${LOOPBACK}:${backendPorts.exec}`,
    files: `tcp://${LOOPBACK}:${backendPorts.files}`,
    time: `udp://${LOOPBACK}:${backendPorts.time}`,
    execSecretFile: join(data, 'exec.secret'),
    chatGatewayTokenFile: join(data, 'chat-gateway.secret'),
  };
}

/**
 * Checks every section as its component will take it, before start creates DATA's files or starts
 * anything: a wrong option would otherwise be found only by the component, after the secrets,
 * chat.sqlite and files/ were made and the backends before it were running.
 */
function checkSections(sections: Sections, fixed: Omit<Fixed, 'chatToken' | 'execSecret'>, gatewayFlags: Record<string, unknown>): void {
  // The secrets are made after this check: a stand-in long enough for any secret's minimum lets the rest be checked.
  const standIn = 'x'.repeat(64);
  const backends = backendOptions(sections, { ...fixed, chatToken: standIn, execSecret: standIn });
  const gateway = { ...gatewayBase(sections, fixed.data, fixed.ports), ...Object.fromEntries(Object.entries(gatewayFlags).filter(([, v]) => v !== undefined)) };
  const all: Sections = { gateway, ...backends };
  for (const name of Object.keys(SECTION_SCHEMAS) as SectionName[]) checkConfigSection(SECTION_SCHEMAS[name], all[name], name);
  // the one gateway option the schema cannot check whole (each entry an address or CIDR): buildApp
  // would refuse it only after the backends were up
  if (gateway['trustProxy'] !== undefined) trustProxySetting(gateway['trustProxy'] as GatewayOptions['trustProxy']);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, configFile } = parseCommandLine(
    argv,
    {
      data: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'chat-port': { type: 'string' },
      'chat-line-port': { type: 'string' },
      'exec-port': { type: 'string' },
      'files-port': { type: 'string' },
      'time-port': { type: 'string' },
    },
    USAGE,
  );
  rejectPositionals(positionals, USAGE);
  // Every flag and the config file checked before anything is created or started.
  const config = loadConfig<Record<string, unknown>>(startOptionsSchema, { cli: checkFlagValues(startOptionsSchema, values), configFile });
  const sections: Sections = {
    gateway: section(config, 'gateway'),
    chat: section(config, 'chat'),
    exec: section(config, 'exec'),
    files: section(config, 'files'),
    time: section(config, 'time'),
  };
  const ports = {
    chat: config['chatPort'] as number,
    chatLine: config['chatLinePort'] as number,
    exec: config['execPort'] as number,
    files: config['filesPort'] as number,
    time: config['timePort'] as number,
  };
  const data = resolve(String(config['data'] ?? sections.gateway['data'] ?? './data'));
  const gatewayFlags = { host: config['host'], port: config['port'] };
  checkSections(sections, { data, ports }, gatewayFlags);
  // The one-command start is read by a person: its console is the lines above (URL, addresses, a first
  // password) plus warnings and errors; SOCKBRIDGE_LOG_LEVEL=info brings back the per-request log.
  const logger: Logger = defaultLogger('warn');

  const execSecret = await ensureSecretFile(join(data, 'exec.secret'));
  const chatToken = await ensureSecretFile(join(data, 'chat-gateway.secret'));

  const started: Stoppable[] = [];
  const stopAll = async () => {
    for (const service of started.splice(0).reverse()) await service.close().catch(() => undefined);
  };
  let app: FastifyInstance | undefined;
  const backendLines: string[] = [];
  const backends = backendOptions(sections, { data, ports, chatToken, execSecret });
  const startAll = async (): Promise<AddressInfo> => {
    try {
      const chat = new ChatService(backends.chat, { logger: logger.child({ service: 'chat' }) });
      const chatAddress = await chat.start();
      started.push(chat);
      const exec = new ExecService(backends.exec, { logger: logger.child({ service: 'exec' }) });
      const execAddress = await exec.start();
      started.push(exec);
      const files = new FilesService(backends.files, { logger: logger.child({ service: 'files' }) });
      const filesAddress = await files.start();
      started.push(files);
      const time = new TimeService(backends.time, { logger: logger.child({ service: 'time' }) });
      const timeAddress = await time.start();
      started.push(time);
      const chatLine = chat.lineAddress();
      backendLines.push(
        `sockbridge: chat ${formatAddress('tcp', chatAddress)} (line mode: ${chatLine ? formatAddress('tcp', chatLine) : 'off'})`,
        `sockbridge: exec ${formatAddress('tcp', execAddress)}`,
        `sockbridge: files ${formatAddress('tcp', filesAddress)}`,
        `sockbridge: time ${formatAddress('udp', timeAddress)}`,
      );

      const bound = { chat: chatAddress.port, exec: execAddress.port, files: filesAddress.port, time: timeAddress.port };
      const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: gatewayBase(sections, data, bound), cli: gatewayFlags });
      app = await startGateway(options, logger.child({ service: 'gateway' }));
      started.push(app);
      return app.server.address() as AddressInfo;
    } catch (err) {
      await stopAll();
      throw err;
    }
  };
  return runUntilSignal('start', { start: startAll, close: stopAll }, () => [...backendLines, ...openLines(app!)]);
}
