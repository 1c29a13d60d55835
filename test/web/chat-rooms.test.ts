// Browser e2e: unread counts, rooms with history on join, direct messages (two browser contexts).
import { describe, expect, it } from 'vitest';
import { ADMIN, BOB, logIn, openPanel, useStack, waitForText } from './stack.js';

describe('chat rooms and unread counts (browser e2e)', () => {
  const stack = useStack();

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
});
