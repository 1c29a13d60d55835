// Browser e2e: upload through the form, see the listing, download byte-identical, delete.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { BOB, openPanelAs, screenshot, useStack, waitForText } from './stack.js';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('files (browser e2e)', () => {
  const stack = useStack();

  it('uploads several files through the form and downloads one back byte-identical', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');

    const big = randomBytes(3 * 1024 * 1024 + 17);
    const small = Buffer.from('hello, files\n');
    await page.locator('input[type=file]').setInputFiles([
      { name: 'random.bin', mimeType: 'application/octet-stream', buffer: big },
      { name: 'hello.txt', mimeType: 'text/plain', buffer: small },
    ]);
    await page.getByRole('button', { name: 'Upload' }).click();

    // one progress bar per file, each ending full
    for (const name of ['random.bin', 'hello.txt']) {
      const row = page.locator(`li[data-upload="${name}"]`);
      await expect.poll(() => row.getAttribute('data-state'), { timeout: 15_000 }).toBe('done');
      const progress = row.locator('progress');
      expect(await progress.getAttribute('value')).toBe(await progress.getAttribute('max'));
    }

    const bigRow = page.locator('tr[data-file="random.bin"]');
    await bigRow.waitFor();
    expect(await bigRow.locator('td.hash').getAttribute('data-sha256')).toBe(sha256(big));
    expect(await page.locator('tr[data-file="hello.txt"] td.hash').getAttribute('data-sha256')).toBe(sha256(small));
    await screenshot(page, 'files');

    const [download] = await Promise.all([page.waitForEvent('download'), bigRow.getByRole('link', { name: 'random.bin' }).click()]);
    expect(download.suggestedFilename()).toBe('random.bin');
    const path = await download.path();
    expect(sha256(await readFile(path))).toBe(sha256(big));
  });

  it('takes a file dropped on the form, shows a name made of markup as text, and deletes it', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const name = '<img src=x onerror=alert(1)>.txt';
    // drag and drop as the browser delivers it: a drop event whose DataTransfer holds the file
    const dataTransfer = await page.evaluateHandle((fileName) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped'], fileName, { type: 'text/plain' }));
      return dt;
    }, name);
    const dropZone = page.getByRole('form', { name: 'Upload files' });
    await dropZone.dispatchEvent('dragover', { dataTransfer });
    await dropZone.dispatchEvent('drop', { dataTransfer });

    const table = page.locator('table');
    await waitForText(table, (t) => t.includes(name));
    expect(await page.locator(`tr[data-file="${name}"] td.hash`).getAttribute('data-sha256')).toBe(sha256(Buffer.from('dropped')));
    expect(await table.locator('img').count()).toBe(0);

    // a name the store refuses fails visibly, with the gateway's error code, and uploads nothing
    await page.locator('input[type=file]').setInputFiles([{ name: '.hidden', mimeType: 'text/plain', buffer: Buffer.from('h') }]);
    await page.getByRole('button', { name: 'Upload' }).click();
    const refused = page.locator('li[data-upload=".hidden"]');
    await expect.poll(() => refused.getAttribute('data-state')).toBe('failed');
    expect(await refused.locator('.state').textContent()).toContain('SB_ERR_FILE_NAME_INVALID');

    await page.getByRole('button', { name: `Delete ${name}` }).click();
    await waitForText(table, (t) => !t.includes(name));
    // gone on the server too, not only from the page
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(300);
    expect(await table.textContent()).not.toContain(name);
  });
});
