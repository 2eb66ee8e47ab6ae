// The one store, its subscriptions, and the reset that every part of the
// client state registers with.
//
// Values in the store are replaced, never mutated in place (a changed
// message is a new object, a changed timeline a new array), so components
// re-render exactly when what they selected with `useStore` changes.
//
// State outside `store` — timers, what we last told the node — is made
// with `owned()`, which registers how to forget it: `resetAll()` (on
// logout, or when another user logs in) then forgets everything, by
// construction, with no list of things to remember to clear.

import { useEffect, useReducer, useRef } from 'preact/hooks';
import {
  freshStore,
  type FoldState,
  type Msg,
  type RoomEntry,
  type Store,
  type ThreadView,
  type Timeline,
} from './model';

export const store: Store = freshStore();

// ---- reset --------------------------------------------------------------------

interface Owner {
  /** Lets go of the old value (timers, connections). */
  dispose(): void;
  /** Starts afresh. */
  renew(): void;
}

const owners: Owner[] = [{ dispose() {}, renew: () => void Object.assign(store, freshStore()) }];

/**
 * Module state that a reset forgets: `fresh()` makes its value at start and
 * after each reset; `dispose` runs on the old value first (to clear its
 * timers, stop its connection). Read and write it as `.value`.
 */
export function owned<T>(fresh: () => T, dispose?: (old: T) => void): { value: T } {
  const cell = { value: fresh() };
  owners.push({
    dispose: () => dispose?.(cell.value),
    renew: () => void (cell.value = fresh()),
  });
  return cell;
}

/** A map of pending timeouts, cleared on reset. */
export function ownedTimers<K>(): { value: Map<K, ReturnType<typeof setTimeout>> } {
  return owned(
    () => new Map<K, ReturnType<typeof setTimeout>>(),
    (timers) => {
      for (const timer of timers.values()) clearTimeout(timer);
    },
  );
}

/** Forgets everything: the store and every `owned` value. */
export function resetAll(): void {
  // Everything lets go first, so a connection stopping cannot write into
  // a store already made fresh.
  for (const owner of owners) owner.dispose();
  for (const owner of owners) owner.renew();
  changed();
}

// ---- subscriptions --------------------------------------------------------------

const listeners = new Set<() => void>();
let queued = false;

/** Tells subscribers, once per microtask, that the store changed. */
export function changed(): void {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    for (const listener of [...listeners]) listener();
  });
}

/** Calls `listener` after every change (until the returned function is called). */
export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Re-renders the calling component when `select()` returns something new. */
export function useStore<T>(select: () => T): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  const selectRef = useRef(select);
  selectRef.current = select;
  const value = select();
  const last = useRef(value);
  last.current = value;
  useEffect(
    () =>
      subscribe(() => {
        if (!Object.is(selectRef.current(), last.current)) force(0);
      }),
    [],
  );
  return value;
}

// ---- changing the store -----------------------------------------------------------

/** Takes what a fold (`fold.ts`) computed. */
export function commit(next: FoldState): void {
  store.rooms = next.rooms;
  store.msgs = next.msgs;
  store.threads = next.threads;
  store.reactionIndex = next.reactionIndex;
  changed();
}

export function putRoom(id: string, entry: RoomEntry): void {
  store.rooms = new Map(store.rooms).set(id, entry);
  changed();
}

export function dropRoom(id: string): void {
  if (!store.rooms.has(id)) return;
  const rooms = new Map(store.rooms);
  rooms.delete(id);
  store.rooms = rooms;
  changed();
}

export function updateRoom(id: string, change: (entry: RoomEntry) => Partial<RoomEntry>): void {
  const entry = store.rooms.get(id);
  if (entry) putRoom(id, { ...entry, ...change(entry) });
}

export function updateTimeline(id: string, change: (t: Timeline) => Partial<Timeline>): void {
  updateRoom(id, (entry) => ({ timeline: { ...entry.timeline, ...change(entry.timeline) } }));
}

export function updateThread(root: string, change: (t: ThreadView) => Partial<ThreadView>): void {
  const thread = store.threads.get(root);
  if (!thread) return;
  store.threads = new Map(store.threads).set(root, { ...thread, ...change(thread) });
  changed();
}

export function setMsg(msg: Msg): void {
  store.msgs = new Map(store.msgs).set(msg.id, msg);
  changed();
}

export function updateMsg(id: string, change: (msg: Msg) => Partial<Msg>): void {
  const msg = store.msgs.get(id);
  if (msg) setMsg({ ...msg, ...change(msg) });
}
