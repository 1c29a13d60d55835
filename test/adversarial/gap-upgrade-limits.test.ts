// Issue 5 gap audit, WebSocket upgrades and message limits on the real routes:
// - an upgrade with oversized headers, or with so many small ones that they pass the header limit,
//   is refused with 431 before any 101 while /api/health keeps answering (Node's maxHeaderSize,
//   set from limits.maxHeaderBytes);
// - the message limit is the gateway's own small default (64 KiB, not ws's 100 MiB) on /ws/chat and
//   /ws/exec too, closing 1009 (RFC 6455 §7.4.1) that socket only;
// - a refused upgrade is logged with address and Origin, never with the cookie.
// Each case ends with a well-behaved client being served.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatService } from '../../backends/chat/chat-service.js';
import { ExecService } from '../../backends/exec/exec-service.js';
import { loadConfig } from '../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../server/gateway-options.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { CHAT_TOKEN, EXEC_SECRET, closeAll, rawUpgradeRequest, startGateway, track, waitFor, type Gateway } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function gatewayWithBackends(limits: Partial<GatewayOptions['limits']> = {}, lines?: string[]): Promise<Gateway> {
  const chat = track(new ChatService({ port: 0, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN }));
  const exec = track(new ExecService({ port: 0, secret: EXEC_SECRET, killGraceMs: 200 }));
  const [c, e] = [await chat.start(), await exec.start()];
  return startGateway({ chat: `tcp://127.0.0.1:${c.port}`, exec: `tcp://127.0.0.1:${e.port}` }, limits, lines);
}

/** A well-behaved chat tab: welcomed, and its ping answered. */
async function chatServes(gw: Gateway, cookie: string): Promise<void> {
  const tab = await gw.open('/ws/chat', cookie);
  await tab.json((m) => m['cmd'] === 'welcome');
  tab.send({ cmd: 'ping' });
  await tab.json((m) => m['cmd'] === 'pong');
  await tab.close();
}

/** Sends an upgrade request with `extra` header lines on a raw socket; resolves with the status line. */
function rawUpgradeStatus(gw: Gateway, cookie: string, extra: string[]): Promise<string> {
  const { port } = new URL(gw.origin);
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.write(rawUpgradeRequest(gw, '/ws/chat', cookie, extra));
    });
    let text = '';
    const done = () => resolve(text.split('\r\n')[0] ?? '');
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) socket.destroy();
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

describe('upgrade handshakes over the header limit', () => {
  it('refuses an upgrade with one oversized header, and one with thousands of small ones, with 431', async () => {
    const gw = await gatewayWithBackends({ maxHeaderBytes: 8192 });
    const cookie = await gw.login('alice', 'alice-password');
    // the same request within the limit is upgraded: the refusals below are the headers' doing
    expect(await rawUpgradeStatus(gw, cookie, ['X-Small: x'])).toBe('HTTP/1.1 101 Switching Protocols');
    expect(await rawUpgradeStatus(gw, cookie, [`X-Big: ${'b'.repeat(10_000)}`])).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    const many = Array.from({ length: 3000 }, (_, i) => `X-${i}: y`);
    expect(await rawUpgradeStatus(gw, cookie, many)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    await chatServes(gw, cookie);
  });

  it('keeps answering /api/health while clients flood it with oversized handshakes', async () => {
    const gw = await gatewayWithBackends({ maxHeaderBytes: 8192 });
    const cookie = await gw.login('alice', 'alice-password');
    const flood = Array.from({ length: 50 }, () => rawUpgradeStatus(gw, cookie, [`X-Big: ${'b'.repeat(64 * 1024)}`]));
    for (let i = 0; i < 5; i++) {
      const health = await fetch(`${gw.origin}/api/health`);
      expect(health.status).toBe(200);
      await health.json();
    }
    for (const status of await Promise.all(flood)) expect(status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    await chatServes(gw, cookie);
  });
});

describe('message limits on the real routes', () => {
  it('defaults to 64 KiB per message, not ws\'s 100 MiB', () => {
    const options = loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: { data: '/nonexistent' } });
    expect(options.limits.wsMaxMessageBytes).toBe(64 * 1024);
  });

  it('closes /ws/chat with 1009 on a message one byte over the limit, and only that socket', async () => {
    const gw = await gatewayWithBackends();
    const cookie = await gw.login('alice', 'alice-password');
    const bystander = await gw.open('/ws/chat', cookie);
    await bystander.json((m) => m['cmd'] === 'welcome');
    const tab = await gw.open('/ws/chat', cookie);
    await tab.json((m) => m['cmd'] === 'welcome');
    const padding = 64 * 1024 + 1 - JSON.stringify({ cmd: 'say', room: 'lobby', text: '' }).length;
    tab.send(JSON.stringify({ cmd: 'say', room: 'lobby', text: 'x'.repeat(padding) }));
    expect((await tab.closed).code).toBe(1009);
    bystander.send({ cmd: 'ping' });
    await bystander.json((m) => m['cmd'] === 'pong');
    await chatServes(gw, cookie);
  });

  it('closes /ws/exec with 1009 on an oversized control or stdin message', async () => {
    const gw = await gatewayWithBackends();
    const cookie = await gw.login('root', 'root-password');
    for (const message of [JSON.stringify({ cmd: 'run', id: 'big', argv: ['true', 'x'.repeat(70 * 1024)] }), Buffer.alloc(70 * 1024)]) {
      const terminal = await gw.open('/ws/exec', cookie);
      await terminal.json((m) => m['cmd'] === 'ready');
      terminal.send(message);
      expect((await terminal.closed).code).toBe(1009);
    }
    const terminal = await gw.open('/ws/exec', cookie);
    await terminal.json((m) => m['cmd'] === 'ready');
    terminal.send({ cmd: 'run', id: 'ok', argv: ['true'], pty: false });
    expect(await terminal.json((m) => m['cmd'] === 'exit')).toMatchObject({ id: 'ok', code: 0 });
  });
});

describe('refusal log lines', () => {
  it('logs a refused upgrade with its address and Origin, never its cookie', async () => {
    const lines: string[] = [];
    const gw = await gatewayWithBackends({}, lines);
    const cookie = await gw.login('alice', 'alice-password');
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${gw.origin.replace('http', 'ws')}/ws/chat`, { headers: { Origin: 'http://evil.example', Cookie: `sb_session=${cookie}` } });
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.on('error', () => undefined);
    });
    expect(refused).toBe(403);
    const refusal = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['msg'] === 'websocket refused');
    await waitFor(() => refusal() !== undefined, 5000, 'the refusal line');
    expect(refusal()).toMatchObject({ user: 'alice', remote: '127.0.0.1', origin: 'http://evil.example', code: 'SB_ERR_ORIGIN_REJECTED' });
    expect(lines.join('\n')).not.toContain(cookie);
    await chatServes(gw, cookie);
  });
});
