// Client state: rooms, timelines, threads and messages, and the actions
// that change them. One module-level store (`core.ts`) of immutable
// values, read by components with `useStore(select)`; split by seam:
//
// - `model.ts`    the types, and a fresh store
// - `fold.ts`     the pure fold of the node's events into the model
// - `core.ts`     the store, subscriptions, and the reset each part registers with
// - `people.ts`   names, presence, typing
// - `rooms.ts`    the room list, history, members, read markers, room actions
// - `messages.ts` sending (local echoes), edits, deletions, reactions, threads
// - `media.ts`    uploads and authorized downloads of attachments
// - `outbox.ts`   messages not yet acknowledged: kept across reloads, sent in order once
// - `session.ts`  boot, the live connection, reset
// - `search.ts`   full-text search, and revealing a hit in its timeline
// - `profiles.ts` profiles (name, avatar, bio): read lazily, ours saved
// - `overlay.ts`  the app's own dialogs: profile card, profile, questions
// - `notifications.ts` the notification list and unread count
// - `push.ts`     Web Push in this browser: the service worker and the subscription
//
// Components import from here only.

export { store, useStore } from './core';
export type { Msg, Overlay, Reaction, RoomEntry, Store, ThreadView, Timeline } from './model';
export { localpart } from './model';
export { can, nameOf, noteTyping, roomName, toUserId } from './people';
export {
  createInviteLink,
  createRoom,
  directory,
  invite,
  joinRoom,
  joinWithLink,
  leaveRoom,
  loadLatest,
  loadMembers,
  loadOlder,
  markRead,
  moderate,
  openDm,
  refreshRoom,
  setActive,
  setAtBottom,
  setMemberRoles,
  updateRoomSettings,
} from './rooms';
export {
  discard,
  edit,
  mentionsIn,
  openThread,
  markRevealed,
  remove,
  report,
  retry,
  send,
  toggleReaction,
} from './messages';
export { boot, reset } from './session';
export { clearOutbox, queuedCount } from './outbox';
export { avatarHash, loadProfile, saveProfile } from './profiles';
export { ask, closeOverlay, openOverlay } from './overlay';
export { reveal, search, type SearchOptions } from './search';
export {
  addNotification,
  loadNotifications,
  markAllNotificationsRead,
  markNotificationRead,
  notes,
} from './notifications';
export { disablePush, enablePush, pushEnabled, pushSupported } from './push';
export { attachmentsOf, blobUrl, download, formatSize, isImage, mediaPath, thumbnailPath, uploadFile } from './media';
