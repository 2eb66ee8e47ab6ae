// End-to-end: a mention from another user shows in the notification list
// and on the bell's badge at once (the WebSocket's `notification` frame);
// the mentioned message is highlighted; opening the notification opens the
// room and marks it read.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, pageApi, shot, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';

let browser;
let nina;
let omar;

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

describe('Spaces web client: notifications', { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    nina = await openPage(browser, { colorScheme: 'light' });
    omar = await openPage(browser, { colorScheme: 'dark' });
  });

  after(async () => {
    await browser?.close();
  });

  test('a mention appears in the list, on the badge, highlighted, and opens its room', async () => {
    await signUp(nina.page, 'nina');
    await signUp(omar.page, 'omar');
    const me = await pageApi(nina.page, 'GET', '/api/v1/me');
    const room = await pageApi(omar.page, 'POST', '/api/v1/rooms', {
      name: 'Garden',
      visibility: 'public',
    });
    const roomId = room.room_id;
    await pageApi(nina.page, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/join`, {});
    const bell = nina.page.getByRole('button', { name: /^Notifications/ });
    await bell.waitFor();
    assert.equal(await bell.getAttribute('aria-label'), 'Notifications');

    const sent = await pageApi(omar.page, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
      body: '@nina the tomatoes are ripe',
      mentions: { users: [me.user_id] },
    });
    // The badge updates live, without a reload.
    await nina.page.getByRole('button', { name: 'Notifications, 1 unread' }).waitFor();
    assert.equal(await nina.page.getByTestId('notification-badge').textContent(), '1');

    await bell.click();
    const dialog = nina.page.getByRole('dialog', { name: 'Notifications' });
    const item = dialog.getByRole('list', { name: 'Notifications' }).getByRole('button').filter({
      hasText: 'the tomatoes are ripe',
    });
    await item.waitFor();
    // The room's name once the client holds the room (its join came by the WebSocket too).
    await until(async () => /mentioned you in Garden/.test(await item.textContent()), 'the room is named');
    await shot(nina.page, 'notifications-list');
    await item.click();

    // The room opens, the mention highlighted.
    await nina.page.getByRole('heading', { level: 1, name: 'Garden' }).waitFor();
    const row = nina.page.locator(`.room [data-id="${sent.event_id}"]`);
    await row.waitFor();
    await until(async () => (await row.getAttribute('class')).includes('mentions-me'), 'the mention is highlighted');
    // Read: the badge goes, and the node agrees.
    await nina.page.getByRole('button', { name: 'Notifications', exact: true }).waitFor();
    await until(async () => {
      const count = await pageApi(nina.page, 'GET', '/api/v1/notifications/unread');
      return count.unread === 0;
    }, 'the node marked it read');
    await shot(nina.page, 'notifications-opened');
    assert.deepEqual(nina.page.errors, []);
  });
});
