// Browser e2e: a chat tab's reload loses nothing and keeps its place. Messages not yet acknowledged
// come back from sessionStorage and are sent again with their refs (delivered once either way), and
// the room on screen is shown again.
import type { Page, WebSocketRoute } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { ADMIN, BOB, logIn, useStack, waitForText } from './stack.js';

const chatDot = (page: Page) => page.locator('nav [data-service="chat"]');

describe('chat across a reload (browser e2e)', () => {
  const stack = useStack();

  // Regression: messages still "sending…" (waiting for an ack, or queued behind it) vanished on a
  // reload with no warning, never delivered.
  it('sends unacknowledged messages again after a reload, each delivered once; an old one is shown failed', async () => {
    const page = await stack().newPage();
    const bob = await stack().newPage();
    const refs: Record<string, unknown[]> = {};
    let connections = 0;
    // On the first /ws/chat only, the ack of 'stored, ack lost' is swallowed: the service stored it, the
    // page never hears so, and everything typed after it waits its turn. Later connections pass all.
    await page.routeWebSocket(/\/ws\/chat$/, (ws: WebSocketRoute) => {
      const first = ++connections === 1;
      const server = ws.connectToServer();
      let heldAck: unknown;
      ws.onMessage((message) => {
        const request = typeof message === 'string' ? (JSON.parse(message) as Record<string, unknown>) : {};
        if (request['cmd'] === 'say') (refs[request['text'] as string] ??= []).push(request['ref']);
        if (first && request['text'] === 'stored, ack lost') heldAck = request['ref'];
        server.send(message);
      });
      server.onMessage((message) => {
        const event = typeof message === 'string' ? (JSON.parse(message) as Record<string, unknown>) : {};
        if (heldAck === undefined || event['ref'] !== heldAck) ws.send(message);
      });
    });
    await logIn(page, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    await expect.poll(() => chatDot(page).getAttribute('data-state')).toBe('up');
    await waitForText(bob.getByRole('complementary', { name: 'Members' }), (t) => t.includes(ADMIN.username));

    const input = page.getByLabel('Message');
    for (const text of ['stored, ack lost', 'queued behind it', 'queued long ago']) {
      await input.fill(text);
      await input.press('Enter');
    }
    const timeline = page.getByTestId('timeline');
    const bobTimeline = bob.getByTestId('timeline');
    await waitForText(bobTimeline, (t) => t.includes('stored, ack lost'));
    expect(await timeline.locator('.outgoing:not(.failed)').count()).toBe(3);
    expect(refs['queued behind it']).toBeUndefined();
    // the third was typed 11 minutes ago, as far as the tab's storage says
    await page.evaluate(() => {
      const key = `sockbridge.chat.outgoing.admin`;
      const kept = JSON.parse(sessionStorage.getItem(key) ?? '[]') as { text: string; queuedAt: number }[];
      for (const m of kept) if (m.text === 'queued long ago') m.queuedAt -= 11 * 60_000;
      sessionStorage.setItem(key, JSON.stringify(kept));
    });

    await page.reload();
    await waitForText(bobTimeline, (t) => t.includes('queued behind it'));
    await expect.poll(() => timeline.locator('.outgoing:not(.failed)').count()).toBe(0);
    for (const text of ['stored, ack lost', 'queued behind it']) {
      expect(await timeline.locator('.message', { hasText: text }).count()).toBe(1);
      // sent again with the ref it had before the reload
      expect(refs[text]).toHaveLength(text === 'stored, ack lost' ? 2 : 1);
      expect(new Set(refs[text]).size).toBe(1);
    }
    const old = timeline.locator('.outgoing.failed', { hasText: 'queued long ago' });
    expect(await old.getAttribute('data-code')).toBe('reloaded');
    expect(refs['queued long ago']).toBeUndefined();
    await old.getByRole('button', { name: 'Resend' }).click();
    await waitForText(bobTimeline, (t) => t.includes('queued long ago'));
    await expect.poll(() => timeline.locator('.outgoing').count()).toBe(0);

    // a second copy of anything would have its own id and show up beside the first
    await input.fill('and after');
    await input.press('Enter');
    await waitForText(bobTimeline, (t) => t.includes('and after'));
    for (const text of ['stored, ack lost', 'queued behind it', 'queued long ago']) {
      expect(await bobTimeline.locator('.message', { hasText: text }).count()).toBe(1);
    }
  });

  it('asks before a reload only when an unacknowledged message could not be kept (storage refused it)', async () => {
    const page = await stack().newPage();
    // a full or disabled sessionStorage, for the unsent messages only
    await page.addInitScript(() => {
      const setItem = Storage.prototype.setItem;
      Storage.prototype.setItem = function (this: Storage, key: string, value: string) {
        if (key.startsWith('sockbridge.chat.outgoing.')) throw new DOMException('full', 'QuotaExceededError');
        setItem.call(this, key, value);
      };
    });
    // the say never reaches the service, so it stays unacknowledged
    await page.routeWebSocket(/\/ws\/chat$/, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        if (typeof message !== 'string' || !message.includes('"cmd":"say"')) server.send(message);
      });
    });
    // the stack counts any dialog but confirm() as unexpected: here a beforeunload one is the point
    page.removeAllListeners('dialog');
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.type());
      void dialog.accept();
    });
    await logIn(page, stack().url, ADMIN);
    await expect.poll(() => chatDot(page).getAttribute('data-state')).toBe('up');
    await page.reload();
    expect(dialogs).toEqual([]);
    await expect.poll(() => chatDot(page).getAttribute('data-state')).toBe('up');

    await page.getByLabel('Message').fill('nowhere to keep it');
    await page.getByLabel('Message').press('Enter');
    await page.getByTestId('timeline').locator('.outgoing', { hasText: 'nowhere to keep it' }).waitFor();
    await page.reload();
    expect(dialogs).toEqual(['beforeunload']);
  });

  // Regression: a reload always came back to #lobby, whatever room was on screen.
  it('comes back to the room or conversation on screen after a reload', async () => {
    const page = await stack().newPage();
    const bob = await stack().newPage();
    await logIn(page, stack().url, ADMIN);
    await logIn(bob, stack().url, BOB);
    const title = page.locator('.conversation .bar .title');

    await page.getByLabel('Room to join').fill('devops');
    await page.getByRole('button', { name: 'Join' }).click();
    await page.locator('button.active[data-room="devops"]').waitFor();
    await page.reload();
    await page.locator('button[data-room="devops"]').waitFor({ timeout: 10_000 });
    await waitForText(title, (t) => t === '#devops');
    expect(await page.locator('button.active[data-room="devops"]').count()).toBe(1);

    await page.locator('button[data-room="lobby"]').click();
    await waitForText(page.getByRole('complementary', { name: 'Members' }), (t) => t.includes(BOB.username));
    await page.getByRole('button', { name: BOB.username, exact: true }).click();
    await page.reload();
    await waitForText(title, (t) => t === `@${BOB.username}`);
    expect(await page.locator(`button.active[data-peer="${BOB.username}"]`).count()).toBe(1);
  });
});
