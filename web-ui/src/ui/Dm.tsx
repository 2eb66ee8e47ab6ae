// Direct messages that feel direct: finding someone by name
// (`GET /api/v1/users?q=`), and a message request — the first messages of
// someone who wrote to us, with their name and avatar, to accept or block —
// instead of a bare invitation page.
//
// Blocking declines the request and remembers the person in this user's
// settings (`PUT /api/v1/settings`, key `blocked`): their later requests
// are declined without being shown. The node keeps no block list of its
// own yet.

import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api/client';
import type { EventJson, HistoryPage } from '../api/types';
import { renderMarkdown } from '../markdown';
import { navigate } from '../router';
import { ask, joinRoom, leaveRoom, nameOf, store, useStore } from '../store';
import { Avatar, FieldError, formatTime } from './common';
import { showCard } from './Overlays';

interface FoundUser {
  user_id: string;
  display_name: string | null;
  local: boolean;
}

/** Waits this long after the last keystroke before asking the node. */
const SEARCH_DELAY_MS = 200;

/** Search results for `query` (debounced); empty for a short query. */
export function useUserSearch(query: string): FoundUser[] {
  const [users, setUsers] = useState<FoundUser[]>([]);
  useEffect(() => {
    const q = query.trim();
    if (q.length < 1) {
      setUsers([]);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      api<{ users: FoundUser[] }>('GET', `/api/v1/users?q=${encodeURIComponent(q)}&limit=8`).then(
        (r) => live && setUsers(r.users.filter((u) => u.user_id !== store.me?.user_id)),
        () => live && setUsers([]),
      );
    }, SEARCH_DELAY_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query]);
  return users;
}

/** The people found for the text typed in a user field, to pick one. */
export function UserResults({ query, onPick }: { query: string; onPick: (user: string) => void }) {
  const users = useUserSearch(query);
  if (users.length === 0) return null;
  return (
    <ul class="user-results" role="listbox" aria-label="People found">
      {users.map((u) => (
        <li key={u.user_id} role="option" aria-selected={false}>
          <button type="button" class="user-result" onClick={() => onPick(u.user_id)}>
            <Avatar user={u.user_id} size={24} />
            <span>
              {u.display_name ?? nameOf(u.user_id)} <span class="muted small">{u.user_id}</span>
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}

// ---- blocking -------------------------------------------------------------------

async function settings(): Promise<Record<string, unknown>> {
  return api<Record<string, unknown>>('GET', '/api/v1/settings');
}

export async function blockedUsers(): Promise<string[]> {
  const list = (await settings()).blocked;
  return Array.isArray(list) ? list.filter((u): u is string => typeof u === 'string') : [];
}

async function block(user: string): Promise<void> {
  const all = await settings();
  const list = Array.isArray(all.blocked) ? (all.blocked as string[]) : [];
  if (!list.includes(user)) await api('PUT', '/api/v1/settings', { ...all, blocked: [...list, user] });
}

/** Declines direct-message requests from blocked people (after boot). */
export async function declineBlocked(): Promise<void> {
  const invites = [...store.rooms.values()].filter(
    (e) => e.info.kind === 'direct' && e.info.membership === 'invite' && e.info.creator,
  );
  if (invites.length === 0) return;
  const blocked = new Set(await blockedUsers().catch(() => []));
  for (const entry of invites) {
    if (blocked.has(entry.info.creator!)) await leaveRoom(entry.info.room_id).catch(() => {});
  }
}

// ---- message request ----------------------------------------------------------------

/** Messages of a request shown at most. */
const SHOWN = 20;

export function MessageRequest({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room))!;
  useStore(() => store.names);
  const from = entry.info.creator ?? entry.peer ?? '';
  const [messages, setMessages] = useState<EventJson[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<HistoryPage>('GET', `/api/v1/rooms/${seg(room)}/messages?limit=50`).then(
      (page) => setMessages(page.events.filter((e) => e.type === 'message' && !e.redacted).slice(-SHOWN)),
      () => setMessages([]),
    );
  }, [room]);
  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  const name = nameOf(from);
  return (
    <section class="join-view message-request" aria-labelledby="request-title">
      <button type="button" class="person-button request-who" onClick={() => showCard(from, room)}>
        <Avatar user={from} size={64} />
      </button>
      <h2 id="request-title">{name} wants to message you</h2>
      <p class="muted small request-id">{from}</p>
      <div class="request-messages" role="log" aria-label={`Message request from ${name}`}>
        {messages === null ? (
          <p class="muted">Loading…</p>
        ) : messages.length === 0 ? (
          <p class="muted">No message yet.</p>
        ) : (
          messages.map((m) => (
            <div class="request-message" key={m.event_id}>
              <time class="muted small">{formatTime(m.origin_ts)}</time>
              <div class="msg-body">{renderMarkdown(String(m.edited?.body ?? m.content.body ?? ''), { mention: () => null })}</div>
            </div>
          ))
        )}
      </div>
      <FieldError error={error} />
      <div class="row">
        <button type="button" class="primary" disabled={busy} onClick={() => void run(() => joinRoom(room))}>
          Accept
        </button>
        <button
          type="button"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              await leaveRoom(room);
              navigate('/');
            })
          }
        >
          Decline
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              const yes = await ask({
                title: `Block ${name}`,
                text: `Decline and block ${name}? Their later requests will be declined without being shown.`,
                action: 'Block',
                danger: true,
              });
              if (!yes) {
                setBusy(false);
                return;
              }
              await block(from);
              await leaveRoom(room);
              navigate('/');
            })
          }
        >
          Block
        </button>
      </div>
    </section>
  );
}
