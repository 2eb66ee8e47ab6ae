// A room: header, timeline, composer; the invitation banner for invitees.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { currentSession } from '../api/client';
import { navigate } from '../router';
import {
  can,
  joinRoom,
  leaveRoom,
  loadLatest,
  loadOlder,
  nameOf,
  openThread,
  reveal,
  roomName,
  setAtBottom,
  store,
  useStore,
} from '../store';
import { Composer } from './Composer';
import { Avatar, FieldError, Icon } from './common';
import { MessageRequest } from './Dm';
import { InviteDialog } from './Dialogs';
import { Lazy, loadReviewQueue } from './lazy';
import { MentionsButton } from './Mentions';
import { ThreadsButton } from './Threads';
import type { PanelState } from './Panel';
import { RoomContext, type RoomActions } from './room-context';
import { Timeline } from './Timeline';

export function RoomView(props: {
  room: string;
  panel: PanelState;
  setPanel: (p: PanelState) => void;
}) {
  const { room, setPanel } = props;
  const entry = useStore(() => store.rooms.get(room))!;
  useStore(() => store.names);
  const [replyTo, setReplyTo] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [inviting, setInviting] = useState(false);
  const [reviewing, setReviewing] = useState(false);
  const composer = useRef<HTMLTextAreaElement>(null);
  const name = roomName(entry);
  const t = entry.timeline;
  const divider = useStore(() => (store.divider?.room === room ? store.divider.id : null));
  // The first unread message is older than the newest page: load back to it.
  useEffect(() => {
    if (divider && t.loaded && !t.ids.includes(divider)) void reveal(room, divider);
  }, [divider, t.loaded]);

  const actions = useMemo<RoomActions>(
    () => ({
      room,
      editing,
      inThread: false,
      startEdit: (id) => {
        setEditing(id);
        if (!id) composer.current?.focus();
      },
      startReply: (id) => setReplyTo(id),
      openThread: (root) => {
        setPanel({ kind: 'thread', room, root });
        void openThread(room, root);
      },
      focusComposer: () => composer.current?.focus(),
    }),
    [room, editing, setPanel],
  );

  const editLast = () => {
    const me = store.me?.user_id;
    for (let i = t.ids.length - 1; i >= 0; i--) {
      const msg = store.msgs.get(t.ids[i]);
      if (msg?.type === 'message' && msg.sender === me && !msg.redacted && !msg.pending) {
        setEditing(msg.id);
        return;
      }
    }
  };

  const togglePanel = (kind: 'members' | 'settings') =>
    setPanel(props.panel?.kind === kind ? null : { kind });

  if (entry.info.membership === 'invite') {
    return entry.info.kind === 'direct' ? <MessageRequest room={room} /> : <Invitation room={room} />;
  }

  return (
    <RoomContext.Provider value={actions}>
      <section class="room" aria-labelledby="room-title" key={room}>
        <header class="room-head">
          <button
            type="button"
            class="icon-button back"
            aria-label="Back to rooms"
            onClick={() => navigate('/')}
          >
            <Icon name="back" />
          </button>
          <div class="room-title">
            <h1 id="room-title">
              {entry.info.kind === 'direct' && entry.peer ? (
                <Avatar user={entry.peer} size={24} />
              ) : (
                <Icon
                  name={entry.info.kind === 'direct' ? 'chat' : entry.info.join_rule === 'public' ? 'hash' : 'lock'}
                  size={18}
                />
              )}
              <span>{name}</span>
            </h1>
            {entry.info.topic && <p class="topic">{entry.info.topic}</p>}
          </div>
          <div class="row">
            <ThreadsButton room={room} />
            <MentionsButton room={room} />
            {can(entry, 'invite') && entry.info.kind !== 'direct' && (
              <button
                type="button"
                class="icon-button"
                aria-label="Invite people"
                title="Invite people"
                onClick={() => setInviting(true)}
              >
                <Icon name="userPlus" />
              </button>
            )}
            {(can(entry, 'manage_messages') || currentSession()?.is_admin) && (
              <button
                type="button"
                class="icon-button"
                aria-label="Review queue"
                title="Review queue"
                onClick={() => setReviewing(true)}
              >
                <Icon name="flag" />
              </button>
            )}
            <button
              type="button"
              class="icon-button"
              aria-label={`Members (${entry.info.n_members})`}
              aria-pressed={props.panel?.kind === 'members'}
              title="Members"
              onClick={() => togglePanel('members')}
            >
              <Icon name="users" />
              <span class="count" aria-hidden="true">
                {entry.info.n_members}
              </span>
            </button>
            <button
              type="button"
              class="icon-button"
              aria-label="Room settings"
              aria-pressed={props.panel?.kind === 'settings'}
              title="Room settings"
              onClick={() => togglePanel('settings')}
            >
              <Icon name="sliders" />
            </button>
          </div>
        </header>
        {t.error && (
          <div class="banner error" role="alert">
            Could not load messages: {t.error}{' '}
            <button type="button" class="link" onClick={() => void loadLatest(room)}>
              Retry
            </button>
          </div>
        )}
        <Timeline
          key={room}
          ids={t.ids}
          label={`Messages in ${name}`}
          hasMore={t.hasMore}
          loading={t.loading}
          loadOlder={t.loaded ? () => void loadOlder(room) : undefined}
          onBottom={setAtBottom}
          divider={divider}
          head={
            <p class="room-start">
              This is the beginning of <strong>{name}</strong>.
            </p>
          }
        />
        <TypingLine room={room} />
        <Composer
          key={room}
          room={room}
          label={`Message ${entry.info.kind === 'direct' ? name : '#' + name}`}
          replyTo={replyTo}
          onCancelReply={() => setReplyTo(null)}
          onEditLast={editLast}
          inputRef={composer}
        />
        {inviting && <InviteDialog room={room} onClose={() => setInviting(false)} />}
        {reviewing && <Lazy load={loadReviewQueue} props={{ room, onClose: () => setReviewing(false) }} />}
      </section>
    </RoomContext.Provider>
  );
}

function Invitation({ room }: { room: string }) {
  const entry = useStore(() => store.rooms.get(room))!;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
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
  const inviter = entry.info.creator;
  return (
    <section class="join-view" aria-labelledby="invite-title">
      <button type="button" class="icon-button back" aria-label="Back to rooms" onClick={() => navigate('/')}>
        <Icon name="back" />
      </button>
      <h2 id="invite-title">You are invited to {roomName(entry)}</h2>
      {entry.info.topic && <p>{entry.info.topic}</p>}
      <p class="muted">
        {inviter ? `Created by ${nameOf(inviter)} · ` : ''}
        {entry.info.n_members} {entry.info.n_members === 1 ? 'member' : 'members'}
      </p>
      <FieldError error={error} />
      <div class="row">
        <button type="button" class="primary" disabled={busy} onClick={() => void run(() => joinRoom(room))}>
          Accept invitation
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
      </div>
    </section>
  );
}

/** "alice is typing…" under the timeline; an empty line keeps the layout
 * still when nobody is. */
function TypingLine({ room }: { room: string }) {
  const typing = useStore(() => store.typing.get(room));
  useStore(() => store.names);
  const names = (typing ?? []).map(nameOf);
  const text =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length <= 3
          ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`
          : 'Several people are typing…';
  return (
    <p class="typing muted small" role="status" aria-live="polite">
      {text}
    </p>
  );
}
