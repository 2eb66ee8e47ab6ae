// Shared pieces of the end-to-end tests: the browser, a TCP proxy that can
// cut a client off the network, screenshots, and bounded waits.
//
// The node is started by scripts/web-e2e.sh, which passes its address in
// SPACES_E2E_URL and where to put screenshots in SPACES_E2E_SHOTS.

import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = process.env.SPACES_E2E_URL ?? 'http://127.0.0.1:8080';
export const SHOTS = process.env.SPACES_E2E_SHOTS ?? join(process.cwd(), 'e2e-screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Every wait in these tests ends by this time. */
export const TIMEOUT = 10_000;

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** A browser context + page, with console errors collected. */
export async function openPage(browser, options = {}) {
  const { baseURL = BASE, ...contextOptions } = options;
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    baseURL,
    ...contextOptions,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.errors = [];
  if (process.env.E2E_DEBUG) page.on('console', (m) => console.log(contextOptions.colorScheme, m.text()));
  if (process.env.E2E_DEBUG) page.on('framenavigated', (f) => { if (f === page.mainFrame()) console.log(contextOptions.colorScheme, 'NAVIGATED', f.url()); });
  page.on('pageerror', (error) => page.errors.push(String(error)));
  page.on('dialog', (dialog) => {
    // Native confirm() of Delete/Leave is accepted; any alert() means
    // injected script ran, which a test below treats as a failure.
    if (dialog.type() !== 'confirm') page.errors.push(`unexpected ${dialog.type()}: ${dialog.message()}`);
    void dialog.accept();
  });
  return { context, page };
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Polls `fn` until it returns a truthy value, or fails after `timeout`. */
export async function until(fn, what, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A TCP proxy in front of the node. `cut()` drops every connection through
 * it and refuses new ones — what a client sees when its network goes away —
 * until `restore()`.
 */
export async function startProxy(target) {
  const upstream = new URL(target);
  const sockets = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const remote = net.connect(Number(upstream.port), upstream.hostname);
    for (const s of [client, remote]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        remote.destroy();
      });
    }
    client.pipe(remote);
    remote.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Calls the node's API from inside a page, with that page's session. */
export async function pageApi(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const session = JSON.parse(localStorage.getItem('spaces.session.v1'));
      const response = await fetch(path, {
        method,
        headers: {
          authorization: `Bearer ${session.access_token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
      return response.status === 204 ? null : response.json();
    },
    { method, path, body },
  );
}
