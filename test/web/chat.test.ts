// Browser e2e: two browser contexts and one terminal client (raw TCP on the chat line port) in one room.
import net from 'node:net';
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
});
