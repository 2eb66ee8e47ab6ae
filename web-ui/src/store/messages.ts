// Messages we write: sending with a local echo (retried or discarded when
// it fails), editing, deleting, reactions, and the threads we open.

import { api, ApiError, seg } from '../api/client';
import type { AttachmentJson, MentionsJson, ThreadPage } from '../api/types';
import { changed, commit, setMsg, store, updateMsg, updateThread } from './core';
import { foldDiscard, foldPage, withReaction, withoutReaction } from './fold';
import { errorText, localpart } from './model';
import { dropFromOutbox, enqueue, newTxn, requeue } from './outbox';
import { can, toUserId } from './people';

/** Numbers local echoes. Never reset: an echo of the user before a reset
 *  may still be settling, and must not meet an echo of the same id. */
let localCounter = 0;

/** @mentions in a body: room members named by localpart, and @room. */
export function mentionsIn(body: string, room: string): MentionsJson {
  const entry = store.rooms.get(room);
  const users = new Set<string>();
  let everyone = false;
  const members = entry?.members?.members ?? [];
  for (const match of body.matchAll(/(^|[^\w@])@(room\b|[a-z0-9._-]+)/g)) {
    const name = match[2];
    if (name === 'room') {
      everyone = can(entry, 'mention_room');
      continue;
    }
    // "@alice." ends a sentence: try the name without trailing punctuation.
    const member =
      members.find((m) => localpart(m.user_id) === name) ??
      members.find((m) => localpart(m.user_id) === name.replace(/[._-]+$/, ''));
    if (member) users.add(member.user_id);
    else if (!entry?.members) {
      // Members not loaded yet: assume someone of this node.
      const guess = toUserId(name.replace(/[._-]+$/, ''));
      if (guess) users.add(guess);
    }
  }
  return { users: [...users], roles: [], room: everyone };
}

export async function send(
  room: string,
  body: string,
  options: { replyTo?: string | null; thread?: string | null; attachments?: AttachmentJson[] } = {},
): Promise<void> {
  const me = store.me;
  const attachments = options.attachments ?? [];
  if (!me || (!body.trim() && attachments.length === 0)) return;
  enqueue({
    id: `local:${++localCounter}:${Date.now().toString(36)}`,
    txn: newTxn(),
    room,
    body,
    mentions: mentionsIn(body, room),
    replyTo: options.replyTo ?? null,
    thread: options.thread ?? null,
    attachments,
    ts: Date.now(),
  });
  return Promise.resolve();
}

export function retry(localId: string): void {
  const echo = store.msgs.get(localId);
  if (echo) requeue(echo);
}

export function discard(localId: string): void {
  dropFromOutbox(localId);
  commit(foldDiscard(store, localId));
}

export async function edit(id: string, body: string): Promise<void> {
  const msg = store.msgs.get(id);
  if (!msg || !body.trim() || body === msg.body) return;
  const before = msg;
  const mentions = mentionsIn(body, msg.room);
  updateMsg(id, () => ({ body, mentions, edited: true }));
  try {
    await api('PATCH', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}`, { body, mentions });
  } catch (error) {
    setMsg(before);
    throw error;
  }
}

/** A message we revealed from the review queue is no longer hidden. */
export function markRevealed(id: string): void {
  updateMsg(id, () => ({ hidden: undefined }));
}

/** Reports a message to the room's moderators on our node. */
export async function report(id: string): Promise<void> {
  const msg = store.msgs.get(id);
  if (!msg) return;
  await api('POST', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}/report`);
}

export async function remove(id: string): Promise<void> {
  const msg = store.msgs.get(id);
  if (!msg) return;
  await api('DELETE', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}`);
  updateMsg(id, () => ({ redacted: true, body: '', reactions: [] }));
}

function react(id: string, key: string, user: string, on: boolean): void {
  const msg = store.msgs.get(id);
  if (msg) setMsg(on ? withReaction(msg, key, user) : withoutReaction(msg, key, user));
}

export async function toggleReaction(id: string, key: string): Promise<void> {
  const msg = store.msgs.get(id);
  const me = store.me?.user_id;
  if (!msg || !me) return;
  const mine = msg.reactions.some((r) => r.key === key && r.users.includes(me));
  if (mine) {
    react(id, key, me, false);
    try {
      await api('DELETE', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}/reactions/${seg(key)}`);
    } catch (error) {
      react(id, key, me, true);
      throw error;
    }
  } else {
    react(id, key, me, true);
    try {
      await api('POST', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}/reactions`, { key });
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'already_reacted')) {
        react(id, key, me, false);
        throw error;
      }
    }
  }
}

export async function openThread(room: string, root: string): Promise<void> {
  if (!store.threads.has(root)) {
    store.threads = new Map(store.threads).set(root, {
      room,
      root,
      ids: [],
      loaded: false,
      error: null,
    });
    changed();
  }
  try {
    const page = await api<ThreadPage>(
      'GET',
      `/api/v1/rooms/${seg(room)}/threads/${seg(root)}`,
    );
    const { state, ids } = foldPage(store, [page.root, ...page.replies]);
    commit(state);
    const replies = ids.slice(1);
    const inPage = new Set(replies);
    updateThread(root, (t) => ({
      ids: [...replies, ...t.ids.filter((id) => !inPage.has(id))],
      loaded: true,
      error: null,
    }));
  } catch (error) {
    updateThread(root, () => ({ error: errorText(error) }));
  }
}
