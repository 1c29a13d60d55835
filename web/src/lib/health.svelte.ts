// Polls GET /api/health (no login needed) so each panel can say whether its backend is up,
// independently of whether this tab's own WebSocket is connected.
import type { Health, ServiceHealth, ServiceName } from '../../../protocol/api.js';
import { apiJson } from './api.js';

export class HealthMonitor {
  services = $state<Partial<Record<ServiceName, ServiceHealth>>>({});
  /** false when the gateway itself did not answer the last poll */
  reachable = $state(true);

  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly intervalMs = 5000) {}

  start(): void {
    if (this.#timer) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async poll(): Promise<void> {
    try {
      const health = await apiJson<Health>('/api/health');
      this.services = health.services;
      this.reachable = true;
    } catch {
      this.reachable = false;
    }
  }

  statusOf(service: ServiceName): 'up' | 'down' | 'unknown' {
    if (!this.reachable) return 'down';
    return this.services[service]?.status ?? 'unknown';
  }
}
