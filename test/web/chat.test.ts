// Browser e2e: two browser contexts and one terminal client (raw TCP on the chat line port) in one room.
import net from 'node:net';
import type { WebSocketRoute } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, BOB, logIn, screenshot, useStack, waitForText } from './stack.js';

const XSS = '<img src=x onerror=alert(1)>';

/** A line-mode chat client, as nc would be: lines in, lines out. */
async function lineClient(port: number, nick: string) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.setEncoding('utf8').on('data', (d: string) => (received += d));
  socket.write(`/nick ${nick}\n`);
  return {
    socket,
    say: (text: string) => socket.write(`${text}\n`),
    waitFor: (text: string) => expect.poll(() => received, { timeout: 10_000, interval: 50 }).toContain(text),
  };
}

describe('chat (browser e2e)', () => {
  const stack = useStack();
  let sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets) s.destroy();
    sockets = [];
  });

  it('two browsers and a terminal client each see the others, and markup is shown as text', async () => {
    const alice = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(alice, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    const carol = await lineClient(stack().chatLinePort, 'carol');
    sockets.push(carol.socket);

    const aliceTimeline = alice.getByTestId('timeline');
    const bobTimeline = bob.getByTestId('timeline');
    // presence: both browsers list each other once both joined the lobby
    await waitForText(alice.getByRole('complementary', { name: 'Members' }), (t) => t.includes(BOB.username));

    await alice.getByLabel('Message').fill('hello from admin');
    await alice.getByRole('button', { name: 'Send' }).click();
    await waitForText(bobTimeline, (t) => t.includes('hello from admin'));
    await carol.waitFor('hello from admin');

    await bob.getByLabel('Message').fill(XSS);
    await bob.getByLabel('Message').press('Enter');
    await waitForText(aliceTimeline, (t) => t.includes(XSS));
    await carol.waitFor(XSS);

    carol.say('hi from the terminal');
    await waitForText(aliceTimeline, (t) => t.includes('hi from the terminal'));
    await waitForText(bobTimeline, (t) => t.includes('hi from the terminal'));
    expect(await aliceTimeline.locator('.message', { hasText: 'hi from the terminal' }).locator('.nick').textContent()).toBe('carol');

    // the payload stayed text: no element was made from it, and no alert fired (checked in afterEach)
    expect(await aliceTimeline.locator('img').count()).toBe(0);
    expect(await aliceTimeline.locator('.message .text', { hasText: XSS }).count()).toBe(1);
    await screenshot(alice, 'chat');
  });

  // Regression: the draft was cleared as soon as it was sent, and a refusal only set a generic error:
  // a message sent just before the socket dropped was gone.
  it('keeps a message cut off by a drop, with its code, for Resend and Edit', async () => {
    const page = await stack().newPage();
    const toDrop = new Set(['lost in transit', 'edit me']);
    // every /ws/chat goes to the real gateway; the first message with one of those texts cuts the connection instead
    await page.routeWebSocket(/\/ws\/chat$/, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const drop = typeof message === 'string' ? [...toDrop].find((text) => message.includes(text)) : undefined;
        if (drop) {
          toDrop.delete(drop);
          void ws.close({ code: 1011, reason: 'test drop' });
        } else server.send(message);
      });
    });
    await logIn(page, stack().url, ADMIN);
    const dot = page.locator('nav [data-service="chat"]');
    await expect.poll(() => dot.getAttribute('data-state')).toBe('up');
    const input = page.getByLabel('Message');
    const timeline = page.getByTestId('timeline');
    const delivered = (text: string) => timeline.locator('.message', { hasText: text });

    await input.fill('lost in transit');
    await input.press('Enter');
    const lost = timeline.locator('.outgoing.failed', { hasText: 'lost in transit' });
    await expect.poll(() => lost.getAttribute('data-code')).toBe('closed (1011)');
    // plain words on the row, the code in small print
    expect(await lost.locator('.error').textContent()).toBe('Not sent: the connection dropped before the server confirmed it; it may not have been sent');
    expect(await lost.locator('.code').textContent()).toBe('closed (1011)');
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    await lost.getByRole('button', { name: 'Resend' }).click();
    await expect.poll(() => delivered('lost in transit').count()).toBe(1);
    expect(await timeline.locator('.outgoing').count()).toBe(0);

    // Edit puts a failed text back into the input
    await input.fill('edit me');
    await input.press('Enter');
    const again = timeline.locator('.outgoing.failed', { hasText: 'edit me' });
    await again.getByRole('button', { name: 'Edit' }).click();
    expect(await input.inputValue()).toBe('edit me');
    expect(await timeline.locator('.outgoing').count()).toBe(0);
  });

  // The hazard idempotent send closes: the service stored the message, the socket dropped before the
  // ack came back, and Resend posted it a second time (a new ref): everyone saw it twice.
  it('resends a message whose ack was lost with its first ref, and it is posted once', async () => {
    const page = await stack().newPage();
    const refs: unknown[] = [];
    let dropAfter = true;
    await page.routeWebSocket(/\/ws\/chat$/, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const request = typeof message === 'string' ? (JSON.parse(message) as Record<string, unknown>) : {};
        server.send(message);
        if (request['cmd'] !== 'say' || request['text'] !== 'stored, ack lost') return;
        refs.push(request['ref']);
        // the say reaches the service; the page never gets its ack on this connection
        if (dropAfter) {
          dropAfter = false;
          void ws.close({ code: 1011, reason: 'test drop' });
        }
      });
    });
    await logIn(page, stack().url, ADMIN);
    const dot = page.locator('nav [data-service="chat"]');
    await expect.poll(() => dot.getAttribute('data-state')).toBe('up');
    const timeline = page.getByTestId('timeline');
    const delivered = timeline.locator('.message', { hasText: 'stored, ack lost' });

    await page.getByLabel('Message').fill('stored, ack lost');
    await page.getByLabel('Message').press('Enter');
    const failed = timeline.locator('.outgoing.failed', { hasText: 'stored, ack lost' });
    await expect.poll(() => failed.getAttribute('data-code')).toBe('closed (1011)');
    // back online, the lobby's history shows the message was stored
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    await expect.poll(() => delivered.count(), { timeout: 10_000 }).toBe(1);

    await failed.getByRole('button', { name: 'Resend' }).click();
    await expect.poll(() => timeline.locator('.outgoing').count()).toBe(0);
    expect(refs).toHaveLength(2);
    expect(refs[1]).toBe(refs[0]);
    expect(refs[0]).toMatch(/^r[0-9a-f]{24}$/);
    // a second copy would have its own id and show up beside the first
    await page.getByLabel('Message').fill('after the resend');
    await page.getByLabel('Message').press('Enter');
    await waitForText(timeline, (t) => t.includes('after the resend'));
    expect(await delivered.count()).toBe(1);
  });

  // Regression: past the service's 20 requests per 10 s, a burst left rows of raw SB_ERR_RATE_LIMITED
  // refusals and what did get through arrived out of order.
  it('queues a burst beyond the rate limit and delivers all of it in order, with one plain notice', async () => {
    const page = await stack().newPage();
    await logIn(page, stack().url, ADMIN);
    const dot = page.locator('nav [data-service="chat"]');
    await expect.poll(() => dot.getAttribute('data-state')).toBe('up');
    const input = page.getByLabel('Message');
    const timeline = page.getByTestId('timeline');
    const sent = Array.from({ length: 30 }, (_, i) => `burst ${i}`);
    for (const text of sent) {
      await input.fill(text);
      await input.press('Enter');
    }
    const slowly = page.getByTestId('sending-slowly');
    await waitForText(slowly, (t) => t === 'Sending slowly: the server limits how fast you can post');
    await expect.poll(() => timeline.locator('.message .text').count(), { timeout: 20_000 }).toBe(30);
    expect(await timeline.locator('.message .text').allTextContents()).toEqual(sent);
    expect(await timeline.locator('.outgoing').count()).toBe(0);
    expect(await page.getByRole('alert').count()).toBe(0);
    await expect.poll(() => slowly.count()).toBe(0);
    // at desktop size too, the timeline scrolls inside the panel: the page does not grow past the window
    expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeLessThanOrEqual(720);
    const compose = (await input.boundingBox())!;
    expect(compose.y + compose.height).toBeLessThanOrEqual(720);
  });

  // Regression: at phone width a long room made the page taller than the screen: the input and the
  // newest messages were below the fold, the header scrolled away after sending, and the members
  // list covered the text and stayed open.
  it('keeps the input, the header and the newest message on a phone screen with 40 messages', async () => {
    const viewport = { width: 390, height: 844 };
    const page = await stack().newPage(viewport);
    await logIn(page, stack().url, BOB);
    // three talkers, so none of them goes past the 20 requests per 10 s the service allows
    const talkers = await Promise.all(['carol', 'dave', 'erin'].map((nick) => lineClient(stack().chatLinePort, nick)));
    sockets.push(...talkers.map((t) => t.socket));
    const timeline = page.getByTestId('timeline');
    await waitForText(page.locator('.members-toggle'), (t) => t.includes('4 here'));
    for (let i = 0; i < 40; i++) talkers[i % 3]!.say(`line ${i}`);
    await expect.poll(() => timeline.locator('.message').count(), { timeout: 15_000 }).toBe(40);

    const inViewport = async (locator: ReturnType<typeof page.locator>) => {
      const box = (await locator.boundingBox())!;
      return box.y >= 0 && box.y + box.height <= viewport.height && box.x >= 0 && box.x + box.width <= viewport.width;
    };
    const check = async () => {
      expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeLessThanOrEqual(viewport.height);
      expect(await inViewport(page.getByLabel('Message'))).toBe(true);
      expect(await inViewport(page.locator('nav button[data-panel="chat"]'))).toBe(true);
      // the newest message is shown: inside the list's visible box
      const list = (await timeline.boundingBox())!;
      const last = (await timeline.locator('.message').last().boundingBox())!;
      expect(last.y + last.height).toBeLessThanOrEqual(list.y + list.height + 1);
      expect(last.y).toBeGreaterThanOrEqual(list.y);
    };
    await expect.poll(async () => {
      const list = (await timeline.boundingBox())!;
      const last = (await timeline.locator('.message').last().boundingBox())!;
      return last.y + last.height <= list.y + list.height + 1;
    }).toBe(true);
    await check();

    // the members overlay closes when a message is sent, and on a tap elsewhere
    const members = page.getByRole('complementary', { name: 'Members' });
    await page.locator('.members-toggle').click();
    expect(await members.isVisible()).toBe(true);
    await page.getByLabel('Message').fill('from the phone');
    await page.getByLabel('Message').press('Enter');
    await expect.poll(() => members.isVisible()).toBe(false);
    await waitForText(timeline.locator('.message').last(), (t) => t.includes('from the phone'));
    await check();
    await page.locator('.members-toggle').click();
    expect(await members.isVisible()).toBe(true);
    await timeline.click({ position: { x: 20, y: 20 } });
    await expect.poll(() => members.isVisible()).toBe(false);

    // the rooms drawer opens from the bar and closes once a room is chosen
    const rooms = page.getByRole('complementary', { name: 'Rooms' });
    expect(await rooms.isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Rooms' }).click();
    expect(await inViewport(rooms.locator('button[data-room="lobby"]'))).toBe(true);
    await rooms.locator('button[data-room="lobby"]').click();
    await expect.poll(() => rooms.isVisible()).toBe(false);
    await screenshot(page, 'chat-phone');
  });
});
