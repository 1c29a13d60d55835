// Browser e2e, regression for the QA walkthrough's impostor: a terminal client on the chat line port
// (nc) took `admin` while admin was offline and wrote "I am the real admin, send me your password";
// bob's browser showed it exactly like admin's own messages, and admin, logging in, got
// SB_ERR_CHAT_NICK_TAKEN. Now such a sender is marked "guest", never counts as the viewer's own, and
// the account takes its name back.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, BOB, logIn, screenshot, useStack, waitForText } from './stack.js';

/** A line-mode chat client, as nc would be: lines in, lines out. */
async function lineClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.setEncoding('utf8').on('data', (d: string) => (received += d));
  const waitFor = async (pattern: RegExp) => {
    await expect.poll(() => pattern.test(received), { timeout: 10_000, interval: 50 }).toBe(true);
    return received.match(pattern)!;
  };
  await waitFor(/^\* in #lobby: /m);
  return { socket, write: (line: string) => socket.write(`${line}\n`), waitFor };
}

describe('chat: senders that are not accounts (browser e2e)', () => {
  const stack = useStack();
  let sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets) s.destroy();
    sockets = [];
  });

  it('bob sees an nc client calling itself admin as a guest, and admin logging in takes the name back', async () => {
    const bob = await stack().newPage();
    await logIn(bob, stack().url, BOB);
    const bobTimeline = bob.getByTestId('timeline');
    const nc = await lineClient(stack().chatLinePort);
    sockets.push(nc.socket);
    nc.write('/nick admin');
    await nc.waitFor(/^\* you are now admin$/m);
    nc.write('I am the real admin, send me your password');

    const fake = bobTimeline.locator('.message', { hasText: 'I am the real admin' });
    await fake.waitFor();
    expect(await fake.locator('.nick').textContent()).toBe('admin');
    expect(await fake.getAttribute('data-account')).toBe('false');
    expect(await fake.locator('.guest').textContent()).toBe('guest');
    expect(await fake.locator('.guest').getAttribute('title')).toMatch(/not a logged-in account/i);
    await screenshot(bob, 'chat-impostor-guest');

    // the real admin logs in while the nc client holds the name: admin gets it, the nc client is moved off
    const admin = await bob.context().browser()!.newContext().then((c) => c.newPage());
    try {
      await logIn(admin, stack().url, ADMIN);
      await nc.waitFor(/^\* admin is an account's name and its owner just logged in: you are now guest-\d+$/m);
      await admin.getByLabel('Message').fill('this is the real admin');
      await admin.getByLabel('Message').press('Enter');
      const real = bobTimeline.locator('.message', { hasText: 'this is the real admin' });
      await real.waitFor();
      expect(await real.getAttribute('data-account')).toBe('true');
      expect(await real.locator('.guest').count()).toBe(0);
      // admin's own page: its message is its own, the impostor's history line is not, and no refusal is shown
      const adminTimeline = admin.getByTestId('timeline');
      await waitForText(adminTimeline, (t) => t.includes('this is the real admin') && t.includes('I am the real admin'));
      expect(await adminTimeline.locator('.message.own', { hasText: 'this is the real admin' }).count()).toBe(1);
      expect(await adminTimeline.locator('.message.own', { hasText: 'I am the real admin' }).count()).toBe(0);
      expect(await admin.locator('.conversation p.error[role="alert"]').count()).toBe(0);
      await nc.waitFor(/^admin: this is the real admin$/m);
    } finally {
      await admin.context().close();
    }
  }, 60_000);

  it("does not mark as bob's own what an nc client wrote as bob before bob ever chatted", async () => {
    const nc = await lineClient(stack().chatLinePort);
    sockets.push(nc.socket);
    nc.write('/nick bob');
    await nc.waitFor(/^\* you are now bob$/m);
    nc.write('written by the nc client as bob');
    await nc.waitFor(/^bob: written by the nc client as bob$/m);

    const bob = await stack().newPage();
    await logIn(bob, stack().url, BOB);
    await nc.waitFor(/^\* bob is an account's name and its owner just logged in: you are now guest-\d+$/m);
    const timeline = bob.getByTestId('timeline');
    const impostor = timeline.locator('.message', { hasText: 'written by the nc client as bob' });
    await impostor.waitFor();
    expect(await impostor.getAttribute('class')).not.toMatch(/\bown\b/);
    expect(await impostor.locator('.guest').count()).toBe(1);

    await bob.getByLabel('Message').fill('written by bob');
    await bob.getByLabel('Message').press('Enter');
    const own = timeline.locator('.message', { hasText: 'written by bob' }).and(timeline.locator('[data-account="true"]'));
    await own.waitFor();
    expect(await own.getAttribute('class')).toMatch(/\bown\b/);
  }, 60_000);

  it('marks a guest in the members list and in its join line, and not the accounts', async () => {
    const bob = await stack().newPage();
    await logIn(bob, stack().url, BOB);
    const members = bob.getByRole('complementary', { name: 'Members' });
    await waitForText(members, (t) => t.includes('bob'));
    const nc = await lineClient(stack().chatLinePort);
    sockets.push(nc.socket);
    nc.write('/nick mallory');
    await nc.waitFor(/^\* you are now mallory$/m);
    await waitForText(members, (t) => t.includes('mallory'));
    const mallory = members.locator('li', { hasText: 'mallory' });
    expect(await mallory.locator('[data-guest]').count()).toBe(1);
    expect(await members.locator('li', { hasText: 'bob' }).locator('[data-guest]').count()).toBe(0);
    // the line-mode client joined under guest-N and then renamed: its join says (guest)
    await waitForText(bob.getByTestId('timeline'), (t) => /guest-\d+\u00a0\(guest\) joined/.test(t));
  }, 60_000);
});
