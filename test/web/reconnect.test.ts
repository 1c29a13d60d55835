// Browser e2e: a dropped WebSocket shows as down and reconnects by itself, rejoining its rooms.
import type { WebSocketRoute } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { ADMIN, logIn, screenshot, useStack, useTopology, waitForText, type Stack } from './stack.js';

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

/** Two tabs of one account, the second over a connection cap: it shows "limited" and the words. */
async function secondTabOverTheCap(stack: () => Pick<Stack, 'url' | 'newPage'>) {
  const first = await stack().newPage();
  await logIn(first, stack().url, ADMIN);
  await expect.poll(() => first.locator('nav [data-service="chat"]').getAttribute('data-state')).toBe('up');
  const second = await stack().newPage();
  await logIn(second, stack().url, ADMIN);
  const dot = second.locator('nav [data-service="chat"]');
  await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('limited');
  const chat = second.locator('section[aria-label="Chat"]');
  const notice = await waitForText(chat, (t) => t.includes('too many open connections for this account (close other tabs)'));
  expect(notice).not.toContain('disconnected'); // nothing is down: it says only why
  return { first, second, dot, chat, notice };
}

describe('the account socket limit (browser e2e)', () => {
  // one socket per account: a tab's chat socket uses it up (separate processes: the gateway's own --config)
  const stack = useTopology({ config: { limits: { maxSocketsPerUser: 1 } } });

  it('regression: a tab over limits.maxSocketsPerUser says "too many open connections", not that the service is down, and gets in once a tab closes', async () => {
    // was: red "down" and "disconnected, retrying: closed (1006)" forever
    const { first, second, dot, chat, notice } = await secondTabOverTheCap(stack);
    expect(await dot.getAttribute('title')).toBe('Chat: too many open connections for this account (close other tabs)');
    expect(notice).not.toContain('1006');
    expect(notice).not.toContain('service down');
    await screenshot(second, 'too-many-sockets');
    // it retries slowly (15-30 s): still refused, and still saying why, a few seconds later
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await dot.getAttribute('data-state')).toBe('limited');

    // the other tab closes: Retry gets in
    await first.close();
    await expect
      .poll(
        async () => {
          const retry = chat.getByRole('button', { name: 'Retry' });
          if ((await retry.count()) > 0) await retry.click().catch(() => undefined);
          return dot.getAttribute('data-state');
        },
        { timeout: 10_000, interval: 500 },
      )
      .toBe('up');
  }, 40_000);
});

describe("the chat service's cap on one account's chat connections (browser e2e)", () => {
  // maxConnectionsPerNick 1: a second tab's chat socket is refused by the chat service itself
  // (SB_ERR_CHAT_TOO_MANY_CONNECTIONS), which with the default 8 is what a 9th tab meets first
  const stack = useStack({ config: { chat: { maxConnectionsPerNick: 1 } } });

  it('a tab over it says "too many open connections", not the bare code, and its dot is not "down"', async () => {
    const { notice } = await secondTabOverTheCap(stack);
    expect(notice).not.toContain('SB_ERR_CHAT_TOO_MANY_CONNECTIONS');
  }, 40_000);
});
