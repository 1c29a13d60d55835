// Issue 5, faults: restarting the chat service loses no acknowledged message. A browser tab says
// many things through the gateway; the chat service is closed while messages are still in flight;
// every message the tab saw acknowledged (its `ref` echoed on its own copy, protocol/chat-messages.ts)
// must be in the room's history once the service is back on the same data dir and port. Messages
// never acknowledged may be lost: the tab was told so by the 1011 close and can resend them.
import { afterEach, describe, expect, it } from 'vitest';
import { ChatService } from '../../backends/chat/chat-service.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { CHAT_TOKEN, closeAll, startGateway, track, waitFor, type TestSocket } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

async function startChat(dataDir: string, port = 0): Promise<{ service: ChatService; port: number }> {
  // a rate limit far above the burst, so every refusal here is the restart's doing
  const service = track(new ChatService({ port, linePort: null, dataDir, gatewayToken: CHAT_TOKEN, rateCapacity: 1000 }));
  return { service, port: (await service.start()).port };
}

/** The refs acknowledged so far: `message` events on the sender's own socket carry its ref. */
function acked(socket: TestSocket): Map<string, string> {
  const refs = new Map<string, string>();
  socket.ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) return;
    const m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    if (m['cmd'] === 'message' && typeof m['ref'] === 'string') refs.set(m['ref'], String(m['text']));
  });
  return refs;
}

describe('the chat service restarted under the gateway', () => {
  it('keeps every acknowledged message: all are in history after the restart', async () => {
    const dataDir = await tempDir();
    const first = await startChat(dataDir);
    const gw = await startGateway({ chat: `tcp://127.0.0.1:${first.port}` });
    const cookie = await gw.login('alice', 'alice-password');

    const tab = await gw.open('/ws/chat', cookie);
    await tab.json((m) => m['cmd'] === 'welcome');
    const refs = acked(tab);
    // A steady stream (at most 90: under HISTORY_ON_JOIN, so one join shows them all), still
    // flowing when the service closes: some acked, some in flight, the rest never sent.
    let sent = 0;
    const sender = setInterval(() => {
      if (sent < 90 && tab.ws.readyState === tab.ws.OPEN) tab.send({ cmd: 'say', room: 'lobby', text: `message ${sent}`, ref: `r${sent++}` });
    }, 2);
    try {
      await waitFor(() => refs.size >= 20, 5000, 'the first acknowledgements');
      await first.service.close();
      expect((await tab.closed).code).toBe(1011);
    } finally {
      clearInterval(sender);
    }
    const acknowledged = new Map(refs);
    expect(acknowledged.size).toBeGreaterThanOrEqual(20);

    // back on the same data dir and port: the history holds every acknowledged message
    await startChat(dataDir, first.port);
    const again = await gw.open('/ws/chat', cookie);
    await again.json((m) => m['cmd'] === 'welcome');
    again.send({ cmd: 'join', room: 'lobby' });
    const joined = await again.json<{ history: { from: string; text: string }[] }>((m) => m['cmd'] === 'joined' && m['room'] === 'lobby');
    const stored = new Set(joined.history.filter((h) => h.from === 'alice').map((h) => h.text));
    const lost = [...acknowledged.values()].filter((text) => !stored.has(text));
    expect(lost).toEqual([]);
    // and the history is in the order the messages were said
    const order = joined.history.map((h) => Number(h.text.split(' ')[1]));
    expect(order).toEqual([...order].sort((a, b) => a - b));

    // the restarted service takes new messages through the same gateway
    again.send({ cmd: 'say', room: 'lobby', text: 'after the restart', ref: 'after' });
    expect(await again.json((m) => m['cmd'] === 'message' && m['ref'] === 'after')).toMatchObject({ from: 'alice' });
  });
});
