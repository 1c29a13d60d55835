// Line mode on a real TCP port: what nc, telnet and the seed's chat client see.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { LineClient, RawChat, closeAll, startChat } from './chat-kit.js';

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
    await guest.waitFor(/^! nickname alice is already in use$/m, mark);

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
    await guest.waitFor(/^! bad request: unknown command \/nope/m, mark);

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
    await guest.waitFor(/^! message of \d+ bytes exceeds the limit of 4096 bytes$/m);
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
    await guest.waitFor(/^! too many requests: /m);
    expect(guest.lines.filter((l) => l.startsWith(`${guest.nick}: `))).toEqual([`${guest.nick}: one`, `${guest.nick}: two`]);
    const mark = guest.text.length;
    guest.write('/who\n');
    await guest.waitFor(/^\* in #lobby: /m, mark);
  });

  it('is off when linePort is null', async () => {
    const { service } = await startChat({ linePort: null });
    expect(service.lineAddress()).toBeNull();
  });
});
