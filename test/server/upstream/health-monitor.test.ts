import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { TimeService } from '../../../backends/time/time-service.js';
import { HealthMonitor, type Probe } from '../../../server/upstream/health-monitor.js';
import { HealthRegistry } from '../../../server/upstream/health-registry.js';

const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

const timing = { upIntervalMs: 50, baseBackoffMs: 20, maxBackoffMs: 80, probeTimeoutMs: 500 };

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}

describe('HealthMonitor', () => {
  it('marks real TCP and NTP backends up and a closed port down with its errno', async () => {
    const server = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const time = new TimeService({ port: 0 });
    const t = await time.start();
    cleanup.push(() => time.close());
    const port = (server.address() as AddressInfo).port;
    const registry = new HealthRegistry();
    const monitor = new HealthMonitor(
      { chat: `tcp://127.0.0.1:${port}`, exec: `tcp://127.0.0.1:${port}`, files: 'tcp://127.0.0.1:1', time: `udp://127.0.0.1:${t.port}` },
      registry,
      log,
      timing,
    );
    cleanup.push(() => monitor.stop());
    monitor.start();
    await until(() => registry.get('chat').status === 'up' && registry.get('time').status === 'up' && registry.get('files').reason === 'ECONNREFUSED');
    expect(registry.get('exec').status).toBe('up');
    expect(registry.get('files').status).toBe('down');
  });

  it('retries a down service with backoff and notices when it comes back; stop() ends the probing', async () => {
    let attempts = 0;
    let healthy = false;
    const flaky: Probe = async () => {
      attempts += 1;
      if (!healthy) throw Object.assign(new Error('nope'), { code: 'ECONNREFUSED' });
    };
    const registry = new HealthRegistry();
    const monitor = new HealthMonitor(
      { chat: 'tcp://127.0.0.1:1', exec: 'tcp://127.0.0.1:1', files: 'tcp://127.0.0.1:1', time: 'udp://127.0.0.1:1' },
      registry,
      log,
      timing,
      { chat: flaky, exec: async () => undefined, files: async () => undefined, time: async () => undefined },
    );
    cleanup.push(() => monitor.stop());
    monitor.start();
    await until(() => attempts >= 3);
    expect(registry.get('chat').status).toBe('down');
    healthy = true;
    await until(() => registry.get('chat').status === 'up');
    monitor.stop();
    const after = attempts;
    await new Promise((r) => setTimeout(r, 200));
    expect(attempts).toBe(after);
  });

  it('re-probes soon when a route marks an up service down, instead of waiting for the steady interval (regression)', async () => {
    let probes = 0;
    const counting: Probe = async () => {
      probes += 1;
    };
    const registry = new HealthRegistry();
    const slowUp = { ...timing, upIntervalMs: 60_000 };
    const up = async () => undefined;
    const monitor = new HealthMonitor(
      { chat: 'tcp://127.0.0.1:1', exec: 'tcp://127.0.0.1:1', files: 'tcp://127.0.0.1:1', time: 'udp://127.0.0.1:1' },
      registry,
      log,
      slowUp,
      { chat: counting, exec: up, files: up, time: up },
    );
    cleanup.push(() => monitor.stop());
    monitor.start();
    await until(() => registry.get('chat').status === 'up');
    expect(probes).toBe(1);
    // a WebSocket route saw a reset; the backend itself is fine again
    registry.markDown('chat', 'ECONNRESET');
    await until(() => registry.get('chat').status === 'up');
    expect(probes).toBe(2);
  });
});
