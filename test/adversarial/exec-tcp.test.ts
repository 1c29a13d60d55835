// Attacks on the exec port (a remote shell): each refused with its code, and a well-behaved
// client is still served afterwards.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrameHead } from '../../protocol/frame-codec.js';
import { alive, closeAll, collect, connect, rawConnect, SECRET, startExec, waitGone, type RawPeer } from '../backends/exec/exec-fixture.js';
import { lengthPrefix } from './raw-frames.js';

afterEach(closeAll);

async function expectServed(port: number): Promise<void> {
  const client = await connect(port);
  const r = await collect(client.run({ argv: ['echo', 'served'] }));
  expect(r.stdout.toString()).toBe('served\n');
  await client.close();
}

/** Sends raw bytes, expects an error frame with `code`, then the connection closed. */
async function expectRefused(peer: RawPeer, bytes: Buffer, code: string): Promise<void> {
  peer.socket.write(bytes);
  expect((await peer.next('error')).header['code']).toBe(code);
  await peer.closed;
}

const AUTH = encodeFrame({ cmd: 'auth', secret: SECRET });

describe('before authentication', () => {
  it('refuses every command but auth, and runs nothing', async () => {
    const { service, port } = await startExec();
    for (const cmd of ['run', 'stdin', 'cancel', 'resize']) {
      const peer = await rawConnect(port);
      await expectRefused(peer, encodeFrame({ cmd, id: 'x', command: 'sleep 5', cols: 1, rows: 1 }), 'SB_ERR_EXEC_AUTH_REQUIRED');
    }
    expect(service.runningCount).toBe(0);
    await expectServed(port);
  });

  it.each([
    ['2^31-1', 0x7fffffff],
    ['2^32-1 (negative as int32)', 0xffffffff],
    ['0', 0],
    ['one past the 64 KiB limit', 64 * 1024 + 1],
  ])('refuses a declared header length of %s without buffering it', async (_name, length) => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    await expectRefused(peer, lengthPrefix(length), 'SB_ERR_FRAME_HEADER_LENGTH');
    await expectServed(port);
  });

  it('refuses a body before authentication (even on stdin)', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    await expectRefused(peer, encodeFrameHead({ cmd: 'stdin', id: 'x' }, 1024), 'SB_ERR_FRAME_BODY_TOO_LARGE');
    await expectServed(port);
  });

  it('closes the connection after a wrong secret, so it cannot be retried on it', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    await expectRefused(
      peer,
      Buffer.concat([encodeFrame({ cmd: 'auth', secret: 'guess-0123456789abcdef' }), AUTH, encodeFrame({ cmd: 'run', id: 'x', argv: ['true'] })]),
      'SB_ERR_EXEC_AUTH_FAILED',
    );
    expect(peer.frames.map((f) => f.header.cmd)).toEqual(['error']);
    await expectServed(port);
  });

  it('refuses an auth whose secret is not a string', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    await expectRefused(peer, encodeFrame({ cmd: 'auth', secret: { $ne: '' } }), 'SB_ERR_BAD_REQUEST');
    await expectServed(port);
  });

  it('accepts a session sent one byte at a time', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    const bytes = Buffer.concat([AUTH, encodeFrame({ cmd: 'run', id: 'slow', argv: ['echo', 'slow'] })]);
    for (const byte of bytes) peer.socket.write(Buffer.of(byte));
    expect((await peer.next('stdout')).body.toString()).toBe('slow\n');
  });

  it('survives a connection closed in the middle of a frame', async () => {
    const { port } = await startExec();
    const peer = await rawConnect(port);
    peer.socket.end(AUTH.subarray(0, AUTH.length - 3));
    await peer.closed;
    await expectServed(port);
  });
});

describe('after authentication', () => {
  /** An authenticated raw peer with one long-running command (and its grandchild's pid). */
  async function authenticatedWithCommand(port: number): Promise<{ peer: RawPeer; pid: number }> {
    const peer = await rawConnect(port);
    peer.socket.write(Buffer.concat([AUTH, encodeFrame({ cmd: 'run', id: 'bg', command: 'sleep 300 & echo $!; wait' })]));
    await peer.next('ready');
    const pid = Number((await peer.next('stdout')).body.toString().trim());
    expect(alive(pid)).toBe(true);
    return { peer, pid };
  }

  it.each([
    ['invalid JSON', Buffer.concat([lengthPrefix(5), Buffer.from('{"cmd')]), 'SB_ERR_FRAME_HEADER_JSON'],
    ['invalid UTF-8', Buffer.concat([lengthPrefix(4), Buffer.from([0x22, 0xff, 0xfe, 0x22])]), 'SB_ERR_FRAME_HEADER_UTF8'],
    ['a non-object header', Buffer.concat([lengthPrefix(2), Buffer.from('[]')]), 'SB_ERR_FRAME_HEADER_NOT_OBJECT'],
    ['an unknown cmd', encodeFrame({ cmd: 'shell', command: 'id' }), 'SB_ERR_FRAME_CMD_UNKNOWN'],
    ['argv that is not an array', encodeFrame({ cmd: 'run', id: 'x', argv: 'rm -rf /' }), 'SB_ERR_BAD_REQUEST'],
    ['both command and argv', encodeFrame({ cmd: 'run', id: 'x', argv: ['id'], command: 'id' }), 'SB_ERR_BAD_REQUEST'],
    ['an id over 64 bytes', encodeFrame({ cmd: 'run', id: 'x'.repeat(65), argv: ['id'] }), 'SB_ERR_BAD_REQUEST'],
    ['a NUL in argv', encodeFrame({ cmd: 'run', id: 'x', argv: ['echo', 'a\0b'] }), 'SB_ERR_BAD_REQUEST'],
    ['a huge terminal', encodeFrame({ cmd: 'run', id: 'x', argv: ['id'], pty: true, cols: 1e9, rows: 1 }), 'SB_ERR_BAD_REQUEST'],
    ['a stdin body over the limit', encodeFrameHead({ cmd: 'stdin', id: 'bg' }, 2 * 1024 * 1024), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
    ['a body on a control frame', encodeFrameHead({ cmd: 'cancel', id: 'bg' }, 10), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
    ['a second auth', AUTH, 'SB_ERR_BAD_REQUEST'],
    ['an unknown signal', encodeFrame({ cmd: 'cancel', id: 'bg', signal: 'SIGSTOP' }), 'SB_ERR_BAD_REQUEST'],
  ])('closes the connection on %s, killing its commands', async (_name, bytes, code) => {
    const { port } = await startExec();
    const { peer, pid } = await authenticatedWithCommand(port);
    await expectRefused(peer, bytes, code);
    expect(await waitGone(pid)).toBe(true);
    await expectServed(port);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses a %s key and pollutes nothing', async (key) => {
    const { port } = await startExec();
    const { peer } = await authenticatedWithCommand(port);
    const json = `{"cmd":"run","id":"p","argv":["true"],"${key}":{"polluted":"yes","allow":["sh"]}}`;
    await expectRefused(peer, Buffer.concat([lengthPrefix(Buffer.byteLength(json)), Buffer.from(json)]), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await expectServed(port);
  });

  it('refuses runs beyond maxConcurrent with SB_ERR_EXEC_TOO_MANY, keeping the connection', async () => {
    const { service, port } = await startExec({ maxConcurrent: 4 });
    const peer = await rawConnect(port);
    const runs = Array.from({ length: 12 }, (_, i) => encodeFrame({ cmd: 'run', id: `r${i}`, argv: ['sleep', '30'] }));
    peer.socket.write(Buffer.concat([AUTH, ...runs]));
    await peer.next('ready');
    const replies = [];
    for (let i = 0; i < 12; i++) replies.push((await peer.next()).header);
    const started = replies.filter((h) => h.cmd === 'started');
    const refused = replies.filter((h) => h.cmd === 'error');
    expect(started).toHaveLength(4);
    expect(refused).toHaveLength(8);
    expect(new Set(refused.map((h) => h['code']))).toEqual(new Set(['SB_ERR_EXEC_TOO_MANY']));
    expect(service.runningCount).toBe(4);
    // Still usable: cancel one, and a new run takes its place.
    peer.socket.write(encodeFrame({ cmd: 'cancel', id: 'r0', signal: 'SIGKILL' }));
    expect((await peer.next('exit')).header).toMatchObject({ id: 'r0', reason: 'cancelled' });
    peer.socket.write(encodeFrame({ cmd: 'run', id: 'late', argv: ['echo', 'late'] }));
    expect((await peer.next('stdout')).body.toString()).toBe('late\n');
    await expectServed(port);
  });

  it('answers requests for unknown ids without closing', async () => {
    const { port } = await startExec();
    const { peer } = await authenticatedWithCommand(port);
    peer.socket.write(Buffer.concat([
      encodeFrame({ cmd: 'cancel', id: 'nope' }),
      encodeFrame({ cmd: 'resize', id: 'nope', cols: 10, rows: 10 }),
      encodeFrame({ cmd: 'stdin', id: 'nope' }, Buffer.from('ignored')),
    ]));
    for (let i = 0; i < 3; i++) expect((await peer.next('error')).header).toMatchObject({ code: 'SB_ERR_EXEC_NO_SUCH_JOB', id: 'nope' });
    peer.socket.write(encodeFrame({ cmd: 'run', id: 'after', argv: ['echo', 'after'] }));
    expect((await peer.next('stdout')).body.toString()).toBe('after\n');
  });
});
