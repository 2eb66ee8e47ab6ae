// The list of the user's rooms and direct messages, with unread counts.

import { logout } from '../api/client';
import { linkClick, roomPath } from '../router';
import { nameOf, roomName, store, useStore, type RoomEntry } from '../store';
import type { DialogKind } from './App';
import { Avatar, Icon } from './common';
import { NotificationBell } from './Notifications';
import { ThemeToggle } from './theme';

function sorted(rooms: Map<string, RoomEntry>): RoomEntry[] {
  return [...rooms.values()].sort((a, b) => b.last - a.last);
}

export function Sidebar(props: { active: string | null; openDialog: (d: DialogKind) => void }) {
  const rooms = useStore(() => store.rooms);
  const me = useStore(() => store.me);
  const status = useStore(() => store.status);
  useStore(() => store.names);
  const all = sorted(rooms);
  const invites = all.filter((r) => r.info.membership === 'invite');
  const joined = all.filter((r) => r.info.membership !== 'invite');
  const groups = joined.filter((r) => r.info.kind !== 'direct');
  const direct = joined.filter((r) => r.info.kind === 'direct');

  return (
    <nav class="sidebar" aria-label="Rooms and direct messages">
      <header class="sidebar-head">
        <span class="brand">Spaces</span>
        <div class="row">
          <NotificationBell onOpen={() => props.openDialog('notifications')} />
          <ThemeToggle />
          <button
            type="button"
            class="icon-button"
            aria-label="Log out"
            title="Log out"
            onClick={() => void logout()}
          >
            <Icon name="logout" />
          </button>
        </div>
      </header>
      <div class="sidebar-actions">
        <button type="button" onClick={() => props.openDialog('create')}>
          <Icon name="plus" /> New room
        </button>
        <button type="button" onClick={() => props.openDialog('directory')}>
          <Icon name="hash" /> Browse
        </button>
        <button
          type="button"
          class="sidebar-search"
          aria-keyshortcuts="Control+K /"
          title="Search messages (Ctrl+K or /)"
          onClick={() => props.openDialog('search')}
        >
          <Icon name="search" /> Search <kbd aria-hidden="true">Ctrl K</kbd>
        </button>
      </div>
      <div class="sidebar-scroll">
        {invites.length > 0 && (
          <RoomGroup title="Invites" rooms={invites} active={props.active} />
        )}
        <RoomGroup title="Rooms" rooms={groups} active={props.active} empty="No rooms yet." />
        <RoomGroup
          title="Direct messages"
          rooms={direct}
          active={props.active}
          empty="No conversations yet."
          action={
            <button
              type="button"
              class="icon-button small"
              aria-label="New direct message"
              title="New direct message"
              onClick={() => props.openDialog('dm')}
            >
              <Icon name="plus" size={16} />
            </button>
          }
        />
      </div>
      <footer class="sidebar-foot">
        {me && (
          <span class="whoami">
            <Avatar user={me.user_id} size={28} />
            <span class="whoami-name" title={me.user_id}>
              {nameOf(me.user_id)}
            </span>
          </span>
        )}
        <span class={`status ${status}`} role="status">
          <span class="dot" aria-hidden="true" />
          {status === 'live' ? 'Connected' : status === 'connecting' ? 'Connecting…' : 'Offline — reconnecting'}
        </span>
      </footer>
    </nav>
  );
}

function RoomGroup(props: {
  title: string;
  rooms: RoomEntry[];
  active: string | null;
  empty?: string;
  action?: preact.ComponentChildren;
}) {
  const id = `group-${props.title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <section class="room-group" aria-labelledby={id}>
      <div class="group-head">
        <h2 id={id}>{props.title}</h2>
        {props.action}
      </div>
      {props.rooms.length === 0 && props.empty ? (
        <p class="muted small">{props.empty}</p>
      ) : (
        <ul role="list">
          {props.rooms.map((entry) => (
            <RoomItem key={entry.info.room_id} entry={entry} active={entry.info.room_id === props.active} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RoomItem({ entry, active }: { entry: RoomEntry; active: boolean }) {
  const name = roomName(entry);
  const invited = entry.info.membership === 'invite';
  const unread = entry.unread;
  const label =
    name +
    (invited ? ', invitation' : '') +
    (unread ? `, ${unread} unread` : '') +
    (entry.mentioned ? ', mentioned' : '');
  return (
    <li>
      <a
        href={roomPath(entry.info.room_id)}
        class={`room-item${active ? ' active' : ''}${unread ? ' unread' : ''}`}
        aria-current={active ? 'page' : undefined}
        aria-label={label}
        onClick={linkClick}
      >
        {entry.info.kind === 'direct' && entry.peer ? (
          <Avatar user={entry.peer} size={22} />
        ) : (
          <span class="room-icon" aria-hidden="true">
            <Icon name={entry.info.join_rule === 'public' ? 'hash' : 'lock'} size={16} />
          </span>
        )}
        <span class="room-name">{name}</span>
        {invited ? (
          <span class="badge invite" aria-hidden="true">
            new
          </span>
        ) : unread > 0 ? (
          <span class={`badge${entry.mentioned ? ' mention' : ''}`} aria-hidden="true">
            {unread > 99 ? '99+' : unread}
          </span>
        ) : null}
      </a>
    </li>
  );
}
