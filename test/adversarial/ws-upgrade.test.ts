// WebSocket upgrades are refused before any 101: no session → 401, a foreign or look-alike Origin
// → 403, a user on an admin route → 403; logging out closes the session's open sockets with 1008.
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, login, testGateway } from '../server/app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A gateway listening on port 0 with two probe routes built only from the auth plugin's surface. */
async function listening(extra: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; base: string; origin: string }> {
  const { app } = await testGateway({ extra });
  await app.register(async (scope) => {
    scope.get('/ws/probe', { websocket: true, preValidation: scope.wsGuard() }, (socket, request) => {
      scope.liveSockets.add(request.session!.id, socket);
      socket.send('welcome');
    });
    scope.get('/ws/probe-admin', { websocket: true, preValidation: scope.wsGuard({ role: 'admin' }) }, (socket, request) => {
      scope.liveSockets.add(request.session!.id, socket);
      socket.send('welcome');
    });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, base: `ws://127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` };
}

/** Resolves with the HTTP status of a refused upgrade, or 101 once the socket opens. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('WebSocket upgrade guard', () => {
  it('refuses an upgrade without a session with 401', async () => {
    const { base, origin } = await listening();
    expect((await upgradeStatus(`${base}/ws/probe`, { origin })).status).toBe(401);
    expect((await upgradeStatus(`${base}/ws/chat`, { origin })).status).toBe(401);
  });

  it('refuses foreign, null, look-alike, downgraded and wrong-port Origins with 403, accepts its own', async () => {
    const { app, base, origin } = await listening({ origins: ['https://dev.example:5173'] });
    const cookie = `sb_session=${await login(app)}`;
    const port = new URL(origin).port;
    const bad = [
      'http://evil.example',
      'null',
      `http://127.0.0.1:${port}.evil.com`,
      `http://127.0.0.1.evil.com:${port}`,
      `http://127.0.0.1:${Number(port) + 1}`,
      `https://127.0.0.1:${port}`,
      'http://dev.example:5173', // scheme downgrade of an allowed extra origin
      'https://dev.example:5174',
    ];
    for (const o of bad) {
      expect({ o, status: (await upgradeStatus(`${base}/ws/probe`, { origin: o, cookie })).status }).toEqual({ o, status: 403 });
    }
    for (const o of [origin, 'https://dev.example:5173']) {
      const { status, ws } = await upgradeStatus(`${base}/ws/probe`, { origin: o, cookie });
      expect(status).toBe(101);
      ws!.close();
    }
  });

  it('refuses a user account on admin routes (/ws/exec) with 403 and admits an admin', async () => {
    const { app, base, origin } = await listening();
    const userCookie = `sb_session=${await login(app, 'alice')}`;
    expect((await upgradeStatus(`${base}/ws/exec`, { origin, cookie: userCookie })).status).toBe(403);
    expect((await upgradeStatus(`${base}/ws/probe-admin`, { origin, cookie: userCookie })).status).toBe(403);
    const adminCookie = `sb_session=${await login(app, 'root')}`;
    const { status, ws } = await upgradeStatus(`${base}/ws/probe-admin`, { origin, cookie: adminCookie });
    expect(status).toBe(101);
    ws!.close();
  });

  it('closes the open sockets of a session with 1008 when it logs out, and only those', async () => {
    const { app, base, origin } = await listening();
    const mine = await login(app, 'alice');
    const other = await login(app, 'root');
    const a = (await upgradeStatus(`${base}/ws/probe`, { origin, cookie: `sb_session=${mine}` })).ws!;
    const b = (await upgradeStatus(`${base}/ws/probe`, { origin, cookie: `sb_session=${mine}` })).ws!;
    const c = (await upgradeStatus(`${base}/ws/probe`, { origin, cookie: `sb_session=${other}` })).ws!;
    const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const [ca, cb] = [closed(a), closed(b)];
    const res = await fetch(`${origin}/api/logout`, { method: 'POST', headers: { origin, cookie: `sb_session=${mine}` } });
    expect(res.status).toBe(204);
    expect(await ca).toBe(1008);
    expect(await cb).toBe(1008);
    expect(c.readyState).toBe(WebSocket.OPEN);
    c.close();
  });

  it('caps open sockets per user (maxSocketsPerUser)', async () => {
    const { app, base, origin } = await listening({ limits: { maxSocketsPerUser: 2 } });
    const cookie = `sb_session=${await login(app)}`;
    const one = await upgradeStatus(`${base}/ws/probe`, { origin, cookie });
    const two = await upgradeStatus(`${base}/ws/probe`, { origin, cookie });
    expect([one.status, two.status]).toEqual([101, 101]);
    // Over the limit: accepted, then closed at once with the code as the reason, so a page can say why
    // (a refused upgrade reaches a browser only as 1006).
    const three = await upgradeStatus(`${base}/ws/probe`, { origin, cookie });
    expect(three.status).toBe(101);
    const closed = await new Promise<[number, string]>((resolve) => three.ws!.once('close', (code, why) => resolve([code, why.toString()])));
    expect(closed).toEqual([1013, 'SB_ERR_TOO_MANY_SOCKETS']);
    one.ws!.close();
    two.ws!.close();
  });

  it('closes open sockets with 1001 when the gateway shuts down', async () => {
    const { app, base, origin } = await listening();
    const cookie = `sb_session=${await login(app)}`;
    const { ws } = await upgradeStatus(`${base}/ws/probe`, { origin, cookie });
    const code = new Promise<number>((resolve) => ws!.once('close', (c) => resolve(c)));
    await app.close();
    expect(await code).toBe(1001);
  });
});
