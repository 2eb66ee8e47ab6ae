// The pure fold of the node's events into the model.
//
// Events reach the client two ways: history pages (GET .../messages,
// threads), which carry the node's aggregates (reactions, latest edit,
// redaction, thread size), and the WebSocket, which carries raw events:
// reactions, edits and redactions arrive as events of their own and are
// folded into their target here. A message is known by id, so whichever
// way an event comes first, it is shown once.
//
// Every function here takes a state and returns a new one; the state it
// was given is never changed (a changed message is a new object, a changed
// map a new map), no request is made, no timer set. What the store should
// do next — re-read a room, save a read marker — comes back as `Effect`s
// for the caller to run. So the fold is tested without a browser or node
// (test/fold.test.mjs), and the store's other modules only apply results.

import type { EventJson, MentionsJson, Room } from '../api/types';
import {
  EMPTY_MENTIONS,
  newTimeline,
  type FoldState,
  type Msg,
  type RoomEntry,
  type ThreadView,
  type Timeline,
} from './model';

/** What the store does after a fold, in order. */
export type Effect =
  /** The room is being read: clear its badge, save the marker soon. */
  | { kind: 'read'; room: string }
  /** This person's typing notice ends (they sent a message). */
  | { kind: 'typing-stopped'; room: string; user: string }
  /** Read the newest history page afresh (its timeline was reset). */
  | { kind: 'reload'; room: string }
  /** Re-read the loaded span for fresh aggregates. */
  | { kind: 'aggregates'; room: string }
  /** Re-read the room's details. */
  | { kind: 'room-info'; room: string }
  /** Re-read the member list. */
  | { kind: 'members'; room: string }
  /** Someone else removed or banned us: tell us who, where and why. */
  | { kind: 'removed'; room: string; name: string; by: string; ban: boolean; reason: string | null };

export interface Folded {
  state: FoldState;
  effects: Effect[];
}

/** What the fold needs to know of the page itself. */
export interface Surroundings {
  /** The page is shown (not a background tab). */
  visible: boolean;
}

/**
 * A working copy of a state: each map is copied at most once, on its first
 * change, so a fold that touches a room and three messages copies `rooms`
 * and `msgs` once each, and the maps it did not touch stay shared.
 */
class Draft {
  readonly s: FoldState;
  readonly effects: Effect[] = [];
  private copied = new Set<keyof FoldState>();

  constructor(base: FoldState) {
    this.s = {
      me: base.me,
      rooms: base.rooms,
      msgs: base.msgs,
      threads: base.threads,
      typing: base.typing,
      reactionIndex: base.reactionIndex,
      active: base.active,
      atBottom: base.atBottom,
    };
  }

  private own<K extends 'rooms' | 'msgs' | 'threads' | 'reactionIndex'>(key: K): FoldState[K] {
    if (!this.copied.has(key)) {
      this.copied.add(key);
      (this.s[key] as Map<string, unknown>) = new Map(this.s[key] as Map<string, unknown>);
    }
    return this.s[key];
  }

  done(): Folded {
    return { state: this.s, effects: this.effects };
  }

  putMsg(msg: Msg): void {
    this.own('msgs').set(msg.id, msg);
  }

  dropMsg(id: string): void {
    if (this.s.msgs.has(id)) this.own('msgs').delete(id);
  }

  updateMsg(id: string, change: (msg: Msg) => Partial<Msg>): void {
    const msg = this.s.msgs.get(id);
    if (msg) this.putMsg({ ...msg, ...change(msg) });
  }

  putRoom(id: string, entry: RoomEntry): void {
    this.own('rooms').set(id, entry);
  }

  dropRoom(id: string): void {
    if (this.s.rooms.has(id)) this.own('rooms').delete(id);
  }

  updateRoom(id: string, change: (entry: RoomEntry) => Partial<RoomEntry>): void {
    const entry = this.s.rooms.get(id);
    if (entry) this.putRoom(id, { ...entry, ...change(entry) });
  }

  updateTimeline(id: string, change: (t: Timeline) => Partial<Timeline>): void {
    this.updateRoom(id, (entry) => ({ timeline: { ...entry.timeline, ...change(entry.timeline) } }));
  }

  updateThread(root: string, change: (t: ThreadView) => Partial<ThreadView>): void {
    const thread = this.s.threads.get(root);
    if (thread) this.own('threads').set(root, { ...thread, ...change(thread) });
  }

  indexReaction(id: string, target: string, key: string, sender: string): void {
    this.own('reactionIndex').set(id, { target, key, sender });
  }

  unindexReaction(id: string): void {
    if (this.s.reactionIndex.has(id)) this.own('reactionIndex').delete(id);
  }

  appendToTimeline(room: string, id: string): void {
    const t = this.s.rooms.get(room)?.timeline;
    // Not loaded and not loading: the first history page will include it.
    if (!t || (!t.loaded && !t.loading) || t.ids.includes(id)) return;
    this.updateTimeline(room, (t) => ({ ids: [...t.ids, id] }));
  }

  /** Puts the sent message where its local echo stands (once). */
  settleEcho(echo: Msg, real: string): void {
    if (!this.s.msgs.has(echo.id)) return;
    const swap = (ids: string[]) =>
      ids.includes(real)
        ? ids.filter((id) => id !== echo.id)
        : ids.map((id) => (id === echo.id ? real : id));
    if (echo.thread) this.updateThread(echo.thread, (t) => ({ ids: swap(t.ids) }));
    else this.updateTimeline(echo.room, (t) => ({ ids: swap(t.ids) }));
    this.dropMsg(echo.id);
  }
}

// ---- messages ---------------------------------------------------------------

export function msgFrom(event: EventJson): Msg {
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
    ...(event.hidden ? { hidden: true as const } : {}),
  };
}

/** The message with `user`'s reaction `key` added (the same one if it is there). */
export function withReaction(msg: Msg, key: string, user: string): Msg {
  const existing = msg.reactions.find((r) => r.key === key);
  if (existing?.users.includes(user)) return msg;
  const reactions = existing
    ? msg.reactions.map((r) => (r.key === key ? { key, users: [...r.users, user] } : r))
    : [...msg.reactions, { key, users: [user] }];
  return { ...msg, reactions };
}

/** The message without `user`'s reaction `key`; a key nobody holds goes. */
export function withoutReaction(msg: Msg, key: string, user: string): Msg {
  return {
    ...msg,
    reactions: msg.reactions
      .map((r) => (r.key === key ? { key, users: r.users.filter((u) => u !== user) } : r))
      .filter((r) => r.users.length > 0),
  };
}

function attachmentCount(msg: Msg): number {
  const list = msg.content.attachments;
  return Array.isArray(list) ? list.length : 0;
}

/** Our own message came back before the POST answered: the echo waiting
 *  for it, if any. */
export function echoFor(msgs: Map<string, Msg>, msg: Msg): Msg | undefined {
  for (const candidate of msgs.values()) {
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

// ---- rooms ------------------------------------------------------------------

/** A room's entry from its details, keeping what we already knew of it. */
export function entryFrom(
  info: Room,
  previous: RoomEntry | undefined,
  me: string | undefined,
): RoomEntry {
  return {
    info,
    timeline: previous?.timeline ?? newTimeline(),
    members: previous?.members ?? null,
    unread: previous?.unread ?? info.unread ?? 0,
    mentioned: previous?.mentioned ?? 0,
    last: Math.max(previous?.last ?? 0, info.last_seq ?? 0),
    // In a direct room someone else made, the other person is its creator.
    peer: previous?.peer ?? (info.kind === 'direct' && info.creator !== me ? info.creator : null),
    // Only the room list carries these; a room's own details keep what we knew.
    firstUnread: info.first_unread !== undefined ? info.first_unread : (previous?.firstUnread ?? null),
    preview:
      info.last_message !== undefined
        ? info.last_message && {
            id: info.last_message.event_id,
            sender: info.last_message.sender,
            body: info.last_message.body,
            attachments: info.last_message.n_attachments,
          }
        : (previous?.preview ?? null),
  };
}

// ---- folds ------------------------------------------------------------------

/** A history or thread page: its events carry authoritative aggregates.
 *  Returns the state and the page's ids, in order. */
export function foldPage(
  base: FoldState,
  events: EventJson[],
): { state: FoldState; ids: string[] } {
  const d = new Draft(base);
  const ids = events.map((event) => {
    const msg = msgFrom(event);
    const known = d.s.msgs.get(msg.id);
    // Thread sizes only grow; a live reply may have landed after the page
    // was read.
    if (known) msg.threadCount = Math.max(known.threadCount, msg.threadCount);
    d.putMsg(msg);
    return msg.id;
  });
  return { state: d.s, ids };
}

/** A live event from the WebSocket, with its stream seq. */
export function foldLive(
  base: FoldState,
  event: EventJson,
  seq: number,
  around: Surroundings,
): Folded {
  const d = new Draft(base);
  const c = event.content;
  switch (event.type) {
    case 'message':
      liveMessage(d, event, seq, around);
      break;
    case 'reaction': {
      const target = String(c.target);
      const key = String(c.key);
      d.indexReaction(event.event_id, target, key, event.sender);
      d.updateMsg(target, (msg) => withReaction(msg, key, event.sender));
      break;
    }
    case 'edit': {
      const target = String(c.target);
      const original = d.s.msgs.get(target);
      // Only the sender edits a message (the node's auth rules say so too;
      // this keeps a refused edit from a peer off the screen).
      const previewed = d.s.rooms.get(event.room_id)?.preview;
      if (previewed?.id === target && previewed.sender === event.sender && previewed.body !== null) {
        d.updateRoom(event.room_id, () => ({ preview: { ...previewed, body: String(c.body ?? '') } }));
      }
      if (!original || original.sender !== event.sender || original.redacted) break;
      d.updateMsg(target, () => ({
        body: String(c.body ?? ''),
        mentions: (c.mentions as MentionsJson) ?? EMPTY_MENTIONS,
        edited: true,
      }));
      break;
    }
    case 'redaction': {
      const target = String(c.target);
      const reaction = d.s.reactionIndex.get(target);
      const previewed = d.s.rooms.get(event.room_id)?.preview;
      if (previewed?.id === target) d.updateRoom(event.room_id, () => ({ preview: { ...previewed, body: null } }));
      if (reaction) {
        d.unindexReaction(target);
        d.updateMsg(reaction.target, (msg) => withoutReaction(msg, reaction.key, reaction.sender));
      } else if (d.s.msgs.has(target)) {
        d.updateMsg(target, () => ({ redacted: true, body: '', reactions: [] }));
      } else {
        // A reaction we only know as a count from a history page: reread
        // the loaded part of the room to learn which one went.
        d.effects.push({ kind: 'aggregates', room: event.room_id });
      }
      break;
    }
    default:
      liveState(d, event, seq);
  }
  return d.done();
}

function liveMessage(d: Draft, event: EventJson, seq: number, around: Surroundings): void {
  const room = event.room_id;
  const me = d.s.me?.user_id;
  if (d.s.msgs.has(event.event_id)) return;
  const msg = msgFrom(event);
  d.putMsg(msg);
  const echo = msg.sender === me ? echoFor(d.s.msgs, msg) : undefined;
  if (echo) {
    if (msg.thread) d.updateMsg(msg.thread, (root) => ({ threadCount: root.threadCount + 1 }));
    d.settleEcho(echo, msg.id);
  } else if (msg.thread) {
    d.updateThread(msg.thread, (t) => ({
      ids: t.ids.includes(msg.id) ? t.ids : [...t.ids, msg.id],
    }));
    d.updateMsg(msg.thread, (root) => ({ threadCount: root.threadCount + 1 }));
  } else {
    d.appendToTimeline(room, msg.id);
  }
  if (d.s.typing.get(room)?.includes(msg.sender)) {
    d.effects.push({ kind: 'typing-stopped', room, user: msg.sender });
  }
  const entry = d.s.rooms.get(room);
  if (!entry) return;
  const fromOther = msg.sender !== me;
  const reading = d.s.active === room && d.s.atBottom && around.visible;
  const mentionsMe = !!me && (msg.mentions.users.includes(me) || msg.mentions.room);
  d.putRoom(room, {
    ...entry,
    last: Math.max(entry.last, seq),
    unread: fromOther && !reading && !msg.thread ? entry.unread + 1 : entry.unread,
    mentioned: fromOther && !reading && mentionsMe ? entry.mentioned + 1 : entry.mentioned,
    firstUnread:
      fromOther && !reading && !msg.thread && !entry.firstUnread ? msg.id : entry.firstUnread,
    preview: msg.thread
      ? entry.preview
      : { id: msg.id, sender: msg.sender, body: msg.body, attachments: attachmentCount(msg) },
  });
  if (reading && !msg.thread) d.effects.push({ kind: 'read', room });
}

function liveState(d: Draft, event: EventJson, seq: number): void {
  const room = event.room_id;
  const me = d.s.me?.user_id;
  const c = event.content;
  if (!d.s.msgs.has(event.event_id)) {
    d.putMsg(msgFrom(event));
    d.appendToTimeline(room, event.event_id);
  }
  if (event.type === 'member' && c.target === me) {
    const membership = c.membership as string;
    if (membership === 'leave' || membership === 'ban') {
      const entry = d.s.rooms.get(room);
      // Not our own leave, nor a declined invitation: someone acted on us.
      if (entry && event.sender !== me) {
        d.effects.push({
          kind: 'removed',
          room,
          name: entry.info.name ?? (entry.peer ?? 'a direct message'),
          by: event.sender,
          ban: membership === 'ban',
          reason: typeof c.reason === 'string' && c.reason ? c.reason : null,
        });
      }
      d.dropRoom(room);
      return;
    }
  }
  const rolesChange = event.type === 'role' || event.type === 'member_roles' || event.type === 'timeout';
  if ((event.type === 'member' || rolesChange) && d.s.rooms.get(room)?.members) {
    d.effects.push({ kind: 'members', room });
  }
  d.updateRoom(room, (entry) => ({ last: Math.max(entry.last, seq) }));
  d.effects.push({ kind: 'room-info', room });
}

/** Resolution changed its mind about earlier events: drop what it now
 *  refuses, and re-read the room, so what it accepts again, the
 *  aggregates and the state take their places. */
export function foldAcceptance(
  base: FoldState,
  room: string,
  refused: string[],
  accepted: EventJson[],
): Folded {
  const d = new Draft(base);
  const gone = new Set(refused);
  d.updateTimeline(room, (t) => ({ ids: t.ids.filter((id) => !gone.has(id)) }));
  for (const id of refused) {
    const root = d.s.msgs.get(id)?.thread;
    if (!root) continue;
    d.updateThread(root, (t) => ({ ids: t.ids.filter((x) => x !== id) }));
    // Counted when it arrived; a re-read only ever raises the count.
    d.updateMsg(root, (msg) => ({ threadCount: Math.max(0, msg.threadCount - 1) }));
  }
  const entry = d.s.rooms.get(room);
  if (accepted.length > 0 && entry?.timeline.loaded) {
    // Where they go in the canonical order is the node's to say: read the
    // newest page afresh (older pages come back as the reader scrolls).
    d.updateTimeline(room, newTimeline);
    d.effects.push({ kind: 'reload', room });
  }
  d.effects.push({ kind: 'aggregates', room }, { kind: 'room-info', room });
  if (entry?.members) d.effects.push({ kind: 'members', room });
  return d.done();
}

/** A message we are sending shows at once, at the end of its timeline or
 *  thread, as a local echo. */
export function foldEcho(base: FoldState, echo: Msg): FoldState {
  const d = new Draft(base);
  d.putMsg(echo);
  if (echo.thread) d.updateThread(echo.thread, (t) => ({ ids: [...t.ids, echo.id] }));
  else d.updateTimeline(echo.room, (t) => ({ ids: [...t.ids, echo.id] }));
  return d.s;
}

/** The node stored the message an echo stands for: the stored event takes
 *  the echo's place (unless the WebSocket brought it first). */
export function foldSent(base: FoldState, echo: Msg, event: EventJson): FoldState {
  const d = new Draft(base);
  if (!d.s.msgs.has(event.event_id)) {
    d.putMsg(msgFrom(event));
    if (echo.thread) d.updateMsg(echo.thread, (root) => ({ threadCount: root.threadCount + 1 }));
  }
  d.settleEcho(echo, event.event_id);
  return d.s;
}

/** A local echo given up: it leaves its timeline or thread. */
export function foldDiscard(base: FoldState, localId: string): FoldState {
  const d = new Draft(base);
  const echo = d.s.msgs.get(localId);
  if (!echo) return d.s;
  d.dropMsg(localId);
  const without = (ids: string[]) => ids.filter((id) => id !== localId);
  if (echo.thread) d.updateThread(echo.thread, (t) => ({ ids: without(t.ids) }));
  else d.updateTimeline(echo.room, (t) => ({ ids: without(t.ids) }));
  return d.s;
}
