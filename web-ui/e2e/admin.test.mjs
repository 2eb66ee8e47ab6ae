// End-to-end: the admin console, on a node of the test's own (its first
// account is the admin). The admin suspends a user who is signed in in
// another browser, and that browser is signed out at once and cannot sign
// in again; the admin shuts down a room, which leaves its member's room
// list; closes sign-ups, makes an invite token and reads the node's
// storage sizes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, ownNode, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';

let browser;
let node;
let admin;
let user;

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

/** Answers the app's own question dialog with its action button. */
async function confirm(page, title, action) {
  await page.getByRole('dialog', { name: title }).getByRole('button', { name: action, exact: true }).click();
}

describe('admin console', { timeout: 120_000 }, () => {
  before(async () => {
    node = await ownNode();
    if (!node) return;
    browser = await launch();
    admin = await openPage(browser, { colorScheme: 'light', baseURL: node.url });
    user = await openPage(browser, { colorScheme: 'dark', baseURL: node.url });
  });

  after(async () => {
    await browser?.close();
    await node?.close();
  });

  test('a suspended user is signed out at once; a room shut down; an invite token made', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const a = admin.page;
    const u = user.page;
    await signUp(a, 'root');
    await signUp(u, 'sam');
    const room = await pageApi(u, 'POST', '/api/v1/rooms', { name: 'Sam’s corner', visibility: 'public' });
    const nav = u.getByRole('navigation', { name: 'Rooms and direct messages' });
    await nav.getByRole('link', { name: 'Sam’s corner' }).waitFor();

    // Only the admin has the console.
    assert.equal(await u.getByRole('button', { name: 'Admin console' }).count(), 0);
    await a.getByRole('button', { name: 'Admin console' }).click();
    const console_ = a.getByRole('dialog', { name: 'Admin console' });
    await console_.waitFor();

    // Rooms: sizes and members, then a shutdown that empties sam's list.
    await console_.getByRole('tab', { name: 'Rooms' }).click();
    const row = console_.locator(`li[data-room="${room.room_id}"]`);
    await row.getByText('1 member (1 here)').waitFor();
    await row.getByRole('button', { name: 'Members' }).click();
    await row.getByText('@sam:', { exact: false }).waitFor();
    await shotViews(a, 'admin-rooms');
    await row.getByRole('button', { name: 'Shut down' }).click();
    await confirm(a, 'Shut down room', 'Shut down');
    await row.getByText('(0 here)', { exact: false }).waitFor();
    await until(
      async () => (await nav.getByRole('link', { name: 'Sam’s corner' }).count()) === 0,
      'the shut-down room to leave sam’s list',
    );

    // Users: search, suspend; sam's browser is signed out at once.
    await console_.getByRole('tab', { name: 'Users' }).click();
    await console_.getByRole('searchbox', { name: 'Search accounts' }).fill('sa');
    const sam = console_.locator('li[data-user="sam"]');
    await sam.waitFor();
    assert.equal(await console_.locator('li[data-user="root"]').count(), 0, 'the search filters');
    await shotViews(a, 'admin-users');
    await sam.getByRole('button', { name: 'Suspend' }).click();
    await confirm(a, 'Suspend account', 'Suspend');
    await sam.getByText('suspended', { exact: true }).waitFor();
    await u.getByRole('tab', { name: 'Log in' }).waitFor();
    assert.equal(await u.getByRole('navigation', { name: 'Rooms and direct messages' }).count(), 0);
    // And cannot sign in again.
    await u.getByRole('tab', { name: 'Log in' }).click();
    await u.getByLabel('Username').fill('sam');
    await u.getByLabel('Password').fill(PASSWORD);
    await u.getByRole('button', { name: 'Log in', exact: true }).click();
    await u.getByRole('alert').filter({ hasText: /suspended/i }).waitFor();

    // Unsuspend: sam signs in again.
    await sam.getByRole('button', { name: 'Unsuspend' }).click();
    await sam.getByText('active', { exact: true }).waitFor();
    await u.getByRole('button', { name: 'Log in', exact: true }).click();
    await u.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();

    // Node: sign-ups closed, an invite token, the storage sizes.
    await console_.getByRole('tab', { name: 'Node' }).click();
    await console_.getByRole('definition').first().waitFor();
    // The choice is shown once the node has it.
    await console_.getByRole('radio', { name: /^Closed/ }).click();
    await console_.locator('[data-mode="closed"]').waitFor();
    const closed = await fetch(new URL('/api/v1/auth/register', node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'late', password: PASSWORD }),
    });
    assert.equal(closed.status, 403, 'sign-ups are closed');
    await console_.getByRole('button', { name: 'Create invite token' }).click();
    const token = await console_.locator('.admin-new-token code').textContent({ timeout: 10_000 });
    assert.match(token, /^[A-Za-z0-9_-]{16,}$/);
    await shotViews(a, 'admin-node');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(u.errors, []);
  });
});
