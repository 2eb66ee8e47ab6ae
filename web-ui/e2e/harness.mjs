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
    // The client asks in its own dialogs: a native confirm() is a
    // regression, and an alert() means injected script ran.
    page.errors.push(`unexpected ${dialog.type()}: ${dialog.message()}`);
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
      // 204, or 202 with no body (a dial): nothing to parse.
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    },
    { method, path, body },
  );
}

/**
 * Screenshots of one view at 1440×900 and 390×844, light and dark:
 * `<name>-desktop-light.png` … `<name>-phone-dark.png`. The page's own
 * viewport and colour scheme are put back afterwards.
 */
export async function shotViews(page, name) {
  const size = page.viewportSize();
  for (const [device, viewport] of [
    ['desktop', { width: 1440, height: 900 }],
    ['phone', { width: 390, height: 844 }],
  ]) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      // Let layout and the theme settle for one frame.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
      await shot(page, `${name}-${device}-${scheme}`);
    }
  }
  await page.setViewportSize(size);
  await page.emulateMedia({ colorScheme: null });
}

/**
 * A node of the test's own, which it can stop and start again on the same
 * address and data directory (the shared node of scripts/web-e2e.sh must
 * stay up for the other tests). Needs SPACES_E2E_BIN, the `spaces` binary;
 * returns null without it. `options`: either more configuration
 * (`SPACES__…` variables) or `prepare(dataDir, url, bin)`, run before the
 * first start (e.g. `spaces admin` on the stopped directory).
 */
export async function ownNode(options = {}) {
  const prepare = typeof options === 'function' ? options : null;
  const env = typeof options === 'function' ? {} : options;
  const bin = process.env.SPACES_E2E_BIN;
  if (!bin) return null;
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { fileURLToPath } = await import('node:url');
  const dir = mkdtempSync(join(tmpdir(), 'spaces-e2e-node-'));
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const webDir = fileURLToPath(new URL('../dist', import.meta.url));
  let child = null;
  let exited = null;
  const node = {
    url,
    async start() {
      child = spawn(
        bin,
        ['serve', '--data-dir', join(dir, 'data'), '--http-listen', `127.0.0.1:${port}`, '--p2p-listen', '/ip4/127.0.0.1/tcp/0'],
        {
          env: {
            ...process.env,
            SPACES__WEB__DIR: webDir,
            SPACES__LIMITS__SENDS_PER_SEC: '1000',
            SPACES__LIMITS__SEND_BURST: '1000',
            SPACES__PRESENCE__GRACE_SECS: '1',
            RUST_LOG: process.env.RUST_LOG ?? 'warn',
            ...env,
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      exited = new Promise((resolve) => child.once('exit', resolve));
      await until(async () => (await fetch(`${url}/healthz`)).ok, `own node on ${url}`, 30_000);
    },
    async stop() {
      if (!child) return;
      child.kill('SIGTERM');
      await exited;
      child = null;
    },
    async close() {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (prepare) await prepare(join(dir, 'data'), url, bin);
  await node.start();
  return node;
}
