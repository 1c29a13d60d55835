// A whole sockbridge for the browser tests: `sockbridge start` (four backends + gateway, every port 0)
// in a temp data dir with a known admin password, a `user` account, and a browser. Or the same as
// separate processes (startTopology), as docker-compose.yml runs them, for tests that stop a backend.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
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

/** `--config FILE` with `config` written to `path`, or no arguments without a config. */
async function configFileArgs(path: string, config: Record<string, unknown> | undefined): Promise<string[]> {
  if (!config) return [];
  await writeFile(path, JSON.stringify(config));
  return ['--config', path];
}

/** What a stack's or a topology's close() does: every context, the browser, every CLI process, the temp dirs. */
async function closeEverything(contexts: BrowserContext[], launched: LaunchedBrowser | null): Promise<void> {
  await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
  await launched?.close();
  await stopAllCli();
  await removeTempDirs();
}

/** `config`: a `sockbridge start --config` file's content ({gateway, chat, exec, files, time}), e.g. small limits. */
export async function startStack(opts: { config?: Record<string, unknown> } = {}): Promise<Stack> {
  if (!existsSync(WEB_INDEX)) throw new Error(`${WEB_INDEX} is missing: run \`npm run build\` (the gateway serves the built web client)`);
  const data = await tempDir('sockbridge-e2e-');
  const chatLinePort = await freePort();
  const configArgs = await configFileArgs(join(data, 'e2e-config.json'), opts.config);
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
  const close = () => closeEverything(contexts, launched);
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
      newPage: (viewport) => newWatchedPage(browser, contexts, viewport),
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A page in a fresh browser context (own cookies) whose script errors and unexpected dialogs land in
 * pageErrors; confirm() is accepted.
 */
async function newWatchedPage(browser: Browser, contexts: BrowserContext[], viewport = { width: 1100, height: 720 }): Promise<Page> {
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
}

/**
 * Registers beforeEach/afterEach that start a fresh `start()` for every test and close all of it
 * after, failing the test if a page threw or raised an unexpected dialog. Returns the current one.
 */
function useFresh<T extends { close(): Promise<void> }>(start: () => Promise<T>, name: string): () => T {
  let current: T | undefined;
  beforeEach(async () => {
    pageErrors.length = 0;
    current = await start();
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
    expect(pageErrors).toEqual([]);
  });
  return () => {
    if (!current) throw new Error(`${name}: nothing running outside a test`);
    return current;
  };
}

/** A fresh stack for every test (see useFresh). */
export function useStack(opts: Parameters<typeof startStack>[0] = {}): () => Stack {
  return useFresh(() => startStack(opts), 'useStack()');
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

export type BackendName = 'chat' | 'exec' | 'files' | 'time';

/**
 * The five processes of docker-compose.yml on 127.0.0.1: each backend is its own `sockbridge serve`,
 * and the gateway reaches them by URL, so a test can stop one backend and start it again.
 */
export interface Topology {
  url: string;
  data: string;
  /** each backend's port (time's is UDP; chat's is its frame port, the one `sockbridge chat` speaks) */
  ports: Record<BackendName, number>;
  gateway: CliProcess;
  /** SIGTERM to one backend; resolves with its exit code once it is gone */
  stop(service: BackendName): Promise<number>;
  /** starts a stopped backend again on its port, retrying for a few seconds while the port is still held */
  restart(service: BackendName): Promise<void>;
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4').bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** How long restart() keeps retrying a port the stopped process (or the kernel) still holds. */
const RESTART_RETRY_MS = 5000;

/** `config`: the gateway's `--config` file content (gateway options, e.g. small limits). */
export async function startTopology(opts: { config?: Record<string, unknown> } = {}): Promise<Topology> {
  if (!existsSync(WEB_INDEX)) throw new Error(`${WEB_INDEX} is missing: run \`npm run build\` (the gateway serves the built web client)`);
  const data = await tempDir('sockbridge-e2e-');
  // what compose's init service does: the shared secrets, 0600
  for (const name of ['exec.secret', 'chat-gateway.secret']) await writeFile(join(data, name), randomBytes(32).toString('hex'), { mode: 0o600 });
  const ports: Record<BackendName, number> = { chat: await freePort(), exec: await freePort(), files: await freePort(), time: await freeUdpPort() };
  const commands: Record<BackendName, string[]> = {
    chat: ['serve', 'chat', '--port', String(ports.chat), '--line-port', 'off', '--data', data, '--gateway-token-file', join(data, 'chat-gateway.secret')],
    exec: ['serve', 'exec', '--port', String(ports.exec), '--secret-file', join(data, 'exec.secret')],
    files: ['serve', 'files', '--port', String(ports.files), '--root', join(data, 'files')],
    time: ['serve', 'time', '--port', String(ports.time)],
  };
  const backends = new Map<BackendName, CliProcess>();
  const startBackend = async (service: BackendName): Promise<void> => {
    const deadline = Date.now() + RESTART_RETRY_MS;
    for (;;) {
      const proc = startCli(commands[service]);
      try {
        await proc.waitFor(/: ready$/m, 15_000);
        backends.set(service, proc);
        return;
      } catch (err) {
        await proc.stop();
        if (!/EADDRINUSE/.test(proc.stderr()) || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const configArgs = await configFileArgs(join(data, 'e2e-gateway-config.json'), opts.config);
  let launched: LaunchedBrowser | null = null;
  const contexts: BrowserContext[] = [];
  const close = () => closeEverything(contexts, launched);
  try {
    await Promise.all((Object.keys(commands) as BackendName[]).map(startBackend));
    const urls = ['--chat', `tcp://127.0.0.1:${ports.chat}`, '--exec', `tcp://127.0.0.1:${ports.exec}`, '--files', `tcp://127.0.0.1:${ports.files}`, '--time', `udp://127.0.0.1:${ports.time}`];
    const gateway = startCli(['gateway', '--port', '0', '--data', data, ...urls, ...configArgs], { env: { SOCKBRIDGE_ADMIN_PASSWORD: ADMIN.password } });
    const [, url] = await gateway.waitFor(/sockbridge: open (http:\/\/\S+\/)/, 20_000);
    launched = await launchBrowser();
    const browser = launched.browser;
    return {
      url: url!,
      data,
      ports,
      gateway,
      close,
      newPage: (viewport) => newWatchedPage(browser, contexts, viewport),
      async stop(service) {
        const proc = backends.get(service);
        if (!proc) throw new Error(`${service} is not running`);
        backends.delete(service);
        return proc.stop('SIGTERM');
      },
      async restart(service) {
        if (backends.has(service)) throw new Error(`${service} is still running`);
        await startBackend(service);
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A fresh topology for every test (see useFresh). */
export function useTopology(opts: Parameters<typeof startTopology>[0] = {}): () => Topology {
  return useFresh(() => startTopology(opts), 'useTopology()');
}
