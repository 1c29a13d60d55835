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
// a section key start sets itself (chat.port: the file would be silently overridden).

import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { defaultLogger } from '../../logger.js';
import { sbError } from '../../../protocol/errors.js';
import { ChatService } from '../../../backends/chat/chat-service.js';
import { ExecService } from '../../../backends/exec/exec-service.js';
import { FilesService } from '../../../backends/files/files-service.js';
import { TimeService } from '../../../backends/time/time-service.js';
import { loadConfig, portSchema } from '../../config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../gateway-options.js';
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
  const sections = {
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
  const startAll = async (): Promise<AddressInfo> => {
    try {
      const chat = new ChatService(
        {
          ...sections.chat,
          host: LOOPBACK,
          port: ports.chat,
          linePort: ports.chatLine,
          dataDir: data,
          gatewayToken: chatToken,
        },
        { logger: logger.child({ service: 'chat' }) },
      );
      const chatAddress = await chat.start();
      started.push(chat);
      const exec = new ExecService(
        { ...sections.exec, host: LOOPBACK, port: ports.exec, secret: execSecret },
        { logger: logger.child({ service: 'exec' }) },
      );
      const execAddress = await exec.start();
      started.push(exec);
      const files = new FilesService(
        { ...sections.files, host: LOOPBACK, port: ports.files, root: join(data, 'files') },
        { logger: logger.child({ service: 'files' }) },
      );
      const filesAddress = await files.start();
      started.push(files);
      const time = new TimeService(
        { ...sections.time, host: LOOPBACK, port: ports.time },
        { logger: logger.child({ service: 'time' }) },
      );
      const timeAddress = await time.start();
      started.push(time);
      const chatLine = chat.lineAddress();
      backendLines.push(
        `sockbridge: chat ${formatAddress('tcp', chatAddress)} (line mode: ${chatLine ? formatAddress('tcp', chatLine) : 'off'})`,
        `sockbridge: exec ${formatAddress('tcp', execAddress)}`,
        `sockbridge: files ${formatAddress('tcp', filesAddress)}`,
        `sockbridge: time ${formatAddress('udp', timeAddress)}`,
      );

      const url = (scheme: string, a: AddressInfo) => `${scheme}://${LOOPBACK}:${a.port}`;
      const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, {
        base: {
          ...sections.gateway,
          data,
          chat: url('tcp', chatAddress),
          exec: url('tcp', execAddress),
          files: url('tcp', filesAddress),
          time: url('udp', timeAddress),
          execSecretFile: join(data, 'exec.secret'),
          chatGatewayTokenFile: join(data, 'chat-gateway.secret'),
        },
        cli: { host: config['host'], port: config['port'] },
      });
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
