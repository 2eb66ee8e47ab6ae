// Notifications: the user's list (unread first) and the unread count,
// loaded at boot and after every reconnect, and kept current by the
// WebSocket's `notification` frames. The node's list is the truth: frames
// may be missed, so a reconnect reloads.

import { api } from '../api/client';
import type { NotificationJson, NotificationPage } from '../api/types';
import { changed, owned } from './core';

export interface Notes {
  list: NotificationJson[];
  unread: number;
  loaded: boolean;
}

/** The newest notifications the list shows. */
const PAGE = 50;

export const notes = owned<Notes>(() => ({ list: [], unread: 0, loaded: false }));

function set(next: Notes): void {
  notes.value = next;
  changed();
}

/** Reads the first page and the count from the node. */
export async function loadNotifications(): Promise<void> {
  const page = await api<NotificationPage>('GET', `/api/v1/notifications?limit=${PAGE}`);
  set({ list: page.notifications, unread: page.unread, loaded: true });
}

/** A `notification` frame: a new one, unread, at the top. */
export function addNotification(n: NotificationJson): void {
  const old = notes.value;
  if (old.list.some((m) => m.id === n.id)) return;
  set({ ...old, list: [n, ...old.list].slice(0, PAGE), unread: old.unread + 1 });
}

export async function markNotificationRead(id: number): Promise<void> {
  const old = notes.value;
  const target = old.list.find((n) => n.id === id);
  if (!target || !target.unread) return;
  set({
    ...old,
    list: old.list.map((n) => (n.id === id ? { ...n, unread: false } : n)),
    unread: Math.max(0, old.unread - 1),
  });
  await api('POST', `/api/v1/notifications/${id}/read`, {});
}

export async function markAllNotificationsRead(): Promise<void> {
  const old = notes.value;
  set({ ...old, list: old.list.map((n) => ({ ...n, unread: false })), unread: 0 });
  await api('POST', '/api/v1/notifications/read', {});
}
