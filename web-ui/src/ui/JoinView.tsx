// An invite link: /join/<room id>. Shows the room and a Join button.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, seg } from '../api/client';
import type { Room } from '../api/types';
import { navigate, roomPath } from '../router';
import { joinRoom, store } from '../store';
import { FieldError } from './common';

export function JoinView({ room }: { room: string }) {
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
          : String(err instanceof Error ? err.message : err),
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
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <section class="join-view" aria-labelledby="join-title">
      <h2 id="join-title">{info ? `Join ${info.name || 'this room'}` : 'Join a room'}</h2>
      {info?.topic && <p>{info.topic}</p>}
      {info && (
        <p class="muted">
          {info.n_members} {info.n_members === 1 ? 'member' : 'members'} ·{' '}
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
