// Browser e2e: the terminal is for admins only; an admin runs commands, sees output, exit code, Ctrl-C.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { ADMIN, BOB, logIn, openPanel, openPanelAs, screenshot, useStack, waitForText } from './stack.js';

describe('terminal (browser e2e)', () => {
  const stack = useStack();

  /** An admin's terminal panel, connected and ready for a command. */
  async function openTerminalAsAdmin() {
    const page = await openPanelAs(stack(), ADMIN, 'terminal');
    const screen = page.locator('.xterm-rows');
    const status = page.getByTestId('exec-status');
    await waitForText(status, (t) => t.includes('ready'));
    expect(await page.locator('nav button[data-panel="terminal"] [data-service="terminal"]').getAttribute('data-state')).toBe('up');
    return { page, screen, status };
  }

  it('a user account sees "admins only" and never opens /ws/exec', async () => {
    const page = await stack().newPage();
    const sockets: string[] = [];
    const requests: string[] = [];
    page.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname));
    page.on('request', (request) => requests.push(new URL(request.url()).pathname));
    await logIn(page, stack().url, BOB);
    await openPanel(page, 'terminal');
    await waitForText(page.getByTestId('admins-only'), (t) => t.includes('Admins only'));
    // the tab's dot is grey "unavailable", not a green "up" for a service this account cannot use
    const dot = page.locator('nav button[data-panel="terminal"] [data-service="terminal"]');
    expect(await dot.getAttribute('data-state')).toBe('unavailable');
    expect(await dot.getAttribute('title')).toBe('Terminal: admins only');
    expect(await page.locator('.xterm').count()).toBe(0);
    // the chat and time sockets did open, so the listener works; exec was never asked for
    await expect.poll(() => sockets.includes('/ws/chat')).toBe(true);
    expect(sockets).not.toContain('/ws/exec');
    // nor is the terminal code (xterm.js) downloaded for an account that cannot use it
    expect(requests.some((path) => path.includes('TerminalPanel'))).toBe(false);
    expect(requests.some((path) => path.endsWith('.js'))).toBe(true);
    await screenshot(page, 'terminal-user');
  });

  it('an admin runs a command and sees its output and exit code, and Ctrl-C cancels a long one', async () => {
    const { page, screen, status } = await openTerminalAsAdmin();
    // the command box is above the terminal, and the intro says so (it said "below")
    await waitForText(screen, (t) => t.includes('Type a command in the box above.'));
    await page.getByLabel('Command').fill('echo "out-$((6*7))"; echo err-line >&2; exit 3');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(screen, (t) => t.includes('out-42') && t.includes('err-line'));
    await waitForText(status, (t) => t.includes('exited with code'));
    expect(await status.locator('[data-exit-code]').getAttribute('data-exit-code')).toBe('3');
    await screenshot(page, 'terminal');

    await page.getByLabel('Command').fill('echo started; sleep 30; echo "finished-$((1+1))"');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(screen, (t) => t.includes('started'));
    await page.locator('.xterm').click();
    await page.keyboard.press('Control+C');
    await waitForText(status, (t) => t.includes('ended by') || t.includes('exited with code'));
    expect(await screen.textContent()).not.toContain('finished-2');
    expect(await status.textContent()).toContain('SIGINT');
  });

  it('sends keystrokes to a running command as stdin, and runs a command in a pty on request', async () => {
    const { page, screen, status } = await openTerminalAsAdmin();

    await page.getByLabel('Command').fill('read line; echo "got-$line"');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(status, (t) => t.includes('running'));
    await page.locator('.xterm').click();
    await page.keyboard.type('abc');
    await page.keyboard.press('Enter');
    await waitForText(screen, (t) => t.includes('got-abc'));
    await waitForText(status, (t) => t.includes('exited with code'));
    expect(await status.locator('[data-exit-code]').getAttribute('data-exit-code')).toBe('0');

    await page.getByLabel('pty').check();
    await page.getByLabel('Command').fill('tty');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(screen, (t) => t.includes('/dev/pts/'));
    await waitForText(status, (t) => t.includes('exited with code'));
  });

  it('draws underscores: the glyph is not clipped by the row height (container_info.json read as "container info.json")', async () => {
    const { page, screen, status } = await openTerminalAsAdmin();
    // a line of only underscores: any lit pixel in its row is the underscore glyph
    await page.getByLabel('Command').fill("printf '%s\\n' ________________");
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(status, (t) => t.includes('exited with code'));
    const row = screen.locator('div', { hasText: /^_{16}\s*$/ }).first();
    const lit = await litPixels(page, await row.screenshot());
    const blank = await litPixels(page, await screen.locator('div').last().screenshot());
    expect(blank).toBe(0);
    expect(lit).toBeGreaterThan(16);
    await screenshot(page, 'terminal-underscore');
  });

  it('a tab opens /ws/time and /ws/exec only once their panels are shown; until then their dots are the services\' health', async () => {
    const page = await stack().newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname));
    const opened = (path: string) => sockets.filter((p) => p === path).length;
    await logIn(page, stack().url, ADMIN);
    const dot = (panel: string) => page.locator(`nav button[data-panel="${panel}"] [data-service="${panel}"]`);
    // (a tab used to open chat, time and exec at once: three of the account's sockets per tab, whatever was shown)
    for (const panel of ['terminal', 'time']) {
      await expect.poll(() => dot(panel).getAttribute('data-state')).toBe('up');
      expect(await dot(panel).getAttribute('title')).toMatch(/: connection not opened, service up$/);
    }
    await expect.poll(() => opened('/ws/chat')).toBe(1);
    expect([opened('/ws/time'), opened('/ws/exec')]).toEqual([0, 0]);

    await openPanel(page, 'time');
    await waitForText(page.getByTestId('browser-offset'), (t) => /ms ± .* ms/.test(t));
    expect(await dot('time').getAttribute('title')).toBe('Time: connection up, service up');
    await openPanel(page, 'terminal');
    await waitForText(page.getByTestId('exec-status'), (t) => t.includes('ready'));
    // shown once, they stay open while another panel is shown
    await openPanel(page, 'chat');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([opened('/ws/chat'), opened('/ws/time'), opened('/ws/exec')]).toEqual([1, 1, 1]);
    expect([await dot('time').getAttribute('data-state'), await dot('terminal').getAttribute('data-state')]).toEqual(['up', 'up']);
  });

  it('regression: a demoted admin gets the "Admins only" panel (not a dead terminal with Retry), and a promotion brings the terminal back', async () => {
    const role = async (to: 'admin' | 'user') => expect((await runCli(['user', 'role', BOB.username, '--role', to, '--data', stack().data])).code).toBe(0);
    await role('admin');
    const page = await openPanelAs(stack(), BOB, 'terminal');
    const status = page.getByTestId('exec-status');
    await waitForText(status, (t) => t.includes('ready'));
    await page.getByLabel('Command').fill('sleep 30');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(status, (t) => t.includes('running'));

    await role('user');
    // the gateway closes /ws/exec (1008 needs the admin role) within accountCheckIntervalMs (5 s); the page asks /api/me
    await waitForText(page.getByTestId('admins-only'), (t) => t.includes('Admins only'), 15_000);
    await waitForText(page.locator('.who .role'), (t) => t === 'user');
    expect(await page.locator('.xterm').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    const dot = page.locator('nav button[data-panel="terminal"] [data-service="terminal"]');
    expect(await dot.getAttribute('data-state')).toBe('unavailable');
    await screenshot(page, 'terminal-demoted');

    await role('admin');
    // showing the Terminal panel asks at once whether the role changed
    await openPanel(page, 'terminal');
    // a new terminal, connected: the status line still tells how the killed command ended
    await page.locator('.xterm').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByRole('button', { name: 'Run' }).isEnabled(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByTestId('exec-status').textContent()).toContain('ended by the gateway (disconnected)');
    await waitForText(page.locator('.who .role'), (t) => t === 'admin');
    expect(await page.getByTestId('admins-only').count()).toBe(0);
    await page.getByLabel('Command').fill('echo "back-$((20+22))"');
    await page.getByRole('button', { name: 'Run' }).click();
    await waitForText(page.locator('.xterm-rows'), (t) => t.includes('back-42'));
  }, 40_000);

  it('during an outage, the Retry button sits on the status line, centred with the notice', async () => {
    const { page, status } = await openTerminalAsAdmin();
    await stack().process.stop();
    await waitForText(status, (t) => t.includes('disconnected'));
    const retry = status.getByRole('button', { name: 'Retry' });
    await retry.waitFor();
    expect(await textToButtonGap(status.locator('span.muted').first(), retry)).toBeLessThanOrEqual(2);
    // the whole gateway is gone, not the exec service: the notice says so once health notices (polls every 5 s)
    await waitForText(status, (t) => t.includes('(the server is not answering)'), 12_000);
    expect(await status.textContent()).not.toContain('exec service down');
    await screenshot(page, 'terminal-outage');
  });
});

/** How far the vertical centre of a text's glyphs (not of its box, which a flex row may stretch) is from a button's. */
async function textToButtonGap(text: import('playwright-core').Locator, button: import('playwright-core').Locator): Promise<number> {
  const textBox = await text.evaluate((element) => {
    const range = document.createRange();
    range.selectNodeContents(element);
    const rect = range.getBoundingClientRect();
    return { y: rect.y, height: rect.height };
  });
  const buttonBox = (await button.boundingBox())!;
  return Math.abs(textBox.y + textBox.height / 2 - (buttonBox.y + buttonBox.height / 2));
}

/** How many pixels of a PNG are clearly brighter than the terminal's dark background (decoded by the page's own canvas). */
async function litPixels(page: import('playwright-core').Page, png: Buffer): Promise<number> {
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d')!;
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, image.width, image.height);
    let count = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 300) count++;
    return count;
  }, png.toString('base64'));
}
