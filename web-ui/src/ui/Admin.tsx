// The admin console, for node admins (loaded on first open, so it costs
// nothing on the first load): accounts (search, suspend, reset a password,
// make admin), rooms (size, members, shut down on this node), federation
// (peers, scores, block), and the node (registration mode, invite tokens,
// storage sizes). Every action is one admin endpoint; the node checks the
// caller's role on each request, so this view only saves a click.

import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api/client';
import { ask, formatSize, nameOf, store } from '../store';
import { Dialog, FieldError, formatFull, value } from './common';

interface AdminUser {
  user_id: string;
  username: string;
  role: 'user' | 'moderator' | 'admin';
  status: 'active' | 'suspended' | 'deactivated';
  created_at_ms: number;
}

interface AdminRoom {
  room_id: string;
  name: string | null;
  public: boolean;
  events: number;
  joined: number;
  local_joined: number;
  nodes: number;
}

interface AdminMember {
  user_id: string;
  membership: string;
  local: boolean;
  is_owner: boolean;
}

interface Peer {
  node_id: string | null;
  peer_id: string;
  connected: boolean;
  connections: number;
  gossip_score: number;
  penalty: number;
  rejected: number;
  banned: boolean;
  blocked: boolean;
}

interface Federation {
  node_id: string;
  peer_id: string;
  addresses: string[];
  rooms: number;
  topics: number;
  peers: Peer[];
}

type Mode = 'open' | 'invite' | 'closed';

interface NodeInfo {
  node_id: string;
  version: string;
  registration_mode: Mode;
  registration_mode_config: Mode;
  moderation: 'ready' | 'unavailable' | 'off';
  rooms: number;
  storage: { store_bytes: number; search_bytes: number; blobs_bytes: number; total_bytes: number };
}

type Tab = 'users' | 'rooms' | 'federation' | 'node';
const TABS: [Tab, string][] = [
  ['users', 'Users'],
  ['rooms', 'Rooms'],
  ['federation', 'Federation'],
  ['node', 'Node'],
];

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one action at a time, keeps its error, reloads afterwards. */
function useRunner(reload: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      await reload();
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  const load = (work: () => Promise<void>) => void work().catch((e: unknown) => setError(message(e)));
  return { busy, error, run, load };
}

export function AdminDialog({ onClose }: { onClose: () => void }) {
  const [tab, setTab] = useState<Tab>('users');
  return (
    <Dialog title="Admin console" onClose={onClose} wide>
      <div class="tabs" role="tablist" aria-label="Admin console">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`admin-tab-${id}`}
            aria-selected={tab === id}
            aria-controls="admin-panel"
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div id="admin-panel" class="admin-panel" role="tabpanel" aria-labelledby={`admin-tab-${tab}`}>
        {tab === 'users' && <Users />}
        {tab === 'rooms' && <Rooms />}
        {tab === 'federation' && <FederationTab />}
        {tab === 'node' && <NodeTab />}
      </div>
    </Dialog>
  );
}

function Users() {
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [query, setQuery] = useState('');
  const reload = async () => setUsers(await api<AdminUser[]>('GET', '/api/v1/admin/users'));
  const { busy, error, run, load } = useRunner(reload);
  useEffect(() => load(reload), []);
  const q = query.trim().toLowerCase();
  const shown = (users ?? [])
    .filter((u) => !q || u.username.includes(q) || nameOf(u.user_id).toLowerCase().includes(q))
    .sort((a, b) => a.username.localeCompare(b.username));
  return (
    <section class="security" aria-label="Users">
      <input
        type="search"
        aria-label="Search accounts"
        placeholder="Search accounts"
        value={query}
        onInput={(e) => setQuery(value(e))}
      />
      {users === null ? (
        <p class="muted">Loading…</p>
      ) : shown.length === 0 ? (
        <p class="muted">No account matches.</p>
      ) : (
        <ul class="security-list" aria-label="Accounts">
          {shown.map((u) => (
            <UserRow key={u.username} user={u} busy={busy} run={run} />
          ))}
        </ul>
      )}
      <FieldError error={error} />
    </section>
  );
}

function UserRow(props: { user: AdminUser; busy: boolean; run: (work: () => Promise<unknown>) => Promise<void> }) {
  const u = props.user;
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const me = u.user_id === store.me?.user_id;
  const path = `/api/v1/admin/users/${seg(u.username)}`;
  const suspend = async () => {
    const yes = await ask({
      title: 'Suspend account',
      text: `Suspend ${u.username}? They are signed out everywhere at once and cannot sign in until unsuspended.`,
      action: 'Suspend',
      danger: true,
    });
    if (yes) await props.run(() => api('POST', `${path}/suspend`));
  };
  return (
    <li data-user={u.username}>
      <div class="security-info">
        <strong>
          {u.username}
          {me && <span class="muted"> · you</span>}
        </strong>
        <span class="muted">
          <span class={`pill role-${u.role}`}>{u.role}</span>{' '}
          <span class={`pill status-${u.status}`}>{u.status}</span> · since {formatFull(u.created_at_ms)}
        </span>
        {resetting && (
          <form
            class="row"
            aria-label={`New password for ${u.username}`}
            onSubmit={(e) => {
              e.preventDefault();
              void props
                .run(() => api('PUT', `${path}/password`, { password }))
                .then(() => {
                  setPassword('');
                  setResetting(false);
                });
            }}
          >
            <input
              type="password"
              autocomplete="new-password"
              aria-label="New password"
              placeholder="New password"
              value={password}
              onInput={(e) => setPassword(value(e))}
            />
            <button type="submit" class="primary" disabled={props.busy || !password}>
              Set
            </button>
          </form>
        )}
      </div>
      {!me && u.status !== 'deactivated' && (
        <div class="row admin-actions">
          {u.status === 'active' ? (
            <button type="button" class="danger" disabled={props.busy} onClick={() => void suspend()}>
              Suspend
            </button>
          ) : (
            <button
              type="button"
              disabled={props.busy}
              onClick={() => void props.run(() => api('POST', `${path}/reactivate`))}
            >
              Unsuspend
            </button>
          )}
          <button
            type="button"
            disabled={props.busy}
            onClick={() =>
              void props.run(() => api('PUT', `${path}/role`, { role: u.role === 'admin' ? 'user' : 'admin' }))
            }
          >
            {u.role === 'admin' ? 'Remove admin' : 'Make admin'}
          </button>
          <button type="button" disabled={props.busy} onClick={() => setResetting((r) => !r)}>
            Reset password
          </button>
        </div>
      )}
    </li>
  );
}

function Rooms() {
  const [rooms, setRooms] = useState<AdminRoom[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [members, setMembers] = useState<AdminMember[] | null>(null);
  const reload = async () => {
    const list = await api<{ rooms: AdminRoom[] }>('GET', '/api/v1/admin/rooms');
    setRooms(list.rooms);
    if (open) await showMembers(open);
  };
  const showMembers = async (room: string) => {
    setMembers(null);
    const list = await api<{ members: AdminMember[] }>('GET', `/api/v1/admin/rooms/${seg(room)}/members`);
    setMembers(list.members);
  };
  const { busy, error, run, load } = useRunner(reload);
  useEffect(() => load(reload), []);
  const shutDown = async (room: AdminRoom) => {
    const yes = await ask({
      title: 'Shut down room',
      text: `Make every member of this node leave ${room.name ?? room.room_id}? Other nodes keep the room.`,
      action: 'Shut down',
      danger: true,
    });
    if (yes) await run(() => api('POST', `/api/v1/admin/rooms/${seg(room.room_id)}/shutdown`));
  };
  if (rooms === null) return <p class="muted">{error ?? 'Loading…'}</p>;
  return (
    <section class="security" aria-label="Rooms">
      {rooms.length === 0 ? (
        <p class="muted">This node holds no rooms.</p>
      ) : (
        <ul class="security-list" aria-label="Rooms on this node">
          {rooms.map((r) => (
            <li key={r.room_id} data-room={r.room_id} class="admin-room">
              <div class="security-info">
                <strong>{r.name ?? 'Unnamed room'}</strong>
                <span class="muted">
                  {r.public ? 'public' : 'private'} · {r.events} events · {r.joined}{' '}
                  {r.joined === 1 ? 'member' : 'members'} ({r.local_joined} here) · {r.nodes}{' '}
                  {r.nodes === 1 ? 'node' : 'nodes'}
                </span>
                <code class="muted small">{r.room_id}</code>
                {open === r.room_id && (
                  <ul class="admin-members" aria-label={`Members of ${r.name ?? r.room_id}`}>
                    {members === null ? (
                      <li class="muted">Loading…</li>
                    ) : members.length === 0 ? (
                      <li class="muted">Nobody.</li>
                    ) : (
                      members.map((m) => (
                        <li key={m.user_id}>
                          {m.user_id} <span class="muted">· {m.membership}</span>
                          {m.is_owner && <span class="muted"> · owner</span>}
                        </li>
                      ))
                    )}
                  </ul>
                )}
              </div>
              <div class="row admin-actions">
                <button
                  type="button"
                  aria-expanded={open === r.room_id}
                  onClick={() => {
                    const next = open === r.room_id ? null : r.room_id;
                    setOpen(next);
                    if (next) load(() => showMembers(next));
                  }}
                >
                  Members
                </button>
                <button
                  type="button"
                  class="danger"
                  disabled={busy || r.local_joined === 0}
                  onClick={() => void shutDown(r)}
                >
                  Shut down
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <FieldError error={error} />
    </section>
  );
}

function FederationTab() {
  const [status, setStatus] = useState<Federation | null>(null);
  const [node, setNode] = useState('');
  const reload = async () => setStatus(await api<Federation>('GET', '/api/v1/admin/federation'));
  const { busy, error, run, load } = useRunner(reload);
  useEffect(() => load(reload), []);
  const block = (id: string, on: boolean) =>
    run(() => api(on ? 'PUT' : 'DELETE', `/api/v1/admin/federation/blocks/${seg(id)}`));
  if (status === null) return <p class="muted">{error ?? 'Loading…'}</p>;
  return (
    <section class="security" aria-label="Federation">
      <p>
        This node: <code>{status.node_id}</code>
        <br />
        <span class="muted small">
          {status.rooms} rooms · {status.topics} gossip topics
        </span>
      </p>
      {status.addresses.length > 0 && (
        <details>
          <summary>Addresses for other nodes</summary>
          <ul class="admin-members">
            {status.addresses.map((a) => (
              <li key={a}>
                <code>{a}</code>
              </li>
            ))}
          </ul>
        </details>
      )}
      <h3>Peers</h3>
      {status.peers.length === 0 ? (
        <p class="muted">No peers known.</p>
      ) : (
        <ul class="security-list" aria-label="Peers">
          {status.peers.map((p) => (
            <li key={p.peer_id} data-node={p.node_id ?? ''}>
              <div class="security-info">
                <code>{p.node_id ?? p.peer_id}</code>
                <span class="muted">
                  {p.connected ? `connected (${p.connections})` : 'not connected'} · score{' '}
                  {p.gossip_score.toFixed(1)} · penalty {p.penalty.toFixed(1)} · {p.rejected} rejected
                  {p.banned ? ' · banned' : ''}
                  {p.blocked ? ' · blocked' : ''}
                </span>
              </div>
              {p.node_id && (
                <button
                  type="button"
                  class={p.blocked ? undefined : 'danger'}
                  disabled={busy}
                  onClick={() => void block(p.node_id!, !p.blocked)}
                >
                  {p.blocked ? 'Unblock' : 'Block'}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form
        class="row"
        aria-label="Block a node"
        onSubmit={(e) => {
          e.preventDefault();
          void block(node.trim(), true).then(() => setNode(''));
        }}
      >
        <input
          aria-label="Node id to block"
          placeholder="Node id (~…)"
          value={node}
          onInput={(e) => setNode(value(e))}
        />
        <button type="submit" class="danger" disabled={busy || !node.trim()}>
          Block node
        </button>
      </form>
      <FieldError error={error} />
    </section>
  );
}

const MODES: Record<Mode, string> = {
  open: 'Open: anyone who can reach the node may sign up.',
  invite: 'Invite only: sign-up needs an invite token.',
  closed: 'Closed: only admins create accounts.',
};

function NodeTab() {
  const [info, setInfo] = useState<NodeInfo | null>(null);
  const [uses, setUses] = useState('1');
  const [days, setDays] = useState('7');
  const [token, setToken] = useState<{ token: string; uses: number; expires_at_ms: number | null } | null>(null);
  const reload = async () => setInfo(await api<NodeInfo>('GET', '/api/v1/admin/node'));
  const { busy, error, run, load } = useRunner(reload);
  useEffect(() => load(reload), []);
  if (info === null) return <p class="muted">{error ?? 'Loading…'}</p>;
  const s = info.storage;
  return (
    <section class="security" aria-label="Node">
      <h3>Registration</h3>
      <fieldset class="admin-modes" aria-label="Who may sign up" data-mode={info.registration_mode}>
        {(Object.keys(MODES) as Mode[]).map((mode) => (
          <label key={mode} class="choice">
            <input
              type="radio"
              name="registration-mode"
              value={mode}
              checked={info.registration_mode === mode}
              disabled={busy}
              onChange={() => void run(() => api('PUT', '/api/v1/admin/registration', { mode }))}
            />
            {MODES[mode]}
            {info.registration_mode_config === mode && <span class="muted small"> (the config’s)</span>}
          </label>
        ))}
      </fieldset>
      <form
        class="row admin-token"
        aria-label="Create an invite token"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const body: { uses: number; expires_in_secs?: number } = { uses: Number(uses) };
            if (days.trim()) body.expires_in_secs = Math.round(Number(days) * 86_400);
            setToken(await api('POST', '/api/v1/admin/invite-tokens', body));
          });
        }}
      >
        <label>
          Uses <input type="number" min="1" max="10000" value={uses} onInput={(e) => setUses(value(e))} />
        </label>
        <label>
          Days valid{' '}
          <input type="number" min="1" max="365" placeholder="forever" value={days} onInput={(e) => setDays(value(e))} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          Create invite token
        </button>
      </form>
      {token && (
        <p role="status" class="admin-new-token">
          Invite token: <code>{token.token}</code>{' '}
          <span class="muted small">
            {token.uses} {token.uses === 1 ? 'use' : 'uses'}
            {token.expires_at_ms ? `, until ${formatFull(token.expires_at_ms)}` : ', no expiry'}
          </span>
        </p>
      )}
      <h3>Storage</h3>
      <dl class="admin-sizes" aria-label="Storage">
        <dt>Store</dt>
        <dd>{formatSize(s.store_bytes)}</dd>
        <dt>Search index</dt>
        <dd>{formatSize(s.search_bytes)}</dd>
        <dt>Media</dt>
        <dd>{formatSize(s.blobs_bytes)}</dd>
        <dt>Data directory</dt>
        <dd>{formatSize(s.total_bytes)}</dd>
      </dl>
      <p class="muted small">
        {info.rooms} rooms · moderation {info.moderation} · version {info.version} · <code>{info.node_id}</code>
      </p>
      <FieldError error={error} />
    </section>
  );
}
