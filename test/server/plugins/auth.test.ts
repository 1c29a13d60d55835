// The connection log (issue 5): every WebSocket connect, disconnect and refusal is one structured
// line with user, address and Origin, and never a password, a cookie or what was said.
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { closeAll, openSocket, startGateway, waitFor } from '../routes/ws-kit.js';

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
