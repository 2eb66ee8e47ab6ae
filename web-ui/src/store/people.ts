// People: how they are named, whether they are around, who is typing —
// theirs as the node tells us, and ours as we tell the node.

import { api, seg } from '../api/client';
import type { Presence } from '../api/types';
import { changed, owned, ownedTimers, store } from './core';
import { localpart, type RoomEntry } from './model';

/** A person's name as shown: display name if known, else the localpart
 *  (with a short node tag for users of other nodes). */
export function nameOf(userId: string): string {
  const known = store.names.get(userId);
  if (known) return known;
  const node = userId.slice(userId.indexOf(':') + 1);
  const local = localpart(userId);
  return store.me && node !== store.me.node_id ? `${local} (${node.slice(0, 7)})` : local;
}

export function roomName(entry: RoomEntry): string {
  if (entry.info.name) return entry.info.name;
  if (entry.info.kind === 'direct') return entry.peer ? nameOf(entry.peer) : 'Direct message';
  return 'Unnamed room';
}

export function can(entry: RoomEntry | undefined, permission: string): boolean {
  return !!entry && (entry.info.is_owner || entry.info.permissions.includes(permission));
}

/** "bob", "@bob" or a full user id → a full user id on our node. */
export function toUserId(input: string): string | null {
  const text = input.trim().toLowerCase();
  if (/^@[a-z0-9._-]+:~[a-z2-7]+$/.test(text)) return text;
  const local = text.replace(/^@/, '');
  if (!/^[a-z0-9._-]{1,32}$/.test(local) || !store.me) return null;
  return `@${local}:${store.me.node_id}`;
}

export function setNames(changes: Iterable<readonly [string, string]>): void {
  const names = new Map(store.names);
  for (const [user, name] of changes) names.set(user, name);
  store.names = names;
  changed();
}

export async function loadProfileName(userId: string): Promise<void> {
  try {
    const profile = await api<{ display_name: string | null }>(
      'GET',
      `/api/v1/users/${seg(userId)}/profile`,
    );
    if (profile.display_name) setNames([[userId, profile.display_name]]);
  } catch {
    // A name is a nicety.
  }
}

// ---- presence -------------------------------------------------------------------

/** Who is around, by user id, as the node last told us. */
export function setPresence(changes: ReadonlyArray<readonly [string, Presence]>): void {
  if (changes.every(([user, state]) => store.presence.get(user) === state)) return;
  const presence = new Map(store.presence);
  for (const [user, state] of changes) presence.set(user, state);
  store.presence = presence;
  changed();
}

/** A new connection: whoever went offline while we were away is not in
 *  what follows. */
export function clearPresence(): void {
  store.presence = new Map();
  changed();
}

// ---- typing ---------------------------------------------------------------------

/** A notice lapses this long after the last `true` (senders repeat it). */
const TYPING_LAPSE_MS = 10_000;
/** While the user types, `true` is sent again this often. */
const TYPING_REPEAT_MS = 4_000;
/** When each notice we show lapses, by `room user`. */
const typingTimers = ownedTimers<string>();

/** Someone started or stopped typing in a room. */
export function setTyping(room: string, user: string, on: boolean): void {
  const key = `${room} ${user}`;
  const timers = typingTimers.value;
  clearTimeout(timers.get(key));
  timers.delete(key);
  if (on) timers.set(key, setTimeout(() => setTyping(room, user, false), TYPING_LAPSE_MS));
  const now = store.typing.get(room) ?? [];
  if (now.includes(user) === on) return;
  const next = on ? [...now, user] : now.filter((u) => u !== user);
  const typing = new Map(store.typing);
  if (next.length) typing.set(room, next);
  else typing.delete(room);
  store.typing = typing;
  changed();
}

/** Our own typing, per room: when we last said `true`. Forgotten on reset,
 *  so the next user's first notice in a room is sent. */
const typingSent = owned(() => new Map<string, number>());

/** Tells the room's members we are typing (`true`, repeated while it lasts)
 * or stopped. Best effort: a notice that fails is not retried. */
export function noteTyping(room: string, on: boolean): void {
  const sent = typingSent.value;
  const last = sent.get(room);
  if (on ? last !== undefined && Date.now() - last < TYPING_REPEAT_MS : last === undefined) return;
  if (on) sent.set(room, Date.now());
  else sent.delete(room);
  api('POST', `/api/v1/rooms/${seg(room)}/typing`, { typing: on }).catch(() => {});
}
