// JSON shapes of the node's HTTP API and WebSocket, as rendered by
// node/src/api/render.rs (the code is the reference; docs/spec/api.md
// describes it).

export type Membership = 'join' | 'invite' | 'leave' | 'knock' | 'ban';
export type JoinRule = 'public' | 'invite' | 'knock';
export type HistoryVisibility = 'world_readable' | 'shared' | 'invited' | 'joined';

export interface Tokens {
  user_id: string;
  session_id: string;
  access_token: string;
  token_type: string;
  /** Seconds. */
  expires_in: number;
  refresh_token: string;
  is_admin: boolean;
  /** Register and login only: proof of this sign-in, sent with the next
   *  login to the same account so that throttling knows this browser. */
  device_token?: string;
}

export interface Me {
  user_id: string;
  username: string;
  node_id: string;
  is_admin: boolean;
  session_id: string;
}

export interface Room {
  room_id: string;
  kind: 'room' | 'space' | 'direct' | null;
  name: string | null;
  topic: string | null;
  creator: string | null;
  join_rule: JoinRule;
  history_visibility: HistoryVisibility;
  encrypted: boolean;
  slowmode_seconds: number;
  pins: string[];
  n_members: number;
  membership: Membership | null;
  permissions: string[];
  rank: number;
  is_owner: boolean;
  unread: number | null;
  n_events: number;
  /** Only in GET /rooms: stream seq of the room's newest message. */
  last_seq?: number;
  /** Only in GET /rooms: the first unread timeline message. */
  first_unread?: string | null;
  /** Only in GET /rooms: the last timeline message, for the room list. */
  last_message?: MessagePreview | null;
}

export interface MessagePreview {
  event_id: string;
  sender: string;
  origin_ts: number;
  /** One line, cut; null when deleted. */
  body: string | null;
  n_attachments: number;
}

/** POST /rooms/{id}/invite-links (node/src/api/links.rs). */
export interface InviteLink {
  code: string;
  /** `/join/<code>`, relative to the node's web address. */
  path: string;
  room_id: string;
  uses_left: number;
  expires_at_ms: number | null;
}

/** GET /invite-links/{code}: what a link leads to. */
export interface InvitePreview {
  room_id: string;
  name: string | null;
  topic: string | null;
  kind: Room['kind'];
  n_members: number;
  inviter: string;
  uses_left: number;
  expires_at_ms: number | null;
}

export interface MentionsJson {
  users: string[];
  roles: number[];
  room: boolean;
}

export interface ReactionJson {
  key: string;
  count: number;
  me: boolean;
  users: string[];
}

/** An event. History and thread pages add the aggregate fields. */
export interface EventJson {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  origin_ts: number;
  depth: number;
  // Content differs per type; read through the helpers in store/.
  content: Record<string, unknown>;
  redacted?: boolean;
  edited?: { edit_id: string; body: string } | null;
  reactions?: ReactionJson[];
  thread_count?: number;
  /** Only for moderators: hidden from the room's members on this node. */
  hidden?: true;
}

export interface HistoryPage {
  events: EventJson[];
  has_more: boolean;
}

export interface ThreadPage {
  root: EventJson;
  replies: EventJson[];
}

export interface MemberJson {
  user_id: string;
  membership: Membership;
  roles: number[];
  rank: number;
  is_owner: boolean;
  timeout_until_ms: number | null;
  display_name: string | null;
  /** Set when both the member and we are joined. */
  presence: Presence | null;
}

export type Presence = 'online' | 'away' | 'offline';

export interface RoleJson {
  role: number;
  name: string;
  rank: number;
  permissions: string[];
  color: number | null;
}

export interface MembersPage {
  members: MemberJson[];
  roles: RoleJson[];
}

export interface Profile {
  display_name: string | null;
  avatar: string | null;
  bio: string | null;
}

/** Frames the node sends on /ws. */
export type ServerFrame =
  | { type: 'ready'; user_id: string; seq: number }
  | { type: 'event'; seq: number; event: EventJson }
  | { type: 'acceptance'; seq: number; room_id: string; refused: string[]; accepted: EventJson[] }
  | { type: 'caught_up'; seq: number }
  | { type: 'presence'; user_id: string; state: Presence }
  | { type: 'typing'; room_id: string; user_id: string; typing: boolean }
  | { type: 'notification'; notification: NotificationJson }
  | { type: 'pong' };

/** One of `GET /api/v1/notifications` (api.md §Notifications). */
export interface NotificationJson {
  /** The node's seq of the event. */
  id: number;
  room_id: string;
  event_id: string;
  sender: string;
  reason:
    | 'invite'
    | 'direct'
    | 'mention'
    | 'role_mention'
    | 'reply'
    | 'thread'
    | 'room'
    | 'keyword'
    | 'message';
  origin_ts: number;
  excerpt: string;
  unread: boolean;
}

export interface NotificationPage {
  notifications: NotificationJson[];
  unread: number;
  next_cursor: string | null;
}

/** One hit of `GET /api/v1/search`. */
export interface SearchHit {
  event_id: string;
  room_id: string;
  sender: string;
  origin_ts: number;
  body: string;
  /** [start, end) ranges of `body` in code points. */
  highlights: [number, number][];
}

export interface SearchPage {
  results: SearchHit[];
  next_cursor: string | null;
  estimated_total: number;
}

/** A stored file (`POST /api/v1/media`). */
export interface MediaUpload {
  hash: string;
  size: number;
  mime: string;
  name: string;
  width: number | null;
  height: number | null;
  thumbnail: string | null;
}

/** An attachment as a message carries it. */
export interface AttachmentJson {
  hash: string;
  size: number;
  mime: string;
  name: string;
  width: number | null;
  height: number | null;
  node: string;
}
