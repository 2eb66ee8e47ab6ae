// Notifications: the bell with its unread badge, and the list (unread
// first), each opening its room and marking itself read.

import { useEffect, useState } from 'preact/hooks';
import type { NotificationJson } from '../api/types';
import { navigate, roomPath } from '../router';
import {
  disablePush,
  enablePush,
  markAllNotificationsRead,
  markNotificationRead,
  nameOf,
  notes,
  pushEnabled,
  pushSupported,
  roomName,
  store,
  useStore,
} from '../store';
import { Dialog, formatFull, Icon } from './common';

const REASONS: Record<NotificationJson['reason'], string> = {
  invite: 'invited you',
  direct: 'messaged you',
  mention: 'mentioned you',
  role_mention: 'mentioned your role',
  reply: 'replied to you',
  thread: 'wrote in your thread',
  room: 'mentioned @room',
  keyword: 'used a keyword',
  message: 'wrote',
};

/** The bell in the sidebar's head: its label says how many are unread. */
export function NotificationBell({ onOpen }: { onOpen: () => void }) {
  const unread = useStore(() => notes.value.unread);
  const label = unread ? `Notifications, ${unread} unread` : 'Notifications';
  return (
    <button type="button" class="icon-button bell" aria-label={label} title={label} onClick={onOpen}>
      <Icon name="bell" />
      {unread > 0 && (
        <span class="badge mention" data-testid="notification-badge" aria-hidden="true">
          {unread > 99 ? '99+' : unread}
        </span>
      )}
    </button>
  );
}

export function NotificationsDialog({ onClose }: { onClose: () => void }) {
  const state = useStore(() => notes.value);
  useStore(() => store.names);
  useStore(() => store.rooms);
  const open = (n: NotificationJson) => {
    void markNotificationRead(n.id).catch(() => {});
    onClose();
    navigate(roomPath(n.room_id));
  };
  return (
    <Dialog title="Notifications" onClose={onClose}>
      <div class="row">
        <button
          type="button"
          disabled={state.unread === 0}
          onClick={() => void markAllNotificationsRead().catch(() => {})}
        >
          Mark all read
        </button>
        <PushToggle />
      </div>
      {state.list.length === 0 ? (
        <p class="muted">{state.loaded ? 'Nothing yet.' : 'Loading…'}</p>
      ) : (
        <ul class="notifications" aria-label="Notifications">
          {state.list.map((n) => {
            const room = store.rooms.get(n.room_id);
            return (
              <li key={n.id}>
                <button
                  type="button"
                  class={`notification${n.unread ? ' unread' : ''}`}
                  data-id={n.event_id}
                  onClick={() => open(n)}
                >
                  <span class="who">
                    <strong>{nameOf(n.sender)}</strong> {REASONS[n.reason] ?? n.reason}
                    {room ? ` in ${roomName(room)}` : ''}
                  </span>
                  {n.excerpt && <span class="excerpt">{n.excerpt}</span>}
                  <time class="muted" dateTime={new Date(n.origin_ts).toISOString()}>
                    {formatFull(n.origin_ts)}
                  </time>
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </Dialog>
  );
}

/** The setting that turns Web Push on in this browser. */
function PushToggle() {
  const [on, setOn] = useState<boolean | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void pushEnabled().then(setOn, () => setOn(false));
  }, []);
  if (!pushSupported()) return null;
  const toggle = async () => {
    setError(null);
    try {
      if (on) await disablePush();
      else await enablePush();
      setOn(!on);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <>
      <label class="row">
        <input type="checkbox" checked={!!on} disabled={on === null} onChange={() => void toggle()} />
        Push notifications in this browser
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
