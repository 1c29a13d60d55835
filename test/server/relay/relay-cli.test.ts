// `sockbridge relay LISTEN TARGET` as a user runs it: the real CLI process (dist/, see test/helpers/cli.ts).
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { runCli, startCli, stopAllCli } from '../../helpers/cli.js';
import {
  collectUntilClose,
  onCleanup,
  openClient,
  patternBytes,
  receiveBytes,
  runCleanups,
  sha256,
  startEchoTarget,
  startTarget,
  target,
} from './relay-targets.js';

afterEach(async () => {
  await runCleanups();
  await stopAllCli();
});

async function startRelay(targetPort: number, extra: string[] = []): Promise<string> {
  const proc = startCli(['relay', ...extra, '127.0.0.1:0', `127.0.0.1:${targetPort}`]);
  const m = await proc.waitFor(/sockbridge relay listening on (ws:\/\/127\.0\.0\.1:\d+)/);
  return `${m[1]}/`;
}

async function client(url: string): Promise<WebSocket> {
  const ws = await openClient(url);
  onCleanup(() => ws.terminate());
  return ws;
}

describe('sockbridge relay', () => {
  it('prints the real port and relays several MB byte for byte both ways', async () => {
    const echo = await target(startEchoTarget);
    const url = await startRelay(echo.port);
    expect(url).not.toMatch(/:0\/$/);
    const ws = await client(url);
    expect(ws.protocol).toBe('binary');
    const payload = patternBytes(5 * 1024 * 1024, 21);
    const back = receiveBytes(ws, payload.length);
    for (let off = 0; off < payload.length; off += 200_000) ws.send(payload.subarray(off, off + 200_000));
    expect(sha256(await back)).toBe(sha256(payload));
  });

  it('delivers the whole 1 MB tail of a target that closes at once', async () => {
    const payload = patternBytes(1024 * 1024, 2);
    const source = await target(() => startTarget((s) => s.end(payload)));
    const ws = await client(await startRelay(source.port));
    const { data, code } = await collectUntilClose(ws);
    expect(sha256(data)).toBe(sha256(payload));
    expect(code).toBe(1000);
  });

  it('never lets the path or query choose the target', async () => {
    const echo = await target(startEchoTarget);
    const other = await target(() => startTarget());
    const url = await startRelay(echo.port);
    const ws = await client(`${url}?target=127.0.0.1:${other.port}&host=127.0.0.1&port=${other.port}`);
    const back = receiveBytes(ws, 2);
    ws.send(Buffer.from('ok'));
    expect((await back).toString()).toBe('ok');
    expect(other.accepted).toBe(0);
  });

  it('honours --max-message-bytes (close 1009)', async () => {
    const echo = await target(startEchoTarget);
    const ws = await client(await startRelay(echo.port, ['--max-message-bytes', '2048']));
    const closed = collectUntilClose(ws);
    ws.send(Buffer.alloc(2049));
    expect((await closed).code).toBe(1009);
  });

  it('honours --linger-ms: a target that keeps its side open after the browser left is let go after it', async () => {
    let sawFin!: () => void;
    const finned = new Promise<void>((r) => (sawFin = r));
    // Gets the relay's FIN and never sends its own, as a stuck server would.
    const stuck = await target(() => startTarget((s) => s.on('end', sawFin)));
    stuck.server.on('connection', (s) => ((s as { allowHalfOpen: boolean }).allowHalfOpen = true));
    const proc = startCli(['relay', '--linger-ms', '100', '127.0.0.1:0', `127.0.0.1:${stuck.port}`], { env: { SOCKBRIDGE_LOG_LEVEL: 'info' } });
    const m = await proc.waitFor(/sockbridge relay listening on (ws:\/\/127\.0\.0\.1:\d+)/);
    const ws = await client(`${m[1]}/`);
    ws.close();
    await finned;
    // 'relay closed' is logged once both sides are closed: after 100 ms here, 5 s by default.
    await proc.waitFor(/"msg":"relay closed"/, 2500);
  });

  it('SIGINT (Ctrl-C) closes each client with 1001 "server shutting down" and exits 0', async () => {
    const echo = await target(startEchoTarget);
    const proc = startCli(['relay', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    const m = await proc.waitFor(/sockbridge relay listening on (ws:\/\/127\.0\.0\.1:\d+)/);
    const ws = await client(`${m[1]}/`);
    const seen = collectUntilClose(ws);
    expect(await proc.stop('SIGINT')).toBe(0);
    expect(await seen).toMatchObject({ code: 1001, reason: 'server shutting down' });
  });

  it('warns on stderr when no --origin restricts which pages may connect, and not when one does', async () => {
    const echo = await target(startEchoTarget);
    const open = startCli(['relay', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    await open.waitFor(/sockbridge relay: ready/);
    expect(open.stderr()).toContain('warning: no --origin, so any web page can connect');
    const restricted = startCli(['relay', '--origin', 'https://app.example', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    await restricted.waitFor(/sockbridge relay: ready/);
    expect(restricted.stderr()).not.toContain('warning');
  });

  it('rejects a bad command line with a usage error (exit 2)', async () => {
    const missing = await runCli(['relay', '6080']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^sockbridge: expected LISTEN and TARGET, got 1 argument\nusage: sockbridge relay/);
    const badTarget = await runCli(['relay', '127.0.0.1:0', 'nohost']);
    expect(badTarget.code).toBe(2);
    const badLimit = await runCli(['relay', '--max-message-bytes', '10', '127.0.0.1:0', '127.0.0.1:1']);
    expect(badLimit.code).toBe(2);
    expect(badLimit.stderr).toMatch(/max-message-bytes/);
  });
});
