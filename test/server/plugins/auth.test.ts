// The connection log (issue 5): every WebSocket connect, disconnect and refusal is one structured
// line with user, address and Origin, and never a password, a cookie or what was said.
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { SessionStore } from '../../../server/accounts/session-store.js';
import { LiveSockets } from '../../../server/plugins/auth.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { closeAll, once, openSocket, startGateway, track, waitFor } from '../routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

type LogLine = { level: number; msg: string } & Record<string, unknown>;
const parse = (lines: string[]): LogLine[] => lines.map((l) => JSON.parse(l) as LogLine);

describe('connection log lines', () => {
  it('connect and disconnect: one line each, with user, address, Origin and path; logout closes with 1008', async () => {
    const lines: string[] = [];
    const gw = await startGateway({}, {}, lines);
    const cookie = await gw.login('alice', 'alice-password-secret');
    const socket = await gw.open('/ws/time', cookie);
    socket.send({ cmd: 'ping', t0: 31337.5 });
    await socket.json((m) => m['cmd'] === 'pong');
    const logout = await gw.app.inject({ method: 'POST', url: '/api/logout', cookies: { sb_session: cookie } });
    expect(logout.statusCode).toBe(204);
    expect((await socket.closed).code).toBe(1008);
    await waitFor(() => parse(lines).some((l) => l.msg === 'websocket disconnected'), 5000, 'the disconnect line');

    const who = { level: 30, user: 'alice', remote: '127.0.0.1', origin: gw.origin, url: '/ws/time' };
    const log = parse(lines);
    const connected = log.filter((l) => l.msg === 'websocket connected');
    expect(connected).toEqual([expect.objectContaining(who)]);
    expect(log.filter((l) => l.msg === 'websocket disconnected')).toEqual([expect.objectContaining({ ...who, code: 1008 })]);
    // one line per event at info: no second "open"/"closed" line saying the same
    expect(log.filter((l) => l.level >= 30 && /^websocket (open|closed)$/.test(l.msg))).toEqual([]);
    const text = lines.join('\n');
    for (const secret of [cookie, 'alice-password-secret', '31337.5']) expect(text).not.toContain(secret);
  });

  it('a refused upgrade (foreign Origin) is one line with user, address and Origin', async () => {
    const lines: string[] = [];
    const gw = await startGateway({}, {}, lines);
    const cookie = await gw.login('bob', 'bob-password-secret');
    await expect(
      openSocket(`${gw.origin.replace('http', 'ws')}/ws/time`, { Cookie: `sb_session=${cookie}`, Origin: 'http://evil.example' }),
    ).rejects.toMatchObject({ status: 403 });
    const refused = parse(lines).filter((l) => l.msg === 'websocket refused');
    expect(refused).toEqual([
      expect.objectContaining({ level: 30, user: 'bob', remote: '127.0.0.1', origin: 'http://evil.example', url: '/ws/time', code: 'SB_ERR_ORIGIN_REJECTED' }),
    ]);
    expect(parse(lines).some((l) => l.msg === 'websocket connected')).toBe(false);
    expect(lines.join('\n')).not.toContain(cookie);
  });
});

describe('session expiry closes idle sockets (LiveSockets with a short TTL)', () => {
  it('an idle socket is closed with 1008 "session expired" at the moment its session expires', async () => {
    const sessions = new SessionStore({ ttlMs: 400 });
    const live = new LiveSockets(sessions, pino({ level: 'silent' }));
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    track({
      close: async () => {
        sessions.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    });
    await once(server, 'listening');
    const session = sessions.create({ username: 'alice', role: 'user', credentialsVersion: 1 });
    server.on('connection', (ws) => live.add(session.id, ws));
    const started = Date.now();
    const socket = await openSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, {});
    const { code, reason } = await socket.closed;
    expect({ code, reason }).toEqual({ code: 1008, reason: 'session expired' });
    // within the TTL and a little, not at a later sweep (it was 30 s)
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('the per-account socket limit (maxSocketsPerUser)', () => {
  const wsUrl = (gw: { origin: string }) => `${gw.origin.replace('http', 'ws')}/ws/time`;

  it('accepts the upgrade over the limit and closes it at once with 1013 SB_ERR_TOO_MANY_SOCKETS, so a browser can say why', async () => {
    const lines: string[] = [];
    const gw = await startGateway({}, { maxSocketsPerUser: 2 }, lines);
    const cookie = await gw.login('alice', 'alice-password-secret');
    const [one, two] = [await gw.open('/ws/time', cookie), await gw.open('/ws/time', cookie)];
    const third = await gw.open('/ws/time', cookie);
    expect(await third.closed).toEqual({ code: 1013, reason: 'SB_ERR_TOO_MANY_SOCKETS' });
    // only a Close frame: no message a /ws/raw client would misread
    expect(third.messages).toEqual([]);
    expect(parse(lines).filter((l) => l.msg === 'websocket refused')).toEqual([
      expect.objectContaining({ level: 30, user: 'alice', url: '/ws/time', code: 'SB_ERR_TOO_MANY_SOCKETS', sockets: 2 }),
    ]);
    // another account is not counted against alice
    const bob = await gw.login('bob', 'bob-password-secret');
    const bobs = await gw.open('/ws/time', bob);
    await bobs.json((m) => m['cmd'] === 'status');
    // the two that were admitted work; closing one makes room
    await one.json((m) => m['cmd'] === 'status');
    await two.close();
    await waitFor(async () => {
      const next = await gw.open('/ws/time', cookie);
      const ok = await Promise.race([next.json((m) => m['cmd'] === 'status', 1000).then(() => true), next.closed.then(() => false)]);
      return ok;
    }, 5000, 'a socket admitted after one closed');
  });

  it('upgrades that arrive together never get past the limit', async () => {
    const gw = await startGateway({}, { maxSocketsPerUser: 3 });
    const cookie = await gw.login('alice', 'alice-password-secret');
    const sockets = await Promise.all(Array.from({ length: 8 }, () => openSocket(wsUrl(gw), { Cookie: `sb_session=${cookie}`, Origin: gw.origin })));
    const outcomes = await Promise.all(
      sockets.map((s) => Promise.race([s.closed.then((c) => c.reason), s.json((m) => m['cmd'] === 'status', 3000).then(() => 'open')])),
    );
    expect(outcomes.filter((o) => o === 'open')).toHaveLength(3);
    expect(outcomes.filter((o) => o === 'SB_ERR_TOO_MANY_SOCKETS')).toHaveLength(5);
  });
});
