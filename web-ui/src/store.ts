// Client state: rooms, timelines, threads and messages, and the actions
// that change them.
//
// One module-level store, changed only by the functions here. Values are
// replaced, never mutated in place (a changed message is a new object, a
// changed timeline a new array), so components re-render exactly when what
// they selected with `useStore` changes.
//
// Events reach the store two ways: history pages (GET .../messages, threads),
// which carry the node's aggregates (reactions, latest edit, redaction,
// thread size), and the WebSocket, which carries raw events: reactions,
// edits and redactions arrive as events of their own and are folded into
// their target here. A message is known by id, so whichever way an event
// comes first, it is shown once.

import { useEffect, useReducer, useRef } from 'preact/hooks';
import { api, ApiError, currentSession, logout, seg } from './api/client';
import { Live, type LiveStatus } from './api/live';
import type {
  EventJson,
  HistoryPage,
  InviteLink,
  Me,
  MembersPage,
  MentionsJson,
  Presence,
  Room,
  ThreadPage,
} from './api/types';

// ---- model ----------------------------------------------------------------

export interface Reaction {
  key: string;
  users: string[];
}

export interface Msg {
  id: string;
  room: string;
  sender: string;
  ts: number;
  /** Event type: "message", or a state type shown as a line of its own. */
  type: string;
  body: string;
  mentions: MentionsJson;
  replyTo: string | null;
  thread: string | null;
  redacted: boolean;
  edited: boolean;
  reactions: Reaction[];
  threadCount: number;
  content: Record<string, unknown>;
  /** Local echo of a message being sent. */
  pending?: 'sending' | 'failed';
  error?: string;
}

export interface Timeline {
  ids: string[];
  loaded: boolean;
  loading: boolean;
  hasMore: boolean;
  error: string | null;
}

export interface ThreadView {
  room: string;
  root: string;
  ids: string[];
  loaded: boolean;
  error: string | null;
}

export interface RoomEntry {
  info: Room;
  timeline: Timeline;
  members: MembersPage | null;
  unread: number;
  mentioned: number;
  /** Orders the sidebar: the stream seq of the newest activity. */
  last: number;
  /** For direct rooms: the other person. */
  peer: string | null;
}

export interface Store {
  me: Me | null;
  booted: boolean;
  bootError: string | null;
  rooms: Map<string, RoomEntry>;
  msgs: Map<string, Msg>;
  threads: Map<string, ThreadView>;
  names: Map<string, string>;
  /** Presence of people who share a room with us; absent means offline. */
  presence: Map<string, Presence>;
  /** Who is typing, by room: user ids, oldest first. */
  typing: Map<string, string[]>;
  status: LiveStatus;
  active: string | null;
  /** The active timeline is scrolled to its newest message. */
  atBottom: boolean;
}

export const store: Store = {
  me: null,
  booted: false,
  bootError: null,
  rooms: new Map(),
  msgs: new Map(),
  threads: new Map(),
  names: new Map(),
  presence: new Map(),
  typing: new Map(),
  status: 'connecting',
  active: null,
  atBottom: true,
};

// ---- subscriptions --------------------------------------------------------

const listeners = new Set<() => void>();
let queued = false;

function changed(): void {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    for (const listener of [...listeners]) listener();
    updateTitle();
  });
}

/** Re-renders the calling component when `select()` returns something new. */
export function useStore<T>(select: () => T): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  const selectRef = useRef(select);
  selectRef.current = select;
  const value = select();
  const last = useRef(value);
  last.current = value;
  useEffect(() => {
    const listener = () => {
      if (!Object.is(selectRef.current(), last.current)) force(0);
    };
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return value;
}

function updateTitle(): void {
  let total = 0;
  for (const entry of store.rooms.values()) total += entry.unread;
  const room = store.active ? store.rooms.get(store.active) : undefined;
  const name = room ? roomName(room) : 'Spaces';
  document.title = (total ? `(${total > 99 ? '99+' : total}) ` : '') + name;
}

// ---- small helpers --------------------------------------------------------

const EMPTY_MENTIONS: MentionsJson = { users: [], roles: [], room: false };

export function localpart(userId: string): string {
  const at = userId.startsWith('@') ? 1 : 0;
  const colon = userId.indexOf(':');
  return userId.slice(at, colon === -1 ? undefined : colon);
}

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

function newTimeline(): Timeline {
  return { ids: [], loaded: false, loading: false, hasMore: true, error: null };
}

function putRoom(id: string, entry: RoomEntry): void {
  store.rooms = new Map(store.rooms).set(id, entry);
  changed();
}

function updateRoom(id: string, change: (entry: RoomEntry) => Partial<RoomEntry>): void {
  const entry = store.rooms.get(id);
  if (entry) putRoom(id, { ...entry, ...change(entry) });
}

function updateTimeline(id: string, change: (t: Timeline) => Partial<Timeline>): void {
  updateRoom(id, (entry) => ({ timeline: { ...entry.timeline, ...change(entry.timeline) } }));
}

function updateThread(root: string, change: (t: ThreadView) => Partial<ThreadView>): void {
  const thread = store.threads.get(root);
  if (!thread) return;
  store.threads = new Map(store.threads).set(root, { ...thread, ...change(thread) });
  changed();
}

function setMsg(msg: Msg): void {
  store.msgs.set(msg.id, msg);
  changed();
}

function updateMsg(id: string, change: (msg: Msg) => Partial<Msg>): void {
  const msg = store.msgs.get(id);
  if (msg) setMsg({ ...msg, ...change(msg) });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function entryFrom(info: Room, previous?: RoomEntry): RoomEntry {
  return {
    info,
    timeline: previous?.timeline ?? newTimeline(),
    members: previous?.members ?? null,
    unread: previous?.unread ?? info.unread ?? 0,
    mentioned: previous?.mentioned ?? 0,
    last: Math.max(previous?.last ?? 0, info.last_seq ?? 0),
    // In a direct room someone else made, the other person is its creator.
    peer:
      previous?.peer ??
      (info.kind === 'direct' && info.creator !== store.me?.user_id ? info.creator : null),
  };
}

// ---- folding events -------------------------------------------------------

/** A reaction event's target and key, to undo it when it is redacted. */
const reactionIndex = new Map<string, { target: string; key: string; sender: string }>();

function msgFrom(event: EventJson): Msg {
  const c = event.content;
  const isMessage = event.type === 'message';
  const reactions = (event.reactions ?? []).map((r) => ({ key: r.key, users: r.users }));
  return {
    id: event.event_id,
    room: event.room_id,
    sender: event.sender,
    ts: event.origin_ts,
    type: event.type,
    body: isMessage ? (event.edited?.body ?? String(c.body ?? '')) : '',
    mentions: isMessage ? ((c.mentions as MentionsJson) ?? EMPTY_MENTIONS) : EMPTY_MENTIONS,
    replyTo: isMessage ? ((c.reply_to as string | null) ?? null) : null,
    thread: isMessage ? ((c.thread as string | null) ?? null) : null,
    redacted: !!event.redacted,
    edited: !!event.edited,
    reactions,
    threadCount: event.thread_count ?? 0,
    content: c,
  };
}

/** A history or thread page event: carries authoritative aggregates. */
function ingestSnapshot(event: EventJson): Msg {
  const msg = msgFrom(event);
  const known = store.msgs.get(msg.id);
  // Thread sizes only grow; a live reply may have landed after the page
  // was read.
  if (known) msg.threadCount = Math.max(known.threadCount, msg.threadCount);
  setMsg(msg);
  return msg;
}

function addReaction(target: string, key: string, user: string): void {
  updateMsg(target, (msg) => {
    const existing = msg.reactions.find((r) => r.key === key);
    if (existing?.users.includes(user)) return {};
    const reactions = existing
      ? msg.reactions.map((r) => (r.key === key ? { key, users: [...r.users, user] } : r))
      : [...msg.reactions, { key, users: [user] }];
    return { reactions };
  });
}

function removeReaction(target: string, key: string, user: string): void {
  updateMsg(target, (msg) => ({
    reactions: msg.reactions
      .map((r) => (r.key === key ? { key, users: r.users.filter((u) => u !== user) } : r))
      .filter((r) => r.users.length > 0),
  }));
}

/** A live event from the WebSocket. */
function ingestLive(event: EventJson, seq: number): void {
  const c = event.content;
  const room = event.room_id;
  const me = store.me?.user_id;
  switch (event.type) {
    case 'message': {
      if (store.msgs.has(event.event_id)) return;
      const msg = msgFrom(event);
      setMsg(msg);
      const echo = msg.sender === me ? echoFor(msg) : undefined;
      if (echo) {
        if (msg.thread) updateMsg(msg.thread, (root) => ({ threadCount: root.threadCount + 1 }));
        settleEcho(echo, msg.id);
      } else if (msg.thread) {
        updateThread(msg.thread, (t) => ({
          ids: t.ids.includes(msg.id) ? t.ids : [...t.ids, msg.id],
        }));
        updateMsg(msg.thread, (root) => ({ threadCount: root.threadCount + 1 }));
      } else {
        appendToTimeline(room, msg.id);
      }
      if (store.typing.get(room)?.includes(msg.sender)) setTyping(room, msg.sender, false);
      const entry = store.rooms.get(room);
      if (!entry) return;
      const fromOther = msg.sender !== me;
      const reading =
        store.active === room && store.atBottom && document.visibilityState === 'visible';
      const mentionsMe = !!me && (msg.mentions.users.includes(me) || msg.mentions.room);
      putRoom(room, {
        ...entry,
        last: Math.max(entry.last, seq),
        unread: fromOther && !reading && !msg.thread ? entry.unread + 1 : entry.unread,
        mentioned: fromOther && !reading && mentionsMe ? entry.mentioned + 1 : entry.mentioned,
      });
      if (reading && !msg.thread) scheduleRead(room);
      return;
    }
    case 'reaction': {
      const target = String(c.target);
      const key = String(c.key);
      reactionIndex.set(event.event_id, { target, key, sender: event.sender });
      addReaction(target, key, event.sender);
      return;
    }
    case 'edit': {
      const target = String(c.target);
      const original = store.msgs.get(target);
      // Only the sender edits a message (the node's auth rules say so too;
      // this keeps a refused edit from a peer off the screen).
      if (!original || original.sender !== event.sender || original.redacted) return;
      updateMsg(target, () => ({
        body: String(c.body ?? ''),
        mentions: (c.mentions as MentionsJson) ?? EMPTY_MENTIONS,
        edited: true,
      }));
      return;
    }
    case 'redaction': {
      const target = String(c.target);
      const reaction = reactionIndex.get(target);
      if (reaction) {
        reactionIndex.delete(target);
        removeReaction(reaction.target, reaction.key, reaction.sender);
      } else if (store.msgs.has(target)) {
        updateMsg(target, () => ({ redacted: true, body: '', reactions: [] }));
      } else {
        // A reaction we only know as a count from a history page: reread
        // the loaded part of the room to learn which one went.
        scheduleAggregates(room);
      }
      return;
    }
    default:
      ingestState(event, seq);
  }
}

/** Resolution changed its mind about earlier events: drop what it now
 *  refuses, and re-read the room, so what it accepts again, the
 *  aggregates and the state take their places. */
function ingestAcceptance(room: string, refused: string[], accepted: EventJson[]): void {
  const gone = new Set(refused);
  updateTimeline(room, (t) => ({ ids: t.ids.filter((id) => !gone.has(id)) }));
  for (const id of refused) {
    const root = store.msgs.get(id)?.thread;
    if (!root) continue;
    updateThread(root, (t) => ({ ids: t.ids.filter((x) => x !== id) }));
    // Counted when it arrived; a re-read only ever raises the count.
    updateMsg(root, (msg) => ({ threadCount: Math.max(0, msg.threadCount - 1) }));
  }
  const entry = store.rooms.get(room);
  if (accepted.length > 0 && entry?.timeline.loaded) {
    // Where they go in the canonical order is the node's to say: read the
    // newest page afresh (older pages come back as the reader scrolls).
    updateTimeline(room, newTimeline);
    void loadLatest(room);
  }
  scheduleAggregates(room);
  scheduleRoomInfo(room);
  if (entry?.members) scheduleMembers(room);
}

function ingestState(event: EventJson, seq: number): void {
  const room = event.room_id;
  const me = store.me?.user_id;
  const c = event.content;
  if (!store.msgs.has(event.event_id)) {
    setMsg(msgFrom(event));
    appendToTimeline(room, event.event_id);
  }
  if (event.type === 'member' && c.target === me) {
    const membership = c.membership as string;
    if (membership === 'leave' || membership === 'ban') {
      if (store.rooms.has(room)) {
        const rooms = new Map(store.rooms);
        rooms.delete(room);
        store.rooms = rooms;
        changed();
      }
      return;
    }
  }
  if (event.type === 'member' && store.rooms.get(room)?.members) scheduleMembers(room);
  const entry = store.rooms.get(room);
  if (entry) putRoom(room, { ...entry, last: Math.max(entry.last, seq) });
  scheduleRoomInfo(room);
}

function appendToTimeline(room: string, id: string): void {
  const entry = store.rooms.get(room);
  if (!entry) return;
  const t = entry.timeline;
  // Not loaded and not loading: the first history page will include it.
  if (!t.loaded && !t.loading) return;
  if (t.ids.includes(id)) return;
  updateTimeline(room, (t) => ({ ids: [...t.ids, id] }));
}

// Debounced re-reads after state changes: one request however many events.
const pending = new Map<string, ReturnType<typeof setTimeout>>();
function debounce(key: string, wait: number, run: () => void): void {
  clearTimeout(pending.get(key));
  pending.set(
    key,
    setTimeout(() => {
      pending.delete(key);
      run();
    }, wait),
  );
}

function scheduleRoomInfo(room: string): void {
  debounce('info:' + room, 150, () => void refreshRoom(room));
}

function scheduleMembers(room: string): void {
  debounce('members:' + room, 200, () => void loadMembers(room));
}

function scheduleAggregates(room: string): void {
  debounce('agg:' + room, 300, () => void refreshAggregates(room));
}

/** The room is being read: its badge goes now, the marker is saved soon
 *  (one request for a burst of messages). */
function scheduleRead(room: string): void {
  const entry = store.rooms.get(room);
  if (entry && (entry.unread || entry.mentioned)) updateRoom(room, () => ({ unread: 0, mentioned: 0 }));
  debounce('read:' + room, 500, () => void markRead(room));
}

// ---- boot and the live connection -----------------------------------------

let live: Live | null = null;

export async function boot(): Promise<void> {
  store.bootError = null;
  changed();
  try {
    const [me, rooms] = await Promise.all([
      api<Me>('GET', '/api/v1/me'),
      api<Room[]>('GET', '/api/v1/rooms'),
    ]);
    store.me = me;
    const map = new Map<string, RoomEntry>();
    for (const room of rooms) map.set(room.room_id, entryFrom(room));
    store.rooms = map;
    store.booted = true;
    changed();
    // Opened at a room's address: its timeline can load now.
    if (store.active) openRoom(store.active);
    for (const room of rooms) if (room.kind === 'direct') void loadMembers(room.room_id);
    void loadProfileName(me.user_id);
    // Everything up to the newest message of our rooms is in what we just
    // read; the node replays the rest (and more, which we recognise).
    const since = rooms.reduce((max, room) => Math.max(max, room.last_seq ?? 0), 0);
    live?.stop();
    live = new Live(since, {
      event: ingestLive,
      acceptance: ingestAcceptance,
      presence(user, state) {
        setPresence([[user, state]]);
      },
      presenceReset() {
        // Whoever went offline while we were away is not in what follows.
        store.presence = new Map();
        changed();
      },
      typing: setTyping,
      status(status) {
        store.status = status;
        changed();
      },
      synced() {
        // Rooms we were invited to or joined while away came as member
        // events; room details are re-read by then. Nothing else to do.
      },
      unauthorized() {
        if (currentSession()) void logout();
      },
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    store.bootError = errorText(error);
    changed();
  }
}

/** Forgets everything: on logout or when another user logs in. */
export function reset(): void {
  live?.stop();
  live = null;
  store.me = null;
  store.booted = false;
  store.rooms = new Map();
  store.msgs = new Map();
  store.threads = new Map();
  store.names = new Map();
  store.presence = new Map();
  store.typing = new Map();
  for (const timer of typingTimers.values()) clearTimeout(timer);
  typingTimers.clear();
  store.active = null;
  reactionIndex.clear();
  for (const timer of pending.values()) clearTimeout(timer);
  pending.clear();
  changed();
}

async function loadProfileName(userId: string): Promise<void> {
  try {
    const profile = await api<{ display_name: string | null }>(
      'GET',
      `/api/v1/users/${seg(userId)}/profile`,
    );
    if (profile.display_name) {
      store.names = new Map(store.names).set(userId, profile.display_name);
      changed();
    }
  } catch {
    // A name is a nicety.
  }
}

// ---- rooms ----------------------------------------------------------------

export async function refreshRoom(room: string): Promise<void> {
  try {
    const info = await api<Room>('GET', `/api/v1/rooms/${seg(room)}`);
    const previous = store.rooms.get(room);
    const member = info.membership === 'join' || info.membership === 'invite';
    if (!member) {
      if (previous) {
        const rooms = new Map(store.rooms);
        rooms.delete(room);
        store.rooms = rooms;
        changed();
      }
      return;
    }
    putRoom(room, entryFrom({ ...info, last_seq: previous?.last }, previous));
    if (!previous && info.kind === 'direct') void loadMembers(room);
  } catch {
    // Gone or unreachable: the next event or reload sets it right.
  }
}

export function setActive(room: string | null): void {
  if (store.active === room) return;
  store.active = room;
  store.atBottom = true;
  changed();
  if (room) {
    openRoom(room);
    scheduleRead(room);
  }
}

function openRoom(room: string): void {
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

const PAGE = 50;

export async function loadLatest(room: string): Promise<void> {
  updateTimeline(room, () => ({ loading: true, error: null }));
  try {
    const page = await api<HistoryPage>('GET', `/api/v1/rooms/${seg(room)}/messages?limit=${PAGE}`);
    const ids = page.events.map((e) => ingestSnapshot(e).id);
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
    const ids = page.events.map((e) => ingestSnapshot(e).id);
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
    let covered = false;
    for (const event of page.events) {
      if (loaded.has(event.event_id)) ingestSnapshot(event);
      if (event.event_id === entry.timeline.ids[0]) covered = true;
    }
    if (covered || !page.has_more || page.events.length === 0) return;
    from = page.events[0].event_id;
  }
}

// ---- typing ----------------------------------------------------------------

/** A notice lapses this long after the last `true` (senders repeat it). */
const TYPING_LAPSE_MS = 10_000;
/** While the user types, `true` is sent again this often. */
const TYPING_REPEAT_MS = 4_000;
const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();

function setTyping(room: string, user: string, on: boolean): void {
  const key = `${room} ${user}`;
  clearTimeout(typingTimers.get(key));
  typingTimers.delete(key);
  if (on) typingTimers.set(key, setTimeout(() => setTyping(room, user, false), TYPING_LAPSE_MS));
  const now = store.typing.get(room) ?? [];
  if (now.includes(user) === on) return;
  const next = on ? [...now, user] : now.filter((u) => u !== user);
  const typing = new Map(store.typing);
  if (next.length) typing.set(room, next);
  else typing.delete(room);
  store.typing = typing;
  changed();
}

/** Our own typing, per room: when we last said `true`. */
const typingSent = new Map<string, number>();

/** Tells the room's members we are typing (`true`, repeated while it lasts)
 * or stopped. Best effort: a notice that fails is not retried. */
export function noteTyping(room: string, on: boolean): void {
  const last = typingSent.get(room);
  if (on ? last !== undefined && Date.now() - last < TYPING_REPEAT_MS : last === undefined) return;
  if (on) typingSent.set(room, Date.now());
  else typingSent.delete(room);
  api('POST', `/api/v1/rooms/${seg(room)}/typing`, { typing: on }).catch(() => {});
}

/** Who is around, by user id, as the node last told us. */
function setPresence(changes: ReadonlyArray<readonly [string, Presence]>): void {
  if (changes.every(([user, state]) => store.presence.get(user) === state)) return;
  const presence = new Map(store.presence);
  for (const [user, state] of changes) presence.set(user, state);
  store.presence = presence;
  changed();
}

export async function loadMembers(room: string): Promise<void> {
  try {
    const page = await api<MembersPage>('GET', `/api/v1/rooms/${seg(room)}/members`);
    const names = new Map(store.names);
    for (const m of page.members) if (m.display_name) names.set(m.user_id, m.display_name);
    store.names = names;
    setPresence(page.members.flatMap((m) => (m.presence ? [[m.user_id, m.presence] as const] : [])));
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

let lastRead = new Map<string, string>();

export async function markRead(room: string): Promise<void> {
  const entry = store.rooms.get(room);
  if (!entry) return;
  if (entry.unread || entry.mentioned) updateRoom(room, () => ({ unread: 0, mentioned: 0 }));
  const ids = entry.timeline.ids;
  let last: string | undefined;
  for (let i = ids.length - 1; i >= 0 && !last; i--) {
    if (!store.msgs.get(ids[i])?.pending) last = ids[i];
  }
  if (!last || lastRead.get(room) === last) return;
  lastRead = new Map(lastRead).set(room, last);
  try {
    await api('POST', `/api/v1/rooms/${seg(room)}/read`, { event_id: last });
  } catch {
    lastRead.delete(room);
  }
}

export async function createRoom(options: {
  name: string;
  topic: string;
  visibility: 'public' | 'private';
}): Promise<string> {
  const info = await api<Room>('POST', '/api/v1/rooms', options);
  putRoom(info.room_id, entryFrom(info, store.rooms.get(info.room_id)));
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
  const previous = store.rooms.get(room);
  // A fresh timeline: what an invitee could read before joining may differ.
  putRoom(room, { ...entryFrom(info, previous), timeline: newTimeline(), members: null });
  if (store.active === room) {
    void loadLatest(room);
    void loadMembers(room);
  }
}

export async function leaveRoom(room: string): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/leave`);
  const rooms = new Map(store.rooms);
  rooms.delete(room);
  store.rooms = rooms;
  changed();
}

export async function invite(room: string, userId: string): Promise<void> {
  await api('POST', `/api/v1/rooms/${seg(room)}/invite`, { user_id: userId });
  scheduleMembers(room);
}

export async function openDm(userId: string): Promise<string> {
  const info = await api<Room>('POST', '/api/v1/dms', { user_id: userId });
  putRoom(info.room_id, { ...entryFrom(info, store.rooms.get(info.room_id)), peer: userId });
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

// ---- messages ---------------------------------------------------------------

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
  options: { replyTo?: string | null; thread?: string | null } = {},
): Promise<void> {
  const me = store.me;
  if (!me || !body.trim()) return;
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
    content: {},
    pending: 'sending',
  };
  setMsg(echo);
  if (echo.thread) updateThread(echo.thread, (t) => ({ ids: [...t.ids, localId] }));
  else updateTimeline(room, (t) => ({ ids: [...t.ids, localId] }));
  await deliver(echo);
}

async function deliver(echo: Msg): Promise<void> {
  const request: Record<string, unknown> = { body: echo.body, mentions: echo.mentions };
  if (echo.replyTo) request.reply_to = echo.replyTo;
  if (echo.thread) request.thread = echo.thread;
  try {
    const event = await api<EventJson>(
      'POST',
      `/api/v1/rooms/${seg(echo.room)}/messages`,
      request,
    );
    if (!store.msgs.has(event.event_id)) {
      store.msgs.set(event.event_id, msgFrom(event));
      if (echo.thread) updateMsg(echo.thread, (root) => ({ threadCount: root.threadCount + 1 }));
    }
    settleEcho(echo, event.event_id);
  } catch (error) {
    updateMsg(echo.id, () => ({ pending: 'failed', error: errorText(error) }));
  }
}

/** Puts the sent message where its local echo stands (once). */
function settleEcho(echo: Msg, real: string): void {
  if (!store.msgs.has(echo.id)) return;
  const swap = (ids: string[]) =>
    ids.includes(real) ? ids.filter((id) => id !== echo.id) : ids.map((id) => (id === echo.id ? real : id));
  if (echo.thread) updateThread(echo.thread, (t) => ({ ids: swap(t.ids) }));
  else updateTimeline(echo.room, (t) => ({ ids: swap(t.ids) }));
  store.msgs.delete(echo.id);
  changed();
}

/** Our own message came back on the WebSocket before the POST answered:
 *  the echo waiting for it, if any. */
function echoFor(msg: Msg): Msg | undefined {
  for (const candidate of store.msgs.values()) {
    if (
      candidate.pending === 'sending' &&
      candidate.room === msg.room &&
      candidate.thread === msg.thread &&
      candidate.body === msg.body
    ) {
      return candidate;
    }
  }
  return undefined;
}

export function retry(localId: string): void {
  const echo = store.msgs.get(localId);
  if (!echo || echo.pending !== 'failed') return;
  updateMsg(localId, () => ({ pending: 'sending', error: undefined }));
  void deliver({ ...echo, pending: 'sending' });
}

export function discard(localId: string): void {
  const echo = store.msgs.get(localId);
  if (!echo) return;
  store.msgs.delete(localId);
  if (echo.thread) updateThread(echo.thread, (t) => ({ ids: t.ids.filter((id) => id !== localId) }));
  else updateTimeline(echo.room, (t) => ({ ids: t.ids.filter((id) => id !== localId) }));
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

export async function toggleReaction(id: string, key: string): Promise<void> {
  const msg = store.msgs.get(id);
  const me = store.me?.user_id;
  if (!msg || !me) return;
  const mine = msg.reactions.some((r) => r.key === key && r.users.includes(me));
  if (mine) {
    removeReaction(id, key, me);
    try {
      await api('DELETE', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}/reactions/${seg(key)}`);
    } catch (error) {
      addReaction(id, key, me);
      throw error;
    }
  } else {
    addReaction(id, key, me);
    try {
      await api('POST', `/api/v1/rooms/${seg(msg.room)}/messages/${seg(id)}/reactions`, { key });
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'already_reacted')) {
        removeReaction(id, key, me);
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
    ingestSnapshot(page.root);
    const ids = page.replies.map((e) => ingestSnapshot(e).id);
    const inPage = new Set(ids);
    updateThread(root, (t) => ({
      ids: [...ids, ...t.ids.filter((id) => !inPage.has(id))],
      loaded: true,
      error: null,
    }));
  } catch (error) {
    updateThread(root, () => ({ error: errorText(error) }));
  }
}
