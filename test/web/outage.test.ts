// Browser e2e for issue 4: a backend that goes down shows as down in the page, and the page comes
// back by itself (no reload) when the backend returns. The backends run as their own processes, as
// in docker-compose.yml, so a test stops one with SIGTERM and starts it again on the same port.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { ADMIN, logIn, openPanel, screenshot, useTopology, waitForText, type Topology } from './stack.js';

type Panel = Parameters<typeof openPanel>[1];

/** Logged in as admin with `panel` open, its indicator up, and the window marked (see markWindow). */
async function watchPanel(t: Topology, panel: Panel) {
  const page = await t.newPage();
  await logIn(page, t.url, ADMIN);
  await openPanel(page, panel);
  const dot = page.locator(`nav [data-service="${panel}"]`);
  await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('up');
  await markWindow(page);
  return { page, dot };
}

/** Marks the page's window, so a test can tell the page was never reloaded (a reload loses the mark). */
async function markWindow(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
}

async function stillTheSameWindow(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded === true);
}

describe('backend outage (browser e2e)', () => {
  const topology = useTopology();

  it('chat: stopped, the indicator and the panel say the service is down; restarted, it is up again and messages flow both ways', async () => {
    const t = topology();
    const { page, dot } = await watchPanel(t, 'chat');
    await page.locator('button[data-room="lobby"]').waitFor();

    expect(await t.stop('chat')).toBe(0);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).not.toBe('up');
    const notice = page.locator('.conversation .bar [role="status"]');
    // in words, not as the gateway's close code (that is in the tooltip)
    await waitForText(notice, (text) => text.includes('disconnected, retrying') && text.includes('(chat service down)') && !text.includes('SB_ERR_'), 15_000);
    // nothing can be sent meanwhile (Enter does not submit a form whose Send is disabled): the draft stays
    await page.getByLabel('Message').fill('while it is down');
    expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    await screenshot(page, 'outage-chat-down');

    await t.restart('chat');
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 20_000 }).toBe('up');
    await waitForText(notice, (text) => text.trim() === '');
    // and nothing still says it is unavailable (the gateway's error message from the outage)
    await expect.poll(() => page.locator('.conversation p.error[role="alert"]').count(), { timeout: 5000 }).toBe(0);
    expect(await stillTheSameWindow(page)).toBe(true);

    // the other party talks to the chat service directly, as `sockbridge chat` does
    const carol = startCli(['chat', `127.0.0.1:${t.ports.chat}`, '--nick', 'carol']);
    await carol.waitFor(/\* joined #lobby/);
    await page.getByLabel('Message').fill('after the restart');
    await page.getByLabel('Message').press('Enter');
    await carol.waitFor(/admin: after the restart/);
    carol.child.stdin.end('hello from the terminal\n');
    expect(await carol.exited).toBe(0);
    const timeline = page.getByTestId('timeline');
    await waitForText(timeline, (text) => text.includes('hello from the terminal'));
    expect(await timeline.locator('.outgoing').count()).toBe(0); // every message acknowledged
    await screenshot(page, 'outage-chat-back');
  }, 60_000);

  it('files: stopped, the panel says the service is unavailable and offers no upload; restarted, the list loads and an upload works', async () => {
    const t = topology();
    const { page, dot } = await watchPanel(t, 'files');
    const input = page.locator('input[type=file]');
    const upload = page.getByRole('button', { name: 'Upload' });
    await input.setInputFiles([{ name: 'before.txt', mimeType: 'text/plain', buffer: Buffer.from('before the outage\n') }]);
    await upload.click();
    await page.locator('tr[data-file="before.txt"]').waitFor();

    expect(await t.stop('files')).toBe(0);
    const down = page.getByTestId('files-down');
    await waitForText(down, (text) => text.startsWith('files service unavailable, retrying'), 30_000);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('down');
    // what was listed stays, marked as possibly out of date; no spinner
    expect(await down.textContent()).toContain('the list below may be out of date');
    expect(await page.locator('tr[data-file="before.txt"]').count()).toBe(1);
    expect(await page.getByText('Loading…').count()).toBe(0);
    await input.setInputFiles([{ name: 'during.txt', mimeType: 'text/plain', buffer: Buffer.from('during the outage\n') }]);
    expect(await upload.isDisabled()).toBe(true);
    // a file dropped meanwhile is not uploaded, and the page says so instead of ignoring the drop
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped during the outage'], 'dropped.txt', { type: 'text/plain' }));
      return dt;
    });
    const dropZone = page.getByRole('form', { name: 'Upload files' });
    await dropZone.dispatchEvent('dragover', { dataTransfer });
    await dropZone.dispatchEvent('drop', { dataTransfer });
    const notice = page.getByTestId('files-notice');
    await waitForText(notice, (text) => text.includes('nothing was uploaded (drop it again once it is back)'));
    expect(await page.locator('li[data-upload="dropped.txt"]').count()).toBe(0);
    await screenshot(page, 'outage-files-down');

    await t.restart('files');
    await expect.poll(() => down.count(), { timeout: 20_000 }).toBe(0);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('up');
    expect(await stillTheSameWindow(page)).toBe(true);
    await expect.poll(() => notice.count()).toBe(0);
    await page.locator('tr[data-file="before.txt"]').waitFor();
    await expect.poll(() => upload.isEnabled()).toBe(true);
    await upload.click();
    await expect.poll(() => page.locator('li[data-upload="during.txt"]').getAttribute('data-state'), { timeout: 10_000 }).toBe('done');
    await page.locator('tr[data-file="during.txt"]').waitFor();
    await screenshot(page, 'outage-files-back');
  }, 60_000);

  it('time: stopped, the panel says the time service is unreachable and down; restarted, the gateway measures it again', async () => {
    const t = topology();
    const { page, dot } = await watchPanel(t, 'time');
    const upstream = page.getByTestId('upstream-offset');
    await waitForText(upstream, (text) => text.includes('stratum'));

    expect(await t.stop('time')).toBe(0);
    await waitForText(upstream, (text) => text.includes('time service unreachable') && text.includes('(time service down)'), 15_000);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('down');
    // the browser's own exchange with the gateway goes on: only the gateway's figures are missing
    await waitForText(page.getByTestId('browser-offset'), (text) => text.includes('best of'));
    await screenshot(page, 'outage-time-down');

    await t.restart('time');
    await waitForText(upstream, (text) => text.includes('stratum') && !text.includes('down'), 15_000);
    await expect.poll(() => dot.getAttribute('data-state'), { timeout: 10_000 }).toBe('up');
    expect(await stillTheSameWindow(page)).toBe(true);
  }, 60_000);
});
