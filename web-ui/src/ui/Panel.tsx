// The side panel: a thread, the member list, or the room's settings.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { HistoryVisibility, JoinRule, MemberJson, RoleJson } from '../api/types';
import { navigate } from '../router';
import {
  ask,
  can,
  leaveRoom,
  moderate,
  nameOf,
  openThread,
  roomName,
  setMemberRoles,
  store,
  updateRoomSettings,
  useStore,
} from '../store';
import { Avatar, FieldError, formatTime, Icon, value } from './common';
import { showCard } from './Overlays';
import { RolesEditor, TimeoutActions } from './Roles';
import { nameColor, roleColorCss } from './roles-view';
import { Composer } from './Composer';
import { InviteLinkBox } from './Dialogs';
import { Row } from './Message';
import { RoomContext, type RoomActions } from './room-context';
import { Timeline } from './Timeline';

export type PanelState =
  | { kind: 'thread'; room: string; root: string }
  | { kind: 'members' }
  | { kind: 'settings' }
  | null;

export function Panel(props: { state: PanelState; room: string; setPanel: (p: PanelState) => void }) {
  const { state, room, setPanel } = props;
  const ref = useRef<HTMLElement>(null);
  const close = () => setPanel(null);
  const title =
    state?.kind === 'thread' ? 'Thread' : state?.kind === 'members' ? 'Members' : 'Room settings';
  // At once (a layout effect), and not away from a field already chosen: a
  // quick click or keystroke in the panel must not land in another field.
  useLayoutEffect(() => {
    const panel = ref.current;
    if (panel && !panel.contains(document.activeElement)) {
      panel.querySelector<HTMLElement>('[data-autofocus], textarea, input')?.focus();
    }
  }, [state?.kind]);
  if (!state) return null;
  return (
    <aside
      class="panel"
      ref={ref}
      aria-labelledby="panel-title"
      onKeyDown={(e) => {
        if (e.key === 'Escape' && !e.defaultPrevented) close();
      }}
    >
      <header class="panel-head">
        <h2 id="panel-title">{title}</h2>
        <button type="button" class="icon-button" aria-label={`Close ${title.toLowerCase()}`} onClick={close}>
          <Icon name="x" />
        </button>
      </header>
      {state.kind === 'thread' ? (
        <ThreadPanel room={state.room} root={state.root} />
      ) : state.kind === 'members' ? (
        <MembersPanel room={room} />
      ) : (
        <SettingsPanel room={room} />
      )}
    </aside>
  );
}

function ThreadPanel({ room, root }: { room: string; root: string }) {
  const thread = useStore(() => store.threads.get(root));
  const rootMsg = useStore(() => store.msgs.get(root));
  const [editing, setEditing] = useState<string | null>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const actions = useMemo<RoomActions>(
    () => ({
      room,
      editing,
      inThread: true,
      startEdit: setEditing,
      startReply: () => composer.current?.focus(),
      openThread: () => undefined,
      focusComposer: () => composer.current?.focus(),
    }),
    [room, editing],
  );
  const ids = thread?.ids ?? [];
  return (
    <RoomContext.Provider value={actions}>
      <div class="thread">
        {thread?.error && (
          <p class="error" role="alert">
            {thread.error}{' '}
            <button type="button" class="link" onClick={() => void openThread(room, root)}>
              Retry
            </button>
          </p>
        )}
        <div class="thread-root" role="group" aria-label="Thread root">
          {rootMsg ? <Row id={root} continued={false} tabStop={false} /> : <p class="muted">Loading…</p>}
        </div>
        <p class="muted small thread-count">
          {ids.length} {ids.length === 1 ? 'reply' : 'replies'}
        </p>
        <Timeline
          key={root}
          ids={ids}
          label="Replies in thread"
          hasMore={false}
          loading={!thread?.loaded}
          empty="No replies yet."
        />
        <Composer room={room} thread={root} label="Reply in thread" inputRef={composer} />
      </div>
    </RoomContext.Provider>
  );
}

const PERMISSION_LABELS: Record<string, string> = {
  kick: 'Remove',
  ban: 'Ban',
};

function MembersPanel({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room));
  useStore(() => store.names);
  const me = store.me?.user_id;
  const page = entry?.members;
  if (!entry) return null;
  if (!page) return <p class="muted pad">Loading members…</p>;
  const roles = new Map(page.roles.map((r) => [r.role, r]));
  const groups: Array<[string, MemberJson[]]> = [
    ['Joined', page.members.filter((m) => m.membership === 'join')],
    ['Invited', page.members.filter((m) => m.membership === 'invite')],
    ['Banned', page.members.filter((m) => m.membership === 'ban')],
  ];
  const order = (a: MemberJson, b: MemberJson) =>
    Number(b.is_owner) - Number(a.is_owner) || b.rank - a.rank || nameOf(a.user_id).localeCompare(nameOf(b.user_id));
  return (
    <div class="members pad">
      {groups.map(([title, members]) =>
        members.length === 0 ? null : (
          <section key={title} aria-label={`${title} (${members.length})`}>
            <h3 class="group-title">
              {title} — {members.length}
            </h3>
            <ul role="list">
              {members.sort(order).map((m) => (
                <MemberItem
                  key={m.user_id}
                  room={room}
                  member={m}
                  roles={roles}
                  self={m.user_id === me}
                  myRank={entry.info.rank}
                  iAmOwner={entry.info.is_owner}
                  perms={entry.info.permissions}
                />
              ))}
            </ul>
          </section>
        ),
      )}
    </div>
  );
}

function MemberItem(props: {
  room: string;
  member: MemberJson;
  roles: Map<number, RoleJson>;
  self: boolean;
  myRank: number;
  iAmOwner: boolean;
  perms: string[];
}) {
  const { member, roles, room } = props;
  const [error, setError] = useState<string | null>(null);
  const outranks = props.iAmOwner || (!member.is_owner && props.myRank > member.rank);
  const allowed = (p: string) => !props.self && outranks && (props.iAmOwner || props.perms.includes(p));
  const manageable = [...roles.values()].filter((r) => props.iAmOwner || r.rank < props.myRank);
  const canRoles = allowed('manage_roles') && manageable.length > 0;
  const actions = (['kick', 'ban'] as const).filter((a) => allowed(a));
  const canTimeout = allowed('timeout') && member.membership === 'join';
  const run = (work: Promise<void>) =>
    work.catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  const held = member.roles.flatMap((id) => roles.get(id) ?? []);
  const colour = nameColor(useStore(() => store.rooms.get(room)), member.user_id);
  // The live value; without one, offline if the node does presence at all.
  const presence = useStore(
    () => store.presence.get(member.user_id) ?? (member.presence && 'offline'),
  );
  return (
    <li class="member">
      <span class="member-avatar">
        <Avatar user={member.user_id} size={30} />
        {presence && member.membership === 'join' && (
          <span class={`presence ${presence}`} role="img" aria-label={presence} title={presence} />
        )}
      </span>
      <div class="member-info">
        <button type="button" class="person-button" onClick={() => showCard(member.user_id, room)}>
          <span
            class={`member-name${colour != null ? ' coloured' : ''}`}
            title={member.user_id}
            style={roleColorCss(colour)}
          >
            {nameOf(member.user_id)}
            {props.self && <span class="muted"> (you)</span>}
          </span>
        </button>
        <span class="member-roles">
          {member.is_owner && <span class="role owner">Owner</span>}
          {member.timeout_until_ms != null && member.timeout_until_ms > Date.now() && (
            <span class="role muted-role">Timed out until {formatTime(member.timeout_until_ms)}</span>
          )}
          {held.map((r) => (
            <span class="role" key={r.role} style={roleColorCss(r.color)}>
              {r.name}
            </span>
          ))}
        </span>
        {error && (
          <span class="error small" role="alert">
            {error}
          </span>
        )}
      </div>
      {(canRoles || actions.length > 0 || canTimeout || (member.membership === 'ban' && allowed('ban'))) && (
        <details class="member-menu">
          <summary aria-label={`Manage ${nameOf(member.user_id)}`}>
            <Icon name="sliders" size={16} />
          </summary>
          <div class="menu">
            {canRoles &&
              manageable.map((role) => (
                <label class="choice" key={role.role}>
                  <input
                    type="checkbox"
                    checked={member.roles.includes(role.role)}
                    onChange={(e) => {
                      const on = e.currentTarget.checked;
                      const next = on
                        ? [...member.roles, role.role]
                        : member.roles.filter((r) => r !== role.role);
                      void run(setMemberRoles(room, member.user_id, next));
                    }}
                  />
                  {role.name}
                </label>
              ))}
            {member.membership !== 'ban' &&
              actions.map((action) => (
                <button
                  type="button"
                  key={action}
                  class="danger"
                  onClick={() => {
                    const who = nameOf(member.user_id);
                    void ask({
                      title: `${PERMISSION_LABELS[action]} ${who}`,
                      text: `${PERMISSION_LABELS[action]} ${who} from this room?`,
                      action: PERMISSION_LABELS[action],
                      danger: true,
                    }).then((yes) => {
                      if (yes) void run(moderate(room, action, member.user_id));
                    });
                  }}
                >
                  {PERMISSION_LABELS[action]}
                </button>
              ))}
            {canTimeout && <TimeoutActions room={room} member={member} />}
            {member.membership === 'ban' && allowed('ban') && (
              <button type="button" onClick={() => void run(moderate(room, 'unban', member.user_id))}>
                Unban
              </button>
            )}
          </div>
        </details>
      )}
    </li>
  );
}

function SettingsPanel({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room));
  const info = entry?.info;
  const [name, setName] = useState(info?.name ?? '');
  const [topic, setTopic] = useState(info?.topic ?? '');
  const [joinRule, setJoinRule] = useState<JoinRule>(info?.join_rule ?? 'invite');
  const [history, setHistory] = useState<HistoryVisibility>(info?.history_visibility ?? 'shared');
  const [slowmode, setSlowmode] = useState(String(info?.slowmode_seconds ?? 0));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  // Someone else changed the room: show what it is now.
  useEffect(() => {
    if (!info) return;
    setName(info.name ?? '');
    setTopic(info.topic ?? '');
    setJoinRule(info.join_rule);
    setHistory(info.history_visibility);
    setSlowmode(String(info.slowmode_seconds));
  }, [info?.name, info?.topic, info?.join_rule, info?.history_visibility, info?.slowmode_seconds]);
  if (!entry || !info) return null;
  const editable = can(entry, 'manage_room');
  const direct = info.kind === 'direct';

  const save = async (e: Event) => {
    e.preventDefault();
    const patch: Parameters<typeof updateRoomSettings>[1] = {};
    if (name.trim() !== (info.name ?? '')) patch.name = name.trim();
    if (topic.trim() !== (info.topic ?? '')) patch.topic = topic.trim();
    if (joinRule !== info.join_rule) patch.join_rule = joinRule;
    if (history !== info.history_visibility) patch.history_visibility = history;
    const seconds = Math.max(0, Math.floor(Number(slowmode) || 0));
    if (seconds !== info.slowmode_seconds) patch.slowmode_seconds = seconds;
    if (Object.keys(patch).length === 0) {
      setSaved(true);
      return;
    }
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      await updateRoomSettings(room, patch);
      setSaved(true);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
    setBusy(false);
  };

  const leave = async () => {
    const yes = await ask({
      title: 'Leave room',
      text: `Leave ${roomName(entry)}? You can come back if the room lets you.`,
      action: 'Leave',
      danger: true,
    });
    if (!yes) return;
    try {
      await leaveRoom(room);
      navigate('/');
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <div class="settings pad">
      <form class="stack" onSubmit={save}>
        <fieldset disabled={!editable || busy}>
          {!editable && <p class="muted small">Only members allowed to manage the room can change these.</p>}
          <label>
            Name
            <input name="room-name" maxLength={100} value={name} onInput={(e) => setName(value(e))} />
          </label>
          <label>
            Topic
            <textarea name="room-topic" rows={2} maxLength={300} value={topic} onInput={(e) => setTopic(value(e))} />
          </label>
          {!direct && (
            <label>
              Who can join
              <select value={joinRule} onChange={(e) => setJoinRule(e.currentTarget.value as JoinRule)}>
                <option value="invite">Only invited people (private)</option>
                <option value="public">Anyone on the node (public, listed)</option>
                <option value="knock">Anyone may ask to join</option>
              </select>
            </label>
          )}
          <label>
            Who can read the history
            <select value={history} onChange={(e) => setHistory(e.currentTarget.value as HistoryVisibility)}>
              <option value="shared">Members, all of it</option>
              <option value="invited">Members, since they were invited</option>
              <option value="joined">Members, since they joined</option>
              <option value="world_readable">Anyone</option>
            </select>
          </label>
          <label>
            Slow mode (seconds between messages, 0 = off)
            <input
              type="number"
              min={0}
              max={21600}
              inputMode="numeric"
              value={slowmode}
              onInput={(e) => setSlowmode(value(e))}
            />
          </label>
          {editable && (
            <button type="submit" class="primary">
              Save changes
            </button>
          )}
        </fieldset>
        <FieldError error={error} />
        {saved && (
          <p class="ok" role="status">
            Saved.
          </p>
        )}
      </form>
      {!direct && <InviteLinkBox room={room} />}
      {!direct && <RolesEditor room={room} />}
      <div class="stack danger-zone">
        <button type="button" class="danger" onClick={() => void leave()}>
          Leave room
        </button>
      </div>
    </div>
  );
}
