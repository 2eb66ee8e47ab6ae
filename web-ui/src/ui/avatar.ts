// The image of a person's avatar: their profile is read once per session
// (users of this node), and an avatar that names a stored image is shown
// through its thumbnail, fetched with our token (store/media.ts caches the
// object URL). Until then, or without one, the initial letter shows.

import { useEffect, useState } from 'preact/hooks';
import { avatarHash, blobUrl, loadProfile, store, thumbnailPath, useStore } from '../store';

/** The node's small thumbnail (128 px): one fetch per avatar, any size. */
const THUMB = 128;

export function useAvatarImage(user: string): string | null {
  const hash = useStore(() => avatarHash(store.profiles.get(user)?.avatar));
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    void loadProfile(user);
  }, [user]);
  useEffect(() => {
    setSrc(null);
    if (!hash) return;
    let live = true;
    blobUrl(thumbnailPath({ hash }, THUMB)).then(
      (url) => live && setSrc(url),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [hash]);
  return src;
}
