// Path routes; the node serves index.html for any path that is not a file,
// so links like /room/!abc…, /join/!abc… (a room) and /join/<code> (an
// invite link) work when opened directly.

import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { name: 'home' }
  | { name: 'room'; room: string }
  /** `target`: a room id (starts with `!`) or an invite link's code. */
  | { name: 'join'; target: string };

export function parseRoute(path: string): Route {
  const match = /^\/(room|join)\/([^/]+)\/?$/.exec(path);
  if (match) {
    let id = match[2];
    try {
      id = decodeURIComponent(id);
    } catch {
      return { name: 'home' };
    }
    return match[1] === 'room' ? { name: 'room', room: id } : { name: 'join', target: id };
  }
  return { name: 'home' };
}

export function roomPath(room: string): string {
  return `/room/${encodeURIComponent(room)}`;
}

/** A public room's link: works for anyone on the node, and for invitees. */
export function joinLink(room: string): string {
  return `${location.origin}/join/${encodeURIComponent(room)}`;
}

/** The full address of a path the node gave (an invite link's `path`). */
export function fullUrl(path: string): string {
  return location.origin + path;
}

const listeners = new Set<() => void>();

export function navigate(path: string, replace = false): void {
  if (path === location.pathname) return;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  for (const listener of listeners) listener();
}

addEventListener('popstate', () => {
  for (const listener of listeners) listener();
});

export function useRoute(): Route {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const listener = () => setPath(location.pathname);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return parseRoute(path);
}

/** Handles a click on an in-app link without reloading the page. */
export function linkClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) {
    return;
  }
  const anchor = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!anchor?.href) return;
  const url = new URL(anchor.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname);
}
