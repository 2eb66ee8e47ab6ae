// The client's model: what the store holds, as plain immutable values.
//
// Nothing here does I/O or keeps state; `fold.ts` computes new values of
// these types from the node's events, the other modules of this folder
// keep them and talk to the node.

import type { LiveStatus } from '../api/live';
import type { Me, MembersPage, MentionsJson, Presence, Profile, Room } from '../api/types';

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
  /** Local echo of a message being sent; `queued` waits in the outbox
   *  for the node to be reachable. */
  pending?: 'sending' | 'queued' | 'failed';
  error?: string;
  /** The client transaction id a local echo is sent with (`outbox.ts`). */
  txn?: string;
  /** Shown to us as a moderator: hidden from the room's members here. */
  hidden?: true;
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
  /** The first message not read yet (not ours, not in a thread). */
  firstUnread: string | null;
  /** The last message, for the room list. */
  preview: Preview | null;
}

export interface Preview {
  id: string;
  sender: string;
  /** Null when deleted. */
  body: string | null;
  attachments: number;
}

/** A reaction event we saw live: what to undo when it is redacted. */
export interface ReactionRef {
  target: string;
  key: string;
  sender: string;
}

/** The part of the store that events change: the input and output of
 *  the fold (`fold.ts`). */
export interface FoldState {
  me: Me | null;
  rooms: Map<string, RoomEntry>;
  msgs: Map<string, Msg>;
  threads: Map<string, ThreadView>;
  /** Who is typing, by room: user ids, oldest first. */
  typing: Map<string, string[]>;
  /** Reaction events by id, to undo one when it is redacted. */
  reactionIndex: Map<string, ReactionRef>;
  active: string | null;
  /** The active timeline is scrolled to its newest message. */
  atBottom: boolean;
}

export interface Store extends FoldState {
  booted: boolean;
  bootError: string | null;
  names: Map<string, string>;
  /** Presence of people who share a room with us; absent means offline. */
  presence: Map<string, Presence>;
  status: LiveStatus;
  /** Where the room in view had its first unread message when it was
   *  opened: the "New messages" divider. */
  divider: { room: string; id: string } | null;
  /** Profiles read from the node this session (`profiles.ts`). */
  profiles: Map<string, Profile>;
  /** The app's own overlays: a profile card, our profile, a question. */
  overlay: Overlay | null;
}

export type Overlay =
  | { kind: 'card'; user: string; room: string | null }
  | { kind: 'profile' }
  | { kind: 'notice'; title: string; text: string }
  | {
      kind: 'confirm';
      title: string;
      text: string;
      action: string;
      danger?: boolean;
      resolve: (yes: boolean) => void;
    };

/** A store that knows nothing: at start and after `reset()`. */
export function freshStore(): Store {
  return {
    me: null,
    booted: false,
    bootError: null,
    rooms: new Map(),
    msgs: new Map(),
    threads: new Map(),
    names: new Map(),
    presence: new Map(),
    typing: new Map(),
    reactionIndex: new Map(),
    status: 'connecting',
    active: null,
    atBottom: true,
    divider: null,
    profiles: new Map(),
    overlay: null,
  };
}

export const EMPTY_MENTIONS: MentionsJson = { users: [], roles: [], room: false };

export function newTimeline(): Timeline {
  return { ids: [], loaded: false, loading: false, hasMore: true, error: null };
}

export function localpart(userId: string): string {
  const at = userId.startsWith('@') ? 1 : 0;
  const colon = userId.indexOf(':');
  return userId.slice(at, colon === -1 ? undefined : colon);
}

export function errorText(error: unknown): string {
  // A send the room's moderation policy blocked: say so, and why, in
  // words (the node's message ends with the labels it reached).
  if (error instanceof Error && (error as { code?: string }).code === 'moderation_blocked') {
    const labels = (error.message.split(': ').pop() ?? '')
      .split(', ')
      .map((l) => BLOCK_LABELS[l.trim()] ?? l.trim())
      .filter(Boolean);
    return `blocked by this room’s moderation${labels.length ? ` (${labels.join(', ')})` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}

const BLOCK_LABELS: Record<string, string> = {
  insult: 'insult',
  threat: 'threat',
  self_harm: 'self-harm',
  sexual: 'sexual content',
  hate: 'hate',
};
