// Roles of a room (for those who may manage them): create, edit (name,
// colour, permissions as labelled toggles, rank by arrows) and delete;
// and the timeout of a member ("mute for 10 min / 1 h / 1 day").
// The API checks every change (docs/spec/api.md, "Roles and moderation");
// the editor only offers what the caller's rank allows.

import { useState } from 'preact/hooks';
import { api, seg } from '../api/client';
import type { MemberJson, RoleJson } from '../api/types';
import { ask, can, loadMembers, nameOf, store, useStore } from '../store';
import { FieldError, Icon, value } from './common';
import { roleColorCss } from './roles-view';

/** Every permission a role can grant, in the order auth.md lists them. */
export const PERMISSIONS: ReadonlyArray<[string, string]> = [
  ['send_messages', 'Send messages'],
  ['add_reactions', 'Add reactions'],
  ['attach_files', 'Attach files'],
  ['mention_room', 'Mention @room'],
  ['invite', 'Invite people'],
  ['kick', 'Remove members'],
  ['ban', 'Ban members'],
  ['timeout', 'Time members out'],
  ['manage_messages', 'Delete and pin others’ messages'],
  ['manage_room', 'Change room settings'],
  ['manage_roles', 'Manage roles'],
  ['bypass_slowmode', 'Ignore slow mode'],
];

const OWNER_RANK = 4294967295;

async function putRole(room: string, role: RoleJson): Promise<void> {
  await api('PUT', `/api/v1/rooms/${seg(room)}/roles/${role.role}`, {
    name: role.name,
    rank: role.rank,
    permissions: role.permissions,
    ...(role.color == null ? {} : { color: role.color }),
  });
}

export function RolesEditor({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room));
  const [editing, setEditing] = useState<number | 'new' | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!entry?.members || !can(entry, 'manage_roles')) return null;
  const myRank = entry.info.is_owner ? OWNER_RANK : entry.info.rank;
  const roles = [...entry.members.roles].sort((a, b) => b.rank - a.rank || a.role - b.role);
  const mine = (r: RoleJson) => entry.info.is_owner || r.rank < myRank;
  const run = async (work: () => Promise<void>) => {
    setError(null);
    try {
      await work();
      await loadMembers(room);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  // Arrows swap ranks with the neighbour (two role events).
  const move = (index: number, by: -1 | 1) => {
    const a = roles[index];
    const b = roles[index + by];
    if (!a || !b || a.role === 0 || b.role === 0 || !mine(a) || !mine(b)) return;
    const [ra, rb] = a.rank === b.rank ? [b.rank - by, a.rank] : [b.rank, a.rank];
    void run(async () => {
      await putRole(room, { ...a, rank: ra });
      await putRole(room, { ...b, rank: rb });
    });
  };
  const nextId = Math.max(0, ...roles.map((r) => r.role)) + 1;
  const top = Math.max(0, ...roles.filter((r) => r.role !== 0).map((r) => r.rank));
  const fresh: RoleJson = {
    role: nextId,
    name: 'new role',
    rank: Math.max(1, Math.min(top + 1, myRank - 1)),
    permissions: [],
    color: null,
  };
  return (
    <section class="roles stack" aria-labelledby="roles-title">
      <div class="group-head">
        <h3 id="roles-title">Roles</h3>
        <button type="button" class="link" onClick={() => setEditing('new')}>
          New role
        </button>
      </div>
      <ul class="role-list" role="list">
        {roles.map((r, i) => (
          <li key={r.role} class="role-row">
            <span class="role-swatch" style={roleColorCss(r.color)} aria-hidden="true" />
            <span class="role-name" style={roleColorCss(r.color)}>
              {r.role === 0 ? 'everyone' : r.name}
            </span>
            <span class="muted small">rank {r.rank}</span>
            {r.role !== 0 && (
              <>
                <button
                  type="button"
                  class="icon-button small"
                  aria-label={`Move ${r.name} up`}
                  disabled={i === 0 || !mine(r) || !mine(roles[i - 1])}
                  onClick={() => move(i, -1)}
                >
                  <Icon name="up" size={14} />
                </button>
                <button
                  type="button"
                  class="icon-button small"
                  aria-label={`Move ${r.name} down`}
                  disabled={i >= roles.length - 1 || roles[i + 1].role === 0 || !mine(r)}
                  onClick={() => move(i, 1)}
                >
                  <Icon name="down" size={14} />
                </button>
              </>
            )}
            {mine(r) && (
              <button type="button" class="link" aria-label={`Edit ${r.name}`} onClick={() => setEditing(r.role)}>
                Edit
              </button>
            )}
          </li>
        ))}
      </ul>
      <FieldError error={error} />
      {editing !== null && (
        <RoleForm
          key={String(editing)}
          room={room}
          role={editing === 'new' ? fresh : roles.find((r) => r.role === editing)!}
          isNew={editing === 'new'}
          maxRank={myRank - 1}
          onDone={() => setEditing(null)}
        />
      )}
    </section>
  );
}

function RoleForm(props: { room: string; role: RoleJson; isNew: boolean; maxRank: number; onDone: () => void }) {
  const { role } = props;
  const [name, setName] = useState(role.name);
  const [colour, setColour] = useState<number | null>(role.color);
  const [perms, setPerms] = useState<Set<string>>(new Set(role.permissions));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const everyone = role.role === 0;
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await putRole(props.room, {
        ...role,
        name: everyone ? role.name : name.trim() || 'role',
        rank: everyone ? 0 : Math.min(role.rank, props.maxRank),
        permissions: PERMISSIONS.map(([p]) => p).filter((p) => perms.has(p)),
        color: colour,
      });
      await loadMembers(props.room);
      props.onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  const remove = async () => {
    const yes = await ask({
      title: 'Delete role',
      text: `Delete the role ${role.name}? Members who hold it lose what it grants.`,
      action: 'Delete',
      danger: true,
    });
    if (!yes) return;
    try {
      await api('DELETE', `/api/v1/rooms/${seg(props.room)}/roles/${role.role}`);
      await loadMembers(props.room);
      props.onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const hex = `#${(colour ?? 0x5865f2).toString(16).padStart(6, '0')}`;
  return (
    <form class="stack role-form" aria-label={props.isNew ? 'New role' : `Role ${role.name}`} onSubmit={(e) => void save(e)}>
      {!everyone && (
        <label>
          Role name
          <input value={name} maxLength={64} onInput={(e) => setName(value(e))} />
        </label>
      )}
      <div class="row">
        <label class="choice">
          <input type="checkbox" checked={colour != null} onChange={(e) => setColour(e.currentTarget.checked ? 0x5865f2 : null)} />
          Colour
        </label>
        {colour != null && (
          <input
            type="color"
            aria-label="Role colour"
            value={hex}
            onInput={(e) => setColour(parseInt(e.currentTarget.value.slice(1), 16))}
          />
        )}
      </div>
      <fieldset class="perm-toggles">
        <legend>Permissions</legend>
        {PERMISSIONS.map(([p, label]) => (
          <label class="switch" key={p}>
            <input
              type="checkbox"
              role="switch"
              checked={perms.has(p)}
              onChange={(e) => {
                const next = new Set(perms);
                if (e.currentTarget.checked) next.add(p);
                else next.delete(p);
                setPerms(next);
              }}
            />
            {label}
          </label>
        ))}
      </fieldset>
      <FieldError error={error} />
      <div class="dialog-actions">
        {!props.isNew && !everyone && (
          <button type="button" class="danger" onClick={() => void remove()}>
            Delete role
          </button>
        )}
        <button type="button" onClick={props.onDone}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {props.isNew ? 'Create role' : 'Save role'}
        </button>
      </div>
    </form>
  );
}

const DURATIONS: ReadonlyArray<[number, string]> = [
  [600, '10 min'],
  [3600, '1 h'],
  [86400, '1 day'],
];

/** Timeout buttons for a member's menu (the caller may time them out). */
export function TimeoutActions({ room, member }: { room: string; member: MemberJson }) {
  const [error, setError] = useState<string | null>(null);
  const set = async (seconds: number) => {
    setError(null);
    try {
      await api('PUT', `/api/v1/rooms/${seg(room)}/members/${seg(member.user_id)}/timeout`, { seconds });
      await loadMembers(room);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  const until = member.timeout_until_ms && member.timeout_until_ms > Date.now() ? member.timeout_until_ms : null;
  return (
    <div class="timeout-actions" role="group" aria-label={`Time out ${nameOf(member.user_id)}`}>
      {DURATIONS.map(([seconds, label]) => (
        <button type="button" key={seconds} onClick={() => void set(seconds)}>
          Mute {label}
        </button>
      ))}
      {until && (
        <button type="button" onClick={() => void set(0)}>
          Lift timeout
        </button>
      )}
      <FieldError error={error} />
    </div>
  );
}

/** When we are timed out in `room`: until when (ms), else null. */
export function useMyTimeout(room: string): number | null {
  return useStore(() => {
    const me = store.me?.user_id;
    const until = store.rooms.get(room)?.members?.members.find((m) => m.user_id === me)?.timeout_until_ms;
    return until && until > Date.now() ? until : null;
  });
}
