// One row of a timeline: a message (with its reply quote, reactions,
// thread summary and actions) or a line describing a state change.

import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { plainPreview, renderMarkdown, type MarkdownContext } from '../markdown';
import type { AttachmentJson } from '../api/types';
import {
  ask,
  attachmentsOf,
  blobUrl,
  can,
  discard,
  download,
  formatSize,
  isImage,
  mediaPath,
  thumbnailPath,
  edit,
  localpart,
  nameOf,
  remove,
  report,
  retry,
  store,
  toggleReaction,
  useStore,
  type Msg,
} from '../store';
import { Avatar, formatFull, formatTime, Icon, memo } from './common';
import { EmojiSearch } from './EmojiPicker';
import { showCard } from './Overlays';
import { nameColor, roleColorCss } from './roles-view';
import { RoomContext } from './room-context';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀'];

export const Row = memo(function Row(props: { id: string; continued: boolean; tabStop: boolean }) {
  const msg = useStore(() => store.msgs.get(props.id));
  if (!msg) return null;
  return msg.type === 'message' ? (
    <MessageRow msg={msg} continued={props.continued} tabStop={props.tabStop} />
  ) : (
    <StateRow msg={msg} />
  );
});

function mentionContext(msg: Msg): MarkdownContext {
  const me = store.me?.user_id;
  return {
    mention(name) {
      if (name === 'room') return msg.mentions.room ? 'other' : null;
      const user = msg.mentions.users.find((u) => u === name || localpart(u) === name);
      return user ? (user === me ? 'me' : 'other') : null;
    },
  };
}

/** Longer messages start collapsed, with "Show more". */
const LONG_CHARS = 1200;
const LONG_LINES = 16;

function MessageRow({ msg, continued, tabStop }: { msg: Msg; continued: boolean; tabStop: boolean }) {
  const ctx = useContext(RoomContext)!;
  const me = useStore(() => store.me?.user_id);
  const entry = useStore(() => store.rooms.get(msg.room));
  useStore(() => store.names);
  const [picker, setPicker] = useState(false);
  const [expanded, setExpanded] = useState(false);
  const long = msg.body.length > LONG_CHARS || msg.body.split('\n', LONG_LINES + 1).length > LONG_LINES;
  const [error, setError] = useState<string | null>(null);
  const [reported, setReported] = useState(false);
  const mine = msg.sender === me;
  const editing = ctx.editing === msg.id;
  // Highlighted as the node notifies: a mention of me, or @room, by someone else.
  const mentionsMe = !!me && !mine && (msg.mentions.users.includes(me) || msg.mentions.room);
  const real = !msg.pending;
  const canDelete = real && !msg.redacted && (mine || can(entry, 'manage_messages'));
  const name = nameOf(msg.sender);
  const colour = nameColor(entry, msg.sender);

  const act = (work: Promise<unknown>) =>
    work.catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.target !== e.currentTarget) return;
    const row = e.currentTarget as HTMLElement;
    const rows = [...(row.closest('[role=log]')?.querySelectorAll<HTMLElement>('.msg') ?? [])];
    const at = rows.indexOf(row);
    const move = (to: number) => {
      const next = rows[Math.max(0, Math.min(rows.length - 1, to))];
      next?.focus();
      e.preventDefault();
    };
    if (e.key === 'ArrowUp') move(at - 1);
    else if (e.key === 'ArrowDown') move(at + 1);
    else if (e.key === 'Home') move(0);
    else if (e.key === 'End') move(rows.length - 1);
    else if (e.key === 'Escape') ctx.focusComposer();
    else if (e.key === 'r' && real && !msg.redacted) {
      e.preventDefault();
      ctx.startReply(msg.id);
    } else if (e.key === 'e' && mine && real && !msg.redacted) {
      e.preventDefault();
      ctx.startEdit(msg.id);
    }
  };

  return (
    <article
      class={`msg${continued ? ' continued' : ''}${mentionsMe ? ' mentions-me' : ''}${msg.pending ? ' pending' : ''}${mine ? ' mine' : ''}`}
      data-id={msg.id}
      tabIndex={tabStop ? 0 : -1}
      aria-label={`${name}, ${formatTime(msg.ts)}${msg.redacted ? ', deleted' : ''}`}
      onKeyDown={onKeyDown}
    >
      <div class="msg-gutter">
        {continued ? (
          <time class="msg-time-inline" dateTime={new Date(msg.ts).toISOString()} title={formatFull(msg.ts)}>
            {formatTime(msg.ts)}
          </time>
        ) : (
          <button
            type="button"
            class="person-button"
            tabIndex={-1}
            aria-label={`Profile of ${name}`}
            onClick={() => showCard(msg.sender, msg.room)}
          >
            <Avatar user={msg.sender} />
          </button>
        )}
      </div>
      <div class="msg-main">
        {!continued && (
          <header class="msg-head">
            <button type="button" class="person-button" onClick={() => showCard(msg.sender, msg.room)}>
              <span
                class={`msg-sender${colour != null ? ' coloured' : ''}`}
                title={msg.sender}
                style={roleColorCss(colour)}
              >
                {name}
              </span>
            </button>
            <time dateTime={new Date(msg.ts).toISOString()} title={formatFull(msg.ts)}>
              {formatTime(msg.ts)}
            </time>
          </header>
        )}
        {msg.replyTo && <ReplyQuote id={msg.replyTo} />}
        {msg.redacted ? (
          <p class="msg-body deleted">Message deleted</p>
        ) : editing ? (
          <EditBox msg={msg} onDone={() => ctx.startEdit(null)} />
        ) : (
          <>
            <div class={`msg-body${long && !expanded ? ' collapsed' : ''}`}>
              {renderMarkdown(msg.body, mentionContext(msg))}
              {msg.edited && <span class="edited"> (edited)</span>}
              <Attachments list={attachmentsOf(msg.content)} />
            </div>
            {long && (
              <button
                type="button"
                class="link show-more"
                aria-expanded={expanded}
                onClick={() => setExpanded((x) => !x)}
              >
                {expanded ? 'Show less' : 'Show more'}
              </button>
            )}
          </>
        )}
        {msg.pending === 'sending' && <p class="msg-state">Sending…</p>}
        {msg.pending === 'queued' && <p class="msg-state queued">Waiting for the connection</p>}
        {msg.pending === 'failed' && (
          <p class="msg-state failed" role="alert">
            Not sent: {msg.error}{' '}
            <button type="button" class="link" onClick={() => retry(msg.id)}>
              Retry
            </button>{' '}
            <button type="button" class="link" onClick={() => discard(msg.id)}>
              Discard
            </button>
          </p>
        )}
        {msg.reactions.length > 0 && (
          <div class="reactions" role="group" aria-label="Reactions">
            {msg.reactions.map((r) => {
              const pressed = !!me && r.users.includes(me);
              const who = r.users.map(nameOf).join(', ');
              return (
                <button
                  type="button"
                  key={r.key}
                  class="reaction"
                  aria-pressed={pressed}
                  aria-label={`${r.key} ${r.users.length}: ${who}`}
                  title={who}
                  onClick={() => void act(toggleReaction(msg.id, r.key))}
                >
                  <span class="reaction-key">{r.key}</span> {r.users.length}
                </button>
              );
            })}
          </div>
        )}
        {!ctx.inThread && msg.threadCount > 0 && (
          <button type="button" class="thread-summary" onClick={() => ctx.openThread(msg.id)}>
            <Icon name="thread" size={14} /> {msg.threadCount}{' '}
            {msg.threadCount === 1 ? 'reply' : 'replies'}
          </button>
        )}
        {error && (
          <p class="error small" role="alert">
            {error}
          </p>
        )}
        {msg.hidden && !msg.redacted && (
          <p class="msg-state hidden-note">Hidden from members by this room’s moderation (see the review queue)</p>
        )}
        {reported && (
          <p class="msg-state" role="status">
            Reported to the room’s moderators.
          </p>
        )}
      </div>
      {real && !msg.redacted && !editing && (
        <div class="msg-actions" role="toolbar" aria-label={`Actions for message from ${name}`}>
          <button
            type="button"
            class="icon-button small"
            aria-label="Add reaction"
            aria-expanded={picker}
            title="Add reaction"
            onClick={() => setPicker((p) => !p)}
          >
            <Icon name="smile" size={16} />
          </button>
          <button
            type="button"
            class="icon-button small"
            aria-label="Reply"
            title="Reply"
            onClick={() => ctx.startReply(msg.id)}
          >
            <Icon name="reply" size={16} />
          </button>
          {!ctx.inThread && !msg.thread && (
            <button
              type="button"
              class="icon-button small"
              aria-label="Reply in thread"
              title="Reply in thread"
              onClick={() => ctx.openThread(msg.id)}
            >
              <Icon name="thread" size={16} />
            </button>
          )}
          {mine && (
            <button
              type="button"
              class="icon-button small"
              aria-label="Edit"
              title="Edit"
              onClick={() => ctx.startEdit(msg.id)}
            >
              <Icon name="edit" size={16} />
            </button>
          )}
          {!mine && !reported && (
            <button
              type="button"
              class="icon-button small"
              aria-label="Report"
              title="Report to the room’s moderators"
              onClick={() => {
                void ask({
                  title: 'Report message',
                  text: `Report this message from ${name} to the room’s moderators?`,
                  action: 'Report',
                }).then((yes) => {
                  if (yes) void act(report(msg.id).then(() => setReported(true)));
                });
              }}
            >
              <Icon name="flag" size={16} />
            </button>
          )}
          {canDelete && (
            <button
              type="button"
              class="icon-button small danger"
              aria-label="Delete"
              title="Delete"
              onClick={() => {
                void ask({
                  title: 'Delete message',
                  text: 'Delete this message for everyone?',
                  action: 'Delete',
                  danger: true,
                }).then((yes) => {
                  if (yes) void act(remove(msg.id));
                });
              }}
            >
              <Icon name="trash" size={16} />
            </button>
          )}
          {picker && (
            <ReactionPicker
              onPick={(key) => {
                setPicker(false);
                const already = !!me && msg.reactions.some((r) => r.key === key && r.users.includes(me));
                if (!already) void act(toggleReaction(msg.id, key));
              }}
              onClose={() => setPicker(false)}
            />
          )}
        </div>
      )}
    </article>
  );
}

function ReactionPicker(props: { onPick: (key: string) => void; onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const [more, setMore] = useState(false);
  useEffect(() => {
    ref.current?.querySelector('button')?.focus();
  }, []);
  return (
    <div
      ref={ref}
      class={`picker${more ? ' wide' : ''}`}
      role="group"
      aria-label="Pick a reaction"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          props.onClose();
        }
      }}
    >
      {QUICK_REACTIONS.map((key) => (
        <button type="button" key={key} aria-label={`React with ${key}`} onClick={() => props.onPick(key)}>
          {key}
        </button>
      ))}
      <button
        type="button"
        class="more-emoji"
        aria-label="More emoji"
        aria-expanded={more}
        title="More emoji"
        onClick={() => setMore((m) => !m)}
      >
        <Icon name="plus" size={16} />
      </button>
      {more && <EmojiSearch onPick={props.onPick} label="All emoji" />}
    </div>
  );
}

function ReplyQuote({ id }: { id: string }) {
  const target = useStore(() => store.msgs.get(id));
  const jump = () => {
    const row = document.querySelector<HTMLElement>(`[data-id="${CSS.escape(id)}"]`);
    if (row) {
      row.scrollIntoView({ block: 'center', behavior: 'smooth' });
      row.focus({ preventScroll: true });
    }
  };
  return (
    <button type="button" class="reply-quote" onClick={jump} aria-label={
      target ? `In reply to ${nameOf(target.sender)}: ${plainPreview(target.body, 80)}` : 'In reply to an earlier message'
    }>
      <Icon name="reply" size={12} />
      {target ? (
        <>
          <strong>{nameOf(target.sender)}</strong>{' '}
          <span>{target.redacted ? 'Message deleted' : plainPreview(target.body, 100)}</span>
        </>
      ) : (
        <span>an earlier message</span>
      )}
    </button>
  );
}

function EditBox({ msg, onDone }: { msg: Msg; onDone: () => void }) {
  const [text, setText] = useState(msg.body);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const area = ref.current;
    if (!area) return;
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }, []);
  const save = async () => {
    try {
      await edit(msg.id, text);
      onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <div class="edit-box">
      <textarea
        ref={ref}
        aria-label="Edit message"
        value={text}
        rows={Math.min(8, text.split('\n').length + 1)}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            void save();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            e.stopPropagation();
            onDone();
          }
        }}
      />
      <div class="edit-actions">
        <span class="muted small">Enter to save · Esc to cancel</span>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
        <button type="button" class="primary" onClick={() => void save()}>
          Save
        </button>
      </div>
      {error && (
        <p class="error small" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function StateRow({ msg }: { msg: Msg }) {
  useStore(() => store.names);
  return (
    <div class="sys" data-id={msg.id}>
      <span>{describe(msg)}</span>{' '}
      <time dateTime={new Date(msg.ts).toISOString()} title={formatFull(msg.ts)}>
        {formatTime(msg.ts)}
      </time>
    </div>
  );
}

/** A sentence for a state event. */
export function describe(msg: Msg): string {
  const c = msg.content;
  const who = nameOf(msg.sender);
  const target = typeof c.target === 'string' ? nameOf(c.target) : '';
  switch (msg.type) {
    case 'create':
      return `${who} created the room`;
    case 'member':
      switch (c.membership) {
        case 'join':
          return `${target} joined`;
        case 'invite':
          return `${who} invited ${target}`;
        case 'leave':
          return c.target === msg.sender ? `${target} left` : `${who} removed ${target}`;
        case 'ban':
          return `${who} banned ${target}`;
        case 'knock':
          return `${target} asked to join`;
      }
      return `${who} changed the membership of ${target}`;
    case 'name':
      return c.name ? `${who} named the room “${String(c.name)}”` : `${who} removed the room name`;
    case 'topic':
      return c.topic ? `${who} set the topic to “${String(c.topic)}”` : `${who} cleared the topic`;
    case 'join_rule':
      return c.join_rule === 'public'
        ? `${who} made the room public`
        : `${who} made the room ${c.join_rule === 'knock' ? 'open to requests' : 'invite-only'}`;
    case 'history_visibility':
      return `${who} changed who can read the history`;
    case 'role':
      return c.deleted ? `${who} deleted the role “${String(c.name)}”` : `${who} set up the role “${String(c.name)}”`;
    case 'member_roles':
      return `${who} changed the roles of ${target}`;
    case 'timeout':
      return Number(c.until_ms) > Date.now()
        ? `${who} timed out ${target} until ${formatFull(Number(c.until_ms))}`
        : `${who} lifted the timeout of ${target}`;
    case 'slowmode':
      return Number(c.seconds) > 0
        ? `${who} set slow mode to ${Number(c.seconds)} s`
        : `${who} turned slow mode off`;
    case 'pins':
      return `${who} changed the pinned messages`;
    case 'encryption':
      return `${who} turned on encryption`;
    default:
      return `${who} changed the room (${msg.type})`;
  }
}

/** A message's files: images as thumbnails that open a lightbox, the rest
 *  as chips that download. */
function Attachments({ list }: { list: AttachmentJson[] }) {
  if (list.length === 0) return null;
  return (
    <div class="attachments">
      {list.map((a) => (isImage(a) ? <ImageAttachment key={a.hash} a={a} /> : <FileChip key={a.hash} a={a} />))}
    </div>
  );
}

/** An object URL of an authorized download, once it has arrived. */
function useBlobUrl(path: string | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setUrl(null);
    if (path) void blobUrl(path).then((u) => live && setUrl(u), () => {});
    return () => {
      live = false;
    };
  }, [path]);
  return url;
}

function ImageAttachment({ a }: { a: AttachmentJson }) {
  const [open, setOpen] = useState(false);
  const thumb = useBlobUrl(thumbnailPath(a, 512));
  const full = useBlobUrl(open ? mediaPath(a) : null);
  // Fit the 512 px thumbnail box, keeping the aspect ratio the sender's
  // node measured, so the timeline does not jump when it loads.
  const w = a.width ?? 512;
  const h = a.height ?? 512;
  const scale = Math.min(1, 320 / Math.max(w, h));
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [open]);
  return (
    <>
      <button type="button" class="attachment-image" aria-label={`Open image ${a.name}`} onClick={() => setOpen(true)}>
        {thumb ? (
          <img src={thumb} alt={a.name} width={Math.round(w * scale)} height={Math.round(h * scale)} />
        ) : (
          <span class="attachment-placeholder" style={{ width: `${Math.round(w * scale)}px`, height: `${Math.round(h * scale)}px` }} />
        )}
      </button>
      {open && (
        <div class="lightbox" role="dialog" aria-label={`Image ${a.name}`} onClick={() => setOpen(false)}>
          {full ? <img src={full} alt={a.name} /> : <p class="muted">Loading…</p>}
          <button type="button" class="icon-button lightbox-close" aria-label="Close image" onClick={() => setOpen(false)}>
            <Icon name="x" />
          </button>
        </div>
      )}
    </>
  );
}

function FileChip({ a }: { a: AttachmentJson }) {
  return (
    <button type="button" class="file-chip" aria-label={`Download ${a.name}`} onClick={() => void download(a)}>
      <Icon name="file" />
      <span class="file-name">{a.name}</span>
      <span class="muted">
        {formatSize(a.size)} · {a.mime}
      </span>
    </button>
  );
}
