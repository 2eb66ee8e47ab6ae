// Rooms: the room list, timelines and history pages, members, read
// markers, and the actions on a room (create, join, leave, invite,
// settings, moderation).

import { api, seg } from '../api/client';
import type { EventJson, HistoryPage, InviteLink, MembersPage, Room } from '../api/types';
import {
  changed,
  commit,
  dropRoom,
  owned,
  ownedTimers,
  putRoom,
  store,
  updateRoom,
  updateTimeline,
} from './core';
import { entryFrom, foldPage } from './fold';
import { errorText, newTimeline, type RoomEntry } from './model';
import { setNames, setPresence } from './people';

/** History is read this many events at a time. */
const PAGE = 50;

function entryOf(info: Room, base = store.rooms.get(info.room_id)): RoomEntry {
  return entryFrom(info, base, store.me?.user_id);
}

/** The rooms we are in, as the node listed them at boot. */
export function setRooms(rooms: Room[]): void {
  const map = new Map<string, RoomEntry>();
  for (const room of rooms) map.set(room.room_id, entryFrom(room, undefined, store.me?.user_id));
  store.rooms = map;
  // Opened at a room's address before the list came: land as if opened now.
  const first = store.active ? map.get(store.active)?.firstUnread : null;
  if (store.active && first && !store.divider) store.divider = { room: store.active, id: first };
  changed();
}

// ---- debounced re-reads ---------------------------------------------------------

/** Re-reads waiting to run, by what they re-read. */
const pending = ownedTimers<string>();

// One request however many events ask for it.
function debounce(key: string, wait: number, run: () => void): void {
  const timers = pending.value;
  clearTimeout(timers.get(key));
  timers.set(
    key,
    setTimeout(() => {
      timers.delete(key);
      run();
    }, wait),
  );
}

export function scheduleRoomInfo(room: string): void {
  debounce('info:' + room, 150, () => void refreshRoom(room));
}

export function scheduleMembers(room: string): void {
  debounce('members:' + room, 200, () => void loadMembers(room));
}

export function scheduleAggregates(room: string): void {
  debounce('agg:' + room, 300, () => void refreshAggregates(room));
}

/** The room is being read: its badge goes now, the marker is saved soon
 *  (one request for a burst of messages). */
export function scheduleRead(room: string): void {
  const entry = store.rooms.get(room);
  if (entry && (entry.unread || entry.mentioned || entry.firstUnread)) {
    updateRoom(room, () => ({ unread: 0, mentioned: 0, firstUnread: null }));
  }
  debounce('read:' + room, 500, () => void markRead(room));
}

// ---- the room in view -----------------------------------------------------------

export async function refreshRoom(room: string): Promise<void> {
  try {
    const info = await api<Room>('GET', `/api/v1/rooms/${seg(room)}`);
    const previous = store.rooms.get(room);
    const member = info.membership === 'join' || info.membership === 'invite';
    if (!member) {
      dropRoom(room);
      return;
    }
    putRoom(room, entryOf({ ...info, last_seq: previous?.last }, previous));
    if (!previous && info.kind === 'direct') void loadMembers(room);
  } catch {
    // Gone or unreachable: the next event or reload sets it right.
  }
}

export function setActive(room: string | null): void {
  if (store.active === room) return;
  store.active = room;
  store.atBottom = true;
  const first = room ? store.rooms.get(room)?.firstUnread : null;
  store.divider = room && first ? { room, id: first } : null;
  changed();
  if (room) {
    openRoom(room);
    scheduleRead(room);
  }
}

export function openRoom(room: string): void {
  const entry = store.rooms.get(room);
  if (!entry) return;
  if (!entry.timeline.loaded && !entry.timeline.loading) void loadLatest(room);
  if (!entry.members) void loadMembers(room);
}

export function setAtBottom(value: boolean): void {
  if (store.atBottom === value) return;
  store.atBottom = value;
  if (value && store.active) scheduleRead(store.active);
}

// ---- history --------------------------------------------------------------------

/** Takes a history page's events; returns their ids. */
function ingestPage(events: EventJson[]): string[] {
  const { state, ids } = foldPage(store, events);
  commit(state);
  return ids;
}

export async function loadLatest(room: string): Promise<void> {
  updateTimeline(room, () => ({ loading: true, error: null }));
  try {
    const page = await api<HistoryPage>('GET', `/api/v1/rooms/${seg(room)}/messages?limit=${PAGE}`);
    const ids = ingestPage(page.events);
    const inPage = new Set(ids);
    updateTimeline(room, (t) => ({
      ids: [...ids, ...t.ids.filter((id) => !inPage.has(id))],
      loaded: true,
      loading: false,
      hasMore: page.has_more,
    }));
    if (store.active === room) scheduleRead(room);
  } catch (error) {
    updateTimeline(room, () => ({ loading: false, error: errorText(error) }));
  }
}

export async function loadOlder(room: string): Promise<void> {
  const entry = store.rooms.get(room);
  if (!entry) return;
  const t = entry.timeline;
  const first = t.ids.find((id) => !store.msgs.get(id)?.pending);
  if (!t.loaded || t.loading || !t.hasMore || !first) return;
  updateTimeline(room, () => ({ loading: true }));
  try {
    const page = await api<HistoryPage>(
      'GET',
      `/api/v1/rooms/${seg(room)}/messages?limit=${PAGE}&dir=b&from=${seg(first)}`,
    );
    const ids = ingestPage(page.events);
    updateTimeline(room, (t) => {
      const have = new Set(t.ids);
      return {
        ids: [...ids.filter((id) => !have.has(id)), ...t.ids],
        loading: false,
        hasMore: page.has_more,
      };
    });
  } catch (error) {
    updateTimeline(room, () => ({ loading: false, error: errorText(error) }));
  }
}

/** Rereads the loaded span of a timeline for fresh aggregates. */
async function refreshAggregates(room: string): Promise<void> {
  const entry = store.rooms.get(room);
  if (!entry?.timeline.loaded) return;
  const loaded = new Set(entry.timeline.ids);
  let from: string | null = null;
  // Bounded: four pages cover what anyone scrolled back to read.
  for (let n = 0; n < 4; n++) {
    const query: string = from ? `&from=${seg(from)}` : '';
    let page: HistoryPage;
    try {
      page = await api<HistoryPage>(
        'GET',
        `/api/v1/rooms/${seg(room)}/messages?limit=200&dir=b${query}`,
      );
    } catch {
      return;
    }
    ingestPage(page.events.filter((event) => loaded.has(event.event_id)));
    const covered = page.events.some((event) => event.event_id === entry.timeline.ids[0]);
    if (covered || !page.has_more || page.events.length === 0) return;
    from = page.events[0].event_id;
  }
}

// ---- members and read markers ---------------------------------------------------

export async function loadMembers(room: string): Promise<void> {
  try {
    const page = await api<MembersPage>('GET', `/api/v1/rooms/${seg(room)}/members`);
    const members = page.members;
    setNames(members.flatMap((m) => (m.display_name ? [[m.user_id, m.display_name] as const] : [])));
    setPresence(members.flatMap((m) => (m.presence ? [[m.user_id, m.presence] as const] : [])));
    const me = store.me?.user_id;
    updateRoom(room, (entry) => ({
      members: page,
      peer:
        entry.info.kind === 'direct'
          ? (page.members.find((m) => m.user_id !== me)?.user_id ?? entry.peer)
          : entry.peer,
    }));
  } catch {
    // Invited, not yet a member: no list to show.
  }
}

/** The read marker we last saved, by room. Forgotten on reset, so the next
 *  user's marker is saved even where it is the same event. */
const lastRead = owned(() => new Map<string, string>());

// Leaving or reloading the page: read markers waiting for their debounce
// are saved now, so the next start does not land at messages already read.
addEventListener('pagehide', () => {
  const timers = pending.value;
  for (const [key, timer] of [...timers]) {
    if (!key.startsWith('read:')) continue;
    clearTimeout(timer);
    timers.delete(key);
    void markRead(key.slice('read:'.length), true);
  }
});

export async function markRead(room: string, keepalive = false): Promise<void> {
  const entry = store.rooms.get(room);
  if (!entry) return;
  if (entry.unread || entry.mentioned) updateRoom(room, () => ({ unread: 0, mentioned: 0 }));
  const ids = entry.timeline.ids;
  let last: string | undefined;
  for (let i = ids.length - 1; i >= 0 && !last; i--) {
    if (!store.msgs.get(ids[i])?.pending) last = ids[i];
  }
  const saved = lastRead.value;
  if (!last || saved.get(room) === last) return;
  saved.set(room, last);
  try {
    await api('POST', `/api/v1/rooms/${seg(room)}/read`, { event_id: last }, keepalive);
  } catch {
    saved.delete(room);
  }
}

// ---- actions --------------------------------------------------------------------

export async function createRoom(options: {
  name: string;
  topic: string;
  visibility: 'public' | 'private';
}): Promise<string> {
  const info = await api<Room>('POST', '/api/v1/rooms', options);
  putRoom(info.room_id, entryOf(info));
  return info.room_id;
}

export async function directory(): Promise<Room[]> {
  return api<Room[]>('GET', '/api/v1/directory');
}

export async function joinRoom(room: string): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/join`);
  await joined(room);
}

/** Redeems an invite link; resolves to the room joined. */
export async function joinWithLink(code: string): Promise<string> {
  const event = await api<EventJson>('POST', `/api/v1/invite-links/${seg(code)}/join`);
  await joined(event.room_id);
  return event.room_id;
}

export function createInviteLink(
  room: string,
  options: { uses?: number; expires_in_secs?: number },
): Promise<InviteLink> {
  return api<InviteLink>('POST', `/api/v1/rooms/${seg(room)}/invite-links`, options);
}

async function joined(room: string): Promise<void> {
  const info = await api<Room>('GET', `/api/v1/rooms/${seg(room)}`);
  // A fresh timeline: what an invitee could read before joining may differ.
  putRoom(room, { ...entryOf(info), timeline: newTimeline(), members: null });
  if (store.active === room) {
    void loadLatest(room);
    void loadMembers(room);
  }
}

export async function leaveRoom(room: string): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/leave`);
  dropRoom(room);
}

export async function invite(room: string, userId: string): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/invite`, { user_id: userId });
  scheduleMembers(room);
}

export async function openDm(userId: string): Promise<string> {
  const info = await api<Room>('POST', '/api/v1/dms', { user_id: userId });
  putRoom(info.room_id, { ...entryOf(info), peer: userId });
  return info.room_id;
}

export async function updateRoomSettings(
  room: string,
  patch: Partial<Pick<Room, 'name' | 'topic' | 'join_rule' | 'history_visibility' | 'slowmode_seconds'>>,
): Promise<void> {
  const info = await api<Room>('PATCH', `/api/v1/rooms/${seg(room)}`, patch);
  updateRoom(room, (entry) => ({ info: { ...info, unread: entry.info.unread } }));
}

export async function moderate(
  room: string,
  action: 'kick' | 'ban' | 'unban',
  userId: string,
): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/${action}`, { user_id: userId });
  scheduleMembers(room);
}

export async function setMemberRoles(room: string, userId: string, roles: number[]): Promise<void> {
  await api('PUT', `/api/v1/rooms/${seg(room)}/members/${seg(userId)}/roles`, { roles });
  scheduleMembers(room);
}
