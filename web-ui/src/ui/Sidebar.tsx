// The list of the user's rooms and direct messages, with unread counts.

import { currentSession, logout } from '../api/client';
import { shortcode } from '../emoji';
import { plainPreview } from '../markdown';
import { linkClick, roomPath } from '../router';
import { ask, clearOutbox, nameOf, openOverlay, queuedCount, roomName, store, useStore, type RoomEntry } from '../store';
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
          {currentSession()?.is_admin && (
            <button
              type="button"
              class="icon-button"
              aria-label="Admin console"
              title="Admin console"
              onClick={() => props.openDialog('admin')}
            >
              <Icon name="shield" />
            </button>
          )}
          <button
            type="button"
            class="icon-button"
            aria-label="Sign-in and security"
            title="Sign-in and security"
            onClick={() => props.openDialog('security')}
          >
            <Icon name="lock" />
          </button>
          <button
            type="button"
            class="icon-button"
            aria-label="Log out"
            title="Log out"
            onClick={() => void confirmLogout()}
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
          <button
            type="button"
            class="whoami person-button"
            aria-label="Your profile"
            title="Your profile"
            onClick={() => openOverlay({ kind: 'profile' })}
          >
            <Avatar user={me.user_id} size={28} />
            <span class="whoami-name" title={me.user_id}>
              {nameOf(me.user_id)}
            </span>
          </button>
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
        <span class="room-text">
          <span class="room-name">{name}</span>
          {!invited && entry.preview && <span class="room-preview">{previewLine(entry)}</span>}
        </span>
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

/** "Name: text" of a room's last message, on one line. */
function previewLine(entry: RoomEntry): string {
  const p = entry.preview!;
  const who = p.sender === store.me?.user_id ? 'You' : nameOf(p.sender);
  const text =
    p.body === null
      ? 'Message deleted'
      : p.body.trim()
        ? previewText(p.body)
        : p.attachments
          ? `📎 ${p.attachments === 1 ? 'a file' : `${p.attachments} files`}`
          : '';
  return entry.info.kind === 'direct' && p.sender !== store.me?.user_id ? text : `${who}: ${text}`;
}

async function confirmLogout(): Promise<void> {
  const waiting = queuedCount();
  const yes = await ask({
    title: 'Log out',
    text: waiting
      ? `${waiting} unsent ${waiting === 1 ? 'message' : 'messages'} will be lost. Log out of Spaces in this browser?`
      : 'Log out of Spaces in this browser?',
    action: 'Log out',
    danger: waiting > 0,
  });
  if (!yes) return;
  clearOutbox();
  await logout();
}

/** One line of a message: markdown marks dropped, spoilers hidden,
 *  :shortcodes: as their emoji. */
function previewText(body: string): string {
  return plainPreview(
    body
      .replace(/\|\|[^|]+\|\|/g, '▮▮▮')
      .replace(/^#{1,3} +/gm, '')
      .replace(/:([a-z0-9_+&.-]{1,32}):/g, (all, name: string) => shortcode(name) ?? all),
    140,
  );
}
