// End-to-end: the offline banner and the outbox, against a node of the
// test's own that it stops and starts again. Messages written while the
// node is down wait in the outbox (also across a reload), are sent in order
// when it is back, and each is stored exactly once, also when a send
// reached the node but its answer was lost.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, ownNode, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const ROOM = 'Outbox';
/** Waits that span a node restart and a reconnect. */
const LONG = 30_000;

let browser;
let node;
let alice;
let bob;
let roomId;

function log(page) {
  return page.getByRole('log', { name: `Messages in ${ROOM}` });
}

function composer(page) {
  return page.getByRole('textbox', { name: `Message #${ROOM}` });
}

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

async function write(page, text) {
  const box = composer(page);
  await box.fill(text);
  await box.press('Enter');
}

/** The bodies of the room's messages as the node has them, oldest first. */
async function stored(page) {
  const history = await pageApi(page, 'GET', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages?limit=100`);
  return history.events.filter((e) => e.type === 'message').map((e) => e.content.body);
}

async function shown(page) {
  return log(page)
    .locator('article .msg-body')
    .evaluateAll((nodes) => nodes.map((n) => n.textContent));
}

describe('offline outbox', { timeout: 150_000 }, () => {
  before(async () => {
    node = await ownNode();
    if (!node) return;
    browser = await launch();
    alice = await openPage(browser, { colorScheme: 'light', baseURL: node.url });
    bob = await openPage(browser, { colorScheme: 'dark', baseURL: node.url });
  });

  after(async () => {
    await browser?.close();
    await node?.close();
  });

  test('messages written while the node is down are sent once, in order, when it is back', async (t) => {
    if (!node) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    const a = alice.page;
    const b = bob.page;
    await signUp(a, 'olga');
    await signUp(b, 'otto');
    const room = await pageApi(a, 'POST', '/api/v1/rooms', { name: ROOM, visibility: 'public' });
    roomId = room.room_id;
    await pageApi(b, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/join`, {});
    for (const page of [a, b]) {
      await page.goto(`/room/${encodeURIComponent(roomId)}`);
      await log(page).waitFor();
    }
    await write(a, 'before the outage');
    await log(b).getByText('before the outage').waitFor();
    assert.equal(await a.getByRole('alert').filter({ hasText: 'You are offline' }).count(), 0);

    // The node goes away: a banner on both screens, sends wait.
    await node.stop();
    const banner = a.getByRole('alert').filter({ hasText: 'You are offline' });
    await banner.waitFor({ timeout: LONG });
    await b.getByRole('alert').filter({ hasText: 'You are offline' }).waitFor({ timeout: LONG });
    await write(a, 'offline one');
    await write(a, 'offline two');
    await until(
      async () => (await log(a).getByText('Waiting for the connection').count()) === 2,
      'two messages queued',
    );
    await banner.filter({ hasText: '2 messages wait' }).waitFor();
    await shotViews(a, 'offline');

    // Back: both are sent, in order, once; the banner goes.
    await node.start();
    await until(async () => (await stored(a)).length === 3, 'the queued messages stored', LONG);
    await banner.waitFor({ state: 'detached', timeout: LONG });
    await until(
      async () => (await shown(b)).join('|') === 'before the outage|offline one|offline two',
      'otto sees both once, in order',
      LONG,
    );
    assert.equal(await log(a).getByText('Waiting for the connection').count(), 0);

    // Down again; a message written, then the page closed: it waits in
    // this browser's storage, and a new page sends it once the node is back.
    await node.stop();
    await banner.waitFor({ timeout: LONG });
    await write(a, 'offline across a reload');
    await log(a).getByText('Waiting for the connection').waitFor();
    await a.close();
    await node.start();
    const again = await alice.context.newPage();
    again.errors = [];
    again.on('pageerror', (error) => again.errors.push(String(error)));
    await again.goto(`/room/${encodeURIComponent(roomId)}`);
    await until(async () => (await stored(again)).length === 4, 'the message left in the outbox stored', LONG);
    await until(
      async () => (await shown(b)).at(-1) === 'offline across a reload',
      'otto sees it',
      LONG,
    );

    // A send that reached the node but whose answer was lost: the outbox
    // still holds it, resends it with its txn_id, and the node answers the
    // event it already made.
    const lost = await pageApi(again, 'POST', `/api/v1/rooms/${encodeURIComponent(roomId)}/messages`, {
      body: 'answer lost on the way',
      txn_id: 'e2e-lost-ack',
    });
    await again.evaluate(
      ({ room, user }) => {
        localStorage.setItem(
          `spaces.outbox.v1:${user}`,
          JSON.stringify([
            {
              id: 'local:e2e:1',
              txn: 'e2e-lost-ack',
              room,
              body: 'answer lost on the way',
              mentions: { users: [], roles: [], room: false },
              replyTo: null,
              thread: null,
              attachments: [],
              ts: Date.now(),
            },
          ]),
        );
      },
      { room: roomId, user: lost.sender },
    );
    await again.reload();
    await log(again).waitFor();
    await until(
      async () => (await again.evaluate((user) => localStorage.getItem(`spaces.outbox.v1:${user}`), lost.sender)) === null,
      'the outbox emptied',
    );
    const final = await stored(again);
    assert.deepEqual(final, [
      'before the outage',
      'offline one',
      'offline two',
      'offline across a reload',
      'answer lost on the way',
    ]);
    await until(
      async () => (await shown(again)).filter((t) => t === 'answer lost on the way').length === 1,
      'shown once',
    );
    assert.equal(await log(again).getByText('Waiting for the connection').count(), 0);
    assert.deepEqual(again.errors, []);
    assert.deepEqual(b.errors, []);
  });
});
