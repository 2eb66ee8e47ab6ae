// End-to-end: the unread flow. Someone comes back to a room with many
// unread messages: the room list previews the last one, the room opens at
// the first unread with a "New messages" divider (loading older history
// to reach it), a pill jumps back to it, and mentions are listed from the
// room header.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const ROOM = 'Backlog';
const UNREAD = 60;

let browser;
let uma;
let vic;

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

function log(page) {
  return page.getByRole('log', { name: `Messages in ${ROOM}` });
}

/** Whether `locator`'s element lies within the timeline's visible part. */
async function inView(page, locator) {
  const box = await locator.boundingBox();
  const view = await log(page).boundingBox();
  return !!box && !!view && box.y >= view.y && box.y + box.height <= view.y + view.height;
}

describe('unread flow', { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    uma = await openPage(browser, { colorScheme: 'light' });
    vic = await openPage(browser, { colorScheme: 'dark' });
  });

  after(async () => {
    await browser?.close();
  });

  test('back in a busy room: preview, landing at the first unread, the pill, mentions', async () => {
    const u = uma.page;
    const v = vic.page;
    await signUp(u, 'uma');
    await signUp(v, 'vic');
    const room = await pageApi(u, 'POST', '/api/v1/rooms', { name: ROOM, visibility: 'public' });
    const roomId = room.room_id;
    const path = `/api/v1/rooms/${encodeURIComponent(roomId)}`;
    await pageApi(v, 'POST', `${path}/join`, {});
    for (let i = 1; i <= 3; i++) await pageApi(u, 'POST', `${path}/messages`, { body: `seen ${i}` });
    // vic reads them, then leaves the room's screen.
    await v.goto(`/room/${encodeURIComponent(roomId)}`);
    await log(v).getByText('seen 3').waitFor();
    await until(
      async () => (await pageApi(v, 'GET', '/api/v1/rooms')).find((r) => r.room_id === roomId)?.unread === 0,
      'vic read marker saved',
    );
    await v.goto('/');
    await v.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();

    const vicId = (await pageApi(v, 'GET', '/api/v1/me')).user_id;
    await u.evaluate(
      async ({ path, n, vicId }) => {
        const session = JSON.parse(localStorage.getItem('spaces.session.v1'));
        for (let i = 1; i <= n; i++) {
          const mention = i === 3;
          const response = await fetch(`${path}/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${session.access_token}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              body: mention ? `unread ${i}, look @vic` : `unread ${i}`,
              mentions: mention ? { users: [vicId], roles: [], room: false } : undefined,
            }),
          });
          if (!response.ok) throw new Error(`send ${i}: ${response.status}`);
        }
      },
      { path, n: UNREAD, vicId },
    );

    // The room list: the last message, live, and after a reload from the node.
    const item = v.getByRole('link', { name: new RegExp(`^${ROOM}, ${UNREAD} unread`) });
    await item.locator('.room-preview', { hasText: `uma: unread ${UNREAD}` }).waitFor();
    await v.reload();
    await item.locator('.room-preview', { hasText: `uma: unread ${UNREAD}` }).waitFor();

    // Opening it lands at the first unread, older than the newest page.
    await item.click();
    const divider = log(v).getByRole('separator', { name: 'New messages' });
    await divider.waitFor();
    const next = await divider.evaluate((d) => d.nextElementSibling?.querySelector('.msg-body')?.textContent);
    assert.equal(next, 'unread 1');
    await until(() => inView(v, divider), 'the divider in view');
    await shotViews(v, 'unread-landing');

    // Down to the newest; the pill brings the divider back.
    await v.getByRole('button', { name: 'Jump to latest' }).click();
    await log(v).getByText(`unread ${UNREAD}`, { exact: true }).waitFor();
    const pill = v.getByRole('button', { name: 'Jump to first unread' });
    await pill.waitFor();
    await pill.click();
    await until(() => inView(v, divider), 'the divider in view again');

    // Mentions from the header.
    await v.getByRole('button', { name: /^Mentions of you \(1\)/ }).click();
    const list = v.getByRole('dialog', { name: 'Mentions of you' });
    await list.getByText('unread 3, look @vic').waitFor();
    await shotViews(v, 'mentions');
    await list.getByRole('button', { name: /unread 3, look @vic/ }).click();
    const hit = log(v).getByRole('article').filter({ hasText: 'unread 3, look @vic' });
    await until(() => inView(v, hit), 'the mention shown');
    assert.deepEqual(u.errors, []);
    assert.deepEqual(v.errors, []);
  });
});
