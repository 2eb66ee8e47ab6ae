// Modal dialogs: create a room, browse the directory, start a DM, invite.

import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import type { InviteLink, Room } from '../api/types';
import { fullUrl, joinLink, navigate, roomPath } from '../router';
import {
  can,
  createInviteLink,
  createRoom,
  directory,
  invite,
  joinRoom,
  openDm,
  roomName,
  store,
  toUserId,
  useStore,
} from '../store';
import { Dialog, FieldError, formatFull, Icon, value } from './common';
import { UserResults } from './Dm';

function message(error: unknown): string {
  if (error instanceof ApiError && error.code === 'unknown_user') return 'No such user on this node.';
  return error instanceof Error ? error.message : String(error);
}

export function CreateRoomDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const [visibility, setVisibility] = useState<'public' | 'private'>('private');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const room = await createRoom({ name: name.trim(), topic: topic.trim(), visibility });
      onClose();
      navigate(roomPath(room));
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title="Create a room" onClose={onClose}>
      <form onSubmit={submit} class="stack">
        <label>
          Name
          <input
            name="name"
            required
            maxLength={100}
            autoFocus
            value={name}
            onInput={(e) => setName(value(e))}
          />
        </label>
        <label>
          Topic <span class="muted">(optional)</span>
          <input name="topic" maxLength={300} value={topic} onInput={(e) => setTopic(value(e))} />
        </label>
        <fieldset>
          <legend>Who can join</legend>
          <label class="choice">
            <input
              type="radio"
              name="visibility"
              value="private"
              checked={visibility === 'private'}
              onChange={() => setVisibility('private')}
            />
            <span>
              <strong>Private</strong>
              <span class="muted"> — only people you invite</span>
            </span>
          </label>
          <label class="choice">
            <input
              type="radio"
              name="visibility"
              value="public"
              checked={visibility === 'public'}
              onChange={() => setVisibility('public')}
            />
            <span>
              <strong>Public</strong>
              <span class="muted"> — listed in the directory, anyone on the node can join</span>
            </span>
          </label>
        </fieldset>
        <FieldError error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Create room
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function DirectoryDialog({ onClose }: { onClose: () => void }) {
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [joining, setJoining] = useState<string | null>(null);
  const mine = useStore(() => store.rooms);
  useEffect(() => {
    directory().then(setRooms, (err) => setError(message(err)));
  }, []);
  const shown = (rooms ?? []).filter((room) =>
    `${room.name ?? ''} ${room.topic ?? ''}`.toLowerCase().includes(filter.toLowerCase()),
  );
  const open = async (room: Room) => {
    const member = mine.get(room.room_id)?.info.membership === 'join';
    if (!member) {
      setJoining(room.room_id);
      try {
        await joinRoom(room.room_id);
      } catch (err) {
        setError(message(err));
        setJoining(null);
        return;
      }
    }
    onClose();
    navigate(roomPath(room.room_id));
  };
  return (
    <Dialog title="Public rooms" onClose={onClose} wide>
      <label class="search">
        <span class="visually-hidden">Filter rooms</span>
        <input
          type="search"
          placeholder="Filter by name or topic"
          value={filter}
          autoFocus
          onInput={(e) => setFilter(value(e))}
        />
      </label>
      <FieldError error={error} />
      {rooms === null && !error ? (
        <p class="muted" aria-busy="true">
          Loading…
        </p>
      ) : shown.length === 0 ? (
        <p class="muted">No public rooms{filter ? ' match' : ' yet'}.</p>
      ) : (
        <ul class="directory" role="list" aria-label="Public rooms">
          {shown.map((room) => {
            const member = mine.get(room.room_id)?.info.membership === 'join';
            return (
              <li key={room.room_id}>
                <div class="directory-info">
                  <strong>{room.name || 'Unnamed room'}</strong>
                  {room.topic && <span class="muted">{room.topic}</span>}
                  <span class="muted small">
                    {room.n_members} {room.n_members === 1 ? 'member' : 'members'}
                  </span>
                </div>
                <button
                  type="button"
                  class={member ? '' : 'primary'}
                  disabled={joining === room.room_id}
                  aria-label={`${member ? 'Open' : 'Join'} ${room.name || 'unnamed room'}`}
                  onClick={() => void open(room)}
                >
                  {member ? 'Open' : 'Join'}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </Dialog>
  );
}

export function DmDialog({ onClose }: { onClose: () => void }) {
  const [who, setWho] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const start = async (user: string) => {
    setBusy(true);
    setError(null);
    try {
      const room = await openDm(user);
      onClose();
      navigate(roomPath(room));
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const user = toUserId(who);
    if (!user) {
      setError('Enter a username, like alice, or a full user id.');
      return;
    }
    await start(user);
  };
  return (
    <Dialog title="Message someone" onClose={onClose}>
      <form onSubmit={submit} class="stack">
        <label>
          Username
          <input
            name="user"
            required
            autoFocus
            autocapitalize="none"
            spellcheck={false}
            placeholder="alice, or a name"
            value={who}
            onInput={(e) => setWho(value(e))}
          />
        </label>
        <UserResults query={who} onPick={(user) => void start(user)} />
        <FieldError error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Start conversation
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function InviteDialog({ room, onClose }: { room: string; onClose: () => void }) {
  const entry = useStore(() => store.rooms.get(room));
  const [who, setWho] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const user = toUserId(who);
    if (!user) {
      setError('Enter a username, like alice, or a full user id.');
      return;
    }
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await invite(room, user);
      setDone(`Invited ${who.trim()}.`);
      setWho('');
    } catch (err) {
      setError(message(err));
    }
    setBusy(false);
  };
  return (
    <Dialog title={`Invite to ${entry ? roomName(entry) : 'room'}`} onClose={onClose}>
      <form onSubmit={submit} class="stack">
        <label>
          Username
          <input
            name="invitee"
            required
            autoFocus
            autocapitalize="none"
            spellcheck={false}
            placeholder="alice"
            value={who}
            onInput={(e) => setWho(value(e))}
          />
        </label>
        <FieldError error={error} />
        {done && (
          <p class="ok" role="status">
            {done}
          </p>
        )}
        <div class="dialog-actions">
          <button type="submit" class="primary" disabled={busy}>
            Send invite
          </button>
        </div>
      </form>
      <InviteLinkBox room={room} />
    </Dialog>
  );
}

const EXPIRES: [string, string][] = [
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
  ['2592000', '30 days'],
  ['', 'Never'],
];
const USES = ['', '1', '5', '10', '25', '100'];
/** The node's most uses per link: a link with this many has no set limit. */
const MAX_USES = 10_000;

/**
 * A room's invite link. Those who may invite make one on the node (it opens
 * private rooms too, for as long and as often as they chose); others get a
 * public room's own address, which works for anyone on the node.
 */
export function InviteLinkBox({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room));
  const [made, setMade] = useState<InviteLink | null>(null);
  const [expires, setExpires] = useState('604800');
  const [uses, setUses] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  if (!entry) return null;
  const mayInvite = can(entry, 'invite');
  const open = entry.info.join_rule === 'public';
  if (!mayInvite && !open) {
    return <p class="muted small">Only members allowed to invite people can make an invite link.</p>;
  }
  const link = made ? fullUrl(made.path) : mayInvite ? null : joinLink(room);

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      setMade(
        await createInviteLink(room, {
          uses: uses ? Number(uses) : undefined,
          expires_in_secs: expires ? Number(expires) : undefined,
        }),
      );
      setCopied(false);
    } catch (err) {
      setError(message(err));
    }
    setBusy(false);
  };
  const copy = async () => {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link);
      setCopied(true);
    } catch {
      // No clipboard permission: the field is selectable.
    }
  };

  let note = 'Anyone with an account on this node can join with this link.';
  if (made) {
    note = 'Anyone with an account on this node can join with it';
    if (made.expires_at_ms) note += ` until ${formatFull(made.expires_at_ms)}`;
    if (made.uses_left < MAX_USES) note += ` (${made.uses_left} ${made.uses_left === 1 ? 'use' : 'uses'})`;
    note += '.';
  } else if (mayInvite) {
    note = open
      ? 'A link to share: anyone with an account on this node can join with it.'
      : 'The room is private: an invite link lets anyone who has it join.';
  }

  return (
    <div class="invite-link stack">
      {mayInvite && (
        <div class="invite-options">
          <label>
            Expires after
            <select value={expires} onChange={(e) => setExpires(e.currentTarget.value)}>
              {EXPIRES.map(([secs, label]) => (
                <option key={secs} value={secs}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Uses
            <select value={uses} onChange={(e) => setUses(e.currentTarget.value)}>
              {USES.map((n) => (
                <option key={n} value={n}>
                  {n || 'No limit'}
                </option>
              ))}
            </select>
          </label>
        </div>
      )}
      {link && (
        <label>
          Invite link
          <input readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
        </label>
      )}
      <p class="muted small">{note}</p>
      <FieldError error={error} />
      <div class="row">
        {mayInvite && (
          <button type="button" class={made ? '' : 'primary'} disabled={busy} onClick={() => void create()}>
            {made ? 'New link' : 'Create invite link'}
          </button>
        )}
        {link && (
          <button type="button" onClick={() => void copy()}>
            <Icon name="link" /> {copied ? 'Copied' : 'Copy link'}
          </button>
        )}
      </div>
    </div>
  );
}
