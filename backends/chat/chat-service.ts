// The chat service: length-prefixed JSON frames on `port` (protocol/chat-messages.ts) and a
// plain-text line mode on `linePort` (line-chat-server.ts), both in front of one ChatHub, with
// history in DATA/chat.sqlite. Limits are always on: frame header size, text size, a token bucket
// per connection and per nickname, connections in total and per shared nickname, rooms per
// connection, a deadline for "hello", and a cap on unread output (slow consumers are dropped).

import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { CHAT_LIMITS, DIRECT_HISTORY_MAX, HISTORY_ON_JOIN } from '../../protocol/chat-messages.js';
import { sbError } from '../../protocol/errors.js';
import { hostSchema, loadConfig, portSchema } from '../../server/config.js';
import { TcpService, sendErrorAndClose, silentLogger } from '../lib/tcp-service.js';
import { ChatConnection } from './chat-connection.js';
import { ChatHistory, DEFAULT_REF_WINDOW_MS } from './chat-history.js';
import { ChatHub } from './chat-hub.js';
import { LineChatServer } from './line-chat-server.js';

export const DEFAULT_CHAT_PORT = 7001;
export const DEFAULT_CHAT_LINE_PORT = 7005;

export const chatOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['dataDir'],
  properties: {
    host: hostSchema,
    port: portSchema(DEFAULT_CHAT_PORT),
    /** line mode's address; host when absent */
    lineHost: { type: 'string', minLength: 1 },
    /** null switches line mode off */
    linePort: { type: ['integer', 'null'], minimum: 0, maximum: 65535, default: DEFAULT_CHAT_LINE_PORT },
    /** holds chat.sqlite */
    dataDir: { type: 'string', minLength: 1 },
    /** shared secret of the gateway: a hello carrying it may share its nickname across connections */
    gatewayToken: { type: 'string', minLength: 16 },
    maxConnectionsPerNick: { type: 'integer', minimum: 1, default: 8 },
    maxConnections: { type: 'integer', minimum: 1, default: 1000 },
    maxRoomsPerConnection: { type: 'integer', minimum: 1, default: 32 },
    maxTextBytes: { type: 'integer', minimum: 1, maximum: CHAT_LIMITS.textMaxBytes, default: CHAT_LIMITS.textMaxBytes },
    /** requests are small JSON headers; anything bigger is an attack or a bug */
    maxHeaderBytes: { type: 'integer', minimum: 256, maximum: 64 * 1024, default: 16 * 1024 },
    /** token bucket, per connection and per nickname: `rateCapacity` say/dm/join/leave/who/rooms per `rateIntervalMs` */
    rateCapacity: { type: 'integer', minimum: 1, default: 20 },
    rateIntervalMs: { type: 'integer', minimum: 1, default: 10_000 },
    /** a frame connection that has not said hello by then is closed */
    helloTimeoutMs: { type: 'integer', minimum: 1, default: 10_000 },
    /** unread output above this disconnects the peer (it cannot keep up with its rooms) */
    maxBufferedBytes: { type: 'integer', minimum: 64 * 1024, default: 8 * 1024 * 1024 },
    /** line mode: a partial line with no more bytes after this long counts as a line */
    lineFlushMs: { type: 'integer', minimum: 1, maximum: 5000, default: 30 },
    historyOnJoin: { type: 'integer', minimum: 0, maximum: HISTORY_ON_JOIN, default: HISTORY_ON_JOIN },
    /** a connection's own recent direct messages, sent after hello (`directs`); always none without gatewayToken */
    directHistoryOnHello: { type: 'integer', minimum: 0, maximum: DIRECT_HISTORY_MAX, default: 50 },
    /** how long the room waits before saying a gateway nick left: a reload is back well within it (0: at once) */
    presenceGraceMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 3000 },
    /** how long a say/dm's ref is remembered, so a retry with it is not posted twice (chat-history.ts) */
    refWindowMs: { type: 'integer', minimum: 1000, maximum: 7 * 24 * 3600_000, default: DEFAULT_REF_WINDOW_MS },
  },
} as const;

export interface ChatOptions {
  host: string;
  port: number;
  lineHost?: string;
  linePort: number | null;
  dataDir: string;
  gatewayToken?: string;
  maxConnectionsPerNick: number;
  maxConnections: number;
  maxRoomsPerConnection: number;
  maxTextBytes: number;
  maxHeaderBytes: number;
  rateCapacity: number;
  rateIntervalMs: number;
  helloTimeoutMs: number;
  maxBufferedBytes: number;
  lineFlushMs: number;
  historyOnJoin: number;
  directHistoryOnHello: number;
  presenceGraceMs: number;
  refWindowMs: number;
}

export class ChatService extends TcpService {
  readonly options: Readonly<ChatOptions>;
  private readonly history: ChatHistory;
  private readonly hub: ChatHub;
  private readonly lineServer: LineChatServer | null;

  constructor(options: Partial<ChatOptions>, deps: { logger?: Logger } = {}) {
    const config = loadConfig<ChatOptions>(chatOptionsSchema, { base: options as Record<string, unknown> });
    const logger = deps.logger ?? silentLogger;
    super({ host: config.host, port: config.port, logger });
    this.options = config;
    this.history = new ChatHistory(config.dataDir, { refWindowMs: config.refWindowMs });
    this.hub = new ChatHub(this.history, {
      maxTextBytes: config.maxTextBytes,
      rateLimit: { capacity: config.rateCapacity, intervalMs: config.rateIntervalMs },
      maxConnectionsPerNick: config.maxConnectionsPerNick,
      maxRoomsPerConnection: config.maxRoomsPerConnection,
      historyOnJoin: config.historyOnJoin,
      directHistoryOnHello: config.directHistoryOnHello,
      presenceGraceMs: config.presenceGraceMs,
    });
    this.lineServer =
      config.linePort === null
        ? null
        : new LineChatServer(this.hub, {
            host: config.lineHost ?? config.host,
            port: config.linePort,
            maxLineBytes: config.maxTextBytes,
            lineFlushMs: config.lineFlushMs,
            maxConnections: config.maxConnections,
            maxBufferedBytes: config.maxBufferedBytes,
            logger,
          });
  }

  /** Starts the frame port and (unless disabled) the line port; resolves with the frame port's address. */
  override async start(): Promise<AddressInfo> {
    const address = await super.start();
    try {
      await this.lineServer?.start();
    } catch (err) {
      await super.close();
      throw err;
    }
    return address;
  }

  /** The line mode's address, or null when line mode is off. */
  lineAddress(): AddressInfo | null {
    return this.lineServer?.address() ?? null;
  }

  protected onConnection(socket: net.Socket): void {
    if (this.connectionCount > this.options.maxConnections) {
      sendErrorAndClose(socket, sbError('SB_ERR_CHAT_TOO_MANY_CONNECTIONS', 'the chat service', this.options.maxConnections), this.logger);
      return;
    }
    socket.setKeepAlive(true, 60_000);
    new ChatConnection(socket, this.hub, {
      gatewayToken: this.options.gatewayToken,
      helloTimeoutMs: this.options.helloTimeoutMs,
      maxHeaderBytes: this.options.maxHeaderBytes,
      maxBufferedBytes: this.options.maxBufferedBytes,
      logger: this.logger,
    });
  }

  protected override async onClose(): Promise<void> {
    await this.lineServer?.close();
    this.history.close();
  }
}
