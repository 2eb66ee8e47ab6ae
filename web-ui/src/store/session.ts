// The signed-in session's life: boot (who we are, our rooms), the live
// connection whose events are folded into the store, and the reset that
// forgets it all on logout or when another user logs in.

import { api, ApiError, currentSession, logout } from '../api/client';
import { Live } from '../api/live';
import type { EventJson, Me, Room } from '../api/types';
import { changed, commit, owned, resetAll, store, subscribe } from './core';
import { foldAcceptance, foldLive, type Folded } from './fold';
import { errorText } from './model';
import { addNotification, loadNotifications } from './notifications';
import { flushOutbox, restoreOutbox } from './outbox';
import { openOverlay } from './overlay';
import { clearPresence, loadProfileName, nameOf, roomName, setPresence, setTyping } from './people';
import {
  loadLatest,
  loadMembers,
  openRoom,
  scheduleAggregates,
  scheduleMembers,
  scheduleRead,
  scheduleRoomInfo,
  setRooms,
} from './rooms';

/** The WebSocket of this session; stopped on reset. */
const live = owned<Live | null>(
  () => null,
  (old) => old?.stop(),
);

/** Takes a fold's result, then does what it asks for. */
function apply({ state, effects }: Folded): void {
  commit(state);
  for (const effect of effects) {
    const room = effect.room;
    switch (effect.kind) {
      case 'read':
        scheduleRead(room);
        break;
      case 'typing-stopped':
        setTyping(room, effect.user, false);
        break;
      case 'reload':
        void loadLatest(room);
        break;
      case 'aggregates':
        scheduleAggregates(room);
        break;
      case 'room-info':
        scheduleRoomInfo(room);
        break;
      case 'members':
        scheduleMembers(room);
        break;
      case 'removed': {
        const by = nameOf(effect.by);
        openOverlay({
          kind: 'notice',
          title: effect.ban ? 'You were banned' : 'You were removed',
          text:
            `${by} ${effect.ban ? 'banned you from' : 'removed you from'} ${effect.name}` +
            (effect.reason ? `: “${effect.reason}”` : '.'),
        });
        break;
      }
    }
  }
}

function ingestLive(event: EventJson, seq: number): void {
  apply(foldLive(store, event, seq, { visible: document.visibilityState === 'visible' }));
}

function ingestAcceptance(room: string, refused: string[], accepted: EventJson[]): void {
  apply(foldAcceptance(store, room, refused, accepted));
}

export async function boot(): Promise<void> {
  store.bootError = null;
  changed();
  try {
    const [me, rooms] = await Promise.all([
      api<Me>('GET', '/api/v1/me'),
      api<Room[]>('GET', '/api/v1/rooms'),
    ]);
    store.me = me;
    setRooms(rooms);
    store.booted = true;
    changed();
    // Opened at a room's address: its timeline can load now.
    if (store.active) openRoom(store.active);
    restoreOutbox();
    for (const room of rooms) if (room.kind === 'direct') void loadMembers(room.room_id);
    void loadProfileName(me.user_id);
    // Everything up to the newest message of our rooms is in what we just
    // read; the node replays the rest (and more, which we recognise).
    const since = rooms.reduce((max, room) => Math.max(max, room.last_seq ?? 0), 0);
    live.value?.stop();
    live.value = new Live(since, {
      event: ingestLive,
      acceptance: ingestAcceptance,
      presence(user, state) {
        setPresence([[user, state]]);
      },
      presenceReset: clearPresence,
      typing: setTyping,
      notification: addNotification,
      status(status) {
        store.status = status;
        changed();
        if (status === 'live') void flushOutbox();
      },
      synced() {
        // Rooms we were invited to or joined while away came as member
        // events; room details are re-read by then. Notification frames
        // are not replayed: the list is read again.
        void loadNotifications().catch(() => {});
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

/** Forgets everything: on logout or when another user logs in. Every part
 *  of the client state registered its own reset (`owned` in core.ts). */
export function reset(): void {
  resetAll();
}

// The tab's title: the unread total and the room in view.
subscribe(() => {
  let total = 0;
  for (const entry of store.rooms.values()) total += entry.unread;
  const room = store.active ? store.rooms.get(store.active) : undefined;
  const name = room ? roomName(room) : 'Spaces';
  document.title = (total ? `(${total > 99 ? '99+' : total}) ` : '') + name;
});
