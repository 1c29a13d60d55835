// Browser e2e: two browser contexts and one terminal client (raw TCP on the chat line port) in one room.
import net from 'node:net';
import type { WebSocketRoute } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, BOB, logIn, openPanel, screenshot, useStack, waitForText } from './stack.js';

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
  // a rate-limited message, or one sent just before the socket dropped, was gone.
  it('keeps a message that was refused or cut off by a drop, with its code, and Resend delivers it', async () => {
    const page = await stack().newPage();
    let dropped = false;
    // every /ws/chat goes to the real gateway; the first message saying "lost in transit" cuts the connection instead
    await page.routeWebSocket(/\/ws\/chat$/, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        if (!dropped && typeof message === 'string' && message.includes('lost in transit')) {
          dropped = true;
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
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    await lost.getByRole('button', { name: 'Resend' }).click();
    await expect.poll(() => delivered('lost in transit').count()).toBe(1);
    expect(await timeline.locator('.outgoing').count()).toBe(0);

    // more than the service's 20 messages per 10 s: the rest are refused, and kept with the code
    for (let i = 0; i < 30; i++) {
      await input.fill(`burst ${i}`);
      await input.press('Enter');
    }
    const refused = timeline.locator('.outgoing.failed[data-code="SB_ERR_RATE_LIMITED"]');
    await expect.poll(() => refused.count()).toBeGreaterThan(0);
    expect(await refused.first().textContent()).toMatch(/burst \d+.*SB_ERR_RATE_LIMITED.*try again in \d+ s/);
    const text = (await refused.last().locator('.text').textContent())!;
    expect(await delivered(text).count()).toBe(0);
    await page.waitForTimeout(1500); // a token or two come back
    await refused.last().getByRole('button', { name: 'Resend' }).click();
    await expect.poll(() => delivered(text).count()).toBe(1);
    // Edit puts a refused text back into the input
    const another = (await refused.first().locator('.text').textContent())!;
    await refused.first().getByRole('button', { name: 'Edit' }).click();
    expect(await input.inputValue()).toBe(another);
  });
});
