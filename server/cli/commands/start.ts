// `sockbridge start`: the four backends and the gateway in one process, with embedded defaults:
// data in ./data, everything on loopback (the gateway on --host), the exec secret and the chat
// gateway token generated into DATA/*.secret (0600) on first start, the admin account created on
// first start. Once everything listens it prints each backend's address (one line each, the ports
// really bound, so `--chat-port 0` is usable) and then `sockbridge: open http://127.0.0.1:PORT/`.
//
// --config FILE is JSON with optional sections {gateway, chat, exec, files, time}, each holding that
// component's own options (the same keys as its `serve`/`gateway` command's config file).

import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { defaultLogger } from '../../logger.js';
import { sbError } from '../../../protocol/errors.js';
import { ChatService } from '../../../backends/chat/chat-service.js';
import { ExecService } from '../../../backends/exec/exec-service.js';
import { FilesService } from '../../../backends/files/files-service.js';
import { TimeService } from '../../../backends/time/time-service.js';
import { loadConfig, portSchema, readConfigFile } from '../../config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../gateway-options.js';
import { ensureSecretFile } from '../../accounts/secret-files.js';
import { parseCommandLine, rejectPositionals } from '../args.js';
import { flagValuesWithDefaults } from '../flag-values.js';
import { openLine, startGateway } from './gateway.js';
import { formatAddress, runUntilSignal } from '../run-service.js';
import type { FastifyInstance } from 'fastify';

const USAGE =
  'sockbridge start [--data DIR] [--host H] [--port P] [--chat-port P] [--chat-line-port P] [--exec-port P] ' +
  '[--files-port P] [--time-port P] [--config FILE]   (port 0 = any free port)';

const LOOPBACK = '127.0.0.1';

interface Stoppable {
  close(): Promise<void>;
}

/** The port flags, checked like every other flag value (flag-values.ts). */
const PORT_FLAGS = {
  properties: {
    chatPort: portSchema(7001),
    chatLinePort: portSchema(7005),
    execPort: portSchema(7002),
    filesPort: portSchema(7003),
    timePort: portSchema(7004),
    /** no default here: the gateway's own (or its config file's) applies */
    port: { type: 'integer', minimum: 0, maximum: 65535 },
  },
} as const;

function section(config: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = config[key];
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw sbError('SB_ERR_CONFIG_INVALID', `"${key}" must be an object`);
  return value as Record<string, unknown>;
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
  // Every flag checked before anything is created or started.
  const { chatPort, chatLinePort, execPort, filesPort, timePort, port } = values;
  const given = flagValuesWithDefaults(PORT_FLAGS, { chatPort, chatLinePort, execPort, filesPort, timePort, port });
  const ports = {
    chat: given['chatPort'] as number,
    chatLine: given['chatLinePort'] as number,
    exec: given['execPort'] as number,
    files: given['filesPort'] as number,
    time: given['timePort'] as number,
    gateway: given['port'] as number | undefined,
  };
  const config = configFile ? readConfigFile(configFile) : {};
  const data = resolve(String(values['data'] ?? section(config, 'gateway')['data'] ?? './data'));
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
          ...section(config, 'chat'),
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
        { ...section(config, 'exec'), host: LOOPBACK, port: ports.exec, secret: execSecret },
        { logger: logger.child({ service: 'exec' }) },
      );
      const execAddress = await exec.start();
      started.push(exec);
      const files = new FilesService(
        { ...section(config, 'files'), host: LOOPBACK, port: ports.files, root: join(data, 'files') },
        { logger: logger.child({ service: 'files' }) },
      );
      const filesAddress = await files.start();
      started.push(files);
      const time = new TimeService(
        { ...section(config, 'time'), host: LOOPBACK, port: ports.time },
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
          ...section(config, 'gateway'),
          data,
          chat: url('tcp', chatAddress),
          exec: url('tcp', execAddress),
          files: url('tcp', filesAddress),
          time: url('udp', timeAddress),
          execSecretFile: join(data, 'exec.secret'),
          chatGatewayTokenFile: join(data, 'chat-gateway.secret'),
        },
        cli: { host: values['host'], port: ports.gateway },
      });
      app = await startGateway(options, logger.child({ service: 'gateway' }));
      started.push(app);
      return app.server.address() as AddressInfo;
    } catch (err) {
      await stopAll();
      throw err;
    }
  };
  return runUntilSignal('start', { start: startAll, close: stopAll }, () => [...backendLines, openLine(app!)]);
}
