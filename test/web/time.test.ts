// Browser e2e: the time panel measures this browser's offset over /ws/time and charts the samples.
import { describe, expect, it } from 'vitest';
import { BOB, openPanelAs, screenshot, useStack, waitForText } from './stack.js';

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
});
