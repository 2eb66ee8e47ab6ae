// End-to-end: search finds a message with highlights, and opening the hit
// shows the message in its room, loading older history to get there, and
// flashes it.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, pageApi, shot, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
/** More than one history page (50) after the hit: opening it must load older pages. */
const N_AFTER = 70;

let browser;
let dana;

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

describe('Spaces web client: search', { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    dana = await openPage(browser, { colorScheme: 'light' });
  });

  after(async () => {
    await browser?.close();
  });

  test('a hit is highlighted and opens its room at the message', async () => {
    const page = dana.page;
    await signUp(page, 'dana');
    const room = await pageApi(page, 'POST', '/api/v1/rooms', { name: 'Recipes' });
    const roomId = room.room_id;
    const target = await pageApi(page, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
      body: 'Grandma’s Marmalade needs bitter oranges',
    });
    for (let i = 0; i < N_AFTER; i++) {
      await pageApi(page, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
        body: `later message ${i}`,
      });
    }
    // Indexed within about a second.
    await until(async () => {
      const found = await pageApi(page, 'GET', '/api/v1/search?q=marmalade');
      return found.results.length === 1;
    }, 'the message is searchable');

    // Ctrl+K opens search from anywhere.
    await page.keyboard.press('Control+k');
    const dialog = page.getByRole('dialog', { name: 'Search messages' });
    // Case and accents do not matter; every word must match.
    await dialog.getByRole('searchbox', { name: 'Search messages' }).fill('MARMALADE bítter');
    const results = dialog.getByRole('list', { name: 'Search results' });
    const hit = results.getByRole('button').filter({ hasText: 'oranges' });
    await hit.waitFor();
    assert.deepEqual(await hit.locator('mark').allTextContents(), ['Marmalade', 'bitter']);
    await shot(page, 'search-results');
    await hit.click();

    await page.getByRole('heading', { level: 1, name: 'Recipes' }).waitFor();
    const row = page.locator(`.room [data-id="${target.event_id}"]`);
    await row.waitFor();
    // In view inside the timeline, not merely in the page.
    const inView = () =>
      row.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const log = el.closest('[role="log"]').getBoundingClientRect();
        return box.top >= log.top && box.bottom <= log.bottom;
      });
    await until(inView, 'the message scrolled into view');
    await until(async () => (await row.getAttribute('class')).includes('flash'), 'the message flashes');
    await shot(page, 'search-opened');
    // And it stays there while the room settles (no jump to the bottom).
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(await inView(), 'still in view');
    // It took older history: the newest message is loaded too.
    await page.locator('.room .msg-body', { hasText: `later message ${N_AFTER - 1}` }).waitFor({ state: 'attached' });
    assert.deepEqual(page.errors, []);
  });
});
