// Attacks on the chat frame port: each refused with its code, and a well-behaved client is still
// served afterwards (it says something and hears itself acknowledged).
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../protocol/frame-codec.js';
import { removeTempDirs } from '../helpers/tmp.js';
import { RawChat, closeAll, startChat } from '../backends/chat/chat-kit.js';
import { lengthPrefix, rawFrame } from './raw-frames.js';

const TOKEN = 'gateway-token-0123456789abcdef';
let served = 0;

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A fresh, well-behaved client: hello, say, ack. */
async function expectServed(port: number): Promise<void> {
  const nick = `good${++served}`;
  const c = await RawChat.hello(port, nick);
  c.send({ cmd: 'say', room: 'lobby', text: 'still served', ref: 'ok' });
  expect(await c.next('message', (e) => e.ref === 'ok')).toMatchObject({ from: nick, text: 'still served' });
  c.socket.end();
}

/** Sends raw bytes, expects an error frame with `code`, then the connection closed. */
async function expectRefused(peer: RawChat, bytes: Buffer, code: string): Promise<void> {
  peer.write(bytes);
  expect((await peer.next('error')).code).toBe(code);
  await peer.closed;
}

async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('chat frame port: hostile frames', () => {
  it.each([
    ['0', 0],
    ['2^32-1 (-1 as int32)', 0xffffffff],
    ['2^31-1', 0x7fffffff],
    ['one past the 16 KiB limit', 16 * 1024 + 1],
  ])('refuses a declared header length of %s without buffering it', async (_name, length) => {
    const { port } = await startChat();
    const peer = await RawChat.open(port);
    await expectRefused(peer, lengthPrefix(length), 'SB_ERR_FRAME_HEADER_LENGTH');
    // the same after hello
    const joined = await RawChat.hello(port, 'victim');
    await expectRefused(joined, lengthPrefix(length), 'SB_ERR_FRAME_HEADER_LENGTH');
    await expectServed(port);
  });

  it('accepts frames sent one byte at a time', async () => {
    const { port } = await startChat();
    const peer = await RawChat.open(port);
    const bytes = Buffer.concat([encodeFrame({ cmd: 'hello', nick: 'slow' }), encodeFrame({ cmd: 'say', room: 'lobby', text: 'byte by byte', ref: 's' })]);
    for (const byte of bytes) {
      peer.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    expect((await peer.next('message', (e) => e.ref === 's')).text).toBe('byte by byte');
    await expectServed(port);
  });

  it('drops a connection closed mid-frame and frees its nickname', async () => {
    const { port } = await startChat();
    const watcher = await RawChat.hello(port, 'watcher');
    const peer = await RawChat.hello(port, 'cutoff');
    const frame = encodeFrame({ cmd: 'say', room: 'lobby', text: 'never finished', ref: 'x' });
    peer.write(frame.subarray(0, frame.length - 3));
    peer.socket.end();
    await peer.closed;
    await watcher.next('presence', (e) => e.nick === 'cutoff' && e.event === 'leave');
    expect(watcher.events.some((e) => e.cmd === 'message' && e.text === 'never finished')).toBe(false);
    await RawChat.hello(port, 'cutoff'); // the nickname is free again
    await expectServed(port);
  });

  it.each([
    ['invalid JSON', rawFrame('{"cmd":"hello",'), 'SB_ERR_FRAME_HEADER_JSON'],
    ['a JSON array', rawFrame('["hello"]'), 'SB_ERR_FRAME_HEADER_NOT_OBJECT'],
    ['no cmd', rawFrame('{"nick":"x"}'), 'SB_ERR_FRAME_CMD_MISSING'],
    ['an unknown cmd', rawFrame('{"cmd":"exec","command":"id"}'), 'SB_ERR_FRAME_CMD_UNKNOWN'],
    ['invalid UTF-8', Buffer.concat([lengthPrefix(3), Buffer.from([0x7b, 0xff, 0x7d])]), 'SB_ERR_FRAME_HEADER_UTF8'],
  ])('refuses %s and closes only that connection', async (_name, bytes, code) => {
    const { port } = await startChat();
    const bystander = await RawChat.hello(port, 'bystander');
    await expectRefused(await RawChat.open(port), bytes, code);
    await expectRefused(await RawChat.hello(port, 'mallory'), bytes, code);
    await bystander.sync();
    await expectServed(port);
  });

  it.each([
    ['__proto__', '{"cmd":"hello","nick":"p","__proto__":{"polluted":"yes"}}'],
    ['constructor', '{"cmd":"hello","nick":"p","constructor":{"prototype":{"polluted":"yes"}}}'],
    ['nested __proto__', '{"cmd":"hello","nick":"p","room":"lobby","x":{"__proto__":{"polluted":"yes"}}}'],
  ])('refuses a %s key without polluting any prototype', async (_name, json) => {
    const { port } = await startChat();
    await expectRefused(await RawChat.open(port), rawFrame(json), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY');
    const joined = await RawChat.hello(port, 'q');
    await expectRefused(joined, rawFrame(json.replace('"hello"', '"say"')), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)['polluted']).toBeUndefined();
    await expectServed(port);
  });
});

describe('chat frame port: floods and caps', () => {
  it('throttles a flood beyond the per-nick rate limit, across connections, and stores none of the excess', async () => {
    const { port, service } = await startChat({ gatewayToken: TOKEN, rateCapacity: 5, rateIntervalMs: 60_000 });
    const tabs = [await RawChat.hello(port, 'flood', { gatewayToken: TOKEN }), await RawChat.hello(port, 'flood', { gatewayToken: TOKEN })];
    const listener = await RawChat.hello(port, 'listener');
    for (let i = 0; i < 50; i++) tabs[i % 2]!.send({ cmd: 'say', room: 'lobby', text: `spam ${i}`, ref: `s${i}` });
    await Promise.all(tabs.map((t) => t.sync()));
    const refused = tabs.flatMap((t) => t.events).filter((e) => e.cmd === 'error');
    expect(refused).toHaveLength(45);
    expect(refused.every((e) => e.cmd === 'error' && e.code === 'SB_ERR_RATE_LIMITED')).toBe(true);
    await listener.sync();
    expect(listener.events.filter((e) => e.cmd === 'message' && e.from === 'flood')).toHaveLength(5);
    // the flooders are still connected (a limit, not a violation), and others are served
    expect(tabs.every((t) => !t.isClosed)).toBe(true);
    expect(service.connectionCount).toBe(3);
    await expectServed(port);
    // history holds only what passed
    const late = await RawChat.hello(port, 'late');
    expect((await late.next('joined')).history.filter((m) => m.from === 'flood')).toHaveLength(5);
  });

  it('refuses connections over the per-nick cap', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, maxConnectionsPerNick: 2 });
    await RawChat.hello(port, 'tabs', { gatewayToken: TOKEN });
    await RawChat.hello(port, 'tabs', { gatewayToken: TOKEN });
    for (let i = 0; i < 3; i++) {
      const extra = await RawChat.open(port);
      await expectRefused(extra, encodeFrame({ cmd: 'hello', nick: 'tabs', gatewayToken: TOKEN }), 'SB_ERR_CHAT_TOO_MANY_CONNECTIONS');
    }
    await expectServed(port);
  });

  it('refuses connections over the service-wide cap', async () => {
    const { port, service } = await startChat({ maxConnections: 3 });
    const held = [await RawChat.open(port), await RawChat.open(port), await RawChat.open(port)];
    const extra = await RawChat.open(port);
    expect((await extra.next('error')).code).toBe('SB_ERR_CHAT_TOO_MANY_CONNECTIONS');
    await extra.closed;
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await eventually(() => service.connectionCount < 3);
    await expectServed(port);
  });

  it('closes connections that never say hello (idle sockets cannot pile up)', async () => {
    const { port, service } = await startChat({ helloTimeoutMs: 50 });
    const idle = await Promise.all([RawChat.open(port), RawChat.open(port), RawChat.open(port)]);
    for (const c of idle) {
      expect((await c.next('error')).code).toBe('SB_ERR_TIMEOUT');
      await c.closed;
    }
    await eventually(() => service.connectionCount === 0);
    await expectServed(port);
  });

  it('disconnects a peer that never reads while its room keeps talking', async () => {
    const { port, service } = await startChat({ maxBufferedBytes: 64 * 1024, rateCapacity: 10_000 });
    const deaf = await RawChat.hello(port, 'deaf');
    deaf.socket.pause();
    const talker = await RawChat.hello(port, 'talker');
    const text = 'x'.repeat(4000);
    // Enough to fill the loopback's kernel buffers (several MB) and then our 64 KiB allowance.
    for (let i = 0; i < 8000 && service.connectionCount > 1; i++) {
      talker.send({ cmd: 'say', room: 'lobby', text, ref: `t${i}` });
      if (i % 50 === 49) await talker.next('message', (e) => e.ref === `t${i}`);
    }
    await talker.next('presence', (e) => e.nick === 'deaf' && e.event === 'leave', 10_000);
    expect(service.connectionCount).toBe(1);
    await expectServed(port);
  });
});
