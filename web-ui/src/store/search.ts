// Search: queries to the node, and revealing a hit in its room's timeline.

import { api } from '../api/client';
import type { SearchPage } from '../api/types';
import { store } from './core';
import { loadLatest, loadOlder } from './rooms';

export interface SearchOptions {
  q: string;
  /** Only this room. */
  room?: string | null;
  has?: 'file' | 'image' | 'link' | null;
  order?: 'relevance' | 'recent';
  cursor?: string | null;
}

export async function search(options: SearchOptions): Promise<SearchPage> {
  const params = new URLSearchParams({ q: options.q, limit: '20' });
  if (options.room) params.set('room', options.room);
  if (options.has) params.set('has', options.has);
  if (options.order) params.set('order', options.order);
  if (options.cursor) params.set('cursor', options.cursor);
  return api<SearchPage>('GET', `/api/v1/search?${params}`);
}

/** Pages of history looked through for a hit before giving up. */
const MAX_PAGES = 40;

const tick = () => new Promise((resolve) => setTimeout(resolve, 50));

/** Loads `room`'s history back until `id` is in its timeline (a search
 *  hit opened in context); false when it is not there to be found. */
export async function reveal(room: string, id: string): Promise<boolean> {
  let pages = 0;
  // Bounded: every round loads a page or waits for one being loaded.
  for (let round = 0; round < MAX_PAGES * 20; round++) {
    const t = store.rooms.get(room)?.timeline;
    if (!t) return false;
    if (t.ids.includes(id)) return true;
    if (t.error) return false;
    if (t.loading) {
      await tick();
      continue;
    }
    if (!t.loaded) {
      await loadLatest(room);
      continue;
    }
    if (!t.hasMore || pages >= MAX_PAGES) return false;
    pages++;
    await loadOlder(room);
  }
  return false;
}
