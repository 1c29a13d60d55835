// The gateway's view of its backends: up or down since when, and why. Fed by the HealthMonitor's
// probes and by the WebSocket routes when an upstream connection fails; read by GET /api/health.
// Reasons are short and secret-free (an errno code, never a secret or an address with credentials).

import type { Health, ServiceHealth, ServiceName } from '../../protocol/api.js';

export const SERVICE_NAMES: readonly ServiceName[] = ['chat', 'exec', 'files', 'time'];

export type HealthListener = (service: ServiceName, health: ServiceHealth) => void;

export class HealthRegistry {
  private readonly state = new Map<ServiceName, ServiceHealth>();
  private readonly listeners = new Set<HealthListener>();

  constructor(now: number = Date.now()) {
    // Unknown until the first probe answers: reported as down so nothing claims a service it never reached.
    for (const name of SERVICE_NAMES) this.state.set(name, { status: 'down', since: now, reason: 'not probed yet' });
  }

  markUp(service: ServiceName): void {
    if (this.state.get(service)?.status === 'up') return;
    this.set(service, { status: 'up', since: Date.now() });
  }

  markDown(service: ServiceName, reason: string): void {
    const current = this.state.get(service);
    if (current?.status === 'down' && current.reason === reason) return;
    const since = current?.status === 'down' ? current.since : Date.now();
    this.set(service, { status: 'down', since, reason: reason.slice(0, 200) });
  }

  get(service: ServiceName): ServiceHealth {
    return this.state.get(service)!;
  }

  snapshot(): Health {
    const services = {} as Record<ServiceName, ServiceHealth>;
    for (const name of SERVICE_NAMES) services[name] = { ...this.state.get(name)! };
    return { services };
  }

  onChange(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(service: ServiceName, health: ServiceHealth): void {
    this.state.set(service, health);
    for (const listener of this.listeners) listener(service, health);
  }
}
