// Probes each backend and feeds the HealthRegistry: a TCP connect for chat, exec and files, an NTP
// query (RFC 5905 client mode) for time. While a service is down it is retried with exponential
// backoff and full jitter (so many gateways do not hammer a recovering backend in step); while up it
// is re-checked at a slower, steady interval. stop() cancels every timer and pending probe.

import net from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { ServiceName } from '../../protocol/api.js';
import { queryNtp } from '../../backends/time/ntp-client.js';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl, type BackendAddress } from './backend-url.js';
import type { HealthRegistry } from './health-registry.js';
import { SERVICE_NAMES } from './health-registry.js';

export interface HealthMonitorTiming {
  upIntervalMs: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  probeTimeoutMs: number;
}

export const DEFAULT_HEALTH_TIMING: HealthMonitorTiming = { upIntervalMs: 15_000, baseBackoffMs: 500, maxBackoffMs: 30_000, probeTimeoutMs: 3000 };

export type Probe = (address: BackendAddress, timeoutMs: number, signal: AbortSignal) => Promise<void>;

/** Resolves once a TCP connection is established (then closes it at once). */
export const tcpProbe: Probe = (address, timeoutMs, signal) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const done = (err?: Error) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(Object.assign(new Error('probe cancelled'), { code: 'ECANCELED' }));
    const timer = setTimeout(() => done(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done());
    socket.once('error', (err) => done(err));
  });

/** Resolves once the time service answers one NTP query. */
export const ntpProbe: Probe = async (address, timeoutMs) => {
  await queryNtp(address.host, address.port, { timeoutMs });
};

/** errno-style code or a short message: never an address with credentials, never a secret. */
function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message.slice(0, 120) : 'unreachable';
}

export class HealthMonitor {
  private readonly targets: Array<{ service: ServiceName; address: BackendAddress; probe: Probe; failures: number; checking: boolean; timer?: NodeJS.Timeout }>;
  private readonly abort = new AbortController();
  private running = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    options: Pick<GatewayOptions, ServiceName>,
    private readonly registry: HealthRegistry,
    private readonly log: FastifyBaseLogger,
    private readonly timing: HealthMonitorTiming = DEFAULT_HEALTH_TIMING,
    probes: Partial<Record<ServiceName, Probe>> = {},
  ) {
    this.targets = SERVICE_NAMES.map((service) => {
      const scheme = service === 'time' ? 'udp' : 'tcp';
      return {
        service,
        address: parseBackendUrl(options[service], scheme, `--${service}`),
        probe: probes[service] ?? (service === 'time' ? ntpProbe : tcpProbe),
        failures: 0,
        checking: false,
      };
    });
  }

  /**
   * A WebSocket route saw a backend fail and marked it down: probe it soon rather than at the next
   * steady up-interval, so /api/health shows it up again as soon as it is back.
   */
  private readonly onHealthChange = (service: ServiceName, health: { status: 'up' | 'down' }): void => {
    if (!this.running || health.status !== 'down') return;
    const target = this.targets.find((t) => t.service === service);
    // The monitor's own probes already retry a service they found down, with backoff.
    if (!target || target.checking || target.failures > 0) return;
    clearTimeout(target.timer);
    target.timer = setTimeout(() => void this.check(target), this.timing.baseBackoffMs);
    target.timer.unref();
  };

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.registry.onChange(this.onHealthChange);
    for (const target of this.targets) void this.check(target);
  }

  stop(): void {
    this.running = false;
    this.unsubscribe?.();
    this.abort.abort();
    for (const target of this.targets) clearTimeout(target.timer);
  }

  private async check(target: HealthMonitor['targets'][number]): Promise<void> {
    let delay: number;
    target.checking = true;
    try {
      await target.probe(target.address, this.timing.probeTimeoutMs, this.abort.signal);
      if (!this.running) return;
      if (this.registry.get(target.service).status !== 'up') this.log.info({ service: target.service }, 'backend up');
      this.registry.markUp(target.service);
      target.failures = 0;
      delay = this.timing.upIntervalMs;
    } catch (err) {
      if (!this.running) return;
      const reason = reasonOf(err);
      if (this.registry.get(target.service).status === 'up') this.log.warn({ service: target.service, reason }, 'backend down');
      this.registry.markDown(target.service, reason);
      target.failures += 1;
      const ceiling = Math.min(this.timing.maxBackoffMs, this.timing.baseBackoffMs * 2 ** Math.min(target.failures - 1, 20));
      delay = ceiling / 2 + Math.random() * (ceiling / 2);
    }
    target.checking = false;
    target.timer = setTimeout(() => void this.check(target), delay);
    target.timer.unref();
  }
}
