// Browser e2e: the time panel measures this browser's offset over /ws/time and charts the samples.
import { describe, expect, it } from 'vitest';
import { BOB, logIn, openPanel, openPanelAs, screenshot, useStack, waitForText } from './stack.js';

describe('time (browser e2e)', () => {
  const stack = useStack();

  it('shows a live server clock, the browser offset ± half the round trip, the gateway offset and a chart', async () => {
    const page = await openPanelAs(stack(), BOB, 'time');

    const offset = await waitForText(page.getByTestId('browser-offset'), (t) => /[+−]\d+\.\d ms ± \d+\.\d ms/.test(t));
    // same machine, same clock: the measured offset is small
    const ms = Number(/([+−])(\d+\.\d) ms/.exec(offset)!.slice(1).join('').replace('−', '-'));
    expect(Math.abs(ms)).toBeLessThan(1000);
    await waitForText(page.getByTestId('upstream-offset'), (t) => /ms ± .* ms/.test(t));
    await waitForText(page.getByTestId('server-clock'), (t) => /^\d\d:\d\d:\d\d$/.test(t));
    await expect.poll(() => page.getByTestId('time-chart').locator('circle').count()).toBeGreaterThanOrEqual(3);
    await screenshot(page, 'time');
  });

  it('says plainly when it is disconnected: the last measurement\'s time, the stale figures greyed', async () => {
    const page = await openPanelAs(stack(), BOB, 'time');
    await waitForText(page.getByTestId('browser-offset'), (t) => /ms ± .* ms/.test(t));
    expect(await page.getByTestId('time-stale').count()).toBe(0);
    expect(await page.locator('.clock.stale').count()).toBe(0);

    await stack().process.stop();
    const notice = await waitForText(page.getByTestId('time-stale'), (t) => t.includes('Disconnected'));
    expect(notice).toMatch(/showing the last measurement from \d\d:\d\d:\d\d/);
    expect(await page.locator('.clock.stale').count()).toBe(1);
    expect(await page.locator('dl > .stale').count()).toBe(2);
    expect(await page.locator('.chart.stale').count()).toBe(1);
    await screenshot(page, 'time-disconnected');
  });

  it('labels the chart axis in ms, readable at phone width', async () => {
    const page = await stack().newPage({ width: 390, height: 844 });
    await logIn(page, stack().url, BOB);
    await openPanel(page, 'time');
    await expect.poll(() => page.getByTestId('time-chart').locator('circle').count()).toBeGreaterThanOrEqual(3);
    const label = page.getByTestId('time-chart-max');
    expect(await label.textContent()).toMatch(/^\+\d+(\.\d)? ms$/);
    // drawn at its real size, not a 600-wide drawing scaled down to a phone (10px text became 6px)
    const box = await label.boundingBox();
    expect(box!.height).toBeGreaterThanOrEqual(10);
    await screenshot(page, 'time-phone');
  });
});
