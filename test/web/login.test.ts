// Browser e2e: the login form, its error display, logout, and the page at phone width.
import { describe, expect, it } from 'vitest';
import { ADMIN, logIn, screenshot, useStack, waitForText } from './stack.js';

describe('login (browser e2e)', () => {
  const stack = useStack();

  it('shows the gateway error code for a wrong password, logs in with the right one, and logs out', async () => {
    const page = await stack().newPage();
    await page.goto(stack().url);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.getByRole('alert');
    await waitForText(alert, (t) => t.length > 0);
    expect(await alert.getAttribute('data-code')).toBe('SB_ERR_AUTH_FAILED');
    await screenshot(page, 'login-error');

    await logIn(page, stack().url, ADMIN);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Password').waitFor();
    // the cookie is gone for real, not just hidden: a reload stays on the login form
    await page.reload();
    await page.getByLabel('Password').waitFor();
    expect(await page.getByTestId('username').count()).toBe(0);
  });

  it('fits a 390×844 phone screen without sideways scrolling', async () => {
    const page = await stack().newPage({ width: 390, height: 844 });
    await logIn(page, stack().url, ADMIN);
    for (const panel of ['chat', 'files', 'terminal', 'time'] as const) {
      await page.locator(`nav button[data-panel="${panel}"]`).click();
      await page.waitForTimeout(200);
      await screenshot(page, `phone-${panel}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, panel).toBeLessThanOrEqual(0);
    }
  });
});
