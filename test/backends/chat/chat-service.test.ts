// End to end on real sockets: ChatService on port 0, raw frame clients and ChatClient.
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../../backends/chat/chat-client.js';
import { ChatService } from '../../../backends/chat/chat-service.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { LineClient, RawChat, closeAll, startChat } from './chat-kit.js';

const TOKEN = 'gateway-token-0123456789abcdef';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('ChatService: rooms and messages', () => {
  it('delivers a message to both clients with a server id and timestamp, and acks the sender with its ref', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');
    await alice.next('presence', (e) => e.nick === 'bob' && e.event === 'join');

    const before = Date.now();
    alice.send({ cmd: 'say', room: 'lobby', text: 'hello bob', ref: 'r1' });
    const ack = await alice.next('message', (e) => e.text === 'hello bob');
    const seen = await bob.next('message', (e) => e.text === 'hello bob');

    expect(ack.ref).toBe('r1');
    expect(seen.ref).toBeUndefined();
    expect(seen).toMatchObject({ room: 'lobby', from: 'alice', text: 'hello bob', id: ack.id, ts: ack.ts });
    expect(Number.isInteger(ack.id) && ack.id > 0).toBe(true);
    expect(ack.ts).toBeGreaterThanOrEqual(before - 1000);
    expect(ack.ts).toBeLessThanOrEqual(Date.now() + 1000);

    bob.send({ cmd: 'say', room: 'lobby', text: 'hi alice', ref: 'x' });
    const reply = await alice.next('message', (e) => e.text === 'hi alice');
    expect(reply.id).toBeGreaterThan(ack.id);
  });

  it('sends welcome and joined (members, history) on hello, into the requested room', async () => {
    const { port } = await startChat();
    const a = await RawChat.hello(port, 'ann', { room: 'dev' });
    expect(await a.next('welcome')).toEqual({ cmd: 'welcome', nick: 'ann', rooms: ['dev'] });
    expect(await a.next('joined')).toEqual({ cmd: 'joined', room: 'dev', members: ['ann'], guests: ['ann'], history: [] });
  });

  it('announces presence, answers who and rooms, and handles join and leave', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');
    await alice.next('presence', (e) => e.nick === 'bob' && e.event === 'join');

    alice.send({ cmd: 'who', room: 'lobby' });
    expect(await alice.next('members')).toEqual({ cmd: 'members', room: 'lobby', members: ['alice', 'bob'], guests: ['alice', 'bob'] });

    bob.send({ cmd: 'join', room: 'dev' });
    expect(await bob.next('joined', (e) => e.room === 'dev')).toMatchObject({ members: ['bob'] });
    alice.send({ cmd: 'rooms' });
    expect((await alice.next('rooms')).rooms).toEqual([
      { room: 'lobby', members: 2 },
      { room: 'dev', members: 1 },
    ]);

    bob.send({ cmd: 'leave', room: 'lobby' });
    await bob.next('left', (e) => e.room === 'lobby');
    await alice.next('presence', (e) => e.nick === 'bob' && e.event === 'leave' && e.room === 'lobby');

    // bob is no longer in lobby: he may not speak there, and does not hear it.
    bob.send({ cmd: 'say', room: 'lobby', text: 'sneaky', ref: 'n1' });
    expect(await bob.next('error', (e) => e.ref === 'n1')).toMatchObject({ code: 'SB_ERR_CHAT_NOT_IN_ROOM' });
    alice.send({ cmd: 'say', room: 'lobby', text: 'only me', ref: 'a' });
    await alice.next('message', (e) => e.ref === 'a');
    await bob.sync();
    expect(bob.events.some((e) => e.cmd === 'message' && e.text === 'only me')).toBe(false);

    bob.socket.destroy();
    await alice.next('presence', (e) => e.nick === 'bob' && e.event === 'leave' && e.room === 'lobby').catch(() => undefined);
    alice.send({ cmd: 'who', room: 'dev' });
    expect(await alice.next('members', (e) => e.room === 'dev')).toEqual({ cmd: 'members', room: 'dev', members: [], guests: [] });
  });

  it('refuses invalid room names without closing the connection', async () => {
    const { port } = await startChat();
    const a = await RawChat.hello(port, 'alice');
    a.send({ cmd: 'join', room: '../etc' });
    expect((await a.next('error')).code).toBe('SB_ERR_CHAT_ROOM_INVALID');
    await a.sync();
    expect(a.isClosed).toBe(false);
  });

  it('delivers a direct message to every connection of the recipient and echoes it to the sender', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN });
    const alice = await RawChat.hello(port, 'alice');
    const bobTab1 = await RawChat.hello(port, 'bob', { gatewayToken: TOKEN });
    const bobTab2 = await RawChat.hello(port, 'bob', { gatewayToken: TOKEN });
    const carol = await RawChat.hello(port, 'carol');

    alice.send({ cmd: 'dm', to: 'bob', text: 'psst', ref: 'd1' });
    const echo = await alice.next('direct', (e) => e.text === 'psst');
    expect(echo).toMatchObject({ from: 'alice', to: 'bob', ref: 'd1' });
    for (const tab of [bobTab1, bobTab2]) {
      expect(await tab.next('direct', (e) => e.text === 'psst')).toMatchObject({ id: echo.id, from: 'alice', to: 'bob', ts: echo.ts });
    }
    await carol.sync();
    expect(carol.events.some((e) => e.cmd === 'direct')).toBe(false);

    alice.send({ cmd: 'dm', to: 'nobody', text: 'hello?', ref: 'd2' });
    expect(await alice.next('error', (e) => e.ref === 'd2')).toMatchObject({ code: 'SB_ERR_CHAT_NO_SUCH_USER' });
  });
});

describe('ChatService: nicknames and connections', () => {
  it('refuses an invalid nickname and closes that connection', async () => {
    const { port } = await startChat();
    for (const nick of ['', 'a b', '-dash', 'x'.repeat(33), 'ünï', 'a\u001b[2J']) {
      const c = await RawChat.open(port);
      c.send({ cmd: 'hello', nick });
      expect((await c.next('error')).code).toBe('SB_ERR_CHAT_NICK_INVALID');
      await c.closed;
    }
  });

  it('refuses a nickname already in use, and frees it when its holder leaves', async () => {
    const { port } = await startChat();
    const first = await RawChat.hello(port, 'alice');
    const second = await RawChat.open(port);
    second.send({ cmd: 'hello', nick: 'alice' });
    expect((await second.next('error')).code).toBe('SB_ERR_CHAT_NICK_TAKEN');
    await second.closed;

    first.socket.end();
    await first.closed;
    const again = await RawChat.hello(port, 'alice');
    expect((await again.next('welcome')).nick).toBe('alice');
  });

  it('lets the gateway token share a nickname up to maxConnectionsPerNick, then refuses', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, maxConnectionsPerNick: 3 });
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await RawChat.hello(port, 'dana', { gatewayToken: TOKEN }));
    const fourth = await RawChat.open(port);
    fourth.send({ cmd: 'hello', nick: 'dana', gatewayToken: TOKEN });
    expect((await fourth.next('error')).code).toBe('SB_ERR_CHAT_TOO_MANY_CONNECTIONS');
    await fourth.closed;

    // Without the token, an account's nickname is not to be had (see "accounts and nicknames").
    const plain = await RawChat.open(port);
    plain.send({ cmd: 'hello', nick: 'dana' });
    expect((await plain.next('error')).code).toBe('SB_ERR_CHAT_NICK_RESERVED');

    // One presence "join" for the nickname, however many tabs.
    const watcher = await RawChat.hello(port, 'eve');
    expect((await watcher.next('joined')).members).toEqual(['dana', 'eve']);
  });

  it('refuses a wrong gateway token, and any token when none is configured', async () => {
    const withToken = await startChat({ gatewayToken: TOKEN });
    const c = await RawChat.open(withToken.port);
    c.send({ cmd: 'hello', nick: 'mallory', gatewayToken: 'not-the-token-0000000000' });
    expect((await c.next('error')).code).toBe('SB_ERR_CHAT_GATEWAY_TOKEN');

    const without = await startChat();
    const d = await RawChat.open(without.port);
    d.send({ cmd: 'hello', nick: 'mallory', gatewayToken: TOKEN });
    expect((await d.next('error')).code).toBe('SB_ERR_CHAT_GATEWAY_TOKEN');
  });

  it('closes a connection that sends a request before hello', async () => {
    const { port } = await startChat();
    const c = await RawChat.open(port);
    c.send({ cmd: 'say', room: 'lobby', text: 'hi' });
    expect((await c.next('error')).code).toBe('SB_ERR_CHAT_NOT_JOINED');
    await c.closed;
  });

  it('closes a connection that never says hello', async () => {
    const { port } = await startChat({ helloTimeoutMs: 100 });
    const c = await RawChat.open(port);
    expect((await c.next('error')).code).toBe('SB_ERR_TIMEOUT');
    await c.closed;
  });

  it('refuses connections beyond maxConnections', async () => {
    const { port } = await startChat({ maxConnections: 2 });
    const a = await RawChat.hello(port, 'a1');
    await RawChat.hello(port, 'a2');
    const third = await RawChat.open(port);
    expect((await third.next('error')).code).toBe('SB_ERR_CHAT_TOO_MANY_CONNECTIONS');
    await third.closed;
    await a.sync();
  });
});

describe('ChatService: presence across a reload', () => {
  it('says nothing when a gateway nick\'s last tab closes and it is back within presenceGraceMs (a reload)', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, presenceGraceMs: 2000 });
    const bob = await RawChat.hello(port, 'bob');
    const tab = await RawChat.hello(port, 'alice', { gatewayToken: TOKEN });
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'join');
    const seen = bob.events.length;
    tab.socket.end();
    await tab.closed;
    const reloaded = await RawChat.hello(port, 'alice', { gatewayToken: TOKEN });
    reloaded.send({ cmd: 'say', room: 'lobby', text: 'back', ref: 'b' });
    await bob.next('message', (e) => e.text === 'back');
    await new Promise((r) => setTimeout(r, 2300)); // past the grace: a pending "leave" would have come by now
    expect(bob.events.slice(seen).filter((e) => e.cmd === 'presence')).toEqual([]);
  });

  it('says "leave" for a closed gateway nick once the grace has passed', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, presenceGraceMs: 300 });
    const bob = await RawChat.hello(port, 'bob');
    const tab = await RawChat.hello(port, 'alice', { gatewayToken: TOKEN });
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'join');
    const closedAt = Date.now();
    tab.socket.end();
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'leave');
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(250); // not before its grace
  });

  it('says "leave" at once for an explicit leave and for a raw connection that closes (no grace)', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, presenceGraceMs: 60_000 }); // a grace here would time the test out
    const bob = await RawChat.hello(port, 'bob');
    const raw = await RawChat.hello(port, 'carol');
    await bob.next('presence', (e) => e.nick === 'carol' && e.event === 'join');
    raw.socket.end();
    await bob.next('presence', (e) => e.nick === 'carol' && e.event === 'leave');
    const tab = await RawChat.hello(port, 'alice', { gatewayToken: TOKEN });
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'join');
    tab.send({ cmd: 'leave', room: 'lobby', ref: 'l' });
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'leave');
  });
});

describe('ChatService: limits keep the connection open', () => {
  it('refuses text over 4096 bytes with its ref and keeps serving', async () => {
    const { port } = await startChat();
    const a = await RawChat.hello(port, 'alice');
    a.send({ cmd: 'say', room: 'lobby', text: 'é'.repeat(2049), ref: 'big' }); // 4098 bytes
    expect(await a.next('error', (e) => e.ref === 'big')).toMatchObject({ code: 'SB_ERR_MESSAGE_TOO_LARGE' });
    a.send({ cmd: 'dm', to: 'alice', text: 'x'.repeat(4097), ref: 'bigdm' });
    expect(await a.next('error', (e) => e.ref === 'bigdm')).toMatchObject({ code: 'SB_ERR_MESSAGE_TOO_LARGE' });
    a.send({ cmd: 'say', room: 'lobby', text: 'x'.repeat(4096), ref: 'fits' });
    expect((await a.next('message', (e) => e.ref === 'fits')).text).toHaveLength(4096);
  });

  it('rate-limits a connection with SB_ERR_RATE_LIMITED, its ref and retryAfterMs, and keeps serving', async () => {
    const { port } = await startChat({ rateCapacity: 3, rateIntervalMs: 60_000 });
    const a = await RawChat.hello(port, 'alice');
    for (let i = 0; i < 4; i++) a.send({ cmd: 'say', room: 'lobby', text: `m${i}`, ref: `r${i}` });
    for (let i = 0; i < 3; i++) await a.next('message', (e) => e.ref === `r${i}`);
    const refused = await a.next('error', (e) => e.ref === 'r3');
    expect(refused.code).toBe('SB_ERR_RATE_LIMITED');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(a.events.some((e) => e.cmd === 'message' && e.text === 'm3')).toBe(false);
    await a.sync();
    expect(a.isClosed).toBe(false);
  });

  it('regression: charges who and rooms to the same buckets (one reader could keep the service busy listing)', async () => {
    const { port } = await startChat({ rateCapacity: 3, rateIntervalMs: 60_000 });
    const a = await RawChat.hello(port, 'alice');
    a.send({ cmd: 'who', room: 'lobby' });
    a.send({ cmd: 'rooms' });
    a.send({ cmd: 'say', room: 'lobby', text: 'third', ref: 's' });
    await a.next('message', (e) => e.ref === 's');
    a.send({ cmd: 'rooms' });
    a.send({ cmd: 'who', room: 'lobby' });
    await a.sync();
    const refused = a.events.filter((e) => e.cmd === 'error');
    expect(refused.map((e) => e.code)).toEqual(['SB_ERR_RATE_LIMITED', 'SB_ERR_RATE_LIMITED']);
    expect(a.events.filter((e) => e.cmd === 'rooms' || e.cmd === 'members')).toHaveLength(2);
    expect(a.isClosed).toBe(false);
  });

  it('answers rooms with the fullest 100 rooms, most members first, however many exist', async () => {
    const { port } = await startChat({ rateCapacity: 1000, maxRoomsPerConnection: 200 });
    const a = await RawChat.hello(port, 'alice');
    const b = await RawChat.hello(port, 'bob');
    for (let i = 0; i < 150; i++) a.send({ cmd: 'join', room: `r${String(i).padStart(3, '0')}` });
    for (const room of ['r149', 'r007']) b.send({ cmd: 'join', room });
    await a.sync();
    await b.sync();
    b.send({ cmd: 'rooms' });
    const first = await b.next('rooms');
    const { rooms } = first;
    expect(rooms).toHaveLength(100);
    expect(first.total).toBe(151); // lobby and r000..r149: 51 of them left out of the list
    // lobby, r007 and r149 have two members; then the one-member rooms by name
    expect(rooms.slice(0, 4)).toEqual([
      { room: 'lobby', members: 2 },
      { room: 'r007', members: 2 },
      { room: 'r149', members: 2 },
      { room: 'r000', members: 1 },
    ]);
    expect(rooms.at(-1)).toEqual({ room: 'r097', members: 1 });
    // a change is seen at once: the cached list is dropped when a membership changes
    b.send({ cmd: 'leave', room: 'r007' });
    await b.next('left');
    b.send({ cmd: 'rooms' });
    const after = await b.next('rooms', (e) => e !== first);
    expect(after.rooms.slice(0, 3)).toEqual([
      { room: 'lobby', members: 2 },
      { room: 'r149', members: 2 },
      { room: 'r000', members: 1 },
    ]);
  });

  it('rate-limits per nickname across the connections that share it', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, rateCapacity: 2, rateIntervalMs: 60_000 });
    const tab1 = await RawChat.hello(port, 'bob', { gatewayToken: TOKEN });
    const tab2 = await RawChat.hello(port, 'bob', { gatewayToken: TOKEN });
    tab1.send({ cmd: 'say', room: 'lobby', text: 'one', ref: '1' });
    tab1.send({ cmd: 'say', room: 'lobby', text: 'two', ref: '2' });
    await tab1.next('message', (e) => e.ref === '2');
    // tab2's own bucket is full, but the nickname's is empty.
    tab2.send({ cmd: 'say', room: 'lobby', text: 'three', ref: '3' });
    expect(await tab2.next('error', (e) => e.ref === '3')).toMatchObject({ code: 'SB_ERR_RATE_LIMITED' });
    // Reconnecting does not reset the nickname's bucket.
    tab1.socket.destroy();
    tab2.socket.destroy();
    await Promise.all([tab1.closed, tab2.closed]);
    const again = await RawChat.hello(port, 'bob', { gatewayToken: TOKEN });
    again.send({ cmd: 'say', room: 'lobby', text: 'four', ref: '4' });
    expect(await again.next('error', (e) => e.ref === '4')).toMatchObject({ code: 'SB_ERR_RATE_LIMITED' });
  });

  it('charges joins, even of a room already joined (each answers with up to 100 messages)', async () => {
    const { port } = await startChat({ rateCapacity: 2, rateIntervalMs: 60_000 });
    const a = await RawChat.hello(port, 'alice');
    for (let i = 0; i < 3; i++) a.send({ cmd: 'join', room: 'lobby' });
    expect((await a.next('error')).code).toBe('SB_ERR_RATE_LIMITED');
    await a.sync();
    expect(a.events.filter((e) => e.cmd === 'joined')).toHaveLength(3); // the hello's own + 2
  });

  it('caps the rooms one connection may be in', async () => {
    const { port } = await startChat({ maxRoomsPerConnection: 2 });
    const a = await RawChat.hello(port, 'alice');
    a.send({ cmd: 'join', room: 'two' });
    await a.next('joined', (e) => e.room === 'two');
    a.send({ cmd: 'join', room: 'three' });
    expect((await a.next('error')).code).toBe('SB_ERR_CHAT_TOO_MANY_ROOMS');
    await a.sync();
  });
});

describe('ChatService: history', () => {
  it('sends the last 100 messages of a room on join, oldest first', async () => {
    const { port } = await startChat({ rateCapacity: 1000 });
    const a = await RawChat.hello(port, 'alice');
    for (let i = 0; i < 105; i++) a.send({ cmd: 'say', room: 'lobby', text: `n${i}`, ref: `r${i}` });
    await a.next('message', (e) => e.ref === 'r104');
    const b = await RawChat.hello(port, 'bob');
    const { history } = await b.next('joined');
    expect(history).toHaveLength(100);
    expect(history.map((m) => m.text)).toEqual(Array.from({ length: 100 }, (_, i) => `n${i + 5}`));
    expect(history.every((m) => m.from === 'alice' && m.room === 'lobby')).toBe(true);
  });

  it('keeps every acknowledged message across a restart on the same data dir', async () => {
    const first = await startChat();
    const client = await ChatClient.connect('127.0.0.1', first.port, { nick: 'alice' });
    const acked = [];
    for (const text of ['one', 'two', 'three']) acked.push(await client.say('lobby', text));
    await first.service.close();

    const second = await startChat({ dataDir: first.dataDir });
    const again = await RawChat.hello(second.port, 'bob');
    const { history } = await again.next('joined');
    expect(history).toEqual(acked.map(({ cmd: _c, ref: _r, ...m }) => m));
  });
});

describe('ChatService: direct-message history', () => {
  const viaGateway = { gatewayToken: TOKEN };

  /** alice, bob and carol exchange direct messages: alice↔bob, carol→bob, and alice to herself. */
  async function exchange(port: number, extra: Record<string, unknown> = viaGateway) {
    const alice = await RawChat.hello(port, 'alice', extra);
    const bob = await RawChat.hello(port, 'bob', extra);
    const carol = await RawChat.hello(port, 'carol', extra);
    const sent = [];
    for (const [from, to, text] of [[alice, 'bob', 'a to b'], [bob, 'alice', 'b to a'], [carol, 'bob', 'c to b'], [alice, 'alice', 'a to a']] as const) {
      const ref = text.replaceAll(' ', '-');
      from.send({ cmd: 'dm', to, text, ref });
      const { cmd: _c, ref: _r, ...message } = await from.next('direct', (e) => e.ref === ref);
      sent.push(message);
    }
    for (const c of [alice, bob, carol]) c.socket.end();
    await Promise.all([alice.closed, bob.closed, carol.closed]);
    return sent;
  }

  it("sends a reconnecting gateway connection its own direct messages after joined, oldest first, and nobody else's", async () => {
    const { port } = await startChat({ gatewayToken: TOKEN });
    const [aToB, bToA, cToB, aToA] = await exchange(port);

    const alice = await RawChat.hello(port, 'alice', viaGateway);
    const joinedAt = alice.events.findIndex((e) => e.cmd === 'joined');
    const directs = await alice.next('directs');
    expect(alice.events.indexOf(directs)).toBeGreaterThan(joinedAt);
    expect(directs.history).toEqual([aToB, bToA, aToA]);

    const bob = await RawChat.hello(port, 'bob', viaGateway);
    expect((await bob.next('directs')).history).toEqual([aToB, bToA, cToB]);
    // dave never sent or got one: an empty list, and not a word of the others'
    const dave = await RawChat.hello(port, 'dave', viaGateway);
    expect((await dave.next('directs')).history).toEqual([]);
  });

  it('bounds the list by directHistoryOnHello, keeping the newest', async () => {
    const { port } = await startChat({ gatewayToken: TOKEN, directHistoryOnHello: 2 });
    const [, , , aToA] = await exchange(port);
    const alice = await RawChat.hello(port, 'alice', viaGateway);
    expect((await alice.next('directs')).history.map((m) => m.text)).toEqual(['b to a', aToA!.text]);
  });

  it('serves it after a restart on the same data dir, to ChatClient as a "directs" event', async () => {
    const first = await startChat({ gatewayToken: TOKEN });
    const sent = await exchange(first.port);
    await first.service.close();
    const second = await startChat({ gatewayToken: TOKEN, dataDir: first.dataDir });
    const bob = await ChatClient.connect('127.0.0.1', second.port, { nick: 'bob', gatewayToken: TOKEN });
    const directs = await new Promise<{ history: unknown[] }>((resolve) => bob.once('directs', resolve));
    expect(directs.history).toEqual([sent[0], sent[1], sent[2]]);
    await bob.close();
  });

  it('gives none to a raw connection, whoever held the nick before: an account (its name is refused), or a nick only ever used raw', async () => {
    const { port, linePort } = await startChat({ gatewayToken: TOKEN });
    await exchange(port); // accounts alice, bob, carol (through the gateway)
    // an account's name is reserved: a raw hello as alice is refused before anything is sent
    const impostor = await RawChat.open(port);
    impostor.send({ cmd: 'hello', nick: 'alice' });
    expect((await impostor.next('error')).code).toBe('SB_ERR_CHAT_NICK_RESERVED');
    await impostor.closed;
    expect(impostor.events.map((e) => e.cmd)).toEqual(['error']);
    // raw-only nicks: carol2 writes to bob2, bob2 leaves, a stranger takes bob2
    const carol2 = await RawChat.hello(port, 'carol2');
    const bob2 = await RawChat.hello(port, 'bob2');
    carol2.send({ cmd: 'dm', to: 'bob2', text: 'the door code is 4711', ref: 'c' });
    await bob2.next('direct', (e) => e.text === 'the door code is 4711');
    bob2.socket.end();
    await bob2.closed;
    const stranger = await RawChat.hello(port, 'bob2');
    expect((await stranger.next('directs')).history).toEqual([]);
    const line = await LineClient.open(linePort);
    const mark = line.text.length;
    line.write('/nick alice\n/who\n');
    await line.waitFor(/^! SB_ERR_CHAT_NICK_RESERVED .*\n(?:.*\n)*\* in #lobby: /m, mark);
    expect(line.text).not.toMatch(/\*bob\*|-> \*|a to b|b to a/);
    line.write('/quit\n');
    await stranger.next('presence', (e) => e.nick === line.nick && e.event === 'leave');
    // the gateway still serves the account its own
    const tab = await RawChat.hello(port, 'alice', viaGateway);
    expect((await tab.next('directs')).history.map((m) => m.text)).toEqual(['a to b', 'b to a', 'a to a']);
  });

  it('regression: without a gateway token, serves no direct-message history to anyone (the gateway\'s hello is then anyone\'s)', async () => {
    const { port } = await startChat({ gatewayToken: undefined });
    // what /ws/chat sends for accounts when it has no token: a plain hello
    await exchange(port, {});
    const alice = await RawChat.hello(port, 'alice');
    expect((await alice.next('directs')).history).toEqual([]);
    const bob = await RawChat.hello(port, 'bob');
    expect((await bob.next('directs')).history).toEqual([]);
  });
});

describe('ChatService: malformed input', () => {
  it('closes only the connection that sent a malformed frame', async () => {
    const { port } = await startChat();
    const good = await RawChat.hello(port, 'alice');
    const bad = await RawChat.hello(port, 'mallory');
    bad.write(Buffer.from([5, 0, 0, 0, 0x7b, 0x22, 0x61, 0x3a, 0x7d])); // {"a:}
    expect((await bad.next('error')).code).toBe('SB_ERR_FRAME_HEADER_JSON');
    await bad.closed;
    await good.next('presence', (e) => e.nick === 'mallory' && e.event === 'leave');
    good.send({ cmd: 'say', room: 'lobby', text: 'still here', ref: 'ok' });
    await good.next('message', (e) => e.ref === 'ok');
  });

  it('closes a connection whose request has the wrong shape', async () => {
    const { port } = await startChat();
    const c = await RawChat.hello(port, 'alice');
    c.send({ cmd: 'say', room: 'lobby', text: 42 });
    expect((await c.next('error')).code).toBe('SB_ERR_MESSAGE_INVALID');
    await c.closed;
  });

  it('refuses a frame with a body', async () => {
    const { port } = await startChat();
    const c = await RawChat.hello(port, 'alice');
    const json = Buffer.from(JSON.stringify({ cmd: 'say', room: 'lobby', text: 'x', size: 10 }));
    const prefix = Buffer.alloc(4);
    prefix.writeInt32LE(json.length);
    c.write(Buffer.concat([prefix, json, Buffer.alloc(10)]));
    expect((await c.next('error')).code).toBe('SB_ERR_FRAME_BODY_TOO_LARGE');
    await c.closed;
  });
});

describe('ChatService: start', () => {
  it('fails to start when the line port is taken, and releases the frame port', async () => {
    const first = await startChat();
    const second = new ChatService({ port: 0, linePort: first.linePort, dataDir: first.dataDir });
    await expect(second.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(() => second.address().port).toThrow();
    await second.close();
    await expectServed(first.port);
  });
});

async function expectServed(port: number): Promise<void> {
  const c = await RawChat.hello(port, `ok${Math.random().toString(36).slice(2, 8)}`);
  c.send({ cmd: 'say', room: 'lobby', text: 'ok', ref: 'ok' });
  await c.next('message', (e) => e.ref === 'ok');
}

describe('ChatClient', () => {
  it('connects, emits events by cmd, resolves say/dm with the acked message and rejects refusals by code', async () => {
    const { port } = await startChat({ rateCapacity: 2, rateIntervalMs: 60_000 });
    const alice = await ChatClient.connect('127.0.0.1', port, { nick: 'alice', room: 'dev' });
    const joined = await new Promise((resolve) => alice.once('joined', resolve));
    expect(joined).toMatchObject({ room: 'dev', members: ['alice'] });
    const bob = await ChatClient.connect('127.0.0.1', port, { nick: 'bob', room: 'dev' });
    const heard = new Promise((resolve) => alice.once('message', resolve));
    const sent = await bob.say('dev', 'hey');
    expect(sent).toMatchObject({ from: 'bob', room: 'dev', text: 'hey' });
    expect(await heard).toMatchObject({ id: sent.id, text: 'hey' });
    expect(await bob.dm('alice', 'x')).toMatchObject({ to: 'alice' });
    await expect(bob.say('dev', 'third')).rejects.toMatchObject({ code: 'SB_ERR_RATE_LIMITED' });
    await expect(ChatClient.connect('127.0.0.1', port, { nick: 'bob' })).rejects.toMatchObject({ code: 'SB_ERR_CHAT_NICK_TAKEN' });
    await alice.close();
    await bob.close();
  });
});
