// A whole sockbridge for the browser tests: `sockbridge start` (four backends + gateway, every port 0)
// in a temp data dir with a known admin password, a `user` account, and a browser.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterEach, beforeEach, expect } from 'vitest';
import { launchBrowser, type LaunchedBrowser } from '../helpers/browser.js';
import { runCli, startCli, stopAllCli, type CliProcess } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

export const ADMIN = { username: 'admin', password: 'admin-password-e2e-1' };
export const BOB = { username: 'bob', password: 'bob-password-e2e-22' };

export interface Stack {
  /** the gateway's URL as printed, e.g. http://127.0.0.1:40123/ */
  url: string;
  data: string;
  /** the chat service's plain-text line port (nc, telnet) */
  chatLinePort: number;
  process: CliProcess;
  browser: Browser;
  /** a fresh browser context (own cookies) at a given viewport */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  /** closes every context, the browser, the CLI processes and the temp dirs: call from afterEach */
  close(): Promise<void>;
}

/** A port that was free a moment ago: the line port is chosen here so the test knows it without parsing logs. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const WEB_INDEX = fileURLToPath(new URL('../../dist/web/index.html', import.meta.url));

/** `config`: a `sockbridge start --config` file's content ({gateway, chat, exec, files, time}), e.g. small limits. */
export async function startStack(opts: { config?: Record<string, unknown> } = {}): Promise<Stack> {
  if (!existsSync(WEB_INDEX)) throw new Error(`${WEB_INDEX} is missing: run \`npm run build\` (the gateway serves the built web client)`);
  const data = await tempDir('sockbridge-e2e-');
  const chatLinePort = await freePort();
  const configArgs: string[] = [];
  if (opts.config) {
    configArgs.push('--config', join(data, 'e2e-config.json'));
    await writeFile(configArgs[1]!, JSON.stringify(opts.config));
  }
  const cli = startCli(
    [
      'start',
      ...['--port', '0', '--chat-port', '0', '--chat-line-port', String(chatLinePort)],
      ...['--exec-port', '0', '--files-port', '0', '--time-port', '0', '--data', data],
      ...configArgs,
    ],
    { env: { SOCKBRIDGE_ADMIN_PASSWORD: ADMIN.password } },
  );
  let launched: LaunchedBrowser | null = null;
  const contexts: BrowserContext[] = [];
  const close = async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
    await launched?.close();
    await stopAllCli();
    await removeTempDirs();
  };
  try {
    const match = await cli.waitFor(/sockbridge: open (http:\/\/\S+)/, 20_000);
    const url = match[1]!.endsWith('/') ? match[1]! : `${match[1]!}/`;
    const added = await runCli(['user', 'add', BOB.username, '--role', 'user', '--password-stdin', '--data', data], { input: `${BOB.password}\n` });
    if (added.code !== 0) throw new Error(`sockbridge user add failed (${added.code}): ${added.stderr}`);
    launched = await launchBrowser();
    const browser = launched.browser;
    return {
      url,
      data,
      chatLinePort,
      process: cli,
      browser,
      close,
      async newPage(viewport = { width: 1100, height: 720 }) {
        const context = await browser.newContext({ viewport, acceptDownloads: true });
        contexts.push(context);
        const page = await context.newPage();
        // any script error in the page fails the test that caused it
        page.on('pageerror', (err) => pageErrors.push(err));
        page.on('dialog', (dialog) => {
          if (dialog.type() === 'confirm') void dialog.accept();
          else {
            pageErrors.push(new Error(`unexpected ${dialog.type()} dialog: ${dialog.message()}`));
            void dialog.dismiss();
          }
        });
        return page;
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Registers beforeEach/afterEach that start a fresh stack for every test and close all of it after,
 * failing the test if a page threw or raised an unexpected dialog. Returns the current stack.
 */
export function useStack(opts: Parameters<typeof startStack>[0] = {}): () => Stack {
  let stack: Stack | undefined;
  beforeEach(async () => {
    pageErrors.length = 0;
    stack = await startStack(opts);
  });
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
    expect(pageErrors).toEqual([]);
  });
  return () => {
    if (!stack) throw new Error('useStack(): no stack outside a test');
    return stack;
  };
}

/** Script errors and unexpected alert() dialogs seen by any page (an XSS payload would land here). */
export const pageErrors: Error[] = [];

/** Waits until a locator's text satisfies `check` (Playwright's own expect is not in playwright-core). */
export async function waitForText(locator: Locator, check: (text: string) => boolean, timeout = 10_000): Promise<string> {
  let last = '';
  await expect
    .poll(
      async () => {
        last = (await locator.textContent({ timeout: 500 }).catch(() => null)) ?? '';
        return check(last);
      },
      { timeout, interval: 100 },
    )
    .toBe(true);
  return last;
}

/** Saves a PNG for a human to look at; the directory is printed once per run. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = process.env.SOCKBRIDGE_SCREENSHOTS ?? join(tmpdir(), 'sockbridge-e2e-screenshots');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Logs in through the form and waits for the panels. */
export async function logIn(page: Page, url: string, account: { username: string; password: string }): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Username').fill(account.username);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await waitForText(page.getByTestId('username'), (t) => t === account.username);
}

export async function openPanel(page: Page, panel: 'chat' | 'files' | 'terminal' | 'time'): Promise<void> {
  await page.locator(`nav button[data-panel="${panel}"]`).click();
}

/** A fresh page logged in as `account` with `panel` open: the start of most panel tests. */
export async function openPanelAs(stack: Stack, account: typeof ADMIN, panel: Parameters<typeof openPanel>[1]): Promise<Page> {
  const page = await stack.newPage();
  await logIn(page, stack.url, account);
  await openPanel(page, panel);
  return page;
}
