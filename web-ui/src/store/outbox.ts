// The outbox: messages written but not yet acknowledged by the node.
//
// Every message goes through it. It is kept in localStorage (per user), so
// what was written while the node was unreachable survives a reload, and it
// is sent one message at a time, oldest first, so order is kept. Each entry
// carries a client transaction id (`txn_id`, docs/spec/api.md): a resend
// after a lost acknowledgement is answered with the event the first send
// made, so every message is stored exactly once.
//
// A send that fails because the node is unreachable (network error, 5xx,
// rate limit) leaves the entry at the head, shown as queued, and the
// outbox waits for the connection to come back (`flushOutbox` from the
// live status, the browser's `online` event, or a retry timer). A send the
// node refuses (4xx) fails that message only: it shows "Not sent" with
// Retry, and the rest go on.

import { api, ApiError, seg } from '../api/client';
import type { AttachmentJson, EventJson, MentionsJson } from '../api/types';
import { commit, owned, store, updateMsg } from './core';
import { foldEcho, foldSent } from './fold';
import { errorText, type Msg } from './model';

const KEY_PREFIX = 'spaces.outbox.v1:';
/** Retry while messages wait and nothing else wakes the outbox. */
const RETRY_MS = 3_000;
/** Entries kept at most: beyond, the oldest are dropped (with their echo). */
const MAX_ENTRIES = 500;

export interface OutboxEntry {
  /** The local echo's id. */
  id: string;
  txn: string;
  room: string;
  body: string;
  mentions: MentionsJson;
  replyTo: string | null;
  thread: string | null;
  attachments: AttachmentJson[];
  ts: number;
}

interface State {
  user: string | null;
  entries: OutboxEntry[];
  running: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const state = owned<State>(
  () => ({ user: null, entries: [], running: false, timer: undefined }),
  (old) => clearTimeout(old.timer),
);

function key(user: string): string {
  return KEY_PREFIX + user;
}

function save(): void {
  const { user, entries } = state.value;
  if (!user) return;
  try {
    if (entries.length) localStorage.setItem(key(user), JSON.stringify(entries));
    else localStorage.removeItem(key(user));
  } catch {
    // Full or private storage: the outbox lasts as long as the page.
  }
}

function read(user: string): OutboxEntry[] {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(key(user)) ?? '[]');
    return Array.isArray(value)
      ? (value as OutboxEntry[]).filter(
          (e) => typeof e?.txn === 'string' && typeof e.room === 'string' && typeof e.body === 'string',
        )
      : [];
  } catch {
    return [];
  }
}

/** A fresh transaction id: unique per browser and time. */
export function newTxn(): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `w${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}

function echoOf(entry: OutboxEntry, me: string, pending: Msg['pending']): Msg {
  return {
    id: entry.id,
    room: entry.room,
    sender: me,
    ts: entry.ts,
    type: 'message',
    body: entry.body,
    mentions: entry.mentions,
    replyTo: entry.replyTo,
    thread: entry.thread,
    redacted: false,
    edited: false,
    reactions: [],
    threadCount: 0,
    content: entry.attachments.length ? { attachments: entry.attachments } : {},
    pending,
    txn: entry.txn,
  };
}

/** Queues a message: shown at once as a local echo, sent in turn. */
export function enqueue(entry: OutboxEntry): void {
  const me = store.me?.user_id;
  if (!me) return;
  const s = state.value;
  s.user = me;
  s.entries.push(entry);
  while (s.entries.length > MAX_ENTRIES) {
    const dropped = s.entries.shift()!;
    updateMsg(dropped.id, () => ({ pending: 'failed', error: 'too many unsent messages' }));
  }
  save();
  commit(foldEcho(store, echoOf(entry, me, s.running || store.status === 'live' ? 'sending' : 'queued')));
  void flushOutbox();
}

/** After boot: the messages this user left unsent here, back as echoes in
 *  their rooms, and on their way. */
export function restoreOutbox(): void {
  const me = store.me?.user_id;
  if (!me) return;
  const s = state.value;
  s.user = me;
  const known = new Set(s.entries.map((e) => e.txn));
  for (const entry of read(me)) {
    if (known.has(entry.txn) || !store.rooms.has(entry.room)) continue;
    s.entries.push(entry);
    commit(foldEcho(store, echoOf(entry, me, 'queued')));
  }
  save();
  void flushOutbox();
}

/** How many messages wait to be sent. */
export function queuedCount(): number {
  return state.value.entries.length;
}

function transient(error: unknown): boolean {
  return (
    !(error instanceof ApiError) ||
    error.status === 0 ||
    error.status === 429 ||
    error.status >= 500 ||
    (error.status === 401 && error.code === 'no_session')
  );
}

/** Sends what waits, in order, until the outbox is empty or the node
 *  cannot be reached. Only one run at a time. */
export async function flushOutbox(): Promise<void> {
  const s = state.value;
  if (s.running) return;
  s.running = true;
  clearTimeout(s.timer);
  try {
    while (s.entries.length && state.value === s) {
      const entry = s.entries[0];
      const echo = store.msgs.get(entry.id);
      if (!echo || echo.pending === 'failed') {
        // Discarded, or failed for good: no longer ours to send.
        s.entries.shift();
        save();
        continue;
      }
      if (echo.pending !== 'sending') updateMsg(entry.id, () => ({ pending: 'sending', error: undefined }));
      const request: Record<string, unknown> = {
        body: entry.body,
        mentions: entry.mentions,
        txn_id: entry.txn,
      };
      if (entry.replyTo) request.reply_to = entry.replyTo;
      if (entry.thread) request.thread = entry.thread;
      if (entry.attachments.length) {
        request.attachments = entry.attachments.map((a) => ({ hash: a.hash, name: a.name }));
      }
      try {
        const event = await api<EventJson>('POST', `/api/v1/rooms/${seg(entry.room)}/messages`, request);
        if (state.value !== s) return;
        s.entries.shift();
        save();
        const me = store.me?.user_id ?? '';
        commit(foldSent(store, store.msgs.get(entry.id) ?? echoOf(entry, me, 'sending'), event));
      } catch (error) {
        if (state.value !== s) return;
        if (transient(error)) {
          for (const waiting of s.entries) {
            if (store.msgs.get(waiting.id)?.pending === 'sending') {
              updateMsg(waiting.id, () => ({ pending: 'queued' }));
            }
          }
          s.timer = setTimeout(() => void flushOutbox(), RETRY_MS);
          return;
        }
        s.entries.shift();
        save();
        updateMsg(entry.id, () => ({ pending: 'failed', error: errorText(error) }));
      }
    }
  } finally {
    s.running = false;
  }
}

/** Sends a failed message again, with its transaction id (a refused send
 *  recorded nothing on the node), after whatever waits. */
export function requeue(echo: Msg): void {
  const me = store.me?.user_id;
  if (!me || echo.pending !== 'failed') return;
  const entry: OutboxEntry = {
    id: echo.id,
    txn: echo.txn ?? newTxn(),
    room: echo.room,
    body: echo.body,
    mentions: echo.mentions,
    replyTo: echo.replyTo,
    thread: echo.thread,
    attachments: (echo.content.attachments as AttachmentJson[] | undefined) ?? [],
    ts: echo.ts,
  };
  const s = state.value;
  s.user = me;
  s.entries.push(entry);
  save();
  updateMsg(echo.id, () => ({ pending: 'queued', error: undefined }));
  void flushOutbox();
}

/** Forgets a message that waits (the user discarded it). */
export function dropFromOutbox(id: string): void {
  const s = state.value;
  const before = s.entries.length;
  s.entries = s.entries.filter((e) => e.id !== id);
  if (s.entries.length !== before) save();
}

addEventListener('online', () => void flushOutbox());

/** Forgets every waiting message of this user here (logging out). */
export function clearOutbox(): void {
  const s = state.value;
  const me = store.me?.user_id ?? s.user;
  s.entries = [];
  try {
    if (me) localStorage.removeItem(key(me));
  } catch {
    // Nothing stored.
  }
}
