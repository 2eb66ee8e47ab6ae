// End-to-end: people and what they can do in a room. A profile set by one
// person and seen by the other on a card; a spoiler revealed; a reaction
// chosen from the full emoji picker; a role created, assigned and
// coloured; a timeout that blocks the composer and is lifted; joins
// grouped into one line; a long message collapsed; a ban explained.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { launch, openPage, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const ROOM = 'Hive';

function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A 64×64 RGB PNG, amber. */
function avatarPng() {
  const size = 64;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) rows.set([230, 160 + (x % 60), 30], y * (1 + size * 3) + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

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

function message(page, text) {
  return log(page).getByRole('article').filter({ has: page.locator('.msg-body', { hasText: text }) });
}

let browser;
let pia;
let quinn;

describe('people: profiles, reactions, roles, timeouts', { timeout: 150_000 }, () => {
  before(async () => {
    browser = await launch();
    pia = await openPage(browser, { colorScheme: 'light' });
    quinn = await openPage(browser, { colorScheme: 'dark' });
  });

  after(async () => {
    await browser?.close();
  });

  test('profile, card, spoiler, emoji picker, role colour, timeout', async () => {
    const p = pia.page;
    const q = quinn.page;
    await signUp(p, 'pia');
    await signUp(q, 'quinn');

    // pia's profile: name, bio, avatar.
    await p.getByRole('button', { name: 'Your profile' }).click();
    const editor = p.getByRole('dialog', { name: 'Your profile' });
    await editor.getByLabel('Display name').fill('Pia Parker');
    await editor.getByLabel('Bio').fill('Keeps bees.');
    await editor.getByLabel('Avatar image').setInputFiles({ name: 'pia.png', mimeType: 'image/png', buffer: avatarPng() });
    await editor.getByRole('button', { name: 'Save profile' }).click();
    await editor.getByText('Profile saved.').waitFor();
    await shotViews(p, 'profile-editor');
    await editor.getByRole('button', { name: 'Close' }).first().click();
    const mine = p.locator('.whoami .avatar img');
    await mine.waitFor();
    await until(() => mine.evaluate((img) => img.complete && img.naturalWidth > 0), 'pia sees her avatar');
    const profile = await pageApi(p, 'GET', '/api/v1/profile');
    assert.equal(profile.display_name, 'Pia Parker');
    assert.match(profile.avatar, /^[0-9a-f]{64}$/);

    const room = await pageApi(p, 'POST', '/api/v1/rooms', { name: ROOM, visibility: 'public' });
    const roomId = room.room_id;
    await pageApi(q, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/join`, {});
    for (const page of [p, q]) {
      await page.goto(`/room/${encodeURIComponent(roomId)}`);
      await log(page).waitFor();
    }
    const box = p.getByRole('textbox', { name: `Message #${ROOM}` });
    await box.fill('# Hive news\nthe :honeybee: count is up, and ||the queen is new||');
    await box.press('Enter');

    // quinn sees pia by name, and her card.
    const news = message(q, 'Hive news');
    await news.waitFor();
    assert.equal(await news.locator('h3.md-heading').textContent(), 'Hive news');
    assert.equal(await news.locator('.emoji').textContent(), '🐝');
    await news.getByRole('button', { name: 'Pia Parker', exact: true }).click();
    const card = q.getByRole('dialog', { name: 'Pia Parker' });
    await card.getByText('Keeps bees.').waitFor();
    await card.getByText('Home node: this node').waitFor();
    await card.getByRole('button', { name: 'Message' }).waitFor();
    await shotViews(q, 'profile-card');
    await card.getByRole('button', { name: 'Close' }).click();

    // A spoiler stays hidden until clicked.
    const spoiler = news.getByRole('button', { name: 'Spoiler, press to reveal' });
    assert.equal(await spoiler.getAttribute('aria-expanded'), 'false');
    await spoiler.click();
    await until(async () => (await news.locator('.spoiler.revealed').count()) === 1, 'spoiler revealed');
    assert.equal(await news.locator('.spoiler').textContent(), 'the queen is new');

    // A reaction from the full picker, found by name.
    await news.hover();
    await news.getByRole('button', { name: 'Add reaction' }).click();
    await news.getByRole('button', { name: 'More emoji' }).click();
    await news.getByRole('searchbox', { name: 'Search emoji' }).fill('sunflower');
    await shotViews(q, 'emoji-picker');
    await news.getByRole('button', { name: /^React with 🌻/ }).click();
    await message(p, 'Hive news').getByRole('button', { name: /^🌻 1/ }).waitFor();

    // pia makes a coloured role that may time members out, and gives it to quinn.
    await p.getByRole('button', { name: 'Room settings' }).click();
    await p.getByRole('button', { name: 'New role' }).click();
    const form = p.getByRole('form', { name: 'New role' });
    await form.getByLabel('Role name').fill('Keeper');
    await form.getByLabel('Colour', { exact: true }).check();
    await form.getByLabel('Role colour').fill('#e67e22');
    await form.getByRole('switch', { name: 'Time members out' }).check();
    await shotViews(p, 'roles-editor');
    await form.getByRole('button', { name: 'Create role' }).click();
    await p.locator('.role-row', { hasText: 'Keeper' }).waitFor();
    const roles = await pageApi(p, 'GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/members`);
    const keeper = roles.roles.find((r) => r.name === 'Keeper');
    assert.equal(keeper.color, 0xe67e22);
    assert.ok(keeper.permissions.includes('timeout'));

    await p.getByRole('button', { name: /^Members/ }).click();
    const members = p.getByRole('complementary', { name: 'Members' });
    const quinnRow = members.getByRole('listitem').filter({ hasText: 'quinn' });
    await quinnRow.getByLabel('Manage quinn').click();
    await quinnRow.getByLabel('Keeper', { exact: true }).click();
    await quinnRow.locator('.role', { hasText: 'Keeper' }).waitFor();
    // Her name takes the role's colour, for both.
    const colour = 'rgb(230, 126, 34)';
    await until(
      async () => (await quinnRow.locator('.member-name').evaluate((n) => getComputedStyle(n).color)) === colour,
      'quinn coloured in the member list',
    );
    const qbox = q.getByRole('textbox', { name: `Message #${ROOM}` });
    await qbox.fill('thanks!');
    await qbox.press('Enter');
    const thanks = message(p, 'thanks!');
    await thanks.waitFor();
    await until(
      async () => (await thanks.locator('.msg-sender').evaluate((n) => getComputedStyle(n).color)) === colour,
      "quinn's name coloured on her message",
    );

    // A timeout blocks quinn's composer until it is lifted.
    await quinnRow.getByRole('button', { name: 'Mute 10 min' }).click();
    await until(() => qbox.isDisabled(), "quinn's composer blocked");
    assert.match(await qbox.getAttribute('placeholder'), /^You are timed out until/);
    await shotViews(q, 'timed-out');
    await quinnRow.getByRole('button', { name: 'Lift timeout' }).click();
    await until(async () => !(await qbox.isDisabled()), "quinn's composer back");

    // Two people joining in a row are one light line; a long message starts collapsed.
    for (const name of ['rhea', 'sam']) {
      const base = new URL(q.url()).origin;
      const tokens = await (
        await fetch(`${base}/api/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: name, password: PASSWORD }),
        })
      ).json();
      const joined = await fetch(`${base}/api/v1/rooms/${encodeURIComponent(roomId)}/join`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(joined.status, 200);
    }
    await log(q).getByText('rhea and sam joined').waitFor();
    const long = Array.from({ length: 30 }, (_, i) => `line ${i + 1} of the hive report`).join('\n');
    await pageApi(p, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, { body: long });
    const report = message(q, 'line 1 of the hive report');
    const more = report.getByRole('button', { name: 'Show more' });
    await more.waitFor();
    assert.equal(await report.locator('.msg-body.collapsed').count(), 1);
    await more.click();
    await report.getByRole('button', { name: 'Show less' }).waitFor();
    assert.equal(await report.locator('.msg-body.collapsed').count(), 0);

    // Banned with a reason: quinn is told by whom and why, and the room goes.
    const quinnId = (await pageApi(q, 'GET', '/api/v1/me')).user_id;
    await pageApi(p, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/ban`, {
      user_id: quinnId,
      reason: 'too many bee puns',
    });
    const told = q.getByRole('dialog', { name: 'You were banned' });
    await told.getByText('Pia Parker banned you from Hive: “too many bee puns”').waitFor();
    await shotViews(q, 'banned-notice');
    await told.getByRole('button', { name: 'OK' }).click();
    await q.getByRole('link', { name: /^Hive/ }).waitFor({ state: 'detached' });
    assert.deepEqual(p.errors, []);
    assert.deepEqual(q.errors, []);
  });
});
