// Accounts and nicknames (chat-hub.ts): a nickname an account used is reserved against connections
// without the gateway token, an account takes its nickname back from such a connection, and every
// message says whether its sender was an account. Regression for the QA walkthrough's impostor: an
// nc client on the line port took `admin` while admin was offline and wrote "I am the real admin".
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { KIT_GATEWAY_TOKEN, LineClient, RawChat, closeAll, startChat } from './chat-kit.js';

const viaGateway = { gatewayToken: KIT_GATEWAY_TOKEN };

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** Writes `line`, then `/who`, and resolves with everything up to the `/who` answer. */
async function command(client: LineClient, line: string): Promise<string> {
  const mark = client.text.length;
  client.write(`${line}\n/who\n`);
  await client.waitFor(/^\* in #lobby: .*\n(?![^]*^\* in #)/m, mark);
  return client.text.slice(mark);
}

/** An account says hello through the gateway token, then leaves: its name is now reserved. */
async function accountOnce(port: number, nick: string): Promise<void> {
  const tab = await RawChat.hello(port, nick, viaGateway);
  tab.socket.end();
  await tab.closed;
}

describe('ChatService: nicknames of accounts', () => {
  it('refuses an account\'s nickname to a line client (/nick) and to a frame hello without the token, in any case, while the account is offline', async () => {
    const { port, linePort } = await startChat();
    await accountOnce(port, 'admin');

    const line = await LineClient.open(linePort);
    for (const nick of ['admin', 'ADMIN']) expect(await command(line, `/nick ${nick}`)).toMatch(/^! SB_ERR_CHAT_NICK_RESERVED nickname \S+ belongs to an account/m);
    expect(line.text).not.toMatch(/you are now/);
    // the line client is still there, under its guest name, and may take a free one
    expect(await command(line, '/nick visitor')).toMatch(/^\* you are now visitor$/m);

    const frame = await RawChat.open(port);
    frame.send({ cmd: 'hello', nick: 'admin' });
    expect(await frame.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NICK_RESERVED' });
    await frame.closed;
    expect(frame.events.map((e) => e.cmd)).toEqual(['error']);
  });

  it('gives an account its nickname back from a line client that held it: the line client becomes a guest and is told why', async () => {
    const { port, linePort } = await startChat();
    const impostor = await LineClient.open(linePort);
    expect(await command(impostor, '/nick admin')).toMatch(/^\* you are now admin$/m);
    const mark = impostor.text.length;

    const admin = await RawChat.hello(port, 'admin', viaGateway);
    expect(admin.events[0]).toEqual({ cmd: 'welcome', nick: 'admin', rooms: ['lobby'] });
    const notice = await impostor.waitFor(/^\* admin is an account's name and its owner just logged in: you are now (guest-\d+)$/m, mark);
    const guest = notice[1]!;
    // the room saw the impostor leave as admin and come back as the guest before the account joined
    expect((await admin.next('joined')).members).toEqual([guest, 'admin'].sort());

    impostor.write('still here\n');
    expect(await admin.next('message', (e) => e.text === 'still here')).toMatchObject({ from: guest, account: false });
    expect(await command(impostor, '/nick admin')).toMatch(/^! SB_ERR_CHAT_NICK_RESERVED /m);
  });

  it('gives an account its nickname back from a frame client that held it: that connection is told why and closed', async () => {
    const { port } = await startChat();
    const impostor = await RawChat.hello(port, 'admin');
    const admin = await RawChat.hello(port, 'admin', viaGateway);
    expect(await impostor.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NICK_RESERVED' });
    await impostor.closed;
    expect((await admin.next('joined')).members).toEqual(['admin']);
    // a second tab of the account shares the name as before
    const tab = await RawChat.hello(port, 'admin', viaGateway);
    expect(tab.events[0]).toMatchObject({ cmd: 'welcome', nick: 'admin' });
  });

  it('marks every message and direct message, live and in history, with whether its sender was an account', async () => {
    const { port, linePort } = await startChat();
    const bob = await RawChat.hello(port, 'bob', viaGateway);
    const impostor = await LineClient.open(linePort);
    await command(impostor, '/nick admin'); // admin never chatted yet: the name is free
    impostor.write('I am the real admin, send me your password\n/msg bob psst, it is admin\n');
    expect(await bob.next('message', (e) => e.from === 'admin')).toMatchObject({ text: 'I am the real admin, send me your password', account: false });
    expect(await bob.next('direct', (e) => e.from === 'admin')).toMatchObject({ text: 'psst, it is admin', account: false });

    const admin = await RawChat.hello(port, 'admin', viaGateway);
    admin.send({ cmd: 'say', room: 'lobby', text: 'this is admin', ref: 'a1' });
    expect(await admin.next('message', (e) => e.ref === 'a1')).toMatchObject({ from: 'admin', account: true });
    expect(await bob.next('message', (e) => e.text === 'this is admin')).toMatchObject({ from: 'admin', account: true });
    admin.send({ cmd: 'dm', to: 'bob', text: 'the real one', ref: 'a2' });
    expect(await bob.next('direct', (e) => e.text === 'the real one')).toMatchObject({ account: true });

    const later = await RawChat.hello(port, 'bob', viaGateway);
    const history = (await later.next('joined')).history.filter((m) => m.from === 'admin');
    expect(history.map((m) => [m.text, m.account])).toEqual([
      ['I am the real admin, send me your password', false],
      ['this is admin', true],
    ]);
    expect((await later.next('directs')).history.map((m) => [m.text, m.account])).toEqual([
      ['psst, it is admin', false],
      ['the real one', true],
    ]);
  });

  it('keeps the reservation across a restart on the same data dir', async () => {
    const first = await startChat();
    await accountOnce(first.port, 'admin');
    await first.service.close();
    const second = await startChat({ dataDir: first.dataDir });
    const line = await LineClient.open(second.linePort);
    expect(await command(line, '/nick admin')).toMatch(/^! SB_ERR_CHAT_NICK_RESERVED /m);
    const frame = await RawChat.open(second.port);
    frame.send({ cmd: 'hello', nick: 'admin' });
    expect(await frame.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NICK_RESERVED' });
  });

  it('never hands out a reserved name as a guest-N', async () => {
    const { port, linePort } = await startChat();
    await accountOnce(port, 'guest-1');
    const line = await LineClient.open(linePort);
    expect(line.nick).toBe('guest-2');
  });
});

// Regression (review of the account changes): the hub's nick map was case-sensitive while
// reserved_nicks is not, so a guest `alice` stayed beside the account `Alice` and got its DMs.
describe('ChatService: nicknames are unique ignoring case', () => {
  it('moves a guest holding another case of an account\'s name off it when the account says hello', async () => {
    const { port, linePort } = await startChat();
    const impostor = await LineClient.open(linePort);
    expect(await command(impostor, '/nick alice')).toMatch(/^\* you are now alice$/m);
    const mark = impostor.text.length;

    const alice = await RawChat.hello(port, 'Alice', viaGateway);
    const guest = (await impostor.waitFor(/^\* alice is an account's name and its owner just logged in: you are now (guest-\d+)$/m, mark))[1]!;
    const bob = await RawChat.hello(port, 'bob');
    expect(bob.events[0]).toMatchObject({ cmd: 'welcome', nick: 'bob' });
    bob.send({ cmd: 'who', room: 'lobby' });
    expect((await bob.next('members')).members).toEqual(['Alice', 'bob', guest].sort());

    bob.send({ cmd: 'dm', to: 'alice', text: 'for the guest?' });
    expect(await bob.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NO_SUCH_USER' });
    bob.send({ cmd: 'dm', to: 'Alice', text: 'for the account' });
    expect(await alice.next('direct')).toMatchObject({ from: 'bob', to: 'Alice', text: 'for the account' });
    expect(impostor.text.slice(mark)).not.toMatch(/for the/);
  });

  it('refuses a guest another case of a nickname someone holds, by hello and by /nick; a guest may change the case of its own', async () => {
    const { port, linePort } = await startChat();
    const carol = await LineClient.open(linePort);
    expect(await command(carol, '/nick carol')).toMatch(/^\* you are now carol$/m);

    const other = await LineClient.open(linePort);
    expect(await command(other, '/nick CAROL')).toMatch(/^! SB_ERR_CHAT_NICK_TAKEN /m);
    const frame = await RawChat.open(port);
    frame.send({ cmd: 'hello', nick: 'Carol' });
    expect(await frame.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NICK_TAKEN' });

    expect(await command(carol, '/nick Carol')).toMatch(/^\* you are now Carol$/m);
    expect(await command(other, '/nick carol')).toMatch(/^! SB_ERR_CHAT_NICK_TAKEN /m);
    // the exact spelling is taken as before
    expect(await command(other, '/nick Carol')).toMatch(/^! SB_ERR_CHAT_NICK_TAKEN /m);
  });
});

// Review: a guest using an account name nobody reserved yet was listed and announced exactly like
// the account; members lists and presence now say who is a guest.
describe('ChatService: members and presence say who is a guest', () => {
  it('lists guests in joined and members (guests) and marks presence with account, for frame and line clients, across a rename', async () => {
    const { port, linePort } = await startChat();
    const admin = await RawChat.hello(port, 'admin', viaGateway);
    const joinedAlone = await admin.next('joined');
    expect(joinedAlone).toMatchObject({ members: ['admin'], guests: [] });

    const impostor = await RawChat.hello(port, 'root'); // an account name nobody reserved: still a guest
    expect(await admin.next('presence', (e) => e.nick === 'root')).toEqual({ cmd: 'presence', room: 'lobby', nick: 'root', event: 'join', account: false });
    expect(await impostor.next('joined')).toMatchObject({ members: ['admin', 'root'], guests: ['root'] });

    const tab = await RawChat.hello(port, 'carol', viaGateway);
    expect(await impostor.next('presence', (e) => e.nick === 'carol')).toMatchObject({ event: 'join', account: true });
    const line = await LineClient.open(linePort);
    await admin.next('presence', (e) => e.nick === line.nick && e.account === false);
    await command(line, '/nick visitor');
    expect(await admin.next('presence', (e) => e.nick === line.nick && e.event === 'leave')).toMatchObject({ account: false });
    expect(await admin.next('presence', (e) => e.nick === 'visitor')).toMatchObject({ event: 'join', account: false });

    admin.send({ cmd: 'who', room: 'lobby' });
    expect(await admin.next('members')).toEqual({ cmd: 'members', room: 'lobby', members: ['admin', 'carol', 'root', 'visitor'], guests: ['root', 'visitor'] });
    tab.socket.destroy();
    expect(await admin.next('presence', (e) => e.nick === 'carol' && e.event === 'leave')).toMatchObject({ account: true });
    admin.send({ cmd: 'who', room: 'nowhere' });
    expect(await admin.next('members', (e) => e.room === 'nowhere')).toEqual({ cmd: 'members', room: 'nowhere', members: [], guests: [] });
  });
});
