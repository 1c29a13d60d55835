// Idempotent send, end to end on real sockets: a say or dm retried with the ref of a message the
// service already stored (its ack was lost) is answered with the stored copy and is never stored or
// delivered twice, also across a restart of the service on the same data dir.
import { afterEach, describe, expect, it } from 'vitest';
import { ChatClient } from '../../../backends/chat/chat-client.js';
import type { ChatEvent } from '../../../protocol/chat-messages.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { RawChat, closeAll, startChat } from './chat-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const withText = (events: ChatEvent[], text: string) => events.filter((e) => (e.cmd === 'message' || e.cmd === 'direct') && e.text === text);

/** The room's history as a newcomer sees it on join. */
async function historyOf(port: number, room = 'lobby') {
  const reader = await RawChat.hello(port, `reader-${Math.random().toString(36).slice(2, 8)}`, { room });
  return (await reader.next('joined')).history;
}

describe('ChatService: idempotent send', () => {
  it('stores a say retried with the same ref once: the retry gets the original back (same id and ts), the room sees it once', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');
    await alice.next('presence', (e) => e.nick === 'bob');

    alice.send({ cmd: 'say', room: 'lobby', text: 'only once', ref: 'k1-idempotency-key' });
    const first = await alice.next('message', (e) => e.ref === 'k1-idempotency-key');
    alice.send({ cmd: 'say', room: 'lobby', text: 'only once', ref: 'k1-idempotency-key' });
    const second = await alice.next('message', (e) => e.ref === 'k1-idempotency-key' && e !== first);
    await alice.sync();
    await bob.sync();

    expect(second).toEqual(first);
    expect(withText(alice.events, 'only once')).toHaveLength(2); // the ack, then the ack again
    expect(withText(bob.events, 'only once')).toHaveLength(1);
    expect((await historyOf(port)).filter((m) => m.text === 'only once')).toEqual([{ id: first.id, room: 'lobby', from: 'alice', text: 'only once', ts: first.ts, account: false }]);
  });

  it('stores a dm retried with the same ref once, and answers the retry even when the recipient has gone offline since', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');

    alice.send({ cmd: 'dm', to: 'bob', text: 'psst', ref: 'd1-idempotency-key' });
    const first = await alice.next('direct', (e) => e.ref === 'd1-idempotency-key');
    alice.send({ cmd: 'dm', to: 'bob', text: 'psst', ref: 'd1-idempotency-key' });
    const second = await alice.next('direct', (e) => e.ref === 'd1-idempotency-key' && e !== first);
    await bob.sync();
    expect(second).toEqual(first);
    expect(withText(bob.events, 'psst')).toHaveLength(1);

    bob.socket.destroy();
    await bob.closed;
    alice.send({ cmd: 'dm', to: 'bob', text: 'psst', ref: 'd1-idempotency-key' });
    expect(await alice.next('direct', (e) => e.ref === 'd1-idempotency-key' && e !== first && e !== second)).toEqual(first);
    // a new message to an offline nick is still refused
    alice.send({ cmd: 'dm', to: 'bob', text: 'psst', ref: 'd2-idempotency-key' });
    expect(await alice.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_NO_SUCH_USER', ref: 'd2-idempotency-key' });
  });

  it('recognises the retry after a restart of the service on the same data dir', async () => {
    const before = await startChat();
    const alice = await ChatClient.connect('127.0.0.1', before.port, { nick: 'alice' });
    const stored = await alice.say('lobby', 'survives a restart', 'restart-ref-idempotency-key');
    await alice.close();
    await before.service.close();

    const after = await startChat({ dataDir: before.dataDir });
    const again = await ChatClient.connect('127.0.0.1', after.port, { nick: 'alice' });
    const ack = await again.say('lobby', 'survives a restart', 'restart-ref-idempotency-key');
    expect(ack).toEqual(stored);
    expect((await historyOf(after.port)).filter((m) => m.text === 'survives a restart').map((m) => m.id)).toEqual([stored.id]);
  });

  it('refuses a ref reused for another text, room or kind with SB_ERR_CHAT_REF_REUSED, and keeps the connection', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');
    alice.send({ cmd: 'join', room: 'ops' });
    await alice.next('joined', (e) => e.room === 'ops');
    alice.send({ cmd: 'say', room: 'lobby', text: 'original', ref: 'same-idempotency-key' });
    await alice.next('message', (e) => e.ref === 'same-idempotency-key');

    const reuses = [
      { cmd: 'say', room: 'lobby', text: 'another text' },
      { cmd: 'say', room: 'ops', text: 'original' },
      { cmd: 'dm', to: 'bob', text: 'original' },
    ];
    for (const request of reuses) alice.send({ ...request, ref: 'same-idempotency-key' });
    await alice.sync();
    await bob.sync();
    expect(alice.events.filter((e) => e.cmd === 'error')).toEqual(
      reuses.map(() => expect.objectContaining({ code: 'SB_ERR_CHAT_REF_REUSED', ref: 'same-idempotency-key' })),
    );
    expect(alice.isClosed).toBe(false);
    expect(withText(bob.events, 'another text').concat(withText(bob.events, 'original'))).toHaveLength(1);
  });

  it('keeps refs per sender: another nick may use the same ref for its own message', async () => {
    const { port } = await startChat();
    const alice = await RawChat.hello(port, 'alice');
    const bob = await RawChat.hello(port, 'bob');
    alice.send({ cmd: 'say', room: 'lobby', text: 'from alice', ref: 'shared-idempotency-key' });
    const a = await alice.next('message', (e) => e.ref === 'shared-idempotency-key');
    bob.send({ cmd: 'say', room: 'lobby', text: 'from bob', ref: 'shared-idempotency-key' });
    const b = await bob.next('message', (e) => e.ref === 'shared-idempotency-key');
    expect(b).toMatchObject({ from: 'bob', text: 'from bob' });
    expect(b.id).toBeGreaterThan(a.id);
  });

  it('forgets a ref after refWindowMs: the same ref then posts a new message', async () => {
    const { port } = await startChat({ refWindowMs: 1000 });
    const alice = await RawChat.hello(port, 'alice');
    alice.send({ cmd: 'say', room: 'lobby', text: 'again later', ref: 'w1-idempotency-key' });
    const first = await alice.next('message', (e) => e.ref === 'w1-idempotency-key');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    alice.send({ cmd: 'say', room: 'lobby', text: 'again later', ref: 'w1-idempotency-key' });
    const second = await alice.next('message', (e) => e.ref === 'w1-idempotency-key' && e !== first);
    expect(second.id).toBeGreaterThan(first.id);
  });

  it('charges a retry to the rate limit like a message', async () => {
    const { port } = await startChat({ rateCapacity: 2, rateIntervalMs: 60_000 });
    const alice = await RawChat.hello(port, 'alice');
    for (let i = 0; i < 3; i++) alice.send({ cmd: 'say', room: 'lobby', text: 'retried', ref: 'rl-idempotency-key' });
    await alice.sync();
    expect(alice.events.filter((e) => e.cmd === 'message').length).toBe(2);
    expect(alice.events.find((e) => e.cmd === 'error')).toMatchObject({ code: 'SB_ERR_RATE_LIMITED', ref: 'rl-idempotency-key' });
  });

  // Regression (review): bots number their messages "1", "2", … per connection; after a reconnect
  // within the hour their new messages were answered with old ones, or refused as reused refs.
  it('treats a ref shorter than 16 characters as a correlation id only: the same one again is a new message, never a retry or a reuse', async () => {
    const { port } = await startChat();
    const bot = await RawChat.hello(port, 'bot');
    const watcher = await RawChat.hello(port, 'watcher');
    bot.send({ cmd: 'say', room: 'lobby', text: 'same text', ref: '1' });
    const first = await bot.next('message', (e) => e.ref === '1');
    bot.send({ cmd: 'say', room: 'lobby', text: 'same text', ref: '1' });
    const second = await bot.next('message', (e) => e.ref === '1' && e !== first);
    expect(second.id).toBeGreaterThan(first.id);
    bot.send({ cmd: 'say', room: 'lobby', text: 'another text', ref: '1' });
    bot.send({ cmd: 'dm', to: 'watcher', text: 'a dm', ref: '15-characters-x' });
    bot.send({ cmd: 'dm', to: 'watcher', text: 'a dm', ref: '15-characters-x' });
    await bot.sync();
    await watcher.sync();
    expect(bot.events.filter((e) => e.cmd === 'error')).toEqual([]);
    expect(withText(watcher.events, 'same text')).toHaveLength(2);
    expect(withText(watcher.events, 'another text')).toHaveLength(1);
    expect(withText(watcher.events, 'a dm')).toHaveLength(2);
    expect(bot.events.filter((e) => e.cmd === 'direct' && e.ref === '15-characters-x')).toHaveLength(2);
  });

  it('keeps a 16-character ref as an idempotency key', async () => {
    const { port } = await startChat();
    const bot = await RawChat.hello(port, 'bot');
    const ref = '16-characters-xx';
    bot.send({ cmd: 'say', room: 'lobby', text: 'once', ref });
    const first = await bot.next('message', (e) => e.ref === ref);
    bot.send({ cmd: 'say', room: 'lobby', text: 'once', ref });
    expect(await bot.next('message', (e) => e.ref === ref && e !== first)).toEqual(first);
    bot.send({ cmd: 'say', room: 'lobby', text: 'other', ref });
    expect(await bot.next('error')).toMatchObject({ code: 'SB_ERR_CHAT_REF_REUSED', ref });
  });
});
