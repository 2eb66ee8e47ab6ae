// Unit tests of the pure fold of the node's events into the client's
// model (src/store/fold.ts), compiled to .unit/ by `npm test`. Each test
// also checks that the state it folded into is left as it was.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  entryFrom,
  foldAcceptance,
  foldDiscard,
  foldEcho,
  foldLive,
  foldPage,
  foldSent,
  msgFrom,
  withReaction,
  withoutReaction,
} from '../.unit/store/fold.js';
import { freshStore, newTimeline } from '../.unit/store/model.js';

const ME = '@alice:~node';
const BOB = '@bob:~node';
const ROOM = '!room';
const SHOWN = { visible: true };

let nextId = 0;
function event(fields = {}) {
  return {
    event_id: `$e${++nextId}`,
    room_id: ROOM,
    sender: BOB,
    origin_ts: 1000,
    type: 'message',
    content: { body: 'hi' },
    ...fields,
  };
}

function roomInfo(fields = {}) {
  return {
    room_id: ROOM,
    kind: 'room',
    name: 'Room',
    topic: null,
    creator: ME,
    join_rule: 'invite',
    history_visibility: 'shared',
    encrypted: false,
    slowmode_seconds: 0,
    pins: [],
    n_members: 2,
    membership: 'join',
    permissions: [],
    rank: 0,
    is_owner: true,
    unread: 0,
    n_events: 1,
    ...fields,
  };
}

/** A state with us logged in and one room, its timeline loaded (or not). */
function state({ loaded = true, active = null, members = null } = {}) {
  const s = freshStore();
  s.me = { user_id: ME, username: 'alice', node_id: '~node', is_admin: false, session_id: 's' };
  const entry = entryFrom(roomInfo(), undefined, ME);
  entry.timeline = { ...newTimeline(), loaded };
  entry.members = members;
  s.rooms.set(ROOM, entry);
  s.active = active;
  return s;
}

/** Folds and checks that the input was not changed. */
function pure(base, fold) {
  const before = structuredClone(base);
  const result = fold(base);
  assert.deepEqual(base, before, 'the fold changed its input');
  return result;
}

function live(base, e, seq = 1, around = SHOWN) {
  return pure(base, (s) => foldLive(s, e, seq, around));
}

/** Folds a sequence of live events, dropping the effects. */
function liveAll(base, events) {
  return events.reduce((s, e, i) => live(s, e, i + 1).state, base);
}

test('a history page adds its messages and keeps the larger thread size', () => {
  const root = event({ thread_count: 3 });
  let s = foldPage(state(), [root]).state;
  const { state: next, ids } = pure(s, (s) => foldPage(s, [{ ...root, thread_count: 1 }, event()]));
  assert.equal(ids.length, 2);
  assert.equal(ids[0], root.event_id);
  assert.equal(next.msgs.get(root.event_id).threadCount, 3);
  s = next;
  assert.equal(s.msgs.size, 2);
});

test('msgFrom shows the latest edit and blanks state events', () => {
  const m = msgFrom(event({ content: { body: 'old' }, edited: { body: 'new' } }));
  assert.equal(m.body, 'new');
  assert.equal(m.edited, true);
  const member = msgFrom(event({ type: 'member', content: { target: BOB, membership: 'join' } }));
  assert.equal(member.body, '');
  assert.deepEqual(member.mentions, { users: [], roles: [], room: false });
});

test('a live message joins a loaded timeline once and counts as unread', () => {
  const e = event();
  const { state: s, effects } = live(state(), e, 7);
  const entry = s.rooms.get(ROOM);
  assert.deepEqual(entry.timeline.ids, [e.event_id]);
  assert.equal(entry.unread, 1);
  assert.equal(entry.last, 7);
  assert.deepEqual(effects, []);
  const again = live(s, e, 8);
  assert.equal(again.state.rooms, s.rooms, 'a known event changes nothing');
});

test('a live message is not added to a timeline not loaded yet', () => {
  const s = live(state({ loaded: false }), event()).state;
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, []);
  assert.equal(s.rooms.get(ROOM).unread, 1);
});

test('a message read as it arrives is not unread and saves the marker', () => {
  const base = { ...state({ active: ROOM }), atBottom: true };
  const { state: s, effects } = live(base, event());
  assert.equal(s.rooms.get(ROOM).unread, 0);
  assert.deepEqual(effects, [{ kind: 'read', room: ROOM }]);
  // In a background tab it counts.
  const hidden = live(base, event(), 2, { visible: false });
  assert.equal(hidden.state.rooms.get(ROOM).unread, 1);
  assert.deepEqual(hidden.effects, []);
});

test('mentions of us and of the room count; our own messages do not', () => {
  let s = liveAll(state(), [
    event({ content: { body: '@alice', mentions: { users: [ME], roles: [], room: false } } }),
    event({ content: { body: '@room', mentions: { users: [], roles: [], room: true } } }),
    event({ sender: ME, content: { body: 'mine' } }),
  ]);
  assert.equal(s.rooms.get(ROOM).mentioned, 2);
  assert.equal(s.rooms.get(ROOM).unread, 2);
});

test('a message from someone typing ends their notice', () => {
  const base = state();
  base.typing.set(ROOM, [BOB]);
  const { effects } = live(base, event());
  assert.deepEqual(effects, [{ kind: 'typing-stopped', room: ROOM, user: BOB }]);
});

test('a thread reply goes to its thread, not the timeline or the unread count', () => {
  const root = event();
  let s = liveAll(state(), [root]);
  s = { ...s, threads: new Map([[root.event_id, { room: ROOM, root: root.event_id, ids: [], loaded: true, error: null }]]) };
  const reply = event({ content: { body: 'in thread', thread: root.event_id } });
  s = live(s, reply, 2).state;
  assert.deepEqual(s.threads.get(root.event_id).ids, [reply.event_id]);
  assert.equal(s.msgs.get(root.event_id).threadCount, 1);
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, [root.event_id]);
  assert.equal(s.rooms.get(ROOM).unread, 1);
});

test('our message coming back live takes its echo’s place', () => {
  const echo = { ...msgFrom(event({ sender: ME, content: { body: 'hello' } })), id: 'local:1', pending: 'sending' };
  let s = pure(state(), (s) => foldEcho(s, echo));
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, ['local:1']);
  const real = event({ sender: ME, content: { body: 'hello' } });
  s = live(s, real).state;
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, [real.event_id]);
  assert.equal(s.msgs.has('local:1'), false);
  // The POST's answer then finds it settled: nothing moves.
  const after = pure(s, (s) => foldSent(s, echo, real));
  assert.deepEqual(after.rooms.get(ROOM).timeline.ids, [real.event_id]);
});

test('the POST answering first settles the echo; the live copy is then known', () => {
  const echo = { ...msgFrom(event({ sender: ME })), id: 'local:2', pending: 'sending' };
  let s = foldEcho(state(), echo);
  const real = event({ sender: ME });
  s = pure(s, (s) => foldSent(s, echo, real));
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, [real.event_id]);
  assert.equal(s.msgs.has('local:2'), false);
  const again = live(s, real);
  assert.equal(again.state.rooms, s.rooms);
});

test('a discarded echo leaves its timeline', () => {
  const echo = { ...msgFrom(event({ sender: ME })), id: 'local:3', pending: 'failed' };
  const s = pure(foldEcho(state(), echo), (s) => foldDiscard(s, 'local:3'));
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, []);
  assert.equal(s.msgs.has('local:3'), false);
});

test('a reaction and its redaction', () => {
  const target = event();
  const reaction = event({ type: 'reaction', content: { target: target.event_id, key: '👍' } });
  let s = liveAll(state(), [target, reaction]);
  assert.deepEqual(s.msgs.get(target.event_id).reactions, [{ key: '👍', users: [BOB] }]);
  s = live(s, event({ type: 'redaction', content: { target: reaction.event_id } })).state;
  assert.deepEqual(s.msgs.get(target.event_id).reactions, []);
  assert.equal(s.reactionIndex.size, 0);
});

test('withReaction and withoutReaction', () => {
  const m = msgFrom(event());
  const one = withReaction(m, 'x', ME);
  assert.equal(withReaction(one, 'x', ME), one, 'a reaction held is not added twice');
  const two = withReaction(one, 'x', BOB);
  assert.deepEqual(two.reactions, [{ key: 'x', users: [ME, BOB] }]);
  assert.deepEqual(withoutReaction(withoutReaction(two, 'x', ME), 'x', BOB).reactions, []);
});

test('redacting a message blanks it; an unknown target re-reads aggregates', () => {
  const target = event({ reactions: [{ key: 'x', users: [BOB] }] });
  let s = liveAll(state(), [target]);
  s = live(s, event({ type: 'redaction', content: { target: target.event_id } })).state;
  const m = s.msgs.get(target.event_id);
  assert.equal(m.redacted, true);
  assert.equal(m.body, '');
  assert.deepEqual(m.reactions, []);
  const { effects } = live(s, event({ type: 'redaction', content: { target: '$unknown' } }));
  assert.deepEqual(effects, [{ kind: 'aggregates', room: ROOM }]);
});

test('only the sender edits a message', () => {
  const target = event({ content: { body: 'before' } });
  let s = liveAll(state(), [target]);
  s = live(s, event({ sender: ME, type: 'edit', content: { target: target.event_id, body: 'forged' } })).state;
  assert.equal(s.msgs.get(target.event_id).body, 'before');
  s = live(s, event({ type: 'edit', content: { target: target.event_id, body: 'after' } })).state;
  assert.equal(s.msgs.get(target.event_id).body, 'after');
  assert.equal(s.msgs.get(target.event_id).edited, true);
});

test('a state event shows as a line and asks for fresh room details', () => {
  const members = { members: [] };
  const topic = event({ type: 'topic', content: { topic: 't' } });
  const { state: s, effects } = live(state({ members }), topic, 5);
  assert.deepEqual(s.rooms.get(ROOM).timeline.ids, [topic.event_id]);
  assert.equal(s.rooms.get(ROOM).last, 5);
  assert.deepEqual(effects, [{ kind: 'room-info', room: ROOM }]);
  const join = event({ type: 'member', content: { target: BOB, membership: 'join' } });
  assert.deepEqual(live(s, join).effects, [
    { kind: 'members', room: ROOM },
    { kind: 'room-info', room: ROOM },
  ]);
});

test('our own leave or ban drops the room; one by someone else says who and why', () => {
  for (const membership of ['leave', 'ban']) {
    const own = event({ sender: ME, type: 'member', content: { target: ME, membership } });
    const { state: s, effects } = live(state(), own);
    assert.equal(s.rooms.has(ROOM), false, membership);
    assert.deepEqual(effects, []);
    const theirs = event({ type: 'member', content: { target: ME, membership, reason: 'spam' } });
    const removed = live(state(), theirs);
    assert.equal(removed.state.rooms.has(ROOM), false, membership);
    assert.deepEqual(removed.effects, [
      { kind: 'removed', room: ROOM, name: 'Room', by: BOB, ban: membership === 'ban', reason: 'spam' },
    ]);
  }
});

test('acceptance drops refused events and re-reads the room', () => {
  const root = event();
  const reply = event({ content: { body: 'r', thread: root.event_id } });
  const other = event();
  let s = liveAll(state({ members: { members: [] } }), [root, other]);
  s = { ...s, threads: new Map([[root.event_id, { room: ROOM, root: root.event_id, ids: [], loaded: true, error: null }]]) };
  s = live(s, reply).state;
  const { state: next, effects } = pure(s, (s) => foldAcceptance(s, ROOM, [other.event_id, reply.event_id], []));
  assert.deepEqual(next.rooms.get(ROOM).timeline.ids, [root.event_id]);
  assert.deepEqual(next.threads.get(root.event_id).ids, []);
  assert.equal(next.msgs.get(root.event_id).threadCount, 0);
  assert.deepEqual(effects, [
    { kind: 'aggregates', room: ROOM },
    { kind: 'room-info', room: ROOM },
    { kind: 'members', room: ROOM },
  ]);
  // Events accepted again: the loaded timeline starts over from the node.
  const back = pure(next, (s) => foldAcceptance(s, ROOM, [], [other]));
  assert.deepEqual(back.state.rooms.get(ROOM).timeline, newTimeline());
  assert.deepEqual(back.effects[0], { kind: 'reload', room: ROOM });
});

test('entryFrom: a direct room someone else made is with its creator', () => {
  const dm = entryFrom(roomInfo({ kind: 'direct', creator: BOB, name: null, unread: 4, last_seq: 9 }), undefined, ME);
  assert.equal(dm.peer, BOB);
  assert.equal(dm.unread, 4);
  assert.equal(dm.last, 9);
  const mine = entryFrom(roomInfo({ kind: 'direct', creator: ME }), undefined, ME);
  assert.equal(mine.peer, null);
  const kept = entryFrom(roomInfo({ unread: 0, last_seq: 1 }), { ...dm, unread: 2 }, ME);
  assert.equal(kept.unread, 2);
  assert.equal(kept.last, 9);
  assert.equal(kept.peer, BOB);
});

test('the first unread message is kept; the preview follows the last message, its edit and deletion', () => {
  const first = event({ content: { body: 'first' } });
  const second = event({ content: { body: 'second' } });
  const mine = event({ sender: ME, content: { body: 'mine' } });
  let s = liveAll(state(), [first, second]);
  let entry = s.rooms.get(ROOM);
  assert.equal(entry.firstUnread, first.event_id);
  assert.deepEqual(entry.preview, { id: second.event_id, sender: BOB, body: 'second', attachments: 0 });
  s = live(s, mine, 3).state;
  entry = s.rooms.get(ROOM);
  assert.equal(entry.firstUnread, first.event_id, 'our own message is never the first unread');
  assert.equal(entry.preview.body, 'mine');
  // A thread reply changes neither.
  s = live(s, event({ content: { body: 'in thread', thread: first.event_id } }), 4).state;
  assert.equal(s.rooms.get(ROOM).preview.id, mine.event_id);
  s = live(s, event({ sender: ME, type: 'edit', content: { target: mine.event_id, body: 'mine, edited' } }), 5).state;
  assert.equal(s.rooms.get(ROOM).preview.body, 'mine, edited');
  s = live(s, event({ sender: ME, type: 'redaction', content: { target: mine.event_id } }), 6).state;
  assert.equal(s.rooms.get(ROOM).preview.body, null);
  // Read as it arrives: no first unread.
  const reading = live({ ...state({ active: ROOM }), atBottom: true }, event()).state;
  assert.equal(reading.rooms.get(ROOM).firstUnread, null);
});

test('entryFrom takes the first unread and the preview from the room list only', () => {
  const listed = entryFrom(
    roomInfo({
      first_unread: '$f',
      last_message: { event_id: '$l', sender: BOB, origin_ts: 1, body: 'hey', n_attachments: 1 },
    }),
    undefined,
    ME,
  );
  assert.equal(listed.firstUnread, '$f');
  assert.deepEqual(listed.preview, { id: '$l', sender: BOB, body: 'hey', attachments: 1 });
  const details = entryFrom(roomInfo(), listed, ME);
  assert.equal(details.firstUnread, '$f');
  assert.equal(details.preview, listed.preview);
});
