// Browser e2e: a dropped WebSocket shows as down and reconnects by itself, rejoining its rooms.
import type { WebSocketRoute } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { ADMIN, logIn, useStack, waitForText } from './stack.js';

describe('reconnect (browser e2e)', () => {
  const stack = useStack();

  it('the chat socket comes back after the connection drops, with its rooms and without duplicates', async () => {
    const page = await stack().newPage();
    const routes: WebSocketRoute[] = [];
    // Every /ws/chat goes through this route to the real gateway, so the test can cut one.
    await page.routeWebSocket(/\/ws\/chat$/, (ws) => {
      routes.push(ws);
      ws.connectToServer();
    });
    await logIn(page, stack().url, ADMIN);
    const dot = page.locator('nav [data-service="chat"]');
    await expect.poll(() => dot.getAttribute('data-state')).toBe('up');

    await page.getByLabel('Room to join').fill('ops');
    await page.getByRole('button', { name: 'Join' }).click();
    await page.getByLabel('Message').fill('before the drop');
    await page.getByLabel('Message').press('Enter');
    const timeline = page.getByTestId('timeline');
    await waitForText(timeline, (t) => t.includes('before the drop'));

    await routes[0]!.close({ code: 1011, reason: 'test drop' });
    await expect.poll(() => dot.getAttribute('data-state')).not.toBe('up');
    await expect.poll(() => routes.length, { timeout: 15_000 }).toBe(2);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');

    // still in #ops after the reconnect (rejoined, history reloaded, no message twice)
    await page.getByLabel('Message').fill('after the drop');
    await page.getByLabel('Message').press('Enter');
    await waitForText(timeline, (t) => t.includes('after the drop'));
    expect(await timeline.locator('.message', { hasText: 'before the drop' }).count()).toBe(1);
    expect(await page.locator('button[data-room="ops"]').count()).toBe(1);
  });
});
