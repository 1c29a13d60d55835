// Debian's Chromium driven by playwright-core, for the browser end-to-end tests (test/web/).
// A missing browser is a failure, never a silent skip: CI installs it, and a developer is told how.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.SOCKBRIDGE_CHROMIUM ?? '/usr/bin/chromium';

export interface LaunchedBrowser {
  browser: Browser;
  /** closes the browser (Playwright removes the temporary profile) */
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<LaunchedBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    const how = 'install it with `sudo apt-get install -y chromium` (or set SOCKBRIDGE_CHROMIUM to a Chromium binary)';
    throw new Error(
      process.env.CI
        ? `CI: Chromium is required for the browser tests but ${CHROMIUM_PATH} is missing; ${how}`
        : `Chromium not found at ${CHROMIUM_PATH}: the browser tests need it; ${how}`,
    );
  }
  // A fresh profile per launch, so no cookies or cache leak between test files: Playwright's launch()
  // creates a temporary --user-data-dir itself and deletes it on close (it refuses one passed in args,
  // which it reserves for launchPersistentContext, and that would give us a single context, not two).
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
}
