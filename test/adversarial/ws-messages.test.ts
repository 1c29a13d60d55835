// Hostile WebSocket messages on the gateway's chat and time sockets. Each case asserts the refusal
// (close code, RFC 6455 §7.4.1, and the error code where the gateway sends one) and that a
// well-behaved client is served right after. Frames a `ws` client refuses to send (RSV bits,
// unmasked fragments) are written by hand on a raw TCP socket.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatService } from '../../backends/chat/chat-service.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, rawUpgradeRequest, startGateway, track, type Gateway } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function gatewayWithChat(limits: Record<string, number> = {}) {
  const chat = track(new ChatService({ port: 0, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN }));
  const { port } = await chat.start();
  const gw = await startGateway({ chat: `tcp://127.0.0.1:${port}` }, limits);
  return { gw, cookie: await gw.login('alice', 'alice-password') };
}

/** A well-behaved client still gets its pong. */
async function stillServes(gw: Gateway, cookie: string): Promise<void> {
  const socket = await gw.open('/ws/time', cookie);
  socket.send({ cmd: 'ping', t0: 42 });
  expect(await socket.json((m) => m['cmd'] === 'pong')).toMatchObject({ t0: 42 });
  await socket.close();
}

// ---- a WebSocket client by hand (RFC 6455 §4.1 handshake, §5.2 framing) ----

async function rawUpgrade(gw: Gateway, path: string, cookie: string) {
  const { port } = new URL(gw.origin);
  const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
  track({ close: async () => void socket.destroy() });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(rawUpgradeRequest(gw, path, cookie));
  let received = Buffer.alloc(0);
  socket.on('data', (chunk) => (received = Buffer.concat([received, chunk])));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', check);
      const head = received.subarray(0, end).toString();
      received = received.subarray(end + 4);
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(head.split('\r\n')[0]));
    };
    socket.on('data', check);
  });
  const closeFrame = (): number | undefined => {
    let offset = 0;
    while (offset + 2 <= received.length) {
      const opcode = received[offset]! & 0x0f;
      let length = received[offset + 1]! & 0x7f;
      let start = offset + 2;
      if (length === 126) {
        length = received.readUInt16BE(start);
        start += 2;
      } else if (length === 127) {
        length = Number(received.readBigUInt64BE(start));
        start += 8;
      }
      if (opcode === 0x8 && start + length <= received.length) return length >= 2 ? received.readUInt16BE(start) : 1005;
      offset = start + length;
    }
    return undefined;
  };
  return {
    socket,
    closed,
    closeFrameSeen: () => closeFrame() !== undefined,
    /** The status code of the server's close frame (undefined if the connection ended without one). */
    async closeCode(): Promise<number | undefined> {
      while (closeFrame() === undefined && !socket.destroyed) await new Promise((r) => setTimeout(r, 10));
      return closeFrame();
    },
  };
}

/** One client frame: FIN and RSV bits in `first` with the opcode, masked payload (clients must mask, §5.3). */
function clientFrame(first: number, payload: Buffer): Buffer {
  if (payload.length >= 126) throw new Error('short frames only');
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([first, 0x80 | payload.length]), mask, masked]);
}

describe('adversarial WebSocket messages', () => {
  it('a message over wsMaxMessageBytes is closed with 1009', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/time', cookie);
    socket.send(JSON.stringify({ cmd: 'ping', t0: 1, pad: 'x'.repeat(64 * 1024) }));
    expect((await socket.closed).code).toBe(1009);
    await stillServes(gw, cookie);
  });

  it('a flood of 1-byte fragments without FIN is closed (ws: 1008 at 16,384 fragments) with memory bounded', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const raw = await rawUpgrade(gw, '/ws/time', cookie);
    const fragment = clientFrame(0x00, Buffer.from('a')); // continuation, FIN = 0
    const batch = Buffer.concat(Array.from({ length: 100 }, () => fragment));
    raw.socket.write(clientFrame(0x01, Buffer.from('['))); // text, FIN = 0
    let sent = 0;
    // Small batches with a pause, stopping at the server's close frame: bytes the server has not
    // read when it drops the connection make its kernel send a reset, which can discard the close
    // frame before we read it (@fastify/websocket terminates a socket on any ws error).
    while (!raw.closeFrameSeen() && raw.socket.writable && sent < 400_000) {
      raw.socket.write(batch);
      sent += 100;
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(await raw.closeCode()).toBe(1008);
    // the receiver gave up long before the flood ended: at most 16,384 fragments were ever held
    expect(sent).toBeLessThan(100_000);
    await stillServes(gw, cookie);
  });

  it('a frame with RSV bits set (no extension negotiated) is closed with 1002', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const raw = await rawUpgrade(gw, '/ws/time', cookie);
    raw.socket.write(clientFrame(0x80 | 0x40 | 0x01, Buffer.from('{"cmd":"ping","t0":1}'))); // FIN, RSV1, text
    expect(await raw.closeCode()).toBe(1002);
    await stillServes(gw, cookie);
  });

  it('invalid UTF-8 in a text message is closed with 1007', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/chat', cookie);
    socket.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await socket.closed).code).toBe(1007);
    await stillServes(gw, cookie);
  });

  it('an empty message is ignored: no crash, the socket keeps working', async () => {
    const { gw, cookie } = await gatewayWithChat();
    for (const path of ['/ws/time', '/ws/chat']) {
      const socket = await gw.open(path, cookie);
      socket.send('');
      socket.send({ cmd: 'ping', t0: 7 });
      expect(await socket.json((m) => m['cmd'] === 'pong')).toMatchObject({ cmd: 'pong' });
      await socket.close();
    }
    await stillServes(gw, cookie);
  });

  it('non-JSON is refused with SB_ERR_WS_NOT_JSON and 1007', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/chat', cookie);
    socket.send('say hi');
    expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_NOT_JSON' });
    expect((await socket.closed).code).toBe(1007);
    await stillServes(gw, cookie);
  });

  it('a __proto__ key is refused with SB_ERR_WS_FORBIDDEN_KEY and 1008, and pollutes nothing', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/chat', cookie);
    socket.send('{"cmd":"say","room":"lobby","text":"x","__proto__":{"polluted":true}}');
    expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_FORBIDDEN_KEY' });
    expect((await socket.closed).code).toBe(1008);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await stillServes(gw, cookie);
  });

  it('a browser-sent hello (choosing a nickname) is refused with SB_ERR_WS_CMD_RESERVED and 1008', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/chat', cookie);
    socket.send({ cmd: 'hello', nick: 'root', gatewayToken: 'guess-guess-guess' });
    expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_CMD_RESERVED' });
    expect((await socket.closed).code).toBe(1008);
    const ok = await gw.open('/ws/chat', cookie);
    expect(await ok.json((m) => m['cmd'] === 'welcome')).toMatchObject({ nick: 'alice' });
  });

  it('an unknown cmd is refused with SB_ERR_WS_CMD_UNKNOWN and 1008', async () => {
    const { gw, cookie } = await gatewayWithChat();
    const socket = await gw.open('/ws/time', cookie);
    socket.send({ cmd: 'shutdown' });
    expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_CMD_UNKNOWN' });
    expect((await socket.closed).code).toBe(1008);
    await stillServes(gw, cookie);
  });

  it('a client that stops answering pings is terminated after the heartbeat window', async () => {
    const { gw, cookie } = await gatewayWithChat({ heartbeatMs: 1000 });
    const url = `${gw.origin.replace('http', 'ws')}/ws/time`;
    const silent = new WebSocket(url, { headers: { Cookie: `sb_session=${cookie}`, Origin: gw.origin }, autoPong: false });
    const polite = new WebSocket(url, { headers: { Cookie: `sb_session=${cookie}`, Origin: gw.origin } });
    track({ close: async () => void (silent.terminate(), polite.terminate()) });
    const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    let pings = 0;
    silent.on('ping', () => pings++);
    // terminated without a close frame: the client sees an abnormal closure
    expect(await silentClosed).toBe(1006);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(polite.readyState).toBe(WebSocket.OPEN);
    await stillServes(gw, cookie);
  });
});
