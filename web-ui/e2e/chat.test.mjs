// End-to-end: two people in two browser contexts chat through a real node.
// The steps build on each other (the room alice creates is the one bob
// joins), so they run in order and stop at the first failure.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BASE,
  launch,
  openPage,
  pageApi,
  shot,
  shotViews,
  startProxy,
  until,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
const XSS = [
  '<script>window.__xss = 1</script>',
  '<img src=x onerror="window.__xss = 2">',
  '[click me](javascript:window.__xss=3)',
];

let browser;
let proxy;
/** alice: straight to the node. bob: through a proxy we can cut. */
let alice;
let bob;
/** carol: a newcomer who arrives with an invite link. */
let carol;
let roomId;
let publicRoomId;
/** alice's first access token, to see that it gets renewed. */
let firstToken;

function log(page, room) {
  return page.getByRole('log', { name: `Messages in ${room}` });
}

/** The message rows containing `text` (case-sensitive). */
function message(page, room, text) {
  const pattern = typeof text === 'string' ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : text;
  return log(page, room)
    .getByRole('article')
    .filter({ has: page.locator('.msg-body', { hasText: pattern }) });
}

function composer(page, room) {
  return page.getByRole('textbox', { name: `Message #${room}` });
}

/** Sends from the composer; waits until the message shows as `shown`. */
async function say(page, room, text, shown = text) {
  const box = composer(page, room);
  await box.fill(text);
  await box.press('Enter');
  await message(page, room, shown).last().waitFor();
}

async function signUp(page, username) {
  await page.goto('/');
  await page.getByRole('tab', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
  await until(
    () => page.getByRole('status').filter({ hasText: 'Connected' }).isVisible(),
    `${username} connected`,
  );
}

async function messageTexts(page, room) {
  return log(page, room)
    .locator('article .msg-body')
    .evaluateAll((nodes) => nodes.map((n) => n.textContent));
}

// Later steps need what earlier ones made: after a failure they are skipped.
let broken = null;
function step(name, fn) {
  test(name, async (t) => {
    if (broken) {
      t.skip(`after failure of: ${broken}`);
      return;
    }
    try {
      await fn(t);
    } catch (error) {
      broken = name;
      // What each person saw when it went wrong.
      for (const [who, side] of [['alice', alice], ['bob', bob], ['carol', carol]]) {
        if (side) await shot(side.page, `failure-${who}`).catch(() => {});
        if (side && process.env.E2E_DEBUG) console.log(who, await side.page.evaluate(() => { const t = document.querySelector('.timeline'); return { rows: document.querySelectorAll('.rows > *').length, st: t?.scrollTop, sh: t?.scrollHeight, ch: t?.clientHeight, top: t?.querySelector('.timeline-top')?.outerHTML, first: document.querySelector('.rows')?.firstElementChild?.outerHTML?.slice(0, 300) }; }), side.page.errors);
      }
      throw error;
    }
  });
}

describe('Spaces web client', { timeout: 150_000 }, () => {
  before(async () => {
    browser = await launch();
    proxy = await startProxy(BASE);
    alice = await openPage(browser, { colorScheme: 'light' });
    bob = await openPage(browser, { colorScheme: 'dark', baseURL: proxy.url });
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
  });

  step('sign up, and the session survives a reload', async () => {
    await alice.page.goto('/');
    await alice.page.getByRole('tab', { name: 'Log in' }).waitFor();
    await shot(alice.page, 'login-light');
    await signUp(alice.page, 'alice');
    firstToken = await alice.page.evaluate(() => JSON.parse(localStorage.getItem('spaces.session.v1')).access_token);
    await signUp(bob.page, 'bob');
    await alice.page.reload();
    await alice.page.getByRole('navigation', { name: 'Rooms and direct messages' }).waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Log in' }).count(), 0);
  });

  step('alice creates a private room and invites bob, who sees it live and joins', async () => {
    const a = alice.page;
    await a.getByRole('button', { name: 'New room' }).click();
    const dialog = a.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('Lunch plans');
    await dialog.getByLabel('Topic').fill('Where do we eat?');
    await dialog.getByLabel(/Private/).check();
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await a.getByRole('heading', { level: 1, name: 'Lunch plans' }).waitFor();
    roomId = decodeURIComponent(new URL(a.url()).pathname.split('/').pop());
    assert.match(roomId, /^!/);

    await a.getByRole('button', { name: 'Invite people' }).click();
    const invite = a.getByRole('dialog', { name: 'Invite to Lunch plans' });
    await invite.getByLabel('Username').fill('bob');
    await invite.getByRole('button', { name: 'Send invite' }).click();
    await invite.getByText('Invited bob.').waitFor();
    await invite.getByRole('button', { name: 'Close' }).click();

    const b = bob.page;
    const link = b.getByRole('link', { name: /Lunch plans, invitation/ });
    await link.waitFor();
    await link.click();
    await b.getByRole('button', { name: 'Accept invitation' }).click();
    await log(b, 'Lunch plans').waitFor();
    await log(b, 'Lunch plans').getByText('bob joined').waitFor();
    await log(a, 'Lunch plans').getByText('bob joined').waitFor();
  });

  step('both chat, and each sees the other live and in order', async () => {
    const a = alice.page;
    const b = bob.page;
    await say(a, 'Lunch plans', 'Hello bob! **Pizza** or `ramen`?', 'Hello bob! Pizza or ramen?');
    await message(b, 'Lunch plans', 'Hello bob!').waitFor();
    // @ completes room members.
    const box = composer(b, 'Lunch plans');
    await box.pressSequentially('Ramen, @al');
    await b.getByRole('listbox', { name: 'Mention someone' }).getByRole('option', { name: /@alice/ }).waitFor();
    await box.press('Enter');
    assert.equal(await box.inputValue(), 'Ramen, @alice ');
    await box.pressSequentially('obviously.');
    await box.press('Enter');
    await message(b, 'Lunch plans', 'Ramen, @alice obviously.').waitFor();
    await message(a, 'Lunch plans', 'Ramen').waitFor();
    await say(a, 'Lunch plans', 'Deal. See https://example.com/ramen_menu for the menu');
    await message(b, 'Lunch plans', 'Deal.').waitFor();

    const expected = ['Hello bob!', 'Ramen, @alice obviously.', 'Deal.'];
    for (const page of [a, b]) {
      const texts = await messageTexts(page, 'Lunch plans');
      const positions = expected.map((start) => texts.findIndex((t) => t.startsWith(start)));
      assert.deepEqual([...positions].sort((x, y) => x - y), positions, `order on one page: ${texts}`);
    }
    // Markdown subset: bold, code, a safe link, a highlighted mention of alice.
    const hello = message(b, 'Lunch plans', 'Hello bob!');
    assert.equal(await hello.locator('strong').textContent(), 'Pizza');
    assert.equal(await hello.locator('code').textContent(), 'ramen');
    const href = await message(b, 'Lunch plans', 'Deal.').getByRole('link').getAttribute('href');
    assert.equal(href, 'https://example.com/ramen_menu');
    await message(a, 'Lunch plans', 'Ramen').locator('.mention.me', { hasText: '@alice' }).waitFor();
    await shot(a, 'room-desktop-light');
    await shot(b, 'room-desktop-dark');
  });

  step('HTML and script in messages show as text', async () => {
    const a = alice.page;
    const b = bob.page;
    for (const text of XSS) await say(a, 'Lunch plans', text);
    for (const text of XSS) {
      const body = message(b, 'Lunch plans', text).locator('.msg-body');
      await body.waitFor();
      assert.equal(await body.textContent(), text);
    }
    for (const page of [a, b]) {
      const timeline = log(page, 'Lunch plans');
      assert.equal(await timeline.locator('img, script, iframe').count(), 0);
      assert.equal(await timeline.locator('a[href^="javascript:" i]').count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.deepEqual(page.errors, []);
    }
  });

  step('reply, and a thread', async () => {
    const a = alice.page;
    const b = bob.page;
    const hello = message(b, 'Lunch plans', 'Hello bob!');
    await hello.hover();
    await hello.getByRole('button', { name: 'Reply', exact: true }).click();
    await b.getByRole('status').filter({ hasText: 'Replying to' }).waitFor();
    await say(b, 'Lunch plans', 'Replying: ramen at noon');
    const reply = message(a, 'Lunch plans', 'Replying: ramen at noon');
    await reply.getByRole('button', { name: /In reply to alice/ }).waitFor();

    const root = message(a, 'Lunch plans', 'Deal.');
    await root.hover();
    await root.getByRole('button', { name: 'Reply in thread' }).click();
    const panel = a.getByRole('complementary', { name: 'Thread' });
    await panel.waitFor();
    const threadBox = panel.getByRole('textbox', { name: 'Reply in thread' });
    await threadBox.fill('Thread: noon works for me');
    await threadBox.press('Enter');
    await panel.getByRole('log', { name: 'Replies in thread' }).getByText('Thread: noon works').waitFor();

    // bob sees the thread grow live, opens it, answers; alice sees the answer.
    const summary = message(b, 'Lunch plans', 'Deal.').getByRole('button', { name: '1 reply' });
    await summary.waitFor();
    await summary.click();
    const bobPanel = b.getByRole('complementary', { name: 'Thread' });
    await bobPanel.getByText('Thread: noon works').waitFor();
    const bobBox = bobPanel.getByRole('textbox', { name: 'Reply in thread' });
    await bobBox.fill('Thread: see you there');
    await bobBox.press('Enter');
    await panel.getByText('Thread: see you there').waitFor();
    // Thread replies stay out of the main timeline.
    assert.equal(await message(a, 'Lunch plans', 'Thread: see you there').count(), 0);
    await message(a, 'Lunch plans', 'Deal.').getByRole('button', { name: '2 replies' }).waitFor();
    await shot(a, 'thread-panel-light');
    await bobPanel.getByRole('button', { name: 'Close thread' }).click();
    await panel.getByRole('button', { name: 'Close thread' }).click();

    // The room's threads, from its header, open the thread again.
    await b.getByRole('button', { name: 'Threads (1)' }).click();
    const threads = b.getByRole('dialog', { name: 'Threads' });
    await threads.getByText(/2 replies/).waitFor();
    await shotViews(b, 'threads-list');
    await threads.getByRole('button', { name: /Deal\./ }).click();
    await bobPanel.getByText('Thread: see you there').waitFor();
    await bobPanel.getByRole('button', { name: 'Close thread' }).click();
  });

  step('react, and take a reaction back', async () => {
    const a = alice.page;
    const b = bob.page;
    const target = message(b, 'Lunch plans', 'Hello bob!');
    await target.hover();
    await target.getByRole('button', { name: 'Add reaction' }).click();
    await target.getByRole('button', { name: 'React with 👍' }).click();
    const aliceSide = message(a, 'Lunch plans', 'Hello bob!').getByRole('button', { name: /^👍 1/ });
    await aliceSide.waitFor();
    assert.equal(await aliceSide.getAttribute('aria-pressed'), 'false');
    await aliceSide.click();
    await message(b, 'Lunch plans', 'Hello bob!').getByRole('button', { name: /^👍 2/ }).waitFor();
    await message(a, 'Lunch plans', 'Hello bob!').getByRole('button', { name: /^👍 2/ }).click();
    const back = message(b, 'Lunch plans', 'Hello bob!').getByRole('button', { name: /^👍 1/ });
    await back.waitFor();
    assert.equal(await back.getAttribute('aria-pressed'), 'true');
  });

  step('edit and delete one’s own messages', async () => {
    const a = alice.page;
    const b = bob.page;
    const own = message(a, 'Lunch plans', 'Hello bob!');
    await own.hover();
    await own.getByRole('button', { name: 'Edit', exact: true }).click();
    const box = a.getByRole('textbox', { name: 'Edit message' });
    await box.fill('Hello bob! **Pizza** or `ramen`? (or sushi)');
    await box.press('Enter');
    await message(b, 'Lunch plans', '(or sushi)').getByText('(edited)').waitFor();

    // Keyboard: Up in the empty composer edits the newest own message.
    await say(a, 'Lunch plans', 'Typo hree');
    await composer(a, 'Lunch plans').press('ArrowUp');
    const edit = a.getByRole('textbox', { name: 'Edit message' });
    await edit.fill('Typo here');
    await edit.press('Enter');
    await message(b, 'Lunch plans', 'Typo here').getByText('(edited)').waitFor();

    const doomed = message(a, 'Lunch plans', 'Typo here');
    await doomed.hover();
    await doomed.getByRole('button', { name: 'Delete', exact: true }).click();
    // The app's own question, not the browser's confirm().
    await a.getByRole('dialog', { name: 'Delete message' }).getByRole('button', { name: 'Delete' }).click();
    await log(b, 'Lunch plans').getByText('Message deleted').waitFor();
    assert.equal(await message(b, 'Lunch plans', 'Typo here').count(), 0);
    // bob cannot edit or delete alice's messages.
    const theirs = message(b, 'Lunch plans', '(or sushi)');
    await theirs.hover();
    assert.equal(await theirs.getByRole('button', { name: 'Edit', exact: true }).count(), 0);
    assert.equal(await theirs.getByRole('button', { name: 'Delete', exact: true }).count(), 0);
  });

  step('reload shows the history; scrolling up loads more and keeps the reader’s place', async () => {
    const a = alice.page;
    const b = bob.page;
    // 120 more messages: more than two pages of history.
    await a.evaluate(
      async ({ room }) => {
        for (let i = 1; i <= 120; i++) {
          const session = JSON.parse(localStorage.getItem('spaces.session.v1'));
          const response = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${session.access_token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ body: `Filler message ${i}` }),
          });
          if (!response.ok) throw new Error(`send ${i}: ${response.status}`);
        }
      },
      { room: roomId },
    );
    await message(b, 'Lunch plans', 'Filler message 120').waitFor();
    await b.reload();
    const timeline = log(b, 'Lunch plans');
    await message(b, 'Lunch plans', 'Filler message 120').waitFor();
    // The newest page only: the first messages are not loaded yet.
    assert.equal(await message(b, 'Lunch plans', 'Hello bob!').count(), 0);

    // Scroll up until the start of the conversation is loaded; at each load
    // the row the reader was looking at stays put.
    let jumps = 0;
    for (let n = 0; n < 10 && (await message(b, 'Lunch plans', 'Hello bob!').count()) === 0; n++) {
      const before = await timeline.evaluate((el) => {
        el.scrollTop = 0;
        el.dispatchEvent(new Event('scroll'));
        const first = el.querySelector('.rows > [data-id]');
        return { id: first.dataset.id, top: first.getBoundingClientRect().top };
      });
      await until(
        () => timeline.evaluate((el, id) => el.querySelector('.rows > [data-id]').dataset.id !== id, before.id),
        'older messages',
      );
      const after = await timeline.evaluate(
        (el, id) => el.querySelector(`[data-id="${CSS.escape(id)}"]`).getBoundingClientRect().top,
        before.id,
      );
      if (Math.abs(after - before.top) > 2) jumps++;
    }
    await message(b, 'Lunch plans', 'Hello bob!').waitFor();
    assert.equal(jumps, 0, 'the visible row moved when older messages loaded');
    // Edits, deletions, reactions, replies and threads survived the reload.
    const hello = message(b, 'Lunch plans', '(or sushi)');
    await hello.getByText('(edited)').waitFor();
    await hello.getByRole('button', { name: /^👍 1/ }).waitFor();
    await message(b, 'Lunch plans', 'Deal.').getByRole('button', { name: '2 replies' }).waitFor();
    await timeline.getByText('Message deleted').waitFor();

    // Reading in the middle: a new message does not move what bob reads.
    const anchor = await timeline.evaluate((el) => {
      el.scrollTop = el.scrollHeight / 2;
      el.dispatchEvent(new Event('scroll'));
      const rows = [...el.querySelectorAll('.rows > .msg')];
      const box = el.getBoundingClientRect();
      const row = rows.find((r) => r.getBoundingClientRect().top >= box.top);
      return { id: row.dataset.id, top: row.getBoundingClientRect().top };
    });
    await b.getByRole('button', { name: 'Jump to latest' }).waitFor();
    await say(a, 'Lunch plans', 'Are you still reading?');
    await message(b, 'Lunch plans', 'Are you still reading?').waitFor({ state: 'attached' });
    const top = await timeline.evaluate(
      (el, id) => el.querySelector(`[data-id="${CSS.escape(id)}"]`).getBoundingClientRect().top,
      anchor.id,
    );
    assert.ok(Math.abs(top - anchor.top) <= 2, `row moved from ${anchor.top} to ${top}`);
    await b.getByRole('button', { name: 'Jump to latest' }).click();
    await message(b, 'Lunch plans', 'Are you still reading?').waitFor();
    // At the bottom, new messages keep it at the bottom.
    await say(a, 'Lunch plans', 'Bottom line');
    await until(
      () => timeline.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 48),
      'bob to stay at the bottom',
    );
    await message(b, 'Lunch plans', 'Bottom line').waitFor();
    // Read to the end: nothing unread.
    await b.getByRole('link', { name: 'Lunch plans', exact: true }).waitFor();
  });

  step('a client that loses the network reconnects and fills the gap', async () => {
    const a = alice.page;
    const b = bob.page;
    proxy.cut();
    await b.getByRole('status').filter({ hasText: 'Offline' }).waitFor();
    await shot(b, 'offline-dark');
    for (const n of [1, 2, 3]) await say(a, 'Lunch plans', `While you were away ${n}`);
    await new Promise((r) => setTimeout(r, 1_500));
    proxy.restore();
    await b.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    await message(b, 'Lunch plans', 'While you were away 3').waitFor();
    const texts = (await messageTexts(b, 'Lunch plans')).filter((t) => t.startsWith('While you were away'));
    assert.deepEqual(texts, [1, 2, 3].map((n) => `While you were away ${n}`));
  });

  step('public rooms: the directory, the invite link, unread counts', async () => {
    const a = alice.page;
    const b = bob.page;
    await a.getByRole('button', { name: 'New room' }).click();
    const dialog = a.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('Town square');
    await dialog.getByLabel(/Public/).check();
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await a.getByRole('heading', { level: 1, name: 'Town square' }).waitFor();
    publicRoomId = decodeURIComponent(new URL(a.url()).pathname.split('/').pop());
    await a.getByRole('button', { name: 'Invite people' }).click();
    const invite = a.getByRole('dialog', { name: 'Invite to Town square' });
    await invite.getByRole('button', { name: 'Create invite link' }).click();
    const link = await invite.getByLabel('Invite link').inputValue();
    assert.match(link, new RegExp(`^${BASE}/join/[\\w-]+$`));
    await invite.getByRole('button', { name: 'Close' }).click();

    // A public room's own address shows it too (through bob's way to the node).
    await b.goto(`${proxy.url}/join/${encodeURIComponent(publicRoomId)}`);
    await b.getByRole('heading', { name: 'Join Town square' }).waitFor();
    // bob follows the link.
    await b.goto(link.replace(BASE, proxy.url));
    await b.getByRole('heading', { name: 'alice invites you to Town square' }).waitFor();
    await b.getByRole('button', { name: 'Join room' }).click();
    await log(b, 'Town square').waitFor();

    // A second public room, found through the directory.
    await a.getByRole('button', { name: 'New room' }).click();
    await dialog.getByLabel('Name').fill('Book club');
    await dialog.getByLabel('Topic').fill('One chapter a week');
    await dialog.getByLabel(/Public/).check();
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await a.getByRole('heading', { level: 1, name: 'Book club' }).waitFor();
    await b.getByRole('button', { name: 'Browse' }).click();
    const directory = b.getByRole('dialog', { name: 'Public rooms' });
    await directory.getByText('One chapter a week').waitFor();
    await shot(b, 'directory-dark');
    await directory.getByRole('button', { name: 'Join Book club' }).click();
    await log(b, 'Book club').waitFor();

    // alice reads Lunch plans; bob writes in Town square: an unread count.
    await a.getByRole('link', { name: /^Lunch plans/ }).click();
    await log(a, 'Lunch plans').waitFor();
    await b.getByRole('link', { name: /^Town square/ }).click();
    await say(b, 'Town square', 'Anyone here?');
    await say(b, 'Town square', 'Hello?');
    await a.getByRole('link', { name: 'Town square, 2 unread' }).waitFor();
    await shot(a, 'unread-light');
    await a.getByRole('link', { name: /^Town square/ }).click();
    await message(a, 'Town square', 'Hello?').waitFor();
    await a.getByRole('link', { name: 'Town square' , exact: true }).waitFor();
  });

  step('a private room through an invite link: a stranger logs in, previews it, joins', async () => {
    const a = alice.page;
    await a.getByRole('button', { name: 'New room' }).click();
    const dialog = a.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('Night owls');
    await dialog.getByLabel('Topic').fill('After hours');
    await dialog.getByLabel(/Private/).check();
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await a.getByRole('heading', { level: 1, name: 'Night owls' }).waitFor();
    const nightOwls = decodeURIComponent(new URL(a.url()).pathname.split('/').pop());
    await say(a, 'Night owls', 'Who is still up?');

    // A link for one person, for a day.
    await a.getByRole('button', { name: 'Invite people' }).click();
    const invite = a.getByRole('dialog', { name: 'Invite to Night owls' });
    await invite.getByLabel('Expires after').selectOption({ label: '1 day' });
    await invite.getByLabel('Uses').selectOption('1');
    await invite.getByRole('button', { name: 'Create invite link' }).click();
    await invite.getByText(/can join with it until .* \(1 use\)\./).waitFor();
    const link = await invite.getByLabel('Invite link').inputValue();
    assert.match(link, new RegExp(`^${BASE}/join/[\\w-]+$`));
    await shot(a, 'invite-link-light');
    await invite.getByRole('button', { name: 'Close' }).click();

    // carol has no account yet: she signs up from the link, and is back at it.
    carol = await openPage(browser, { colorScheme: 'light' });
    const c = carol.page;
    await c.goto(link);
    await c.getByText('Log in or sign up to accept the invitation.').waitFor();
    await c.getByRole('tab', { name: 'Sign up' }).click();
    await c.getByLabel('Username').fill('carol');
    await c.getByLabel('Password').fill(PASSWORD);
    await c.getByRole('button', { name: 'Create account' }).click();
    const preview = c.getByRole('region', { name: 'alice invites you to Night owls' });
    await preview.waitFor();
    await preview.getByText('After hours').waitFor();
    await preview.getByText('1 member', { exact: true }).waitFor();
    assert.equal(c.url(), link);
    await shot(c, 'join-link-light');
    await preview.getByRole('button', { name: 'Join room' }).click();

    await message(c, 'Night owls', 'Who is still up?').waitFor();
    assert.equal(decodeURIComponent(new URL(c.url()).pathname), `/room/${nightOwls}`);
    await c.getByRole('link', { name: /^Night owls/ }).waitFor();
    await log(a, 'Night owls').getByText('carol joined').waitFor();
    await say(c, 'Night owls', 'Me, with a cup of tea');
    await message(a, 'Night owls', 'Me, with a cup of tea').waitFor();

    // Its one use is spent: bob is turned away.
    await bob.page.goto(link.replace(BASE, proxy.url));
    await bob.page.getByText('This invite link is not valid').waitFor();
    assert.deepEqual(c.errors, []);
    await carol.context.close();
    carol = null;
  });

  step('direct messages', async () => {
    const a = alice.page;
    const b = bob.page;
    await b.getByRole('button', { name: 'New direct message' }).click();
    const dialog = b.getByRole('dialog', { name: 'Message someone' });
    await dialog.getByLabel('Username').fill('alice');
    await dialog.getByRole('button', { name: 'Start conversation' }).click();
    await b.getByRole('heading', { level: 1, name: 'alice' }).waitFor();
    const box = b.getByRole('textbox', { name: 'Message alice' });
    await box.fill('psst, a secret');
    await box.press('Enter');
    await b.getByRole('log', { name: 'Messages in alice' }).getByText('psst, a secret').waitFor();

    const invitation = a.getByRole('link', { name: 'bob, invitation' });
    await invitation.waitFor();
    await invitation.click();
    // A message request: who, and what they wrote, before accepting.
    await a.getByRole('heading', { name: 'bob wants to message you' }).waitFor();
    await a.getByRole('log', { name: 'Message request from bob' }).getByText('psst, a secret').waitFor();
    await shotViews(a, 'message-request');
    await a.getByRole('button', { name: 'Accept', exact: true }).click();
    await a.getByRole('log', { name: 'Messages in bob' }).getByText('psst, a secret').waitFor();
    await a.getByRole('navigation').getByRole('region', { name: 'Direct messages' }).getByRole('link', { name: /^bob/ }).waitFor();
    await a.getByRole('link', { name: /^Town square/ }).click();
    await b.getByRole('link', { name: /^Town square/ }).click();
  });

  step('member list with roles; settings for those allowed', async () => {
    const a = alice.page;
    const b = bob.page;
    await a.getByRole('button', { name: /^Members/ }).click();
    const members = a.getByRole('complementary', { name: 'Members' });
    const aliceRow = members.getByRole('listitem').filter({ hasText: 'alice' });
    await aliceRow.getByText('Owner').waitFor();
    const bobRow = members.getByRole('listitem').filter({ hasText: 'bob' });
    // Both have the app open: each shows as online to the other.
    await bobRow.getByRole('img', { name: 'online' }).waitFor();
    await aliceRow.getByRole('img', { name: 'online' }).waitFor();
    await shot(a, 'members-light');

    await a.getByRole('button', { name: 'Room settings' }).click();
    const settings = a.getByRole('complementary', { name: 'Room settings' });
    await settings.getByLabel('Topic').fill('The place to be');
    await settings.getByRole('button', { name: 'Save changes' }).click();
    await settings.getByText('Saved.').waitFor();
    // The text went where it was typed, not into a field focused meanwhile.
    assert.equal(await settings.getByLabel('Name').inputValue(), 'Town square');
    await shot(a, 'settings-light');
    // bob sees the new topic live, and may not change it.
    await b.getByRole('main').getByText('The place to be').first().waitFor();
    await b.getByRole('button', { name: 'Room settings' }).click();
    const bobSettings = b.getByRole('complementary', { name: 'Room settings' });
    assert.equal(await bobSettings.getByLabel('Topic').isDisabled(), true);
    assert.equal(await bobSettings.getByRole('button', { name: 'Save changes' }).count(), 0);
    await bobSettings.getByRole('button', { name: 'Close room settings' }).click();
  });

  step('bob sees alice typing, until her message comes', async () => {
    const a = alice.page;
    const b = bob.page;
    const box = a.getByRole('textbox', { name: 'Message #Town square' });
    await box.fill('typed while bob watched');
    const notice = b.getByRole('main').getByRole('status').filter({ hasText: 'alice is typing…' });
    await notice.waitFor();
    await shot(b, 'typing-dark');
    await box.press('Enter');
    await log(b, 'Town square').getByText('typed while bob watched').waitFor();
    // Well before a notice would lapse by itself (10 s).
    await until(async () => (await notice.count()) === 0, 'the typing notice to end', 3000);
  });

  step('phone-sized screen, light and dark', async () => {
    for (const scheme of ['light', 'dark']) {
      const { context, page } = await openPage(browser, {
        viewport: { width: 390, height: 844 },
        deviceScaleFactor: 2,
        isMobile: true,
        hasTouch: true,
        colorScheme: scheme,
      });
      await page.goto('/');
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      const nav = page.getByRole('navigation', { name: 'Rooms and direct messages' });
      await nav.getByRole('link', { name: /^Lunch plans/ }).waitFor();
      await shot(page, `phone-rooms-${scheme}`);
      await nav.getByRole('link', { name: /^Lunch plans/ }).click();
      await message(page, 'Lunch plans', 'Bottom line').waitFor();
      assert.equal(await nav.isVisible(), false, 'one pane at a time');
      await shot(page, `phone-room-${scheme}`);
      // A side panel takes the whole screen, and closes back to the room.
      await page.getByRole('button', { name: /^Members/ }).click();
      const members = page.getByRole('complementary', { name: 'Members' });
      await members.getByText('Owner').waitFor();
      await shot(page, `phone-members-${scheme}`);
      await members.getByRole('button', { name: 'Close members' }).click();
      await page.getByRole('button', { name: 'Back to rooms' }).click();
      await nav.waitFor();
      await context.close();
    }
  });

  step('a hidden tab shows as away, and online again when shown', async () => {
    const a = alice.page;
    const b = bob.page;
    await a.getByRole('link', { name: /^Town square/ }).click();
    const members = a.getByRole('complementary', { name: 'Members' });
    if (!(await members.isVisible())) await a.getByRole('button', { name: /^Members/ }).click();
    const bobRow = members.getByRole('listitem').filter({ hasText: 'bob' });
    await bobRow.getByRole('img', { name: 'online' }).waitFor();
    const setVisibility = (state) =>
      b.evaluate((state) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    await bobRow.getByRole('img', { name: 'away' }).waitFor();
    await setVisibility('visible');
    await bobRow.getByRole('img', { name: 'online' }).waitFor();
  });

  step('the access token is renewed quietly; logging out ends the session', async () => {
    const a = alice.page;
    // The node under test issues 20 s tokens (see scripts/web-e2e.sh); the
    // steps above take longer than that.
    await until(
      () => a.evaluate((t) => JSON.parse(localStorage.getItem('spaces.session.v1')).access_token !== t, firstToken),
      'a renewed access token',
      25_000,
    );
    await a.getByRole('link', { name: /^Lunch plans/ }).click();
    await bob.page.getByRole('link', { name: /^Lunch plans/ }).click();
    await say(a, 'Lunch plans', 'Still here after a token refresh');
    await message(bob.page, 'Lunch plans', 'Still here after a token refresh').waitFor();
    await pageApi(a, 'GET', '/api/v1/me');

    // Every control has a name a screen reader can announce.
    const unnamed = await a.evaluate(() =>
      [...document.querySelectorAll('button, a[href], input, textarea, select, [role=log]')]
        .filter((el) => {
          const label = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent.trim();
          const wrapped = el.closest('label');
          return !label && !wrapped && !el.getAttribute('title');
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unnamed, []);

    // The theme switch: system → light → dark, remembered across a reload.
    const html = a.locator('html');
    await a.getByRole('button', { name: /^Theme: system/ }).click();
    assert.equal(await html.getAttribute('data-theme'), 'light');
    await a.getByRole('button', { name: /^Theme: light/ }).click();
    assert.equal(await html.getAttribute('data-theme'), 'dark');
    await a.reload();
    await log(a, 'Lunch plans').waitFor();
    assert.equal(await html.getAttribute('data-theme'), 'dark');
    await shot(a, 'room-desktop-dark-toggle');

    // bob watches alice in the member list: logged out, she goes offline
    // (after the node's grace period, 1 s here).
    const b = bob.page;
    const members = b.getByRole('complementary', { name: 'Members' });
    if (!(await members.isVisible())) await b.getByRole('button', { name: /^Members/ }).click();
    const aliceRow = members.getByRole('listitem').filter({ hasText: 'alice' });
    await aliceRow.getByRole('img', { name: 'online' }).waitFor();

    await a.getByRole('button', { name: 'Log out' }).click();
    // Asked first; "Cancel" keeps the session.
    const question = a.getByRole('dialog', { name: 'Log out' });
    await question.getByRole('button', { name: 'Cancel' }).click();
    await question.waitFor({ state: 'detached' });
    await a.getByRole('button', { name: 'Log out' }).click();
    await shotViews(a, 'logout-confirm');
    await question.getByRole('button', { name: 'Log out' }).click();
    await a.getByRole('tab', { name: 'Log in' }).waitFor();
    await aliceRow.getByRole('img', { name: 'offline' }).waitFor();
    await a.reload();
    await a.getByRole('tab', { name: 'Log in' }).waitFor();
    assert.equal(await a.evaluate(() => localStorage.getItem('spaces.session.v1')), null);
    for (const page of [alice.page, bob.page]) assert.deepEqual(page.errors, []);
  });
});

