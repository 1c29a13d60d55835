// ChatClient against a hostile chat service (a test double of a malicious peer on 127.0.0.1:0) and
// a silent one: an event of the wrong shape ends the connection with SB_ERR_MESSAGE_INVALID before
// anyone sees it (audit2 #3), and a say nobody acknowledges fails with SB_ERR_TIMEOUT (audit2 #5).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../../backends/chat/chat-client.js';
import { CHAT_LIMITS, type ChatEvent } from '../../../protocol/chat-messages.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import { closeHostileServices, hostileService } from '../../server/cli/hostile-service.js';
import { closeAll, startChat } from './chat-kit.js';

const ESC = '\u001b]0;PWNED\u0007';
const clients: ChatClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await closeHostileServices();
  await closeAll();
});

const frames = (...events: object[]) => Buffer.concat(events.map((e) => encodeFrame(e as { cmd: string })));
const welcome = (nick: string) => ({ cmd: 'welcome', nick, rooms: ['lobby'] });
const message = { cmd: 'message', id: 1, room: 'lobby', from: 'bob', text: 'hi', ts: 1_764_000_000_000 };

/** A chat service that answers hello with `onHello`'s frames, and nothing else. */
const chatService = (onHello: (nick: string) => Buffer) =>
  hostileService((socket, request) => {
    if (request.cmd === 'hello') socket.write(onHello(String(request['nick'])));
  });

async function connect(port: number, options: { replyTimeoutMs?: number } = {}): Promise<ChatClient> {
  const client = await ChatClient.connect('127.0.0.1', port, { nick: 'alice', ...options });
  clients.push(client);
  return client;
}

/** Connects, records every event, and resolves once the connection has ended. */
async function eventsUntilClose(port: number): Promise<{ client: ChatClient; events: ChatEvent[] }> {
  const client = await connect(port);
  const events: ChatEvent[] = [];
  client.on('event', (e) => events.push(e));
  await new Promise<void>((resolve) => client.once('close', () => resolve()));
  return { client, events };
}

describe('ChatClient: events of the wrong shape', () => {
  it('refuses a welcome whose nick is no nickname: connect rejects with SB_ERR_MESSAGE_INVALID', async () => {
    const port = await chatService((nick) => frames(welcome(`${nick}${ESC}`)));
    await expect(ChatClient.connect('127.0.0.1', port, { nick: 'alice' })).rejects.toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID' });
  });

  it('ends the connection on a malformed event sent with the welcome, and the close is heard by listeners attached after connect', async () => {
    const port = await chatService((nick) => frames(welcome(nick), { cmd: 'joined', room: 'lobby', members: [`mallory${ESC}`], history: [] }));
    const { client, events } = await eventsUntilClose(port);
    expect(client.closeReason).toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID' });
    expect(client.closeReason?.message).toMatch(/"joined" event whose "members" is not a list of nicknames/);
    expect(events).toEqual([]);
    await expect(client.say('lobby', 'hi')).rejects.toBe(client.closeReason);
  });

  it.each([
    ['a message from no nickname', { ...message, from: `evil${ESC}` }],
    ['a message to a room that is no room name', { ...message, room: `lobby${ESC}` }],
    ['a message whose text is no string', { ...message, text: 5 }],
    ['a message whose ts is no number', { ...message, ts: '12:00' }],
    ['a direct to no nickname', { ...message, cmd: 'direct', room: undefined, to: `x${ESC}` }],
    ['a joined whose history holds a bad sender', { cmd: 'joined', room: 'lobby', members: ['bob'], history: [{ ...message, cmd: undefined, from: ESC }] }],
    ['directs whose history is no list', { cmd: 'directs', history: 'none' }],
    ['a presence of no nickname', { cmd: 'presence', room: 'lobby', nick: `x${ESC}`, event: 'join' }],
    ['a presence of an unknown kind', { cmd: 'presence', room: 'lobby', nick: 'bob', event: ESC }],
    ['members with a bad name', { cmd: 'members', room: 'lobby', members: ['bob', ESC] }],
    ['rooms with a count that is no number', { cmd: 'rooms', rooms: [{ room: 'lobby', members: `2${ESC}` }], total: 1 }],
    ['rooms whose total is fewer than the rooms listed', { cmd: 'rooms', rooms: [{ room: 'lobby', members: 2 }], total: 0 }],
    ['a message whose ref holds a control character', { ...message, ref: `r${ESC}` }],
    ['left of no room name', { cmd: 'left', room: ESC }],
    ['an error without a message', { cmd: 'error', code: 'SB_ERR_INTERNAL' }],
    ['an error with a retryAfterMs that is no number', { cmd: 'error', code: 'SB_ERR_RATE_LIMITED', message: 'slow down', retryAfterMs: 'soon' }],
  ])('ends the connection on %s (SB_ERR_MESSAGE_INVALID), emitting nothing of it', async (_what, bad) => {
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'hello') socket.write(frames(welcome('alice')));
      if (request.cmd === 'ping') socket.write(frames(bad));
    });
    const client = await connect(port);
    const events: ChatEvent[] = [];
    client.on('event', (e) => events.push(e));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.send({ cmd: 'ping' });
    await closed;
    expect(client.closeReason).toMatchObject({ code: 'SB_ERR_MESSAGE_INVALID' });
    expect(events).toEqual([]);
  });

  it('takes a rooms reply without total (a service older than it) as the whole list', async () => {
    const rooms = { cmd: 'rooms', rooms: [{ room: 'lobby', members: 2 }] };
    const port = await chatService((nick) => frames(welcome(nick), rooms));
    const client = await connect(port);
    const event = await new Promise<ChatEvent>((resolve) => client.on('event', resolve));
    expect(event).toEqual({ ...rooms, total: 1 });
  });

  it('ignores an event it does not know (a newer service) and goes on', async () => {
    const port = await chatService((nick) => frames(welcome(nick), { cmd: 'typing', who: ESC }, message));
    const client = await connect(port);
    const events: ChatEvent[] = [];
    await new Promise<void>((resolve) => client.on('event', (e) => (events.push(e), resolve())));
    // a message without `account` (a service older than the flag) vouches for nobody
    expect(events).toEqual([{ ...message, account: false }]);
    expect(client.closeReason).toBeUndefined();
  });
});

describe('ChatClient: the reply timeout', () => {
  it('fails a say nobody acknowledges with SB_ERR_TIMEOUT after replyTimeoutMs, and gives up the connection', async () => {
    const port = await chatService((nick) => frames(welcome(nick)));
    const client = await connect(port, { replyTimeoutMs: 200 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const started = Date.now();
    const err = await client.say('lobby', 'hi').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SB_ERR_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await closed;
    expect(client.closeReason).toBe(err);
  });

  it('keeps the connection when the service acknowledges in time', async () => {
    const { port } = await startChat();
    const client = await connect(port, { replyTimeoutMs: 200 });
    expect((await client.say('lobby', 'one')).text).toBe('one');
    expect((await client.dm('alice', 'two')).text).toBe('two');
    await sleep(400); // past the timeout of both: their timers were cleared by the acks
    expect(client.closeReason).toBeUndefined();
    expect((await client.say('lobby', 'three')).text).toBe('three');
  });
});

describe('ChatClient: refs', () => {
  it('gives every message a random ref long enough to be an idempotency key (sockbridge chat sends these)', async () => {
    const { port } = await startChat();
    const client = await ChatClient.connect('127.0.0.1', port, { nick: 'alice' });
    const refs = [(await client.say('lobby', 'one')).ref, (await client.say('lobby', 'two')).ref];
    for (const ref of refs) expect(ref?.length).toBeGreaterThanOrEqual(CHAT_LIMITS.idempotentRefMinLength);
    expect(refs[0]).not.toBe(refs[1]);
    await client.close();
  });
});
