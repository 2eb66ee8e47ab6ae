// Profiles: display name, avatar and bio of the people we meet, read once
// per session from the node (`GET /users/{id}/profile`, users of this node
// only) and again whenever a profile card opens; ours, edited here.
//
// An avatar is the hash of an image uploaded to the node's media store
// (`POST /api/v1/media`), shown through its thumbnail, fetched with our
// token like attachments. A value that is not a hash (older clients wrote
// free text) shows the initial-letter avatar.

import { api, seg } from '../api/client';
import type { Profile } from '../api/types';
import { changed, owned, store } from './core';
import { uploadFile } from './media';
import { setNames } from './people';

/** Users whose profile is being read or was read this session. */
const asked = owned(() => new Set<string>());

function isLocal(user: string): boolean {
  const me = store.me;
  return !!me && user.endsWith(':' + me.node_id);
}

function keep(user: string, profile: Profile): void {
  store.profiles = new Map(store.profiles).set(user, profile);
  changed();
  if (profile.display_name) setNames([[user, profile.display_name]]);
}

/** Reads `user`'s profile unless it was read this session (`fresh`: again). */
export async function loadProfile(user: string, fresh = false): Promise<Profile | null> {
  if (!isLocal(user)) return null;
  if (!fresh && asked.value.has(user)) return store.profiles.get(user) ?? null;
  asked.value.add(user);
  try {
    const profile = await api<Profile>('GET', `/api/v1/users/${seg(user)}/profile`);
    keep(user, profile);
    return profile;
  } catch {
    return null;
  }
}

/** An avatar value that names a stored image. */
export function avatarHash(avatar: string | null | undefined): string | null {
  return avatar && /^[0-9a-f]{64}$/.test(avatar) ? avatar : null;
}

/** Replaces our profile; `image` (if given) is uploaded first and becomes
 *  the avatar; `avatar: null` removes it. */
export async function saveProfile(
  fields: { display_name: string; bio: string; avatar: string | null },
  image?: File | null,
): Promise<Profile> {
  const me = store.me;
  if (!me) throw new Error('Log in first.');
  let avatar = fields.avatar;
  if (image) avatar = (await uploadFile(image, image.name, () => {})).hash;
  const profile = await api<Profile>('PUT', '/api/v1/profile', {
    display_name: fields.display_name.trim() || null,
    bio: fields.bio.trim() || null,
    avatar,
  });
  keep(me.user_id, profile);
  if (!profile.display_name) {
    const names = new Map(store.names);
    names.delete(me.user_id);
    store.names = names;
    changed();
  }
  return profile;
}
