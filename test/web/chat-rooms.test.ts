// Browser e2e: unread counts, rooms with history on join, direct messages and their history after a reload (two browser contexts).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { ADMIN, BOB, logIn, openPanel, useStack, waitForText } from './stack.js';

describe('chat rooms and unread counts (browser e2e)', () => {
  const stack = useStack();
  let sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  it('counts unread messages per room and per panel, and clears them when read', async () => {
    const alice = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(alice, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    await waitForText(bob.getByRole('complementary', { name: 'Members' }), (t) => t.includes(ADMIN.username));
    await openPanel(bob, 'files');

    await alice.getByLabel('Message').fill('one');
    await alice.getByLabel('Message').press('Enter');
    await alice.getByLabel('Message').fill('two');
    await alice.getByLabel('Message').press('Enter');

    const chatTab = bob.locator('nav button[data-panel="chat"] .badge');
    await waitForText(chatTab, (t) => t.trim() === '2');
    expect(await bob.locator('button[data-room="lobby"] .badge').textContent()).toBe('2');
    await openPanel(bob, 'chat');
    await expect.poll(() => chatTab.count()).toBe(0);
  });

  it('joins a second room and sends a direct message', async () => {
    const alice = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(alice, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);

    await alice.getByLabel('Room to join').fill('ops');
    await alice.getByRole('button', { name: 'Join' }).click();
    await alice.locator('button[data-room="ops"]').waitFor();
    await alice.getByLabel('Message').fill('in ops');
    await alice.getByLabel('Message').press('Enter');
    await waitForText(alice.getByTestId('timeline'), (t) => t.includes('in ops'));

    // bob joins later and gets the room's history on join
    await bob.getByLabel('Room to join').fill('ops');
    await bob.getByRole('button', { name: 'Join' }).click();
    await waitForText(bob.getByTestId('timeline'), (t) => t.includes('in ops'));

    await bob.getByRole('button', { name: ADMIN.username, exact: true }).click();
    await bob.getByLabel('Message').fill('psst');
    await bob.getByLabel('Message').press('Enter');
    await alice.locator(`button[data-peer="${BOB.username}"]`).click();
    await waitForText(alice.getByTestId('timeline'), (t) => t.includes('psst'));

    // alice leaves #ops: gone from her rooms, and bob sees her go
    await alice.locator('button[data-room="ops"]').click();
    await alice.getByRole('button', { name: 'Leave' }).click();
    await expect.poll(() => alice.locator('button[data-room="ops"]').count()).toBe(0);
    await bob.locator('button[data-room="ops"]').click();
    await waitForText(bob.getByTestId('timeline'), (t) => t.includes(`${ADMIN.username} left`));
    await waitForText(bob.getByRole('complementary', { name: 'Members' }), (t) => !t.includes(ADMIN.username));
  });

  it('shows direct messages again after a reload, as text, and no one else\'s', async () => {
    const alice = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(alice, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    await waitForText(bob.getByRole('complementary', { name: 'Members' }), (t) => t.includes(ADMIN.username));

    const markup = '<b>kept</b> across reloads';
    await bob.getByRole('button', { name: ADMIN.username, exact: true }).click();
    await bob.getByLabel('Message').fill(markup);
    await bob.getByLabel('Message').press('Enter');
    await waitForText(bob.getByTestId('timeline'), (t) => t.includes(markup));

    for (const page of [bob, alice]) {
      await page.reload();
      const peer = page === bob ? ADMIN.username : BOB.username;
      await page.locator(`button[data-peer="${peer}"]`).click();
      await waitForText(page.getByTestId('timeline'), (t) => t.includes(markup));
      expect(await page.getByTestId('timeline').locator('b').count()).toBe(0);
      // history is not news: the reloaded tab does not count it as unread
      expect(await page.locator('nav button[data-panel="chat"] .badge').count()).toBe(0);
    }

    // a third account that took no part gets none of it: its first conversation is the one admin
    // starts now, which arrives after whatever history its connection was sent
    const carol = { username: 'carol', password: 'carol-password-e2e-3' };
    const added = await runCli(['user', 'add', carol.username, '--role', 'user', '--password-stdin', '--data', stack().data], { input: `${carol.password}\n` });
    expect(added.code).toBe(0);
    const third = await stack().newPage();
    await logIn(third, stack().url, carol);
    await alice.locator('button[data-room="lobby"]').click();
    await waitForText(alice.getByRole('complementary', { name: 'Members' }), (t) => t.includes(carol.username));
    await alice.getByRole('button', { name: carol.username, exact: true }).click();
    await alice.getByLabel('Message').fill('hello carol');
    await alice.getByLabel('Message').press('Enter');
    await third.locator(`button[data-peer="${ADMIN.username}"]`).waitFor();
    expect(await third.locator('button[data-peer]').count()).toBe(1);
    await third.locator(`button[data-peer="${ADMIN.username}"]`).click();
    await waitForText(third.getByTestId('timeline'), (t) => t.includes('hello carol'));
    expect(await third.getByTestId('timeline').textContent()).not.toContain('kept');
  });

  it('says how many rooms the list leaves out: the service lists the fullest 100', async () => {
    // 101 line-mode clients, each alone in its own room: with the lobby, 102 rooms
    for (let i = 0; i <= 100; i++) {
      const socket = net.connect(stack().chatLinePort, '127.0.0.1');
      sockets.push(socket);
      socket.setEncoding('utf8');
      let received = '';
      const joined = new Promise<void>((resolve, reject) => {
        socket.on('data', (d: string) => {
          received += d;
          if (received.includes(`* in #r${i}:`)) resolve();
        });
        socket.once('error', reject);
      });
      socket.write(`/join r${i}\n`);
      await joined;
    }
    const page = await stack().newPage();
    await logIn(page, stack().url, ADMIN);
    // the lobby (admin's own) is not among the other rooms: 99 of them listed, 2 left out
    await waitForText(page.getByTestId('more-rooms'), (t) => t === 'and 2 more');
    expect(await page.getByRole('complementary', { name: 'Rooms' }).locator('button', { hasText: /^#r\d+/ }).count()).toBe(99);
  });

  // Regression: a reload forgot every room but the lobby, and a tab never learnt of rooms created after it asked once.
  it('rejoins its rooms after a reload, and lists rooms others create while the panel is open', async () => {
    const alice = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(alice, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    await bob.locator('button[data-room="lobby"]').waitFor();

    // bob does nothing: he sees #ops (on the first refresh or a later one), then #dev, which only a
    // refresh after his tab already had a list can show
    const otherRooms = bob.getByRole('complementary', { name: 'Rooms' });
    for (const room of ['ops', 'dev']) {
      await alice.getByLabel('Room to join').fill(room);
      await alice.getByRole('button', { name: 'Join' }).click();
      await alice.locator(`button[data-room="${room}"]`).waitFor();
      await waitForText(otherRooms, (t) => t.includes(`#${room}`), 15_000);
    }

    await alice.reload();
    for (const room of ['lobby', 'ops', 'dev']) await alice.locator(`button[data-room="${room}"]`).waitFor();
    // a room left is not rejoined after the next reload
    await alice.locator('button[data-room="ops"]').click();
    await alice.getByRole('button', { name: 'Leave' }).click();
    await expect.poll(() => alice.locator('button[data-room="ops"]').count()).toBe(0);
    await alice.reload();
    await alice.locator('button[data-room="dev"]').waitFor();
    expect(await alice.locator('button[data-room="ops"]').count()).toBe(0);
  }, 60_000); // the directory refresh comes every 10 s
});

describe('chat refusals shown under the timeline (browser e2e)', () => {
  const stack = useStack({ config: { chat: { maxRoomsPerConnection: 2 } } });

  it('shows a refused join, and takes the refusal away once a leave goes through', async () => {
    const page = await stack().newPage();
    await logIn(page, stack().url, ADMIN);
    const alert = page.locator('.conversation p.error[role="alert"]');
    for (const room of ['ops', 'dev']) {
      await page.getByLabel('Room to join').fill(room);
      await page.getByRole('button', { name: 'Join' }).click();
    }
    await page.locator('button[data-room="ops"]').waitFor();
    await expect.poll(() => alert.getAttribute('data-code'), { timeout: 10_000 }).toBe('SB_ERR_CHAT_TOO_MANY_ROOMS');

    await page.locator('button[data-room="ops"]').click();
    await page.getByRole('button', { name: 'Leave' }).click();
    await expect.poll(() => page.locator('button[data-room="ops"]').count()).toBe(0);
    await expect.poll(() => alert.count(), { timeout: 5000 }).toBe(0);
  }, 60_000);
});
