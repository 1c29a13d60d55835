// Browser e2e: upload through the form, see the listing, download byte-identical, delete.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN, BOB, openPanelAs, screenshot, useStack, waitForText } from './stack.js';
import type { Page } from 'playwright-core';

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

  it('asks before an upload replaces a file of the same name, and leaves it alone when told no', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const send = async (text: string) => {
      await page.locator('input[type=file]').setInputFiles([{ name: 'same.txt', mimeType: 'text/plain', buffer: Buffer.from(text) }]);
      await page.getByRole('button', { name: 'Upload' }).click();
    };
    const shaShown = () => page.locator('tr[data-file="same.txt"] td.hash').getAttribute('data-sha256');
    await send('version 1');
    await expect.poll(shaShown, { timeout: 15_000 }).toBe(sha256(Buffer.from('version 1')));

    // The stack accepts every confirm(); this once the user says no (and we keep what was asked).
    await page.evaluate(() => {
      const w = window as unknown as { confirm: (m: string) => boolean; asked: string[]; realConfirm: (m: string) => boolean };
      w.asked = [];
      w.realConfirm = w.confirm;
      w.confirm = (message: string) => (w.asked.push(message), false);
    });
    await send('version 2');
    const asked = () => page.evaluate(() => (window as unknown as { asked: string[] }).asked);
    await expect.poll(asked).toEqual(['Replace the existing file same.txt?']);
    await page.waitForTimeout(500);
    expect(await page.locator('li[data-upload="same.txt"]').count()).toBe(1); // only the first upload's row
    expect(await shaShown()).toBe(sha256(Buffer.from('version 1')));

    await page.evaluate(() => {
      const w = window as unknown as { confirm: (m: string) => boolean; realConfirm: (m: string) => boolean };
      w.confirm = w.realConfirm; // the stack's dialog handler says yes this time
    });
    await send('version 2');
    await expect.poll(shaShown, { timeout: 15_000 }).toBe(sha256(Buffer.from('version 2')));
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

    // a name the store refuses is refused by the page itself, in words, and nothing is sent
    const posts = recordUploads(page);
    await page.locator('input[type=file]').setInputFiles([{ name: '.hidden', mimeType: 'text/plain', buffer: Buffer.from('h') }]);
    await page.getByRole('button', { name: 'Upload' }).click();
    const refused = page.locator('li[data-upload=".hidden"]');
    await expect.poll(() => refused.getAttribute('data-state')).toBe('failed');
    expect(await refused.locator('.state').textContent()).toContain('must not start with "."');
    expect(await refused.locator('progress').count()).toBe(0);
    expect(posts).toEqual([]);

    await page.getByRole('button', { name: `Delete ${name}` }).click();
    await waitForText(table, (t) => !t.includes(name));
    // gone on the server too, not only from the page
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForTimeout(300);
    expect(await table.textContent()).not.toContain(name);
  });
});

/** Every upload the page sends (PUT /api/files/:name, or a multipart POST /api/files): only the URL, as the browser does not expose a File body to Playwright. */
function recordUploads(page: Page): string[] {
  const sent: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if ((r.method() === 'PUT' || r.method() === 'POST') && path.startsWith('/api/files')) sent.push(path);
  });
  return sent;
}

/** A CSS attribute selector for an exact value, quotes and all. */
const attr = (name: string, value: string) => `[${name}=${JSON.stringify(value)}]`;

describe('files (browser e2e, names and cancelling)', () => {
  const stack = useStack();

  // Regression (files walkthrough): a multipart upload's filename arrives with `"` as %22 (the browser's
  // escape, which leaves `%` alone), and was stored as `a'b%22c<d>&.txt`.
  it('stores a name with a quote, markup and an ampersand exactly as chosen: listing, API, disk and download', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const sent = recordUploads(page);
    const name = `a'b"c<d>&.txt`;
    const content = Buffer.from('quoted\n');
    await page.locator('input[type=file]').setInputFiles([{ name, mimeType: 'text/plain', buffer: content }]);
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.locator(`li${attr('data-upload', name)}`).getAttribute('data-state'), { timeout: 15_000 }).toBe('done');

    const row = page.locator(`tr${attr('data-file', name)}`);
    await row.waitFor();
    expect(await row.locator('td.hash').getAttribute('data-sha256')).toBe(sha256(content));
    const listed = await page.evaluate(async () => ((await (await fetch('/api/files')).json()) as { files: { name: string }[] }).files.map((f) => f.name));
    expect(listed).toEqual([name]);
    expect((await readdir(join(stack().data, 'files'))).filter((n) => !n.startsWith('.'))).toEqual([name]);
    expect(sent).toEqual([`/api/files/${encodeURIComponent(name)}`]);

    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name }).click()]);
    // Chromium saves `"`, `<` and `>` as `_` (not allowed in file names everywhere); the quote came as a quote, not %22
    expect(download.suggestedFilename()).toBe(`a'b_c_d_&.txt`);
    expect(await readFile(await download.path())).toEqual(content);
  });

  // Regression (files walkthrough): Cancel at ~90% of a 191 MiB upload said "cancelled", yet the file had
  // been stored (the bar lags the bytes) and the listing did not show it until a later refresh. Here the
  // gateway's reply is held in the browser (DevTools Fetch domain, response stage), so the file is
  // certainly stored when Cancel is clicked, while the page still sees the upload in flight.
  it('after a Cancel that came too late, says the file was stored and lists it', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const devtools = await page.context().newCDPSession(page);
    await devtools.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/files/late.bin', requestStage: 'Response' }] });
    const replied = new Promise<{ requestId: string; responseStatusCode?: number }>((resolve) => devtools.once('Fetch.requestPaused', resolve));
    const content = randomBytes(2 * 1024 * 1024 + 3);
    await page.locator('input[type=file]').setInputFiles([{ name: 'late.bin', mimeType: 'application/octet-stream', buffer: content }]);
    await page.getByRole('button', { name: 'Upload' }).click();

    const reply = await replied;
    expect(reply.responseStatusCode).toBe(201);
    const upload = page.locator('li[data-upload="late.bin"]');
    expect(await upload.getAttribute('data-state')).toBe('uploading');
    expect(await page.locator('tr[data-file="late.bin"]').count()).toBe(0);
    await upload.getByRole('button', { name: 'Cancel' }).click();

    await expect.poll(() => upload.getAttribute('data-state'), { timeout: 10_000 }).toBe('done');
    expect(await upload.locator('.state').textContent()).toBe('stored before it could be cancelled');
    // listed without waiting for the timed refresh (15 s)
    await page.locator('tr[data-file="late.bin"]').waitFor({ timeout: 5_000 });
    expect(await page.locator('tr[data-file="late.bin"] td.hash').getAttribute('data-sha256')).toBe(sha256(content));
    await devtools.send('Fetch.failRequest', { requestId: reply.requestId, errorReason: 'Aborted' }).catch(() => undefined);
  });

  it('after a Cancel before the body was sent, says cancelled and keeps the version that was there', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const send = async (content: Buffer) => {
      await page.locator('input[type=file]').setInputFiles([{ name: 'early.bin', mimeType: 'application/octet-stream', buffer: content }]);
      await page.getByRole('button', { name: 'Upload' }).click();
    };
    // an older version of the same size and owner, which must not be taken for the cancelled upload
    const older = randomBytes(1024 * 1024);
    await send(older);
    const shaShown = () => page.locator('tr[data-file="early.bin"] td.hash').getAttribute('data-sha256');
    await expect.poll(shaShown, { timeout: 15_000 }).toBe(sha256(older));

    const devtools = await page.context().newCDPSession(page);
    // held before a byte of it leaves the browser
    await devtools.send('Fetch.enable', { patterns: [{ urlPattern: '*/api/files/early.bin', requestStage: 'Request' }] });
    const held = new Promise<{ requestId: string }>((resolve) => devtools.once('Fetch.requestPaused', resolve));
    await send(randomBytes(older.length));
    const request = await held;
    const upload = page.locator('li[data-upload="early.bin"]').last();
    await upload.getByRole('button', { name: 'Cancel' }).click();

    await expect.poll(() => upload.getAttribute('data-state'), { timeout: 10_000 }).toBe('cancelled');
    expect(await upload.locator('.state').textContent()).toBe('cancelled');
    expect(await shaShown()).toBe(sha256(older));
    const onDisk = await readFile(join(stack().data, 'files', 'early.bin'));
    expect(sha256(onDisk)).toBe(sha256(older));
    await devtools.send('Fetch.failRequest', { requestId: request.requestId, errorReason: 'Aborted' }).catch(() => undefined);
  });
});

describe('files (browser e2e, 1 MiB upload limit)', () => {
  const stack = useStack({ config: { gateway: { limits: { maxUploadBytes: 1024 * 1024 } } } });

  it('refuses a file over the limit before sending any of it, and sends the rest', async () => {
    const page = await openPanelAs(stack(), BOB, 'files');
    const sent = recordUploads(page);
    await waitForText(page.getByRole('form', { name: 'Upload files' }), (t) => t.includes('up to 1.0 MiB each'));
    await page.locator('input[type=file]').setInputFiles([
      { name: 'big.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(3 * 1024 * 1024 + 5) },
      { name: `${'n'.repeat(256)}.txt`, mimeType: 'text/plain', buffer: Buffer.from('x') },
      { name: 'ok.txt', mimeType: 'text/plain', buffer: Buffer.from('fits\n') },
    ]);
    await page.getByRole('button', { name: 'Upload' }).click();

    const big = page.locator('li[data-upload="big.bin"]');
    expect(await big.getAttribute('data-state')).toBe('failed');
    expect(await big.locator('.state').textContent()).toBe('big.bin is 3.0 MiB; the limit is 1.0 MiB');
    expect(await big.locator('progress').count()).toBe(0);
    const long = page.locator(`li[data-upload="${'n'.repeat(256)}.txt"]`);
    expect(await long.locator('.state').textContent()).toContain('must be at most 255 UTF-8 bytes');
    await expect.poll(() => page.locator('li[data-upload="ok.txt"]').getAttribute('data-state')).toBe('done');
    await page.locator('tr[data-file="ok.txt"]').waitFor();
    // one request, and it stored ok.txt: neither refused file was sent
    expect(sent).toHaveLength(1);
    await screenshot(page, 'files-too-large');
  });
});

describe('files (browser e2e, two sessions)', () => {
  const stack = useStack();

  it('sees uploads and deletes of another session within the refresh interval, and names a file deleted meanwhile', async () => {
    const watcher = await openPanelAs(stack(), BOB, 'files');
    const other = await openPanelAs(stack(), BOB, 'files');
    await waitForText(watcher.locator('table'), (t) => t.includes('No files yet.'));

    const content = Buffer.from('quarterly numbers\n');
    await other.locator('input[type=file]').setInputFiles([{ name: 'report.txt', mimeType: 'text/plain', buffer: content }]);
    await other.getByRole('button', { name: 'Upload' }).click();
    await other.locator('tr[data-file="report.txt"]').waitFor();
    // no click, no reload: the watcher's listing refreshes itself (every 15 s while shown)
    await watcher.locator('tr[data-file="report.txt"]').waitFor({ timeout: 17_000 });

    // the full SHA-256 is reachable as selectable text in the row's details
    await watcher.getByRole('button', { name: 'Details of report.txt' }).click();
    expect(await watcher.getByTestId('sha256-full').textContent()).toBe(sha256(content));

    await other.getByRole('button', { name: 'Delete report.txt' }).click();
    await other.locator('tr[data-file="report.txt"]').waitFor({ state: 'detached' });
    const downloads: string[] = [];
    watcher.on('download', (d) => downloads.push(d.suggestedFilename()));
    await watcher.getByRole('link', { name: 'report.txt' }).click();
    await waitForText(watcher.getByTestId('files-notice'), (t) => t.includes('report.txt no longer exists'));
    await watcher.locator('tr[data-file="report.txt"]').waitFor({ state: 'detached' });
    expect(downloads).toEqual([]);
  }, 60_000);

  it("shows who uploaded each file and offers Delete only where the account may; shows the refusal when the listing was out of date", async () => {
    const admin = await openPanelAs(stack(), ADMIN, 'files');
    const bob = await openPanelAs(stack(), BOB, 'files');
    const upload = async (page: Page, name: string, text: string) => {
      await page.locator('input[type=file]').setInputFiles([{ name, mimeType: 'text/plain', buffer: Buffer.from(text) }]);
      await page.getByRole('button', { name: 'Upload' }).click();
      await expect.poll(() => page.locator(`li[data-upload="${name}"]`).last().getAttribute('data-state'), { timeout: 15_000 }).not.toMatch(/queued|uploading/);
    };
    const deleteButton = (page: Page, name: string) => page.getByRole('button', { name: `Delete ${name}` });
    await upload(admin, 'admin-notes.txt', 'by the admin');
    await upload(bob, 'bob-notes.txt', 'by bob');
    await bob.locator('tr[data-file="admin-notes.txt"]').waitFor({ timeout: 17_000 });
    expect(await bob.locator('tr[data-file="admin-notes.txt"] td.owner').getAttribute('data-owner')).toBe('admin');
    expect(await bob.locator('tr[data-file="bob-notes.txt"] td.owner').getAttribute('data-owner')).toBe('bob');
    expect(await deleteButton(bob, 'admin-notes.txt').count()).toBe(0);
    expect(await deleteButton(bob, 'bob-notes.txt').count()).toBe(1);
    // the admin may delete anyone's file
    await admin.getByRole('button', { name: 'Refresh' }).click();
    await admin.locator('tr[data-file="bob-notes.txt"]').waitFor();
    expect(await deleteButton(admin, 'bob-notes.txt').count()).toBe(1);
    expect(await deleteButton(admin, 'admin-notes.txt').count()).toBe(1);

    // bob may not replace the admin's file: refused before sending, with the reason
    await upload(bob, 'admin-notes.txt', 'by bob');
    expect(await bob.locator('li[data-upload="admin-notes.txt"]').getAttribute('data-state')).toBe('failed');
    expect(await bob.locator('li[data-upload="admin-notes.txt"] .state').textContent()).toContain('belongs to admin');

    // The admin replaces bob's file, which makes it the admin's. Bob's listing is held back until his
    // Delete has been answered (its timed refresh would otherwise race the click): the button is
    // still offered, the gateway refuses, and the page says why.
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await bob.route('**/api/files', async (route) => {
      if (route.request().method() === 'GET') await held;
      await route.continue();
    });
    await upload(admin, 'bob-notes.txt', 'replaced by the admin');
    const refused = bob.waitForResponse((r) => r.url().endsWith('/api/files/bob-notes.txt') && r.request().method() === 'DELETE');
    await deleteButton(bob, 'bob-notes.txt').click();
    expect((await refused).status()).toBe(403);
    release();
    await waitForText(bob.getByTestId('files-notice'), (t) => t.includes('SB_ERR_FILE_NOT_OWNER'));
    await deleteButton(bob, 'bob-notes.txt').waitFor({ state: 'detached' });
    expect(await bob.locator('tr[data-file="bob-notes.txt"] td.owner').getAttribute('data-owner')).toBe('admin');
    await screenshot(bob, 'files-owners');
  }, 60_000);
});
