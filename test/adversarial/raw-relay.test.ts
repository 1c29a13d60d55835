// Attacks on the raw relay (/ws/raw/:target): an open relay into the network is the classic
// websockify mistake. Every spelling of a target that is not configured must be refused with 404
// SB_ERR_RAW_TARGET_UNKNOWN before any 101 and before any connection is attempted — checked by
// listening TCP servers on the would-be targets counting zero accepted connections — and the relay
// must keep serving a well-behaved client afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { startRawGateway, type RawGateway } from '../server/relay/gateway-harness.js';
import { collectUntilClose, openClient, rawUpgrade, receiveBytes, refusalCode, startEchoTarget, startTarget, type TestTarget } from '../server/relay/relay-targets.js';

let g: RawGateway;
let echo: TestTarget;
/** A listening server that must never be reached: the would-be target of every attack. */
let bystander: TestTarget;

// One gateway for the whole file (each case is independent and leaves it as it found it).
beforeAll(async () => {
  echo = await startEchoTarget();
  bystander = await startTarget();
  g = await startRawGateway({ echo: `127.0.0.1:${echo.port}` }, { rawMaxMessageBytes: 4096 });
});
afterAll(async () => {
  await g.app.close();
  await echo.close();
  await bystander.close();
  await removeTempDirs();
});

async function expectWellBehavedClientServed(): Promise<void> {
  const ws = await openClient(`${g.base}/ws/raw/echo`, { headers: g.headers });
  const back = receiveBytes(ws, 5);
  ws.send(Buffer.from('hello'));
  expect((await back).toString()).toBe('hello');
  ws.terminate();
}

async function expectRefused(path: string, status: number, code: string, headers = g.headers): Promise<void> {
  const before = { echo: echo.accepted, bystander: bystander.accepted };
  const answer = await rawUpgrade(g.base, path, headers);
  expect(answer, path).toEqual({ status, code });
  expect(bystander.accepted, path).toBe(before.bystander);
  expect(echo.accepted, path).toBe(before.echo);
}

describe('raw relay: client-chosen targets are refused (no open relay)', () => {
  const spellings = () => {
    const p = bystander.port;
    return [
      `/ws/raw/127.0.0.1:${p}`,
      `/ws/raw/127.0.0.1%3A${p}`,
      `/ws/raw/localhost:${p}`,
      `/ws/raw/localhost:22`,
      `/ws/raw/%2e%2e/raw/echo`,
      `/ws/raw/%2e`,
      `/ws/raw/ech%6f%00`,
      `/ws/raw/[::1]:${p}`,
      `/ws/raw/%5B%3A%3A1%5D%3A${p}`,
      `/ws/raw/[::ffff:127.0.0.1]:${p}`,
      `/ws/raw/0x7f000001:${p}`,
      `/ws/raw/2130706433:${p}`,
      `/ws/raw/2130706433`,
      `/ws/raw/0177.0.0.1:${p}`,
      `/ws/raw/169.254.169.254:80`,
      `/ws/raw/169.254.169.254`,
      `/ws/raw/metadata.google.internal`,
      `/ws/raw/metadata.google.internal:80`,
      `/ws/raw/tcp:%2F%2F127.0.0.1:${p}`,
      `/ws/raw/__proto__`,
      `/ws/raw/constructor`,
      `/ws/raw/toString`,
      `/ws/raw/ECHO`,
      `/ws/raw/echo%20`,
      `/ws/raw/echo/`,
      `/ws/raw/echo/127.0.0.1:${p}`,
      `/ws/raw/`,
      `/ws/raw/?target=127.0.0.1:${p}`,
      `/ws/raw/echo?target=127.0.0.1:${p}`,
      `/ws/raw/echo?host=127.0.0.1&port=${p}`,
      `/ws/raw/echo?port=${p}`,
      `/ws/raw/echo?target=169.254.169.254:80`,
    ];
  };

  it('refuses every spelling of a non-configured target with 404 SB_ERR_RAW_TARGET_UNKNOWN, connecting to nothing', async () => {
    for (const path of spellings()) {
      await expectRefused(path, 404, 'SB_ERR_RAW_TARGET_UNKNOWN').catch((e: Error) => {
        throw new Error(`${path}: ${e.message}`);
      });
    }
    expect(bystander.accepted).toBe(0);
    await expectWellBehavedClientServed();
  });

  it('refuses an upgrade without a session with 401 before any 101, connecting to nothing', async () => {
    await expectRefused('/ws/raw/echo', 401, 'SB_ERR_AUTH_REQUIRED', { origin: g.origin });
    await expectRefused(`/ws/raw/127.0.0.1:${bystander.port}`, 401, 'SB_ERR_AUTH_REQUIRED', { origin: g.origin });
    await expectRefused('/ws/raw/echo', 401, 'SB_ERR_AUTH_REQUIRED', { origin: g.origin, cookie: 'sb_session=forged-session-id' });
    await expectWellBehavedClientServed();
  });

  it('refuses a cross-site Origin with 403 (WebSocket hijacking), connecting to nothing', async () => {
    await expectRefused('/ws/raw/echo', 403, 'SB_ERR_ORIGIN_REJECTED', { ...g.headers, origin: 'http://evil.example' });
    await expectWellBehavedClientServed();
  });

  it('refuses a client that does not speak the binary subprotocol', async () => {
    const before = echo.accepted;
    expect(await rawUpgrade(g.base, '/ws/raw/echo', g.headers, 'base64')).toEqual({ status: 400, code: 'SB_ERR_RAW_SUBPROTOCOL' });
    expect(echo.accepted).toBe(before);
    await expectWellBehavedClientServed();
  });

  it('closes 1009 on a message over rawMaxMessageBytes, and only that socket', async () => {
    const bystanderSocket = await openClient(`${g.base}/ws/raw/echo`, { headers: g.headers });
    const ws = await openClient(`${g.base}/ws/raw/echo`, { headers: g.headers });
    const closed = collectUntilClose(ws);
    ws.send(Buffer.alloc(4097));
    expect((await closed).code).toBe(1009);
    const back = receiveBytes(bystanderSocket, 2);
    bystanderSocket.send(Buffer.from('ok'));
    expect((await back).toString()).toBe('ok');
    bystanderSocket.terminate();
    await expectWellBehavedClientServed();
  });

  it('survives an empty message and a text message (bytes relayed, nothing crashes)', async () => {
    const ws = await openClient(`${g.base}/ws/raw/echo`, { headers: g.headers });
    ws.send(Buffer.alloc(0));
    const back = receiveBytes(ws, 4);
    ws.send('text');
    expect((await back).toString()).toBe('text');
    ws.terminate();
    await expectWellBehavedClientServed();
  });
});
