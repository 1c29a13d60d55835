// `sockbridge chat` and `sockbridge serve chat` as a user runs them (bin/sockbridge → dist/).
import { writeFile } from 'node:fs/promises';
import * as nodePty from 'node-pty';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SOCKBRIDGE_BIN, runCli, startCli, stopAllCli } from '../../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../../helpers/tmp.js';
import { KIT_GATEWAY_TOKEN, LineClient, RawChat, closeAll, startChat } from '../../../backends/chat/chat-kit.js';
import { ChatClient } from '../../../../backends/chat/chat-client.js';
import { encodeFrame } from '../../../../protocol/frame-codec.js';
import { closeHostileServices, hostileService } from '../hostile-service.js';

const ptys: nodePty.IPty[] = [];

afterEach(async () => {
  for (const p of ptys.splice(0)) p.kill();
  await stopAllCli();
  await closeAll();
  await closeHostileServices();
  await removeTempDirs();
});

describe('sockbridge chat', () => {
  it('says each piped stdin line, waits out the rate limit, and exits 0 once the last one is acknowledged', async () => {
    const { port } = await startChat({ rateCapacity: 3, rateIntervalMs: 300 });
    const bob = await RawChat.hello(port, 'bob');
    const lines = Array.from({ length: 6 }, (_, i) => `line ${i}`);
    const { code, stdout, stderr } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice'], { input: `${lines.join('\n')}\n` });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const text of lines) {
      await bob.next('message', (e) => e.from === 'alice' && e.text === text);
      expect(stdout).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d\\] ~alice: ${text}$`, 'm'));
    }
  });

  it('joins --room and prints other people as [HH:MM] nick: text, a nick without an account as ~nick', async () => {
    const { port } = await startChat();
    const bob = await RawChat.hello(port, 'bob', { room: 'dev' });
    bob.send({ cmd: 'say', room: 'dev', text: 'before you came', ref: 'b' });
    await bob.next('message', (e) => e.ref === 'b');
    const carol = await RawChat.hello(port, 'carol', { room: 'dev', gatewayToken: KIT_GATEWAY_TOKEN });
    carol.send({ cmd: 'say', room: 'dev', text: 'from an account', ref: 'c' });
    await carol.next('message', (e) => e.ref === 'c');
    const { code, stdout } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice', '--room', 'dev'], { input: 'hi\n/who\n' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\[\d\d:\d\d\] ~bob: before you came$/m);
    expect(stdout).toMatch(/^\[\d\d:\d\d\] carol: from an account$/m);
    expect(stdout).toMatch(/^\* joined #dev: alice, bob, carol$/m);
    expect((await bob.next('message', (e) => e.from === 'alice')).room).toBe('dev');
  });

  it('shows no earlier direct messages of the nick it takes (a raw nick proves nothing; history is served through the gateway only)', async () => {
    const { port } = await startChat();
    const bob = await RawChat.hello(port, 'bob');
    const alice = await RawChat.hello(port, 'alice');
    bob.send({ cmd: 'dm', to: 'alice', text: 'are you there?', ref: 'd1' });
    await alice.next('direct', (e) => e.text === 'are you there?');
    alice.send({ cmd: 'dm', to: 'bob', text: 'back in 5', ref: 'd2' });
    await bob.next('direct', (e) => e.text === 'back in 5');
    alice.socket.end();
    await bob.next('presence', (e) => e.nick === 'alice' && e.event === 'leave');
    const { code, stdout } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice'], { input: '' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\* joined #lobby: /m);
    expect(stdout).not.toMatch(/are you there|back in 5/);
  });

  it('reports a taken nickname in one line and exits 1; bad usage exits 2', async () => {
    const { port } = await startChat();
    await RawChat.hello(port, 'alice');
    const taken = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice'], { input: '' });
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^sockbridge: nickname alice is already in use\n$/);
    const usage = await runCli(['chat', `127.0.0.1:${port}`]);
    expect(usage.code).toBe(2);
  });

  it('exits 1 with one line on stderr when the service goes away', async () => {
    const { port, service } = await startChat();
    const proc = startCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice']);
    await proc.waitFor(/^\* joined #lobby: alice$/m);
    await service.close();
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toBe('! connection to the chat service closed\n');
  });

  it('shows how many rooms /rooms left out: the service lists the fullest 100, then ", and N more"', async () => {
    const { port } = await startChat({ rateCapacity: 1000, maxRoomsPerConnection: 200 });
    const alice = await RawChat.hello(port, 'alice');
    for (let i = 0; i <= 100; i++) alice.send({ cmd: 'join', room: `r${String(i).padStart(3, '0')}` });
    await alice.sync();
    const { code, stdout } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'bob'], { input: '/rooms\n' });
    expect(code).toBe(0);
    // lobby and r000..r100 have someone in them: 102 rooms, 100 listed
    expect(stdout).toMatch(/^\* rooms: #lobby \(2\), #r000 \(1\), .*, #r098 \(1\), and 2 more$/m);
  });

  it('reports a refused line on stderr, keeps going, and exits 1', async () => {
    const { port } = await startChat();
    const bob = await RawChat.hello(port, 'bob');
    const { code, stderr } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'alice'], { input: `${'x'.repeat(5000)}\nafter\n` });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^! message of 5000 bytes exceeds the limit of 4096 bytes$/m);
    await bob.next('message', (e) => e.from === 'alice' && e.text === 'after');
  });
});

describe('sockbridge chat against a hostile or silent service', () => {
  const ESC = '\u001b]0;PWNED\u0007\u001b[2J'; // OSC retitle + clear screen

  it('prints nothing of a malformed event: one line on stderr saying why the connection ended, exit 1 (audit2 #3)', async () => {
    const port = await hostileService((socket, request) => {
      if (request.cmd !== 'hello') return;
      socket.write(encodeFrame({ cmd: 'welcome', nick: request['nick'] as string, rooms: ['lobby'] }));
      const history = [{ id: 1, room: 'lobby', from: `evil${ESC}`, text: 'hi', ts: Date.now() }];
      socket.write(encodeFrame({ cmd: 'joined', room: 'lobby', members: [`mallory${ESC}`], history }));
    });
    const { code, stdout, stderr } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'bob'], { input: 'hello\n' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('! connection to the chat service closed: invalid message: chat service sent a "joined" event whose "members" is not a list of nicknames\n');
  });

  it('gives up a line the service never acknowledges after --timeout: one line, exit 1 (audit2 #5)', async () => {
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'hello') socket.write(encodeFrame({ cmd: 'welcome', nick: request['nick'] as string, rooms: ['lobby'] }));
    });
    const started = Date.now();
    const { code, stdout, stderr } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'bob', '--timeout', '300'], { input: 'hi\nsecond line\n', timeoutMs: 10_000 });
    expect(code).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(stdout).toBe('');
    expect(stderr).toBe('! connection to the chat service closed: timed out after 300 ms: no acknowledgement of "say" from the chat service\n');
  });

  it('retries a rate-limited line with the same ref, so a service that did store it posts it once', async () => {
    const refs: unknown[] = [];
    const port = await hostileService((socket, request) => {
      if (request.cmd === 'hello') socket.write(encodeFrame({ cmd: 'welcome', nick: request['nick'] as string, rooms: ['lobby'] }));
      if (request.cmd !== 'say') return;
      refs.push(request['ref']);
      const ref = request['ref'] as string;
      socket.write(encodeFrame(refs.length < 3
        ? { cmd: 'error', code: 'SB_ERR_RATE_LIMITED', message: 'slow down', ref, retryAfterMs: 10 }
        : { cmd: 'message', id: 1, room: 'lobby', from: 'bob', text: 'once', ts: Date.now(), ref }));
    });
    const { code, stderr } = await runCli(['chat', `127.0.0.1:${port}`, '--nick', 'bob'], { input: 'once\n' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(refs).toHaveLength(3);
    expect(new Set(refs).size).toBe(1);
    expect(refs[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([['abc'], ['0']])('refuses --timeout %s in one line, exit 2', async (value) => {
    const { code, stderr } = await runCli(['chat', '127.0.0.1:1', '--nick', 'bob', '--timeout', value]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^sockbridge: --timeout must be /);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('sockbridge chat on a terminal', () => {
  it('prompts, prints [HH:MM] lines above the prompt, and handles /join, /msg, /who, /rooms and /quit', async () => {
    const { port } = await startChat();
    const bob = await RawChat.hello(port, 'bob');
    const term = nodePty.spawn(process.execPath, [SOCKBRIDGE_BIN, 'chat', `127.0.0.1:${port}`, '--nick', 'alice'], { cols: 100, rows: 30, env: process.env as Record<string, string> });
    ptys.push(term);
    let screen = '';
    const waiters = new Set<() => void>();
    term.onData((d) => {
      screen += d;
      for (const w of [...waiters]) w();
    });
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    const waitFor = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; screen: ${JSON.stringify(screen.slice(-1500))}`)), 10_000);
        const check = () => {
          if (pattern.test(screen)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      });

    await waitFor(/alice> /);
    term.write('hello from a tty\r');
    expect((await bob.next('message', (e) => e.from === 'alice')).text).toBe('hello from a tty');
    bob.send({ cmd: 'say', room: 'lobby', text: 'hi \u001b[2Jalice', ref: 'b' });
    await waitFor(/\[\d\d:\d\d\] ~bob: hi \[2Jalice/); // ESC removed before it reached the terminal
    term.write('/msg bob psst\r');
    expect(await bob.next('direct')).toMatchObject({ from: 'alice', to: 'bob', text: 'psst' });
    term.write('/join dev\r');
    await waitFor(/\* joined #dev: alice/);
    term.write('in dev\r');
    await bob.sync();
    term.write('/who lobby\r');
    await waitFor(/\* in #lobby: alice, bob/);
    term.write('/rooms\r');
    await waitFor(/\* rooms: #lobby \(2\), #dev \(1\)/); // fullest first
    term.write('/quit\r');
    expect(await exited).toBe(0);
    expect(bob.events.some((e) => e.cmd === 'message' && e.text === 'in dev')).toBe(false);
    expect(screen).not.toContain('\u001b[2J');
  });
});

describe('sockbridge serve chat', () => {
  it('prints both addresses, serves frames and lines, and shares a nick with the gateway token file', async () => {
    const dir = await tempDir();
    const tokenFile = join(dir, 'chat-gateway.secret');
    await writeFile(tokenFile, 'a-gateway-token-of-enough-length\n');
    const proc = startCli(['serve', 'chat', '--port', '0', '--line-port', '0', '--data', dir, '--gateway-token-file', tokenFile]);
    const [, framePort] = await proc.waitFor(/sockbridge chat listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    const [, linePort] = await proc.waitFor(/sockbridge chat line mode on tcp:\/\/127\.0\.0\.1:(\d+)/);
    await proc.waitFor(/ready/);
    const tab1 = await RawChat.hello(Number(framePort), 'alice', { gatewayToken: 'a-gateway-token-of-enough-length' });
    await RawChat.hello(Number(framePort), 'alice', { gatewayToken: 'a-gateway-token-of-enough-length' });
    const guest = await LineClient.open(Number(linePort));
    guest.write('hello\n');
    await tab1.next('message', (e) => e.text === 'hello');
    expect(await proc.stop('SIGTERM')).toBe(0);
  });

  it('loses no acknowledged message when the process is killed (SIGKILL) and restarted', async () => {
    const dir = await tempDir();
    const args = ['serve', 'chat', '--port', '0', '--line-port', 'off', '--data', dir];
    const first = startCli(args);
    const [, port] = await first.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    await first.waitFor(/line mode off/);
    const client = await ChatClient.connect('127.0.0.1', Number(port), { nick: 'alice' });
    const acked = [];
    for (let i = 0; i < 15; i++) acked.push(await client.say('lobby', `durable ${i}`));
    expect(await first.stop('SIGKILL')).toBe(137);

    const second = startCli(args);
    const [, port2] = await second.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    const reader = await RawChat.hello(Number(port2), 'bob');
    const { history } = await reader.next('joined');
    expect(history.map((m) => [m.id, m.text])).toEqual(acked.map((m) => [m.id, m.text]));
  });

  it('exits 2 with one line when --data is missing', async () => {
    const { code, stderr } = await runCli(['serve', 'chat', '--port', '0']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^sockbridge: --data DIR is required/);
  });
});
