// Issue 5 gap audit, rate limits through the gateway: chat messages beyond a user's limit are
// refused with SB_ERR_RATE_LIMITED (naming the refused message's ref and when to retry) on a socket
// that stays open; the limit is per user, across the user's tabs (a second tab is no way round it);
// another user is not slowed by it; nothing over the limit reaches the history.
import { afterEach, describe, expect, it } from 'vitest';
import { ChatService } from '../../backends/chat/chat-service.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, startGateway, track, waitFor } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('chat rate limit through the gateway', () => {
  it('throttles a flood per user, across tabs, with a clear error, and leaves other users alone', async () => {
    const capacity = 5;
    const chat = track(new ChatService({ port: 0, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN, rateCapacity: capacity, rateIntervalMs: 60_000 }));
    const { port } = await chat.start();
    const gw = await startGateway({ chat: `tcp://127.0.0.1:${port}` });
    const alice = await gw.login('alice', 'alice-password');
    const [tab1, tab2] = [await gw.open('/ws/chat', alice), await gw.open('/ws/chat', alice)];
    for (const tab of [tab1, tab2]) await tab.json((m) => m['cmd'] === 'welcome');

    // 10 messages, alternating tabs: the user's budget is `capacity`, whatever tab they come from
    for (let i = 0; i < 10; i++) (i % 2 ? tab2 : tab1).send({ cmd: 'say', room: 'lobby', text: `flood ${i}`, ref: `f${i}` });
    /** each tab's answers (ack or refusal) to the messages it sent itself */
    const answers = () =>
      [tab1, tab2].flatMap((tab, t) =>
        tab.messages
          .map((m) => JSON.parse(m.data.toString()) as Record<string, unknown>)
          .filter((m) => typeof m['ref'] === 'string' && Number(String(m['ref']).slice(1)) % 2 === t && (m['cmd'] === 'message' || m['cmd'] === 'error')),
      );
    await waitFor(() => answers().length === 10, 5000, 'an answer to every message');
    const refused = answers().filter((m) => m['cmd'] === 'error');
    expect(answers().filter((m) => m['cmd'] === 'message')).toHaveLength(capacity);
    expect(refused).toHaveLength(10 - capacity);
    for (const r of refused) {
      expect(r['code']).toBe('SB_ERR_RATE_LIMITED');
      expect(r['retryAfterMs']).toBeGreaterThan(0);
    }
    // both tabs stay open: a refusal is an answer, not a close
    expect([tab1.ws.readyState, tab2.ws.readyState]).toEqual([tab1.ws.OPEN, tab2.ws.OPEN]);

    // bob has his own budget
    const bob = await gw.open('/ws/chat', await gw.login('bob', 'bob-password'));
    await bob.json((m) => m['cmd'] === 'welcome');
    bob.send({ cmd: 'say', room: 'lobby', text: 'not throttled', ref: 'b' });
    expect(await bob.json((m) => m['ref'] === 'b')).toMatchObject({ cmd: 'message', from: 'bob' });
    bob.send({ cmd: 'join', room: 'lobby' });
    const joined = await bob.json<{ history: { from: string; text: string }[] }>((m) => m['cmd'] === 'joined');
    expect(joined.history.filter((h) => h.from === 'alice')).toHaveLength(capacity);
  });
});
