// Regression tests for the session audit (H2, M1, M2): accounts changed by `sockbridge user …` in
// another process (here a second UserStore on the same DATA/users.sqlite), a client that never
// answers the gateway's Close frame, and uploads in flight when their session ends or is demoted.
// Real gateway, real ExecService and FilesService, real sockets on 127.0.0.1.
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecService } from '../../backends/exec/exec-service.js';
import { FilesService } from '../../backends/files/files-service.js';
import { UserStore } from '../../server/accounts/user-store.js';
import { encodeExecData } from '../../protocol/exec-messages.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { multipart } from '../server/app-fixture.js';
import { EXEC_SECRET, closeAll, rawUpgradeRequest, startGateway, track, waitFor, type Gateway, type TestSocket } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A gateway with a real exec service; `accountCheckIntervalMs` short unless a test wants it out of the way. */
async function setup(accountCheckIntervalMs = 200) {
  const service = track(new ExecService({ port: 0, secret: EXEC_SECRET, killGraceMs: 200 }));
  const { port } = await service.start();
  const gw = await startGateway({ exec: `tcp://127.0.0.1:${port}`, accountCheckIntervalMs });
  // what `sockbridge user …` opens: its own connection to the same database
  const cli = new UserStore(gw.app.users.path);
  track({ close: async () => cli.close() });
  return { gw, cli };
}

async function openExec(gw: Gateway, cookie: string): Promise<TestSocket> {
  const socket = await gw.open('/ws/exec', cookie);
  await socket.json((m) => m['cmd'] === 'ready');
  return socket;
}

const me = (gw: Gateway, cookie: string) => gw.app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie } });

describe('sessions follow account changes made by another process', () => {
  it('a demoted admin loses an open /ws/exec at once (1008), without making any request; a user-level socket stays', async () => {
    const { gw, cli } = await setup();
    const cookie = await gw.login('root', 'root-password');
    const exec = await openExec(gw, cookie);
    const time = await gw.open('/ws/time', cookie);
    cli.setRole('root', 'user');
    expect(await exec.closed).toMatchObject({ code: 1008, reason: 'needs the admin role' });
    // the session itself lives on with its new role, and so does the socket that needs no more
    time.send({ cmd: 'ping', t0: 1 });
    await time.json((m) => m['cmd'] === 'pong');
    expect((await me(gw, cookie)).json()).toMatchObject({ username: 'root', role: 'user' });
  });

  it('a removed admin: the session ends and its exec socket closes with 1008, without any request', async () => {
    const { gw, cli } = await setup();
    const cookie = await gw.login('root', 'root-password');
    const exec = await openExec(gw, cookie);
    cli.remove('root');
    expect(await exec.closed).toMatchObject({ code: 1008, reason: 'account changed' });
    expect(gw.app.sessions.get(cookie)).toBeNull();
  });

  it('a new password ends the sessions made with the old one and closes their sockets', async () => {
    const { gw, cli } = await setup();
    const cookie = await gw.login('root', 'root-password');
    const exec = await openExec(gw, cookie);
    await cli.passwd('root', 'a-new-password-1');
    expect(await exec.closed).toMatchObject({ code: 1008, reason: 'account changed' });
    expect((await me(gw, cookie)).statusCode).toBe(401);
    const fresh = await gw.app.inject({ method: 'POST', url: '/api/login', payload: { username: 'root', password: 'a-new-password-1' } });
    expect(fresh.statusCode).toBe(200);
  });

  it('a session of a removed account is not revived by adding the name again (checked on the next request)', async () => {
    const { gw, cli } = await setup(60_000);
    const cookie = await gw.login('dave', 'dave-password-1');
    cli.remove('dave');
    await cli.add('dave', 'brand-new-pass-9', 'user');
    const res = await me(gw, cookie);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('SB_ERR_AUTH_REQUIRED');
  });

  it('/ws/exec re-checks the account before each run: a demoted admin\'s command does not start', async () => {
    // the periodic check is out of the way: only the check before `run` can stop this command
    const { gw, cli } = await setup(60_000);
    const cookie = await gw.login('root', 'root-password');
    const exec = await openExec(gw, cookie);
    cli.setRole('root', 'user');
    const marker = join(await tempDir(), 'ran');
    exec.send({ cmd: 'run', id: 'late', argv: ['touch', marker] });
    // the check that found the demotion closes the socket (1008, like the periodic check would)
    expect(await exec.closed).toMatchObject({ code: 1008, reason: 'needs the admin role' });
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(marker)).toBe(false);
  });
});

/** A masked client frame (RFC 6455 §5.2, §5.3): 0x1 text, 0x2 binary; for a client that writes its own bytes. */
function clientFrame(opcode: 0x1 | 0x2, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | payload.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  return Buffer.concat([head, mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

describe('a client that never answers the Close frame after its session ends', () => {
  it('runs nothing more after logout, and its connection is destroyed after the grace period', async () => {
    const { gw } = await setup(60_000);
    const cookie = await gw.login('root', 'root-password');
    const socket = net.connect(Number(new URL(gw.origin).port), '127.0.0.1');
    track({ close: async () => void socket.destroy() });
    socket.on('error', () => {});
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    let destroyedAt = 0;
    socket.once('close', () => (destroyedAt = Date.now()));
    socket.write(rawUpgradeRequest(gw, '/ws/exec', cookie));
    await waitFor(() => received.includes('"ready"'), 5000, 'the exec service ready event');

    // a command that does something once it reads a line: an open shell, in effect
    const marker = join(await tempDir(), 'ran-after-logout');
    socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ cmd: 'run', id: 'sh', command: `read line && touch '${marker}'` }))));
    await waitFor(() => received.includes('"started"'), 5000, 'the command to start');

    const loggedOutAt = Date.now();
    expect((await gw.app.inject({ method: 'POST', url: '/api/logout', cookies: { sb_session: cookie } })).statusCode).toBe(204);
    await waitFor(() => received.includes(Buffer.from([0x88])), 2000, 'the Close frame');
    // the session is gone; this client keeps its socket open and types into the command instead of
    // answering the Close, and tries a new command too
    socket.write(clientFrame(0x2, Buffer.from(encodeExecData('stdin', 'sh', Buffer.from('go\n')))));
    socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ cmd: 'run', id: 'x1', argv: ['touch', `${marker}-2`] }))));
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(`${marker}-2`)).toBe(false);
    // and the gateway does not wait ws's 30 s closeTimeout for an answer that never comes
    await waitFor(() => destroyedAt > 0, 5000, 'the gateway to destroy the connection');
    expect(destroyedAt - loggedOutAt).toBeLessThan(3000);
  });
});

/** A gateway with a real files service; the account check every 200 ms, as `setup` has it. */
async function filesSetup() {
  const root = await tempDir();
  const files = track(new FilesService({ root, port: 0 }));
  const { port } = await files.start();
  const gw = await startGateway({ files: `tcp://127.0.0.1:${port}`, accountCheckIntervalMs: 200 });
  const cli = new UserStore(gw.app.users.path);
  track({ close: async () => cli.close() });
  return { gw, cli, root };
}

interface Answer {
  status: number;
  body: { error?: { code: string } };
}

/**
 * Starts an upload over real HTTP and sends `first` bytes of its body; `rest()` sends the remainder,
 * `answer` is the response (which may come before the body is complete).
 */
function startUpload(gw: Gateway, cookie: string, request: { method: string; path: string; contentType: string; body: Buffer }, first: number) {
  const req = http.request(`${gw.origin}${request.path}`, {
    method: request.method,
    headers: { cookie: `sb_session=${cookie}`, origin: gw.origin, 'content-type': request.contentType, 'content-length': request.body.length },
  });
  // the gateway may answer and close before the whole body is sent
  req.on('error', () => undefined);
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      res.on('error', reject);
    });
  });
  req.write(request.body.subarray(0, first));
  return { answer, rest: () => void req.end(request.body.subarray(first)) };
}

const putRequest = (name: string, body: Buffer) => ({ method: 'PUT', path: `/api/files/${name}`, contentType: 'application/octet-stream', body });
const postRequest = (name: string, data: Buffer) => {
  const form = multipart([{ filename: name, data }]);
  return { method: 'POST', path: '/api/files', contentType: form.headers['content-type']!, body: form.payload };
};

describe('an upload in flight when its session ends or its role drops publishes nothing', () => {
  const cases = [
    { what: 'a PUT by an admin demoted mid-body', request: putRequest, end: 'demote', status: 403, code: 'SB_ERR_FORBIDDEN' },
    { what: 'a multipart POST by an admin demoted mid-part', request: postRequest, end: 'demote', status: 403, code: 'SB_ERR_FORBIDDEN' },
    { what: 'a PUT whose session logs out mid-body', request: putRequest, end: 'logout', status: 401, code: 'SB_ERR_AUTH_REQUIRED' },
    { what: 'a multipart POST whose account is removed mid-part', request: postRequest, end: 'remove', status: 401, code: 'SB_ERR_AUTH_REQUIRED' },
  ] as const;

  it.each(cases)("$what: 403/401, the other user's file is unchanged, no partial is left", async ({ request, end, status, code }) => {
    const { gw, cli, root } = await filesSetup();
    const theirs = randomBytes(10_000);
    const alice = await gw.login('alice', 'alice-password');
    const stored = startUpload(gw, alice, putRequest('theirs.bin', theirs), 0);
    stored.rest();
    expect((await stored.answer).status).toBe(201);

    const admin = await gw.login('root', 'root-password');
    const replacement = request('theirs.bin', randomBytes(1024 * 1024));
    const upload = startUpload(gw, admin, replacement, 256 * 1024);
    // the put has reached the files service: its temporary file exists
    await waitFor(async () => (await readdir(join(root, '.partial'))).length === 1, 5000, 'the upload to be under way');

    if (end === 'demote') cli.setRole('root', 'user');
    else if (end === 'remove') cli.remove('root');
    else expect((await gw.app.inject({ method: 'POST', url: '/api/logout', cookies: { sb_session: admin } })).statusCode).toBe(204);
    // once the gateway has seen the change (the account check runs every 200 ms), the client sends the
    // rest of the body anyway: a gateway that let the upload go on would publish it now, with the
    // admin rights it started with
    const sessionNow = () => gw.app.sessions.get(admin);
    await waitFor(() => (end === 'demote' ? sessionNow()?.role === 'user' : sessionNow() === null), 5000, 'the gateway to see the change');
    upload.rest();

    const answer = await upload.answer;
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    await waitFor(async () => (await readdir(join(root, '.partial'))).length === 0, 5000, 'the aborted upload to be discarded');
    expect((await readFile(join(root, 'theirs.bin'))).equals(theirs)).toBe(true);
    expect((await readdir(root)).filter((n) => !n.startsWith('.'))).toEqual(['theirs.bin']);
    expect(gw.app.liveUploads.count(admin)).toBe(0);
  });
});
