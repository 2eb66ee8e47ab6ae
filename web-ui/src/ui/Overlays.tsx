// The app's own overlays (store/overlay.ts), one at a time: a person's
// profile card, the editor of our profile, and yes/no questions that
// replace the browser's confirm().

import { useEffect, useState } from 'preact/hooks';
import type { Profile } from '../api/types';
import { navigate, roomPath } from '../router';
import {
  avatarHash,
  closeOverlay,
  loadProfile,
  nameOf,
  openDm,
  openOverlay,
  saveProfile,
  store,
  useStore,
} from '../store';
import { Avatar, Dialog, FieldError, value } from './common';
import { roleColorCss } from './roles-view';

export function Overlays() {
  const overlay = useStore(() => store.overlay);
  if (!overlay) return null;
  switch (overlay.kind) {
    case 'card':
      return <ProfileCard user={overlay.user} room={overlay.room} />;
    case 'profile':
      return <ProfileEditor />;
    case 'notice':
      return (
        <Dialog title={overlay.title} onClose={closeOverlay}>
          <p>{overlay.text}</p>
          <div class="dialog-actions">
            <button type="button" class="primary" autoFocus onClick={closeOverlay}>
              OK
            </button>
          </div>
        </Dialog>
      );
    case 'confirm':
      return (
        <Dialog title={overlay.title} onClose={() => overlay.resolve(false)}>
          <p>{overlay.text}</p>
          <div class="dialog-actions">
            <button type="button" onClick={() => overlay.resolve(false)}>
              Cancel
            </button>
            <button
              type="button"
              class={overlay.danger ? 'danger primary' : 'primary'}
              autoFocus
              onClick={() => overlay.resolve(true)}
            >
              {overlay.action}
            </button>
          </div>
        </Dialog>
      );
  }
}

/** Opens the card of `user` (from a name or an avatar in `room`). */
export function showCard(user: string, room: string | null): void {
  openOverlay({ kind: 'card', user, room });
}

function ProfileCard({ user, room }: { user: string; room: string | null }) {
  const me = useStore(() => store.me?.user_id);
  const profile = useStore(() => store.profiles.get(user));
  const presence = useStore(() => store.presence.get(user));
  const entry = useStore(() => (room ? store.rooms.get(room) : undefined));
  useStore(() => store.names);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    void loadProfile(user, true);
  }, [user]);
  const member = entry?.members?.members.find((m) => m.user_id === user);
  const roles = entry?.members?.roles ?? [];
  const held = (member?.roles ?? [])
    .map((id) => roles.find((r) => r.role === id))
    .filter((r) => !!r)
    .sort((a, b) => b.rank - a.rank);
  const node = user.slice(user.indexOf(':') + 1);
  const local = !!store.me && node === store.me.node_id;
  const message = async () => {
    setBusy(true);
    setError(null);
    try {
      const dm = await openDm(user);
      closeOverlay();
      navigate(roomPath(dm));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title={nameOf(user)} onClose={closeOverlay}>
      <div class="profile-card">
        <Avatar user={user} size={96} />
        <div class="profile-facts">
          <p class="profile-id">{user}</p>
          <p class="muted small">Home node: {local ? 'this node' : node}</p>
          {presence && (
            <p class="small">
              <span class={`presence-dot ${presence}`} aria-hidden="true" /> {presence}
            </p>
          )}
          {profile?.bio && <p class="profile-bio">{profile.bio}</p>}
          {(member?.is_owner || held.length > 0) && (
            <p class="member-roles" aria-label="Roles in this room">
              {member?.is_owner && <span class="role owner">Owner</span>}
              {held.map((r) => (
                <span class="role" key={r.role} style={roleColorCss(r.color)}>
                  {r.name}
                </span>
              ))}
            </p>
          )}
        </div>
      </div>
      <FieldError error={error} />
      <div class="dialog-actions">
        {user === me ? (
          <button type="button" class="primary" onClick={() => openOverlay({ kind: 'profile' })}>
            Edit profile
          </button>
        ) : (
          <button type="button" class="primary" disabled={busy} onClick={() => void message()}>
            Message
          </button>
        )}
      </div>
    </Dialog>
  );
}

function ProfileEditor() {
  const me = store.me!.user_id;
  const current = useStore(() => store.profiles.get(me));
  const [loaded, setLoaded] = useState<Profile | null>(current ?? null);
  const [name, setName] = useState(current?.display_name ?? '');
  const [bio, setBio] = useState(current?.bio ?? '');
  const [avatar, setAvatar] = useState<string | null>(current?.avatar ?? null);
  const [image, setImage] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    void loadProfile(me, true).then((p) => {
      if (!p || loaded) return;
      setLoaded(p);
      setName(p.display_name ?? '');
      setBio(p.bio ?? '');
      setAvatar(p.avatar);
    });
  }, []);
  useEffect(() => {
    if (!image) return setPreview(null);
    const url = URL.createObjectURL(image);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [image]);
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      const p = await saveProfile({ display_name: name, bio, avatar }, image);
      setAvatar(p.avatar);
      setImage(null);
      setSaved(true);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const hasImage = !!image || !!avatarHash(avatar);
  return (
    <Dialog title="Your profile" onClose={closeOverlay}>
      <form class="stack profile-form" onSubmit={(e) => void save(e)}>
        <div class="profile-avatar-row">
          {preview ? (
            <span class="avatar" style={{ width: '72px', height: '72px' }}>
              <img src={preview} alt="" width={72} height={72} />
            </span>
          ) : (
            <Avatar user={me} size={72} />
          )}
          <div class="column">
            <label class="file-button">
              Choose an image
              <input
                type="file"
                accept="image/png,image/jpeg,image/gif,image/webp"
                aria-label="Avatar image"
                onChange={(e) => setImage(e.currentTarget.files?.[0] ?? null)}
              />
            </label>
            {hasImage && (
              <button
                type="button"
                class="link"
                onClick={() => {
                  setImage(null);
                  setAvatar(null);
                }}
              >
                Remove avatar
              </button>
            )}
          </div>
        </div>
        <label>
          Display name
          <input value={name} maxLength={64} onInput={(e) => setName(value(e))} placeholder={me} />
        </label>
        <label>
          Bio
          <textarea value={bio} maxLength={1000} rows={3} onInput={(e) => setBio(value(e))} />
        </label>
        <FieldError error={error} />
        {saved && (
          <p class="ok" role="status">
            Profile saved.
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={closeOverlay}>
            Close
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save profile'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
