// /ws/raw/:target through the real gateway: login, configured targets only, the relay core behind it.
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { removeTempDirs } from '../../helpers/tmp.js';
import { startRawGateway, type RawGateway } from '../relay/gateway-harness.js';
import {
  collectUntilClose,
  onCleanup,
  openClient,
  patternBytes,
  receiveBytes,
  refusalCode,
  runCleanups,
  sha256,
  startEchoTarget,
  startTarget,
  target,
} from '../relay/relay-targets.js';

afterEach(async () => {
  await runCleanups();
  await removeTempDirs();
});

async function gateway(raw: Record<string, string>, limits: Record<string, number> = {}): Promise<RawGateway> {
  const g = await startRawGateway(raw, limits);
  onCleanup(() => g.app.close());
  return g;
}

async function client(g: RawGateway, path: string, protocols = ['binary']): Promise<WebSocket> {
  const ws = await openClient(g.base + path, { headers: g.headers, protocols });
  onCleanup(() => ws.terminate());
  return ws;
}

describe('/ws/raw/:target', () => {
  it('echoes several MB byte for byte through a configured target, subprotocol binary', async () => {
    const echo = await target(startEchoTarget);
    const g = await gateway({ echo: `127.0.0.1:${echo.port}` });
    const ws = await client(g, '/ws/raw/echo', ['base64', 'binary']);
    expect(ws.protocol).toBe('binary');
    const payload = patternBytes(4 * 1024 * 1024, 9);
    const back = receiveBytes(ws, payload.length);
    for (let off = 0; off < payload.length; off += 60_000) ws.send(payload.subarray(off, off + 60_000));
    expect(sha256(await back)).toBe(sha256(payload));
  });

  it('relays messages up to rawMaxMessageBytes, larger than the chat/exec limit (regression: one server-wide maxPayload)', async () => {
    const echo = await target(startEchoTarget);
    const g = await gateway({ echo: `127.0.0.1:${echo.port}` });
    const ws = await client(g, '/ws/raw/echo');
    const payload = patternBytes(512 * 1024, 3); // 8 × the 64 KiB wsMaxMessageBytes, under the 1 MiB raw limit
    const back = receiveBytes(ws, payload.length);
    ws.send(payload);
    expect(sha256(await back)).toBe(sha256(payload));
  });

  it('writes nothing more to the target once it has closed the WebSocket (1009), even what the browser sent before seeing the close', async () => {
    const got: Buffer[] = [];
    const sink = await target(() => startTarget((s) => s.on('data', (d: Buffer) => got.push(d))));
    // wsMaxMessageBytes (64 KiB) above rawMaxMessageBytes: the relay's own check refuses, not ws's maxPayload
    const g = await gateway({ sink: `127.0.0.1:${sink.port}` }, { rawMaxMessageBytes: 2048 });
    const ws = await client(g, '/ws/raw/sink');
    ws.send(Buffer.from('before'));
    const closed = collectUntilClose(ws);
    ws.send(Buffer.alloc(4096, 0x78)); // refused: close 1009 starts
    ws.send(Buffer.from('after')); // already on the wire: arrives while the socket is CLOSING
    expect((await closed).code).toBe(1009);
    await new Promise((r) => setTimeout(r, 200));
    expect(Buffer.concat(got).toString()).toBe('before');
  });

  it('delivers the whole tail when the target writes 1 MB and closes at once', async () => {
    const payload = patternBytes(1024 * 1024, 4);
    const source = await target(() => startTarget((s) => s.end(payload)));
    const g = await gateway({ src: `127.0.0.1:${source.port}` });
    const ws = await client(g, '/ws/raw/src');
    const { data, code } = await collectUntilClose(ws);
    expect(sha256(data)).toBe(sha256(payload));
    expect(code).toBe(1000);
  });

  it('refuses an unknown name with 404 SB_ERR_RAW_TARGET_UNKNOWN and connects to nothing', async () => {
    const echo = await target(startEchoTarget);
    const g = await gateway({ echo: `127.0.0.1:${echo.port}` });
    const err = await openClient(`${g.base}/ws/raw/127.0.0.1:${echo.port}`, { headers: g.headers }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(404);
    expect(refusalCode(err)).toBe('SB_ERR_RAW_TARGET_UNKNOWN');
    expect(echo.accepted).toBe(0);
  });

  it('requires a login: 401 before any 101 or connection', async () => {
    const echo = await target(startEchoTarget);
    const g = await gateway({ echo: `127.0.0.1:${echo.port}` });
    const err = await openClient(`${g.base}/ws/raw/echo`, { headers: { origin: g.origin } }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(401);
    expect(refusalCode(err)).toBe('SB_ERR_AUTH_REQUIRED');
    expect(echo.accepted).toBe(0);
  });

  it('closes the target when the browser leaves, and the browser when the target closes', async () => {
    let ended!: () => void;
    const targetEnded = new Promise<void>((r) => (ended = r));
    const sink = await target(() => startTarget((s) => s.on('end', () => ended()).resume()));
    const g = await gateway({ sink: `127.0.0.1:${sink.port}` });
    const ws = await client(g, '/ws/raw/sink');
    ws.close();
    await targetEnded;
    const closer = await target(() => startTarget((s) => setTimeout(() => s.end(), 50)));
    const g2 = await gateway({ closer: `127.0.0.1:${closer.port}` });
    const ws2 = await client(g2, '/ws/raw/closer');
    expect((await collectUntilClose(ws2)).code).toBe(1000);
  });

  it('closes an idle relay after limits.rawIdleTimeoutMs with 1011 SB_ERR_TIMEOUT (regression: always the 1 h default)', async () => {
    const echo = await target(startEchoTarget);
    const g = await gateway({ echo: `127.0.0.1:${echo.port}` }, { rawIdleTimeoutMs: 1000 });
    const ws = await client(g, '/ws/raw/echo');
    const back = receiveBytes(ws, 3);
    ws.send(Buffer.from('hi!'));
    await back;
    const quietSince = Date.now();
    const closed = collectUntilClose(ws);
    const tooLate = new Promise<'still open'>((r) => setTimeout(() => r('still open'), 5000).unref());
    const outcome = await Promise.race([closed, tooLate]);
    expect(outcome).toMatchObject({ code: 1011, reason: 'SB_ERR_TIMEOUT' });
    expect(Date.now() - quietSince).toBeGreaterThanOrEqual(900);
  });

  it('closes 1011 SB_ERR_CONNECT when the configured target is down', async () => {
    const gone = await startTarget();
    await gone.close();
    const g = await gateway({ down: `127.0.0.1:${gone.port}` });
    const ws = await client(g, '/ws/raw/down');
    const { code, reason } = await collectUntilClose(ws);
    expect(code).toBe(1011);
    expect(reason).toBe('SB_ERR_CONNECT');
  });
});
