// /join/<room id> (a public room, or one we are invited to) and
// /join/<code> (an invite link, which opens private rooms too): what the
// room is, and a Join button.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, seg } from '../api/client';
import type { InvitePreview, Room } from '../api/types';
import { navigate, roomPath } from '../router';
import { joinRoom, joinWithLink, nameOf, store } from '../store';
import { FieldError } from './common';

export function JoinView({ target }: { target: string }) {
  return target.startsWith('!') ? <RoomJoin room={target} /> : <LinkJoin code={target} />;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function members(n: number): string {
  return `${n} ${n === 1 ? 'member' : 'members'}`;
}

function RoomJoin({ room }: { room: string }) {
  const [info, setInfo] = useState<Room | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (store.rooms.get(room)?.info.membership === 'join') {
      navigate(roomPath(room), true);
      return;
    }
    api<Room>('GET', `/api/v1/rooms/${seg(room)}`).then(setInfo, (err) =>
      setError(
        err instanceof ApiError && (err.status === 404 || err.status === 400)
          ? 'This room does not exist on this node, or it is private and you have not been invited.'
          : errorText(err),
      ),
    );
  }, [room]);

  const join = async () => {
    setBusy(true);
    setError(null);
    try {
      await joinRoom(room);
      navigate(roomPath(room), true);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <section class="join-view" aria-labelledby="join-title">
      <h2 id="join-title">{info ? `Join ${info.name || 'this room'}` : 'Join a room'}</h2>
      {info?.topic && <p>{info.topic}</p>}
      {info && (
        <p class="muted">
          {members(info.n_members)} ·{' '}
          {info.join_rule === 'public' ? 'public room' : 'private room'}
          {info.membership === 'invite' ? ' · you are invited' : ''}
        </p>
      )}
      <FieldError error={error} />
      {info && (
        <button type="button" class="primary" disabled={busy} onClick={() => void join()}>
          Join room
        </button>
      )}
    </section>
  );
}

function LinkJoin({ code }: { code: string }) {
  const [preview, setPreview] = useState<InvitePreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setPreview(null);
    setError(null);
    api<InvitePreview>('GET', `/api/v1/invite-links/${seg(code)}`).then(
      (found) => {
        // Already in: the link just opens the room.
        if (store.rooms.get(found.room_id)?.info.membership === 'join') {
          navigate(roomPath(found.room_id), true);
        } else setPreview(found);
      },
      (err) =>
        setError(
          err instanceof ApiError && err.status === 404
            ? 'This invite link is not valid: it may have expired or been used up.'
            : errorText(err),
        ),
    );
  }, [code]);

  const join = async () => {
    setBusy(true);
    setError(null);
    try {
      navigate(roomPath(await joinWithLink(code)), true);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'no_change' && preview) {
        navigate(roomPath(preview.room_id), true);
        return;
      }
      setError(
        err instanceof ApiError && err.status === 403
          ? `You cannot join with this link: ${err.message}`
          : errorText(err),
      );
      setBusy(false);
    }
  };

  const name = preview?.name || (preview?.kind === 'space' ? 'a space' : 'a room');
  return (
    <section class="join-view" aria-labelledby="join-title" aria-busy={!preview && !error}>
      <h2 id="join-title">
        {preview ? `${nameOf(preview.inviter)} invites you to ${name}` : 'Join with an invite link'}
      </h2>
      {preview?.topic && <p>{preview.topic}</p>}
      {preview && <p class="muted">{members(preview.n_members)}</p>}
      {!preview && !error && <p class="muted">Loading…</p>}
      <FieldError error={error} />
      {preview && (
        <button type="button" class="primary" disabled={busy} onClick={() => void join()}>
          Join {preview.kind === 'space' ? 'space' : 'room'}
        </button>
      )}
    </section>
  );
}
