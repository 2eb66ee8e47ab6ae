// End-to-end: moderation at the edge, on two nodes of the test's own that
// federate (each runs the real toxicity model through ONNX Runtime). A
// room on node A has a policy; on node B a message the policy blocks is
// refused and the sender sees why, a threat written on A arrives hidden,
// and B's admin (a member) reveals it from the room's review queue, after
// which another member of B sees it. A message reported from the menu
// reaches the queue and is dismissed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launch, openPage, ownNode, pageApi, shotViews, until } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const ROOM = 'Policed';
/** Waits that span federation: a dial, a join fetched from another node. */
const LONG = 30_000;
const THREAT = 'i know where you live, watch your back';

let browser;
let nodeA;
let nodeB;
let ann;
let mo;

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
}

/** A user of `base` driven over HTTP only, outside any browser. */
async function apiUser(base, username) {
  const call = async (method, path, body, token) => {
    const response = await fetch(new URL(path, base), {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  };
  const tokens = await call('POST', '/api/v1/auth/register', { username, password: PASSWORD });
  return {
    id: tokens.user_id,
    call: (method, path, body) => call(method, path, body, tokens.access_token),
  };
}

function log(page) {
  return page.getByRole('log', { name: `Messages in ${ROOM}` });
}

describe('moderation: blocked sends and the review queue', { timeout: 180_000 }, () => {
  before(async () => {
    nodeA = await ownNode();
    if (!nodeA) return;
    nodeB = await ownNode();
    browser = await launch();
    ann = await openPage(browser, { colorScheme: 'light', baseURL: nodeA.url });
    mo = await openPage(browser, { colorScheme: 'dark', baseURL: nodeB.url });
  });

  after(async () => {
    await browser?.close();
    await nodeA?.close();
    await nodeB?.close();
  });

  test('a blocked message shows why; a moderator reveals a hidden message from the queue', async (t) => {
    if (!nodeA) {
      t.skip('needs SPACES_E2E_BIN (scripts/web-e2e.sh sets it)');
      return;
    }
    for (const url of [nodeA.url, nodeB.url]) {
      const health = await (await fetch(`${url}/healthz`)).json();
      assert.equal(health.moderation, 'ready', 'no ONNX Runtime: run scripts/install-onnxruntime.sh');
    }
    const a = ann.page;
    const b = mo.page;
    // The first account of each node is its admin.
    await signUp(a, 'ann');
    await signUp(b, 'mo');
    const bea = await apiUser(nodeB.url, 'bea');

    const room = await pageApi(a, 'POST', '/api/v1/rooms', { name: ROOM, visibility: 'public' });
    const roomPath = `/api/v1/rooms/${encodeURIComponent(room.room_id)}`;
    await pageApi(a, 'PATCH', roomPath, {
      moderation_policy: {
        rules: [
          { label: 'threat', threshold: 0.5, action: 'hide' },
          { label: 'hate', threshold: 0.5, action: 'block' },
        ],
      },
    });

    // B dials A, and B's users join A's room through it.
    const fedA = await pageApi(a, 'GET', '/api/v1/admin/federation');
    await pageApi(b, 'POST', '/api/v1/admin/federation/dial', { addr: fedA.addresses[0] });
    const join = { via: [fedA.node_id] };
    await until(() => pageApi(b, 'POST', `${roomPath}/join`, join).then(() => true), 'mo joins over federation', LONG);
    await until(() => bea.call('POST', `${roomPath}/join`, join).then(() => true), 'bea joins over federation', LONG);
    await until(async () => {
      const seen = await pageApi(b, 'GET', roomPath);
      return seen.moderation_policy?.rules?.length === 2;
    }, 'B to hold the policy', LONG);
    await until(async () => {
      const members = await pageApi(a, 'GET', `${roomPath}/members`);
      return members.members.filter((m) => m.membership === 'join').length === 3;
    }, 'A to see both joins', LONG);

    await b.goto(`/room/${encodeURIComponent(room.room_id)}`);
    await log(b).waitFor();

    // A blocked send: not sent, and the sender is told why.
    const box = b.getByRole('textbox', { name: `Message #${ROOM}` });
    await box.fill('all muslims are terrorists');
    await box.press('Enter');
    const refusal = log(b).getByRole('alert').filter({ hasText: 'Not sent' });
    await refusal.waitFor();
    assert.match(await refusal.textContent(), /blocked by this room’s moderation \(hate\)/);
    await shotViews(b, 'moderation-blocked');
    const stored = await pageApi(b, 'GET', `${roomPath}/messages?limit=50`);
    assert.ok(!stored.events.some((e) => e.content?.body === 'all muslims are terrorists'), 'nothing was stored');

    // A threat from A arrives hidden on B: bea does not see it.
    const threat = await pageApi(a, 'POST', `${roomPath}/messages`, { body: THREAT });
    const fine = await pageApi(a, 'POST', `${roomPath}/messages`, { body: 'the picnic is on saturday' });
    await until(async () => {
      const page = await bea.call('GET', `${roomPath}/messages?limit=50`);
      return page.events.some((e) => e.event_id === fine.event_id);
    }, 'B to receive the messages', LONG);
    const beaSees = async () =>
      (await bea.call('GET', `${roomPath}/messages?limit=50`)).events.some((e) => e.event_id === threat.event_id);
    assert.equal(await beaSees(), false, 'the threat is hidden from bea');

    // Mo reports the harmless line from the message menu.
    await log(b).getByText('the picnic is on saturday').waitFor({ timeout: LONG });
    const picnic = log(b).getByRole('article').filter({ hasText: 'the picnic is on saturday' });
    await picnic.hover();
    await picnic.getByRole('button', { name: 'Report' }).click();
    await b.getByRole('dialog', { name: 'Report message' }).getByRole('button', { name: 'Report', exact: true }).click();
    await picnic.getByText('Reported to the room’s moderators.').waitFor();

    // Mo, a moderator, is shown the threat, marked hidden from members.
    await b.reload();
    const shownThreat = log(b).getByRole('article').filter({ hasText: THREAT });
    await shownThreat.getByText('Hidden from members', { exact: false }).waitFor();

    // The queue: the hidden threat and the report.
    await b.getByRole('button', { name: 'Review queue' }).click();
    const queue = b.getByRole('dialog', { name: 'Review queue' });
    const hidden = queue.locator(`li[data-id="${threat.event_id}"]`);
    await hidden.getByText(THREAT).waitFor();
    await hidden.getByText('Hidden: threat').waitFor();
    const reported = queue.locator(`li[data-id="${fine.event_id}"]`);
    await reported.getByText('reported by', { exact: false }).waitFor();
    await shotViews(b, 'moderation-queue');

    // Reveal: off the queue, and bea sees it.
    await hidden.getByRole('button', { name: 'Reveal' }).click();
    await hidden.waitFor({ state: 'detached' });
    await until(beaSees, 'bea to see the revealed message');
    assert.equal(await shownThreat.getByText('Hidden from members', { exact: false }).count(), 0);
    // Dismiss the report: the queue is empty.
    await reported.getByRole('button', { name: 'Dismiss' }).click();
    await queue.getByText('Nothing to review in this room.').waitFor();
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  });
});
