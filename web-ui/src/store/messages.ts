// Messages we write: sending with a local echo (retried or discarded when
// it fails), editing, deleting, reactions, and the threads we open.

import { api, ApiError, seg } from '../api/client';
import type { AttachmentJson, EventJson, MentionsJson, ThreadPage } from '../api/types';
import { changed, commit, setMsg, store, updateMsg, updateThread } from './core';
import { foldDiscard, foldEcho, foldPage, foldSent, withReaction, withoutReaction } from './fold';
import { attachmentsOf } from './media';
import { errorText, localpart, type Msg } from './model';
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
  const localId = `local:${++localCounter}`;
  const mentions = mentionsIn(body, room);
  const echo: Msg = {
    id: localId,
    room,
    sender: me.user_id,
    ts: Date.now(),
    type: 'message',
    body,
    mentions,
    replyTo: options.replyTo ?? null,
    thread: options.thread ?? null,
    redacted: false,
    edited: false,
    reactions: [],
    threadCount: 0,
    content: attachments.length ? { attachments } : {},
    pending: 'sending',
  };
  commit(foldEcho(store, echo));
  await deliver(echo);
}

async function deliver(echo: Msg): Promise<void> {
  const request: Record<string, unknown> = { body: echo.body, mentions: echo.mentions };
  if (echo.replyTo) request.reply_to = echo.replyTo;
  if (echo.thread) request.thread = echo.thread;
  const attachments = attachmentsOf(echo.content);
  if (attachments.length) request.attachments = attachments.map((a) => ({ hash: a.hash, name: a.name }));
  try {
    const event = await api<EventJson>(
      'POST',
      `/api/v1/rooms/${seg(echo.room)}/messages`,
      request,
    );
    commit(foldSent(store, echo, event));
  } catch (error) {
    updateMsg(echo.id, () => ({ pending: 'failed', error: errorText(error) }));
  }
}

export function retry(localId: string): void {
  const echo = store.msgs.get(localId);
  if (!echo || echo.pending !== 'failed') return;
  updateMsg(localId, () => ({ pending: 'sending', error: undefined }));
  void deliver({ ...echo, pending: 'sending' });
}

export function discard(localId: string): void {
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
