// The exec service (default tcp/7002): the seed's remote-command server (question 9) without its
// bugs. Output is streamed as it is produced in length-prefixed frames (no fixed recv(1024), no
// waiting for exit), nothing runs before a constant-time secret check, an allow-list can replace
// the shell, and every command is bounded in time and output and dies with its connection.
// Wire contract: protocol/exec-messages.ts; docs/protocol.md § exec.

import { statSync } from 'node:fs';
import type net from 'node:net';
import type { Logger } from 'pino';
import { sbError } from '../../protocol/errors.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../protocol/frame-codec.js';
import { hostSchema, loadConfig, portSchema } from '../../server/config.js';
import { TcpService } from '../lib/tcp-service.js';
import { DataTokens } from './data-tokens.js';
import { ExecSession } from './exec-session.js';
import type { RunningCommand } from './running-command.js';
import { MIN_SECRET_LENGTH } from './secret.js';

export interface ExecOptions {
  host: string;
  port: number;
  /** shared secret every connection must present first (≥ 16 characters) */
  secret: string;
  /** program names argv[0] may be; null = anything, and shell strings via `shell -c` */
  allow: string[] | null;
  /** default and maximum run time of one command */
  timeoutMs: number;
  /** stdout + stderr bytes one command may produce before it is killed */
  maxOutputBytes: number;
  /** commands running at once on one connection */
  maxConcurrent: number;
  /** time a new connection has to authenticate */
  authTimeoutMs: number;
  /** SIGTERM → SIGKILL delay when sockbridge ends a command */
  killGraceMs: number;
  /** largest body of one stdin frame */
  maxStdinFrameBytes: number;
  shell: string;
  /** whether runs may ask for a pseudo-terminal */
  pty: boolean;
  /** working directory of commands; null = the service user's home */
  cwd: string | null;
  /** how long a `stdout: 'connection'` run waits for its data connection before it fails */
  dataWaitMs: number;
}

export const execOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['secret'],
  properties: {
    host: hostSchema,
    port: portSchema(7002),
    secret: { type: 'string', minLength: MIN_SECRET_LENGTH },
    allow: { anyOf: [{ type: 'null' }, { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[^\\u0000]+$' }, maxItems: 1000 }], default: null },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 7 * 24 * 3600 * 1000, default: 10 * 60 * 1000 },
    maxOutputBytes: { type: 'integer', minimum: 1, default: 1024 * 1024 * 1024 },
    maxConcurrent: { type: 'integer', minimum: 1, maximum: 1024, default: 8 },
    authTimeoutMs: { type: 'integer', minimum: 1, maximum: 600_000, default: 10_000 },
    killGraceMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 2000 },
    maxStdinFrameBytes: { type: 'integer', minimum: 1, maximum: 64 * 1024 * 1024, default: DEFAULT_MAX_BODY_BYTES },
    shell: { type: 'string', minLength: 1, default: '/bin/sh' },
    pty: { type: 'boolean', default: true },
    cwd: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }], default: null },
    dataWaitMs: { type: 'integer', minimum: 1, maximum: 600_000, default: 10_000 },
  },
} as const;

export class ExecService extends TcpService {
  readonly options: Readonly<ExecOptions>;
  private readonly running = new Set<RunningCommand>();
  private readonly dataTokens: DataTokens;

  constructor(options: Partial<ExecOptions>, deps: { logger?: Logger } = {}) {
    const config = loadConfig<ExecOptions>(execOptionsSchema, { base: options });
    // Checked once here: a missing cwd would otherwise fail every run as "no such program".
    if (config.cwd !== null && !statSync(config.cwd, { throwIfNoEntry: false })?.isDirectory()) {
      throw sbError('SB_ERR_CONFIG_INVALID', `--cwd / "cwd": ${config.cwd} is not a directory`);
    }
    super({ host: config.host, port: config.port, ...(deps.logger ? { logger: deps.logger } : {}) });
    this.options = config;
    this.dataTokens = new DataTokens(config.dataWaitMs);
  }

  protected onConnection(socket: net.Socket): void {
    new ExecSession(socket, this.options, this.logger, (command) => {
      this.running.add(command);
      command.once('exit', () => this.running.delete(command));
    }, this.dataTokens);
  }

  /** Commands still running on any connection. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Sockets are gone by now, so every session is killing its commands: wait for them to die. */
  protected override async onClose(): Promise<void> {
    await Promise.all([...this.running].map((command) => new Promise<void>((resolve) => {
      if (!command.running) resolve();
      else command.once('exit', () => resolve());
    })));
  }
}
