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
    // editing the form clears a message that no longer describes it
    await page.getByLabel('Password').fill('another-try');
    expect(await page.getByRole('alert').count()).toBe(0);

    await logIn(page, stack().url, ADMIN);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Password').waitFor();
    expect(await page.getByTestId('login-notice').textContent()).toBe('You are logged out.');
    // the cookie is gone for real, not just hidden: a reload stays on the login form
    await page.reload();
    await page.getByLabel('Password').waitFor();
    expect(await page.getByTestId('username').count()).toBe(0);
  });

  it('says how long to wait when logins are rate-limited, from Retry-After', async () => {
    const page = await stack().newPage();
    await page.goto(stack().url);
    // spend this address's budget (10 a minute) without the form, then try once more with it
    for (let i = 0; i < 10; i++) {
      const res = await page.request.post(`${stack().url}api/login`, { data: { username: 'nobody', password: 'wrong' } });
      expect(res.status()).toBe(401);
    }
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    const text = await waitForText(page.getByRole('alert'), (t) => t.length > 0);
    expect(text).toMatch(/^Too many attempts — try again in \d+ s$/);
    expect(await page.getByRole('alert').getAttribute('data-code')).toBe('SB_ERR_RATE_LIMITED');
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
