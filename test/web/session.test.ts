// Browser e2e: a session ended elsewhere takes every tab of it back to the login form.
import { describe, expect, it } from 'vitest';
import { ADMIN, logIn, useStack, waitForText } from './stack.js';

describe('session end (browser e2e)', () => {
  const stack = useStack();

  it('a logout in one tab sends the other tabs of that session back to the login form', async () => {
    const first = await stack().newPage();
    await logIn(first, stack().url, ADMIN);
    const second = await first.context().newPage();
    await second.goto(stack().url);
    await waitForText(second.getByTestId('username'), (t) => t === ADMIN.username);
    await expect.poll(() => second.locator('nav [data-service="chat"]').getAttribute('data-state')).toBe('up');

    await first.getByRole('button', { name: 'Log out' }).click();
    // the gateway closes the session's sockets (1008); the page then finds the session gone
    await second.getByLabel('Password').waitFor({ timeout: 8000 });
  });
});
