// `reset()` (logout, or another user logging in) forgets all client state,
// including what lives outside the store: what we last told the node.
// Before each part registered its own reset, our typing notices and read
// markers outlived the user who made them, so the next user of the tab
// had theirs swallowed. Runs the compiled store (.unit/) against stubs of
// the browser: a session in localStorage, and a fetch that records.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';

const requests = [];
const storage = new Map([
  [
    'spaces.session.v1',
    JSON.stringify({
      user_id: '@alice:~node',
      session_id: 's',
      is_admin: false,
      refresh_token: 'r',
      access_token: 'a',
      access_expires_at: Date.now() + 3_600_000,
      access_lifetime: 3_600_000,
    }),
  ],
]);
globalThis.localStorage = {
  getItem: (key) => storage.get(key) ?? null,
  setItem: (key, value) => void storage.set(key, value),
  removeItem: (key) => void storage.delete(key),
};
globalThis.addEventListener = () => {};
globalThis.removeEventListener = () => {};
globalThis.document = { title: '', visibilityState: 'visible' };
globalThis.fetch = async (path, init) => {
  requests.push(`${init.method} ${path}`);
  return new Response(null, { status: 204 });
};

const { logout } = await import('../.unit/api/client.js');
const { markRead, noteTyping, reset, store } = await import('../.unit/store/index.js');
const { freshStore } = await import('../.unit/store/model.js');

after(() => logout());

const ROOM = '!room';

/** Logged in as `user`, with one room whose newest message is `$last`. */
function signedIn(user) {
  store.me = { user_id: user, username: user, node_id: '~node', is_admin: false, session_id: 's' };
  const timeline = { ids: ['$last'], loaded: true, loading: false, hasMore: false, error: null };
  store.rooms = new Map([[ROOM, { info: {}, timeline, members: null, unread: 0, mentioned: 0, last: 0, peer: null }]]);
  store.msgs = new Map([['$last', { id: '$last', room: ROOM }]]);
}

function sent(what) {
  return requests.filter((r) => r === what).length;
}

test('after a reset the next user’s typing notice is sent', async () => {
  const typing = `POST /api/v1/rooms/${encodeURIComponent(ROOM)}/typing`;
  signedIn('@alice:~node');
  noteTyping(ROOM, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent(typing), 1);
  reset();
  signedIn('@bob:~node');
  noteTyping(ROOM, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent(typing), 2, 'bob’s notice was swallowed as a repeat of alice’s');
});

test('after a reset the next user’s read marker is saved', async () => {
  const read = `POST /api/v1/rooms/${encodeURIComponent(ROOM)}/read`;
  signedIn('@alice:~node');
  await markRead(ROOM);
  assert.equal(sent(read), 1);
  reset();
  signedIn('@bob:~node');
  await markRead(ROOM);
  assert.equal(sent(read), 2, 'bob’s marker was skipped as already saved');
});

test('a reset leaves a store as fresh as at start', () => {
  signedIn('@alice:~node');
  store.names = new Map([['@alice:~node', 'Alice']]);
  store.reactionIndex = new Map([['$r', { target: '$last', key: 'x', sender: '@alice:~node' }]]);
  store.active = ROOM;
  store.atBottom = false;
  store.booted = true;
  reset();
  assert.deepEqual({ ...store }, freshStore());
});

// Module state that is not `owned()` escapes the reset. These are the only
// exceptions, each for a reason that holds across users.
const NOT_OWNED = new Set([
  'core.ts: listeners', // the mounted components' subscriptions
  'core.ts: queued', // a notification already due
  'messages.ts: localCounter', // unique echo ids, also across users
]);

test('all module state of the store is owned, so reset forgets it', () => {
  const dir = new URL('../src/store/', import.meta.url);
  const found = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, dir), 'utf8');
    for (const match of source.matchAll(/^(?:export )?(?:let|var|const) (\w+)(?::[^=]+)? = (.*)$/gm)) {
      const [, name, init] = match;
      // Constants and functions are not state; `owned(...)` is reset.
      const mutable = /^(?:export )?(?:let|var) /.test(match[0]) || /^new (Map|Set|WeakMap|Array)\b/.test(init);
      if (mutable && !/^owned/.test(init)) found.push(`${file}: ${name}`);
    }
  }
  assert.deepEqual(found.filter((entry) => !NOT_OWNED.has(entry)), []);
  assert.deepEqual(found.sort(), [...NOT_OWNED].sort(), 'an exception listed here is gone');
});
