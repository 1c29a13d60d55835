// /ws/time: the NTP four-timestamp exchange (RFC 5905 §8) over a WebSocket, and a status push.
// The browser sends {cmd:'ping', t0} by its clock; the gateway answers {cmd:'pong', t0, t1, t2}, t1
// stamped on receipt and t2 just before sending, in ms with a sub-ms fraction from a monotonic clock
// anchored to the wall clock (Date.now() alone has 1 ms steps, the whole error budget on a LAN).
// Once a second every socket gets {cmd:'status', serverTime, upstream}: upstream is the gateway's own
// best recent NTP sample against the time service, measured by one poller shared by all sockets,
// running only while at least one socket is open.

import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { GatewayOptions } from '../gateway-options.js';
import type { TimePong, TimeStatus } from '../../protocol/api.js';
import { parseTimeClientMessage } from '../../protocol/browser-messages.js';
import { WallClock } from '../../backends/time/clock.js';
import { sampleNtp } from '../../backends/time/ntp-client.js';
import { parseBackendUrl } from '../upstream/backend-url.js';
import { acceptBrowserSocket, onBrowserMessage, sendJson } from './ws-common.js';

const STATUS_INTERVAL_MS = 1000;
/** How often the gateway measures its offset to the time service while anyone watches. */
const UPSTREAM_POLL_MS = 4000;
const UPSTREAM_SAMPLES = 4;
const UPSTREAM_SAMPLE_SPACING_MS = 20;
const UPSTREAM_TIMEOUT_MS = 1000;

type Upstream = TimeStatus['upstream'];

/** Measures the gateway's offset to the time service; one per app, shared by every /ws/time socket. */
export class UpstreamClock {
  private timer: NodeJS.Timeout | undefined;
  /** bumped by stop(), so a poll that finishes after it is ignored */
  private generation = 0;
  private current: Upstream = null;
  private polling = false;

  constructor(
    private readonly address: { host: string; port: number },
    private readonly report: { markUp(): void; markDown(reason: string): void },
    private readonly logger: FastifyBaseLogger,
  ) {}

  get upstream(): Upstream {
    return this.current;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), UPSTREAM_POLL_MS);
    this.timer.unref();
    void this.poll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.generation++;
    this.current = null;
  }

  private async poll(): Promise<void> {
    // An unanswered time service makes a poll outlast the interval: never stack them.
    if (this.polling) return;
    this.polling = true;
    const generation = this.generation;
    try {
      const { best } = await sampleNtp(this.address.host, this.address.port, {
        samples: UPSTREAM_SAMPLES,
        intervalMs: UPSTREAM_SAMPLE_SPACING_MS,
        timeoutMs: UPSTREAM_TIMEOUT_MS,
      });
      if (generation !== this.generation) return;
      this.current = { offsetMs: best.offsetMs, delayMs: best.delayMs, stratum: best.stratum };
      this.report.markUp();
    } catch (err) {
      if (generation !== this.generation) return;
      const reason = (err as { code?: string }).code ?? 'no answer';
      if (this.current !== null) this.logger.warn({ service: 'time', reason }, 'time service stopped answering');
      this.current = null;
      this.report.markDown(`NTP query failed (${reason})`);
    } finally {
      this.polling = false;
    }
  }
}

/** The sockets watching the clock, the once-a-second status push, and the poller's life cycle. */
class TimeHub {
  private readonly sockets = new Set<WebSocket>();
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly upstream: UpstreamClock,
    private readonly now: () => number,
    private readonly highWaterBytes: number,
  ) {}

  add(ws: WebSocket): void {
    this.sockets.add(ws);
    if (this.sockets.size === 1) {
      this.upstream.start();
      this.ticker = setInterval(() => this.broadcast(), STATUS_INTERVAL_MS);
      this.ticker.unref();
    }
    ws.once('close', () => this.remove(ws));
    this.sendStatus(ws);
  }

  stop(): void {
    for (const ws of this.sockets) this.remove(ws);
  }

  private remove(ws: WebSocket): void {
    if (!this.sockets.delete(ws) || this.sockets.size > 0) return;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.upstream.stop();
  }

  private broadcast(): void {
    for (const ws of this.sockets) this.sendStatus(ws);
  }

  private sendStatus(ws: WebSocket): void {
    // A browser that is not reading skips updates instead of making the gateway queue them.
    if (ws.bufferedAmount > this.highWaterBytes) return;
    const status: TimeStatus = { cmd: 'status', serverTime: this.now(), upstream: this.upstream.upstream };
    sendJson(ws, status);
  }
}

export async function wsTimeRoutes(app: FastifyInstance, opts: { options: GatewayOptions }): Promise<void> {
  const { options } = opts;
  const { limits } = options;
  const wallClock = new WallClock();
  /** Unix ms with µs resolution (a Number holds µs since 1970 exactly; ns would not fit). */
  const now = (): number => Number(wallClock.nowNs() / 1000n) / 1000;
  const upstream = new UpstreamClock(
    parseBackendUrl(options.time, 'udp', 'time service'),
    { markUp: () => app.health.markUp('time'), markDown: (reason) => app.health.markDown('time', reason) },
    app.log,
  );
  const hub = new TimeHub(upstream, now, limits.wsHighWaterBytes);
  app.addHook('onClose', async () => hub.stop());

  app.get('/ws/time', { websocket: true, preValidation: app.wsGuard() }, (socket, request) => {
    const accepted = acceptBrowserSocket(app, socket, request, 'time');
    if (!accepted) return;
    const { logger } = accepted;

    onBrowserMessage(socket, {
      maxBytes: limits.wsMaxMessageBytes,
      logger,
      onText(text) {
        const t1 = now();
        const { t0 } = parseTimeClientMessage(text);
        // A ping flood from a browser that does not read its pongs is answered only while it keeps up.
        if (socket.bufferedAmount > limits.wsHighWaterBytes) return;
        const pong: TimePong = { cmd: 'pong', t0, t1, t2: 0 };
        pong.t2 = now();
        sendJson(socket, pong);
      },
    });
    hub.add(socket);
  });
}
