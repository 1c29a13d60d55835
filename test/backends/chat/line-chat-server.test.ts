// Line mode on a real TCP port: what nc, telnet and the seed's chat client see.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../../backends/chat/chat-client.js';
import { LINE_MEMBERS_LISTED, LINE_ROOMS_LISTED } from '../../../backends/chat/line-chat-server.js';
import type { MessageEvent } from '../../../protocol/chat-messages.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { encodeFrame } from '../../../protocol/frame-codec.js';
import { LineClient, RawChat, closeAll, connectTracked, startChat } from './chat-kit.js';

/** Writes `line` and resolves once `/who` answered after it: everything the line caused has arrived. */
async function command(client: LineClient, line: string, room = '[a-z0-9_.-]+'): Promise<string> {
  const mark = client.text.length;
  client.write(`${line}\n/who\n`);
  await client.waitFor(new RegExp(`^\\* in #${room}: .*\\n(?![^]*^\\* in #)`, 'm'), mark);
  return client.text.slice(mark);
}

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('LineChatServer', () => {
  it('joins lobby as guest-N; each line is a message seen by frame clients, and frame messages arrive as "nick: text"', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    expect(guest.nick).toMatch(/^guest-\d+$/);
    expect(guest.text).toContain(`* in #lobby: alice, ${guest.nick}`);
    await alice.next('presence', (e) => e.nick === guest.nick && e.event === 'join');

    guest.write('hello from nc\n');
    expect(await alice.next('message', (e) => e.from === guest.nick)).toMatchObject({ room: 'lobby', text: 'hello from nc' });
    await guest.waitFor(new RegExp(`^${guest.nick}: hello from nc$`, 'm'));

    alice.send({ cmd: 'say', room: 'lobby', text: 'hi guest', ref: 'a' });
    await guest.waitFor(/^alice: hi guest$/m);

    alice.socket.end();
    await guest.waitFor(/^\* alice left$/m);
    const second = await LineClient.open(linePort);
    await guest.waitFor(new RegExp(`^\\* ${second.nick} joined$`, 'm'));
    expect(second.nick).not.toBe(guest.nick);
  });

  it('shows recent history on connect', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    alice.send({ cmd: 'say', room: 'lobby', text: 'earlier', ref: 'e' });
    await alice.next('message', (e) => e.ref === 'e');
    const guest = await LineClient.open(linePort);
    expect(guest.lines).toContain('alice: earlier');
  });

  it('counts a read without a newline (the seed client) as one line', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    guest.write('no newline here');
    expect((await alice.next('message', (e) => e.from === guest.nick)).text).toBe('no newline here');
    guest.write('second\r\n');
    expect((await alice.next('message', (e) => e.text === 'second')).from).toBe(guest.nick);
  });

  it('works with a Python 3 client that behaves like the seed chat client (sendall without newline, recv(1024))', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    // The seed's client loop, with input() replaced by a fixed list.
    const script = `
import socket, sys
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('127.0.0.1', ${linePort}))
for msg in ['ni hao', 'zai jian']:
    client.sendall(msg.encode())
    got = b''
    while (': ' + msg).encode() not in got:
        data = client.recv(1024)
        if not data: sys.exit(3)
        got += data
    print('Received', got.decode())
client.close()
`;
    const py = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    py.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve) => py.once('exit', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/guest-\d+: ni hao/);
    expect(out).toMatch(/guest-\d+: zai jian/);
    expect((await alice.next('message', (e) => e.text === 'ni hao')).from).toMatch(/^guest-\d+$/);
    await alice.next('message', (e) => e.text === 'zai jian');
  });

  it('regression: a too-long line without a newline (seed style) is refused, and the next newline-less lines still arrive', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    guest.write('before');
    await alice.next('message', (e) => e.text === 'before');
    const mark = guest.text.length;
    guest.write('x'.repeat(5000));
    await guest.waitFor(/^! SB_ERR_MESSAGE_TOO_LARGE /m, mark);
    // the seed's client pauses between messages; the pause (lineFlushMs, 30 ms) ends the refused line
    await new Promise((resolve) => setTimeout(resolve, 150));
    guest.write('after');
    expect((await alice.next('message', (e) => e.text === 'after', 2000)).from).toBe(guest.nick);
    await new Promise((resolve) => setTimeout(resolve, 150));
    guest.write('and again');
    expect((await alice.next('message', (e) => e.text === 'and again', 2000)).from).toBe(guest.nick);
  });

  it('handles /nick, /who, /msg, /help and /quit', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    const old = guest.nick;

    guest.write('/nick zed\n');
    await guest.waitFor(/^\* you are now zed$/m);
    await alice.next('presence', (e) => e.nick === old && e.event === 'leave');
    await alice.next('presence', (e) => e.nick === 'zed' && e.event === 'join');

    let mark = guest.text.length;
    guest.write('/nick alice\n');
    await guest.waitFor(/^! SB_ERR_CHAT_NICK_TAKEN nickname alice is already in use$/m, mark);

    mark = guest.text.length;
    guest.write('/who\n');
    await guest.waitFor(/^\* in #lobby: alice, zed$/m, mark);

    guest.write('/msg alice secret\n');
    expect(await alice.next('direct')).toMatchObject({ from: 'zed', to: 'alice', text: 'secret' });
    await guest.waitFor(/^-> \*alice\* secret$/m);
    alice.send({ cmd: 'dm', to: 'zed', text: 'back', ref: 'b' });
    await guest.waitFor(/^\*alice\* back$/m);

    mark = guest.text.length;
    guest.write('/help\n');
    await guest.waitFor(/^\* commands: .*\/nick/m, mark);
    guest.write('/nope\n');
    await guest.waitFor(/^! SB_ERR_BAD_REQUEST bad request: unknown command \/nope/m, mark);

    guest.write('/quit\n');
    await guest.waitFor(/^\* bye$/m);
    await guest.closed;
    await alice.next('presence', (e) => e.nick === 'zed' && e.event === 'leave');
  });

  it('refuses a line over 4096 bytes with an error line, skips it, and keeps serving', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    guest.write(`${'x'.repeat(5000)}\nafter\n`);
    await guest.waitFor(/^! SB_ERR_MESSAGE_TOO_LARGE message of \d+ bytes exceeds the limit of 4096 bytes$/m);
    expect((await alice.next('message', (e) => e.from === guest.nick)).text).toBe('after');
    guest.write(`${'y'.repeat(4096)}\n`);
    expect((await alice.next('message', (e) => e.text.startsWith('y'))).text).toHaveLength(4096);
  });

  it('replaces invalid UTF-8 and tolerates CR LF', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    guest.write(Buffer.concat([Buffer.from('bad '), Buffer.from([0xff, 0xc3]), Buffer.from(' byte\r\n')]));
    expect((await alice.next('message', (e) => e.from === guest.nick)).text).toBe('bad \ufffd\ufffd byte');
  });

  it('never sends control characters raw to a line client (terminal escape injection)', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    const mark = guest.text.length;
    alice.send({ cmd: 'say', room: 'lobby', text: 'a\u001b]0;pwned\u0007b\u009b2Jc\nguest-99: forged\td', ref: 'x' });
    await alice.next('message', (e) => e.ref === 'x');
    const [line] = await guest.waitFor(/^alice: .*$/m, mark);
    expect(line).toBe('alice: a]0;pwnedb2Jc guest-99: forged\td');
    expect(guest.text.slice(mark)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    // and a line client's own control bytes are not relayed to other line clients either
    const other = await LineClient.open(linePort);
    const mark2 = other.text.length;
    guest.write('x\u001b[31my\n');
    const [relayed] = await other.waitFor(new RegExp(`^${guest.nick}: .*$`, 'm'), mark2);
    expect(relayed).toBe(`${guest.nick}: x[31my`);
  });

  it('rate-limits line clients with an error line and keeps the connection', async () => {
    const { linePort } = await startChat({ rateCapacity: 2, rateIntervalMs: 60_000 });
    const guest = await LineClient.open(linePort);
    guest.write('one\ntwo\nthree\n');
    await guest.waitFor(/^! SB_ERR_RATE_LIMITED too many requests: /m);
    expect(guest.lines.filter((l) => l.startsWith(`${guest.nick}: `))).toEqual([`${guest.nick}: one`, `${guest.nick}: two`]);
    // /who and /rooms are charged too; /help is not, and shows the connection is still served
    const mark = guest.text.length;
    guest.write('/who\n/rooms\n/help\n');
    await guest.waitFor(/^\* commands: /m, mark);
    expect(guest.text.slice(mark).match(/^! SB_ERR_RATE_LIMITED /gm)).toHaveLength(2);
  });

  it('/join: a line client and a ChatClient in a non-default room hear each other, with history and members on join', async () => {
    const { port, linePort } = await startChat();
    const alice = await ChatClient.connect('127.0.0.1', port, { nick: 'alice', room: 'ops' });
    await alice.say('ops', 'before you came');
    const guest = await LineClient.open(linePort);
    const lobbyWatcher = await RawChat.hello(port, 'bob');

    const mark = guest.text.length;
    guest.write('/join #ops\n');
    const [shown] = await guest.waitFor(/^alice: before you came\n\* in #ops: alice, guest-\d+$/m, mark);
    expect(shown).toContain(guest.nick);
    // it left the lobby: the lobby saw it go
    await lobbyWatcher.next('presence', (e) => e.nick === guest.nick && e.event === 'leave' && e.room === 'lobby');

    const heard = new Promise<MessageEvent>((resolve) => alice.on('message', (e) => e.from === guest.nick && resolve(e)));
    guest.write('hello ops\n');
    expect(await heard).toMatchObject({ room: 'ops', text: 'hello ops' });
    await alice.say('ops', 'hi line client');
    await guest.waitFor(/^alice: hi line client$/m, mark);
    // /who is about the current room
    expect(await command(guest, '', 'ops')).toMatch(new RegExp(`^\\* in #ops: alice, ${guest.nick}$`, 'm'));
    // nothing said in the lobby reaches it any more
    lobbyWatcher.send({ cmd: 'say', room: 'lobby', text: 'lobby only', ref: 'l' });
    await lobbyWatcher.next('message', (e) => e.ref === 'l');
    await command(guest, '', 'ops');
    expect(guest.text).not.toContain('lobby only');
    await alice.close();
  });

  it('/join away: the old room\'s messages no longer arrive, the new one\'s do', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice', { room: 'ops' });
    alice.send({ cmd: 'join', room: 'dev' });
    await alice.next('joined', (e) => e.room === 'dev');
    const guest = await LineClient.open(linePort);
    await command(guest, '/join ops', 'ops');
    alice.send({ cmd: 'say', room: 'ops', text: 'ops one', ref: '1' });
    await guest.waitFor(/^alice: ops one$/m);

    const out = await command(guest, '/join dev', 'dev');
    expect(out).toMatch(new RegExp(`^\\* in #dev: alice, ${guest.nick}$`, 'm'));
    await alice.next('presence', (e) => e.room === 'ops' && e.nick === guest.nick && e.event === 'leave');
    const mark = guest.text.length;
    alice.send({ cmd: 'say', room: 'ops', text: 'ops two', ref: '2' });
    alice.send({ cmd: 'say', room: 'dev', text: 'dev one', ref: '3' });
    await guest.waitFor(/^alice: dev one$/m, mark);
    expect(guest.text.slice(mark)).not.toContain('ops two');
    guest.write('said in dev\n');
    expect((await alice.next('message', (e) => e.from === guest.nick)).room).toBe('dev');
  });

  it('/join refuses a bad room name with the stable code, and the client stays where it was', async () => {
    const { port, linePort } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const guest = await LineClient.open(linePort);
    const out = await command(guest, '/join Not-A-Room!', 'lobby');
    expect(out).toMatch(/^! SB_ERR_CHAT_ROOM_INVALID invalid room name "Not-A-Room!": /m);
    expect(await command(guest, '/join', 'lobby')).toMatch(/^! SB_ERR_BAD_REQUEST bad request: usage: \/join ROOM$/m);
    guest.write('still here\n');
    expect((await alice.next('message', (e) => e.from === guest.nick)).room).toBe('lobby');
  });

  it('/join switches rooms even when a connection may be in only one room', async () => {
    const { linePort } = await startChat({ maxRoomsPerConnection: 1 });
    const guest = await LineClient.open(linePort);
    const out = await command(guest, '/join ops', 'ops');
    expect(out).not.toMatch(/^! /m);
    expect(out).toMatch(new RegExp(`^\\* in #ops: ${guest.nick}$`, 'm'));
  });

  it('/rooms lists rooms with people in them and their counts, the fullest first, bounded', async () => {
    const { port, linePort } = await startChat({ rateCapacity: 1000 });
    const alice = await RawChat.hello(port, 'alice', { room: 'ops' });
    const bob = await RawChat.hello(port, 'bob', { room: 'ops' });
    const guest = await LineClient.open(linePort);
    let out = await command(guest, '/rooms', 'lobby');
    expect(out).toMatch(/^\* rooms: #ops \(2\), #lobby \(1\)$/m);

    for (let i = 0; i < LINE_ROOMS_LISTED + 3; i++) bob.send({ cmd: 'join', room: `r${String(i).padStart(2, '0')}` });
    await bob.sync();
    out = await command(guest, '/rooms', 'lobby');
    const line = /^\* rooms: .*$/m.exec(out)![0];
    expect(line.match(/#/g)).toHaveLength(LINE_ROOMS_LISTED);
    expect(line).toMatch(/^\* rooms: #ops \(2\), #lobby \(1\), #r00 \(1\), /);
    expect(line).toMatch(/, and 5 more$/);
    alice.socket.end();
  });

  it('/who and the member line of a join name at most LINE_MEMBERS_LISTED nicknames, then how many more', async () => {
    const { port, linePort } = await startChat();
    const nicks = Array.from({ length: LINE_MEMBERS_LISTED + 4 }, (_, i) => `m${String(i).padStart(3, '0')}`);
    for (const nick of nicks) await RawChat.hello(port, nick, { room: 'big' });
    const guest = await LineClient.open(linePort);
    const out = await command(guest, '/join big', 'big');
    const lines = out.match(/^\* in #big: .*$/gm)!;
    expect(lines).toHaveLength(2); // the join's, then /who's
    // 55 members (the guest sorts first): 50 names, then the 5 others counted
    for (const line of lines) {
      expect(line.replace(/, and \d+ more$/, '').split(', ')).toHaveLength(LINE_MEMBERS_LISTED);
      expect(line).toMatch(new RegExp(`^\\* in #big: ${guest.nick}, ${nicks[0]}, .*, ${nicks[LINE_MEMBERS_LISTED - 2]}, and 5 more$`));
    }
  });

  it('/help names /join and /rooms', async () => {
    const { linePort } = await startChat();
    const guest = await LineClient.open(linePort);
    const out = await command(guest, '/help', 'lobby');
    expect(out).toMatch(/\/join ROOM/);
    expect(out).toMatch(/\/rooms/);
  });

  it('never shows direct-message history: not on connect, not after /nick (a nick proves nothing here)', async () => {
    const TOKEN = 'gateway-token-0123456789abcdef';
    const { port, linePort } = await startChat({ gatewayToken: TOKEN });
    const alice = await RawChat.hello(port, 'alice');
    const first = await LineClient.open(linePort);
    await command(first, '/nick carol', 'lobby');
    alice.send({ cmd: 'dm', to: 'carol', text: 'for carol', ref: '1' });
    await first.waitFor(/^\*alice\* for carol$/m); // live direct messages do arrive
    const guest = await LineClient.open(linePort);
    const admin = await RawChat.hello(port, 'admin', { gatewayToken: TOKEN });
    admin.send({ cmd: 'dm', to: guest.nick, text: 'to the guest', ref: 'g' });
    await guest.waitFor(/^\*admin\* to the guest$/m);
    admin.send({ cmd: 'dm', to: 'admin', text: 'admin secret', ref: 's' });
    await admin.next('direct', (e) => e.ref === 's');
    for (const c of [first, guest]) {
      c.socket.end();
      await c.closed;
    }
    admin.socket.end();
    await admin.closed;

    const again = await LineClient.open(linePort);
    expect(await command(again, '/nick carol', 'lobby')).toMatch(/^\* you are now carol$/m);
    // an account's name is not to be had here at all (reserved once the account chatted)
    expect(await command(again, '/nick admin', 'lobby')).toMatch(/^! SB_ERR_CHAT_NICK_RESERVED /m);
    expect(again.text).not.toMatch(/for carol|to the guest|admin secret|^-> /m);
  });

  it('is off when linePort is null', async () => {
    const { service } = await startChat({ linePort: null });
    expect(service.lineAddress()).toBeNull();
  });
});

describe('LineChatServer: a frame client on the line port', () => {
  /** Connects to the line port, sends `bytes` as the first thing, and resolves with all it got once the service closed. */
  async function firstBytes(linePort: number, bytes: Uint8Array): Promise<string> {
    const socket = await connectTracked(linePort);
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => (received += d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(bytes);
    await closed;
    return received;
  }

  it('answers a first line that is a frame (NUL bytes in its length header) with SB_ERR_CHAT_WRONG_PORT, closes, and posts nothing', async () => {
    const { port, linePort } = await startChat();
    const watcher = await RawChat.hello(port, 'watcher');
    // what `sockbridge chat` sends first: a hello frame, 4-byte little-endian length then JSON, no newline
    const received = await firstBytes(linePort, encodeFrame({ cmd: 'hello', nick: 'alice', room: 'lobby' }));
    expect(received).toMatch(/^! SB_ERR_CHAT_WRONG_PORT this is the chat line-mode port.*frame clients .* use the chat port$/m);
    await watcher.sync();
    expect(watcher.events.filter((e) => e.cmd === 'message')).toEqual([]);
  });

  it('refuses a first line that starts a TLS record, but not one with ESC (arrow keys), a tab or another control byte', async () => {
    const { port, linePort } = await startChat();
    const watcher = await RawChat.hello(port, 'watcher');
    const received = await firstBytes(linePort, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x0a])); // a TLS ClientHello's first bytes
    expect(received).toMatch(/^! SB_ERR_CHAT_WRONG_PORT /m);

    const person = await LineClient.open(linePort);
    person.write('typed\tthen an arrow key \x1b[A\nlater \x01 a control byte\n');
    await watcher.next('message', (e) => e.text.startsWith('typed'));
    await watcher.next('message', (e) => e.text.startsWith('later'));
    expect(person.text).not.toMatch(/SB_ERR_CHAT_WRONG_PORT/);
  });

  // Regression (review): telnet and PuTTY open with option negotiation, whose C0 bytes made the
  // line port answer SB_ERR_CHAT_WRONG_PORT and close before the person typed anything.
  it('strips a telnet client\'s option negotiation and posts what it typed', async () => {
    const { port, linePort } = await startChat();
    const watcher = await RawChat.hello(port, 'watcher');
    const telnet = await LineClient.open(linePort);
    telnet.write(Buffer.from([
      0xff, 0xfb, 0x1f, 0xff, 0xfb, 0x18, 0xff, 0xfd, 0x01, 0xff, 0xfb, 0x03, // IAC WILL NAWS, WILL TTYPE, DO ECHO, WILL SGA
      0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, //                                     "hello" LF
    ]));
    expect(await watcher.next('message', (e) => e.from === telnet.nick)).toMatchObject({ text: 'hello' });
    telnet.write(Buffer.from([0xff, 0xfa, 0x1f, 0x00, 0x50, 0x00, 0x18, 0xff, 0xf0, 0x61, 0x67, 0x61, 0x69, 0x6e, 0x0d, 0x0a])); // IAC SB NAWS 80x24 IAC SE "again" CR LF
    expect(await watcher.next('message', (e) => e.from === telnet.nick && e.text !== 'hello')).toMatchObject({ text: 'again' });
    expect(telnet.text).not.toMatch(/SB_ERR_CHAT_WRONG_PORT/);
  });
});
