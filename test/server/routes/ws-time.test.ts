// /ws/time against a real TimeService: the four-timestamp ping/pong, the status push with the
// gateway's own NTP offset, a time service that is down, and the shared poller's life cycle.
import { afterEach, describe, expect, it } from 'vitest';
import { TimeService } from '../../../backends/time/time-service.js';
import { closeAll, startGateway, track, waitFor } from './ws-kit.js';
import type { TimePong, TimeStatus } from '../../../protocol/api.js';

afterEach(closeAll);

async function startTime() {
  const service = track(new TimeService({ port: 0 }));
  const { port } = await service.start();
  return { service, url: `udp://127.0.0.1:${port}` };
}

const isStatus = (m: Record<string, unknown>) => m['cmd'] === 'status';

describe('/ws/time', () => {
  it('answers ping with t0 echoed and t1 <= t2 stamped by the gateway clock', async () => {
    const time = await startTime();
    const gw = await startGateway({ time: time.url });
    const socket = await gw.open('/ws/time', await gw.login('alice', 'alice-password'));
    const t0 = Date.now() - 0.5;
    socket.send({ cmd: 'ping', t0 });
    const pong = await socket.json<TimePong>((m) => m['cmd'] === 'pong');
    expect(pong.t0).toBe(t0);
    expect(pong.t1).toBeLessThanOrEqual(pong.t2);
    // the same machine's clock: the gateway's stamps lie between the client's send and receipt
    expect(pong.t1).toBeGreaterThanOrEqual(Math.floor(t0));
    expect(pong.t2).toBeLessThanOrEqual(Date.now() + 1);

    socket.send({ cmd: 'ping', t0: 'yesterday' });
    expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID' });
    socket.send({ cmd: 'ping', t0: 1 });
    expect(await socket.json((m) => m['cmd'] === 'pong')).toMatchObject({ t0: 1 });
  });

  it('pushes status every second with the upstream NTP offset, and marks time up', async () => {
    const time = await startTime();
    const gw = await startGateway({ time: time.url });
    const socket = await gw.open('/ws/time', await gw.login('alice', 'alice-password'));
    let status: TimeStatus | undefined;
    await waitFor(async () => {
      status = await socket.json<TimeStatus>(isStatus, 3000);
      return status.upstream !== null;
    }, 8000, 'a status with upstream');
    expect(Math.abs(status!.serverTime - Date.now())).toBeLessThan(5000);
    // one machine, one clock: the offset is the measurement's noise
    expect(Math.abs(status!.upstream!.offsetMs)).toBeLessThan(100);
    expect(status!.upstream!.delayMs).toBeGreaterThanOrEqual(0);
    expect(status!.upstream!.stratum).toBe(10);
    expect(gw.app.healthRegistry.get('time').status).toBe('up');
  });

  it('a time service that is down gives upstream null and marks time down', async () => {
    const time = await startTime();
    const url = time.url;
    await time.service.close();
    const gw = await startGateway({ time: url });
    const socket = await gw.open('/ws/time', await gw.login('alice', 'alice-password'));
    await waitFor(() => gw.app.healthRegistry.get('time').status === 'down' && gw.app.healthRegistry.get('time').reason !== 'not probed yet', 5000, 'time down');
    const status = await socket.json<TimeStatus>(isStatus);
    expect(status.upstream).toBeNull();
    // the clock itself still works
    socket.send({ cmd: 'ping', t0: 5 });
    expect(await socket.json((m) => m['cmd'] === 'pong')).toMatchObject({ t0: 5 });
  });

  it('one poller for all sockets, stopped when the last socket closes', async () => {
    const time = await startTime();
    const gw = await startGateway({ time: time.url });
    const cookie = await gw.login('alice', 'alice-password');
    const a = await gw.open('/ws/time', cookie);
    const b = await gw.open('/ws/time', cookie);
    await waitFor(() => time.service.stats.ntpReplies > 0, 5000, 'a first poll');
    await a.close();
    await b.close();
    await new Promise((r) => setTimeout(r, 300));
    const after = time.service.stats.ntpReplies;
    // one poll round is 4 samples; two sockets must not have doubled it
    expect(after % 4).toBe(0);
    expect(after).toBeLessThanOrEqual(8);
    await new Promise((r) => setTimeout(r, 4500));
    expect(time.service.stats.ntpReplies).toBe(after);
  });
});
