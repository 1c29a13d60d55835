// Browser e2e: a session ended elsewhere takes every tab of it back to the login form.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { ADMIN, BOB, logIn, openPanelAs, screenshot, useStack, waitForText } from './stack.js';

describe('session end (browser e2e)', () => {
  const stack = useStack();

  it('a logout in one tab sends the other tabs of that session back to the login form', async () => {
    const first = await stack().newPage();
    await logIn(first, stack().url, ADMIN);
    const second = await first.context().newPage();
    await second.goto(stack().url);
    await waitForText(second.getByTestId('username'), (t) => t === ADMIN.username);
    await expect.poll(() => second.locator('nav [data-service="chat"]').getAttribute('data-state')).toBe('up');

    // an unsent chat message in the tab whose session is about to end under it
    await second.locator('nav button[data-panel="chat"]').click();
    await second.getByLabel('Message').fill('half-typed, not sent');

    await first.getByRole('button', { name: 'Log out' }).click();
    // the gateway closes the session's sockets (1008); the page then finds the session gone
    await second.getByLabel('Password').waitFor({ timeout: 8000 });
    // each tab says why it is on the login form: this one logged out, the other's session ended
    await waitForText(first.getByTestId('login-notice'), (t) => t === 'You are logged out.');
    await waitForText(second.getByTestId('login-notice'), (t) => t.startsWith('Your session has ended'));
    // logging in again brings the draft back
    await second.getByLabel('Username').fill(ADMIN.username);
    await second.getByLabel('Password').fill(ADMIN.password);
    await second.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => second.getByLabel('Message').inputValue(), { timeout: 10_000 }).toBe('half-typed, not sent');
  }, 30_000);

  it('a session revoked on the server (account removed) says so on the login form, and logging in again lands on the same panel', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const removed = await runCli(['user', 'remove', BOB.username, '--data', stack().data]);
    expect(removed.code).toBe(0);
    // the gateway checks live sessions every 5 s and closes their sockets; the page then asks /api/me
    const notice = await waitForText(page.getByTestId('login-notice'), (t) => t.length > 0, 15_000);
    expect(notice).toBe('Your session has ended — the server restarted or you were logged out. Please log in again.');
    await screenshot(page, 'session-ended');

    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await waitForText(page.getByTestId('username'), (t) => t === ADMIN.username);
    expect(await page.locator('nav button[data-panel="files"]').getAttribute('aria-current')).toBe('page');
    expect(await page.getByTestId('login-notice').count()).toBe(0);
  }, 30_000);
});
