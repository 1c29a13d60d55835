// /ws/chat against a real ChatService: browser tabs and a raw TCP frame client in one room, direct
// messages to every tab of an account, refusals, and a chat service that is down, then back.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../../backends/chat/chat-client.js';
import { ChatService } from '../../../backends/chat/chat-service.js';
import { encodeFrame, WholeFrameDecoder, type FrameHeader } from '../../../protocol/frame-codec.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, startGateway, track, waitFor, type TestSocket } from './ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function startChat(port = 0, extra: { maxConnectionsPerNick?: number; rateCapacity?: number } = {}): Promise<{ service: ChatService; url: string; port: number }> {
  const service = track(new ChatService({ port, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN, ...extra }));
  const address = await service.start();
  return { service, url: `tcp://127.0.0.1:${address.port}`, port: address.port };
}

/** A terminal client speaking frames to the chat service directly, as `sockbridge chat` does. */
async function rawChatClient(port: number, nick: string) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  const decoder = new WholeFrameDecoder();
  const frames: FrameHeader[] = [];
  socket.on('data', (chunk) => frames.push(...decoder.push(chunk).map((f) => f.header)));
  track({ close: async () => void socket.destroy() });
  const next = async (match: (h: FrameHeader) => boolean) => {
    let found: FrameHeader | undefined;
    await waitFor(() => {
      const i = frames.findIndex(match);
      if (i >= 0) found = frames.splice(i, 1)[0];
      return found !== undefined;
    }, 5000, 'chat frame');
    return found!;
  };
  socket.write(encodeFrame({ cmd: 'hello', nick }));
  await next((h) => h.cmd === 'welcome');
  return { send: (h: { cmd: string; [k: string]: unknown }) => socket.write(encodeFrame(h)), next };
}

const isMessage = (text: string) => (m: Record<string, unknown>) => m['cmd'] === 'message' && m['text'] === text;

async function welcomed(socket: TestSocket, nick: string) {
  const welcome = await socket.json((m) => m['cmd'] === 'welcome');
  expect(welcome['nick']).toBe(nick);
  return socket;
}

describe('/ws/chat', () => {
  it('two browser tabs and one raw TCP client in one room see each other', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');
    const bob = await welcomed(await gw.open('/ws/chat', await gw.login('bob', 'bob-password')), 'bob');
    const carol = await rawChatClient(chat.port, 'carol');

    for (const s of [alice, bob]) {
      s.send({ cmd: 'join', room: 'ops' });
      await s.json((m) => m['cmd'] === 'joined' && m['room'] === 'ops');
    }
    carol.send({ cmd: 'join', room: 'ops' });
    await carol.next((h) => h.cmd === 'joined');

    alice.send({ cmd: 'say', room: 'ops', text: 'hi from alice', ref: 'a1' });
    const ack = await alice.json(isMessage('hi from alice'));
    expect(ack).toMatchObject({ from: 'alice', room: 'ops', ref: 'a1' });
    expect(await bob.json(isMessage('hi from alice'))).toMatchObject({ from: 'alice' });
    expect(await carol.next((h) => h.cmd === 'message' && h['text'] === 'hi from alice')).toMatchObject({ from: 'alice' });

    carol.send({ cmd: 'say', room: 'ops', text: 'hi from the terminal' });
    expect(await alice.json(isMessage('hi from the terminal'))).toMatchObject({ from: 'carol' });
    expect(await bob.json(isMessage('hi from the terminal'))).toMatchObject({ from: 'carol' });
    expect(gw.app.healthRegistry.get('chat').status).toBe('up');
  });

  it('a user gets direct messages in every open tab', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const aliceCookie = await gw.login('alice', 'alice-password');
    const tab1 = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    const tab2 = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    const bob = await welcomed(await gw.open('/ws/chat', await gw.login('bob', 'bob-password')), 'bob');

    bob.send({ cmd: 'dm', to: 'alice', text: 'psst' });
    for (const tab of [tab1, tab2]) {
      expect(await tab.json((m) => m['cmd'] === 'direct')).toMatchObject({ from: 'bob', to: 'alice', text: 'psst' });
    }
  });

  it('a new tab (a reload) gets the account\'s recent direct messages after joined, and nobody else\'s', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const aliceCookie = await gw.login('alice', 'alice-password');
    const alice = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    const bob = await welcomed(await gw.open('/ws/chat', await gw.login('bob', 'bob-password')), 'bob');
    const carol = await rawChatClient(chat.port, 'carol');

    bob.send({ cmd: 'dm', to: 'alice', text: 'bob to alice' });
    await alice.json((m) => m['cmd'] === 'direct' && m['text'] === 'bob to alice');
    alice.send({ cmd: 'dm', to: 'bob', text: 'alice to bob' });
    await bob.json((m) => m['cmd'] === 'direct' && m['text'] === 'alice to bob');
    carol.send({ cmd: 'dm', to: 'bob', text: 'carol to bob' });
    await bob.json((m) => m['cmd'] === 'direct' && m['text'] === 'carol to bob');

    const reloaded = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    await reloaded.json((m) => m['cmd'] === 'joined');
    const directs = await reloaded.json((m) => m['cmd'] === 'directs');
    expect((directs['history'] as { from: string; to: string; text: string }[]).map(({ from, to, text }) => ({ from, to, text }))).toEqual([
      { from: 'bob', to: 'alice', text: 'bob to alice' },
      { from: 'alice', to: 'bob', text: 'alice to bob' },
    ]);
  });

  it('answers a bad field with an error and keeps the socket; a browser hello closes it with 1008', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');

    alice.send({ cmd: 'join', room: '../etc' });
    expect(await alice.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_CHAT_ROOM_INVALID' });
    alice.send({ cmd: 'say', room: 'lobby', text: 'x'.repeat(5000), ref: 'too-long' });
    expect(await alice.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID', ref: 'too-long' });
    alice.send({ cmd: 'ping' });
    await alice.json((m) => m['cmd'] === 'pong');

    // the nick is the account's: a browser may not choose one
    alice.send({ cmd: 'hello', nick: 'root' });
    expect(await alice.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_WS_CMD_RESERVED' });
    expect((await alice.closed).code).toBe(1008);
  });

  it('a refusal from the chat service ends the socket with its own code, and the service stays up', async () => {
    const chat = await startChat(0, { maxConnectionsPerNick: 1 });
    const gw = await startGateway({ chat: chat.url });
    const cookie = await gw.login('alice', 'alice-password');
    const first = await welcomed(await gw.open('/ws/chat', cookie), 'alice');
    const second = await gw.open('/ws/chat', cookie);
    expect(await second.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_CHAT_TOO_MANY_CONNECTIONS' });
    expect((await second.closed).code).toBe(1013);
    expect(gw.app.healthRegistry.get('chat').status).toBe('up');
    first.send({ cmd: 'ping' });
    await first.json((m) => m['cmd'] === 'pong');
  });

  it('refuses binary messages with 1003', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');
    alice.ws.send(Buffer.from('{"cmd":"ping"}'), { binary: true });
    expect((await alice.closed).code).toBe(1003);
  });

  it('a chat service that is down closes the socket with 1011 and shows down; back on its port, a new socket works', async () => {
    const first = await startChat();
    await first.service.close();
    const gw = await startGateway({ chat: first.url });
    const cookie = await gw.login('alice', 'alice-password');

    const refused = await gw.open('/ws/chat', cookie);
    expect(await refused.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
    expect((await refused.closed).code).toBe(1011);
    expect(gw.app.healthRegistry.get('chat').status).toBe('down');

    await startChat(first.port);
    const again = await welcomed(await gw.open('/ws/chat', cookie), 'alice');
    again.send({ cmd: 'ping' });
    await again.json((m) => m['cmd'] === 'pong');
    expect(gw.app.healthRegistry.get('chat').status).toBe('up');
  });

  it('a chat service that stops mid-session closes the socket with 1011; the gateway lives on', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');
    await chat.service.close();
    expect((await alice.closed).code).toBe(1011);
    expect(gw.app.healthRegistry.get('chat').status).toBe('down');
    const health = await gw.app.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
  });

  it('a backend answering garbage closes the socket with 1011 and shows down', async () => {
    // resume(): a socket nobody reads never sees the peer's FIN, and server.close() would wait on it
    const garbage = net.createServer((s) => s.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')).resume());
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    track({ close: () => new Promise<void>((resolve) => garbage.close(() => resolve())) });
    const port = (garbage.address() as net.AddressInfo).port;
    const gw = await startGateway({ chat: `tcp://127.0.0.1:${port}` });
    const alice = await gw.open('/ws/chat', await gw.login('alice', 'alice-password'));
    expect(await alice.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
    expect((await alice.closed).code).toBe(1011);
    expect(gw.app.healthRegistry.get('chat').status).toBe('down');
  });

  it('regression: without a chat gateway token on either side, warns at startup and a reload gets no direct-message history', async () => {
    const service = track(new ChatService({ port: 0, linePort: null, dataDir: await tempDir() }));
    const chatUrl = `tcp://127.0.0.1:${(await service.start()).port}`;
    const lines: string[] = [];
    const gw = await startGateway({ chat: chatUrl, chatGatewayToken: undefined }, {}, lines);
    expect(lines.find((l) => l.includes('no chat gateway token'))).toMatch(/serves no direct-message history/);
    const bob = await welcomed(await gw.open('/ws/chat', await gw.login('bob', 'bob-password')), 'bob');
    const aliceCookie = await gw.login('alice', 'alice-password');
    const alice = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    alice.send({ cmd: 'dm', to: 'bob', text: 'for bob only', ref: 'd' });
    await bob.json((m) => m['cmd'] === 'direct' && m['text'] === 'for bob only');
    await alice.close();
    await bob.json((m) => m['cmd'] === 'presence' && m['nick'] === 'alice' && m['event'] === 'leave');
    // anyone on the raw port could have said the same plain hello as alice: so nobody gets history
    const reloaded = await welcomed(await gw.open('/ws/chat', aliceCookie), 'alice');
    expect((await reloaded.json((m) => m['cmd'] === 'directs'))['history']).toEqual([]);
  });

  it('logs who connected from where, never message texts, cookies or the gateway token', async () => {
    const chat = await startChat();
    const lines: string[] = [];
    const gw = await startGateway({ chat: chat.url }, {}, lines);
    const cookie = await gw.login('alice', 'alice-password');
    const alice = await welcomed(await gw.open('/ws/chat', cookie), 'alice');
    alice.send({ cmd: 'say', room: 'lobby', text: 'my-private-words' });
    await alice.json(isMessage('my-private-words'));
    alice.send({ cmd: 'hello', nick: 'x' });
    await alice.closed;
    await waitFor(() => lines.some((l) => l.includes('websocket disconnected')), 5000, 'the close line');
    const log = lines.join('\n');
    expect(log).toContain('"user":"alice"');
    expect(log).toContain(`"origin":"${gw.origin}"`);
    expect(log).toContain('SB_ERR_WS_CMD_RESERVED');
    for (const secret of ['my-private-words', cookie, CHAT_TOKEN]) expect(log).not.toContain(secret);
  });

  // Regression: the gateway decoded the service's frames with the codec's default 64 KiB header
  // limit, so the `joined` of a room with a full history closed the browser socket with 1011.
  it('a room with 100 messages of ~4000 bytes: a browser joining through the gateway gets all of its history', async () => {
    const chat = await startChat(0, { rateCapacity: 1000 });
    const carol = track(await ChatClient.connect('127.0.0.1', chat.port, { nick: 'carol', room: 'full', timeoutMs: 5000 }));
    const texts = Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, '0')}:${'x'.repeat(3996)}`);
    for (const text of texts) await carol.say('full', text);
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');
    alice.send({ cmd: 'join', room: 'full' });
    const joined = await alice.json<{ history: { text: string }[] }>((m) => m['cmd'] === 'joined' && m['room'] === 'full');
    expect(joined.history.map((m) => m.text)).toEqual(texts);
    // and the socket is still open: a message said now arrives
    await carol.say('full', 'after');
    await alice.json(isMessage('after'));
  });

  // The hazard idempotent send closes: the socket drops after the service stored a message but
  // before the ack reached the page, and the page resends it on a new socket with the same ref.
  it('a say resent with its ref after the socket was cut between store and ack appears once, and the resend is acked with the original', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const cookie = await gw.login('alice', 'alice-password');
    const bob = await rawChatClient(chat.port, 'bob');
    const cut = await welcomed(await gw.open('/ws/chat', cookie), 'alice');
    await cut.json((m) => m['cmd'] === 'joined');

    const say = { cmd: 'say', room: 'lobby', text: 'sent once', ref: 'r0123456789abcdef01234567' };
    cut.send(say);
    cut.ws.close(); // right behind the say: the page never sees an ack on this socket
    const stored = await bob.next((h) => h.cmd === 'message' && h['text'] === 'sent once');

    const tab = await welcomed(await gw.open('/ws/chat', cookie), 'alice');
    await tab.json((m) => m['cmd'] === 'joined');
    tab.send(say);
    const ack = await tab.json(isMessage('sent once'));
    expect(ack).toMatchObject({ id: stored['id'], ts: stored['ts'], ref: say.ref });
    tab.send({ cmd: 'say', room: 'lobby', text: 'another text', ref: say.ref });
    expect(await tab.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_CHAT_REF_REUSED', ref: say.ref });

    const reader = await welcomed(await gw.open('/ws/chat', await gw.login('carol', 'carol-password')), 'carol');
    const joined = await reader.json<{ history: { id: number; text: string }[] }>((m) => m['cmd'] === 'joined');
    expect(joined.history.filter((m) => m.text === 'sent once').map((m) => m.id)).toEqual([stored['id']]);
    // the room saw it once: the next message bob gets is one said after the resend
    reader.send({ cmd: 'say', room: 'lobby', text: 'marker' });
    expect(await bob.next((h) => h.cmd === 'message')).toMatchObject({ text: 'marker' });
  });

  // A ref the chat service would refuse as malformed ends the gateway's connection to it, which
  // closed the browser's socket; the gateway applies the service's rule and keeps the socket.
  it('a say whose ref the chat service would refuse is refused with its ref and the socket stays open', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    const alice = await welcomed(await gw.open('/ws/chat', await gw.login('alice', 'alice-password')), 'alice');
    await alice.json((m) => m['cmd'] === 'joined');
    alice.send({ cmd: 'say', room: 'lobby', text: 'spaced', ref: 'a ref' });
    expect(await alice.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID', ref: 'a ref' });
    alice.send({ cmd: 'say', room: 'lobby', text: 'still here', ref: 'r1' });
    expect(await alice.json(isMessage('still here'))).toMatchObject({ ref: 'r1' });
  });

  it('refuses an upgrade without a session with 401', async () => {
    const chat = await startChat();
    const gw = await startGateway({ chat: chat.url });
    await expect(gw.open('/ws/chat', 'not-a-session')).rejects.toMatchObject({ status: 401 });
  });
});
