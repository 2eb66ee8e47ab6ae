// The message box: Enter sends, Shift+Enter breaks the line, @ completes
// room members, Up in an empty box edits your last message, Escape drops a
// reply. Drafts are kept per room (and per thread) while the page lives.

import type { Ref } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { plainPreview } from '../markdown';
import { can, localpart, nameOf, noteTyping, send, store, useStore } from '../store';
import { Icon } from './common';

const drafts = new Map<string, string>();
const MAX_SUGGESTIONS = 6;

interface Props {
  room: string;
  thread?: string;
  label: string;
  replyTo?: string | null;
  onCancelReply?: () => void;
  onEditLast?: () => void;
  inputRef?: Ref<HTMLTextAreaElement>;
}

export function Composer(props: Props) {
  const key = props.thread ? `${props.room}/${props.thread}` : props.room;
  const [text, setText] = useState(() => drafts.get(key) ?? '');
  const [caret, setCaret] = useState(0);
  const [choice, setChoice] = useState(0);
  const [dismissed, setDismissed] = useState<string | null>(null);
  const own = useRef<HTMLTextAreaElement>(null);
  const entry = useStore(() => store.rooms.get(props.room));
  const replyTarget = useStore(() => (props.replyTo ? store.msgs.get(props.replyTo) : undefined));
  useStore(() => store.names);
  const canSend = !entry || entry.info.membership === 'join';

  useEffect(() => {
    setText(drafts.get(key) ?? '');
  }, [key]);

  const setArea = (el: HTMLTextAreaElement | null) => {
    own.current = el;
    const ref = props.inputRef;
    if (typeof ref === 'function') ref(el);
    else if (ref) ref.current = el;
  };

  // Grow with the text, up to the CSS max-height.
  useLayoutEffect(() => {
    const area = own.current;
    if (!area) return;
    area.style.height = 'auto';
    area.style.height = `${area.scrollHeight}px`;
  }, [text]);

  useEffect(() => {
    if (props.replyTo) own.current?.focus();
  }, [props.replyTo]);

  // The @word being typed, if any.
  const before = text.slice(0, caret);
  const partial = /(^|[^\w@])@([a-z0-9._-]*)$/.exec(before);
  const query = partial ? partial[2] : null;
  const members = entry?.members?.members.filter((m) => m.membership === 'join') ?? [];
  const suggestions =
    query === null || dismissed === before
      ? []
      : [
          ...members
            .filter((m) => m.user_id !== store.me?.user_id)
            .filter(
              (m) =>
                localpart(m.user_id).startsWith(query) ||
                (m.display_name ?? '').toLowerCase().startsWith(query),
            )
            .map((m) => ({ value: localpart(m.user_id), label: nameOf(m.user_id), id: m.user_id })),
          ...('room'.startsWith(query) && can(entry, 'mention_room')
            ? [{ value: 'room', label: 'Everyone in the room', id: '@room' }]
            : []),
        ].slice(0, MAX_SUGGESTIONS);
  const open = suggestions.length > 0;
  const active = Math.min(choice, suggestions.length - 1);

  const update = (value: string, at: number) => {
    setText(value);
    setCaret(at);
    setChoice(0);
    if (value) drafts.set(key, value);
    else drafts.delete(key);
    if (canSend) noteTyping(props.room, value.trim() !== '');
  };

  // Leaving the room (or the page) with a draft is not typing any more.
  useEffect(() => () => noteTyping(props.room, false), [props.room]);

  const complete = (value: string) => {
    if (!partial) return;
    const start = before.length - partial[2].length;
    const next = `${text.slice(0, start)}${value} ${text.slice(caret)}`;
    const at = start + value.length + 1;
    update(next, at);
    // After the re-render puts the text in; not if the user typed on
    // meanwhile (a fast typist's next key would land, then the caret jump
    // back before it).
    requestAnimationFrame(() => {
      const area = own.current;
      if (area && area.value === next) area.setSelectionRange(at, at);
    });
  };

  const submit = () => {
    const body = text.trim();
    if (!body || !canSend) return;
    update('', 0);
    void send(props.room, body, { replyTo: props.replyTo ?? null, thread: props.thread ?? null });
    props.onCancelReply?.();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (open) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const step = e.key === 'ArrowDown' ? 1 : -1;
        setChoice((active + step + suggestions.length) % suggestions.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        complete(suggestions[active].value);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        setDismissed(before);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && props.replyTo) {
      e.preventDefault();
      e.stopPropagation();
      props.onCancelReply?.();
    } else if (e.key === 'ArrowUp' && text === '' && props.onEditLast) {
      e.preventDefault();
      props.onEditLast();
    }
  };

  const listId = `mentions-${key.replace(/\W/g, '')}`;
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {props.replyTo && (
        <div class="replying" role="status">
          <Icon name="reply" size={14} />
          <span>
            Replying to <strong>{replyTarget ? nameOf(replyTarget.sender) : 'a message'}</strong>
            {replyTarget && !replyTarget.redacted ? `: ${plainPreview(replyTarget.body, 80)}` : ''}
          </span>
          <button
            type="button"
            class="icon-button small"
            aria-label="Cancel reply"
            onClick={props.onCancelReply}
          >
            <Icon name="x" size={14} />
          </button>
        </div>
      )}
      {open && (
        <ul class="suggestions" id={listId} role="listbox" aria-label="Mention someone">
          {suggestions.map((s, i) => (
            <li
              key={s.id}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active}
              onMouseDown={(e) => {
                e.preventDefault();
                complete(s.value);
              }}
            >
              <strong>@{s.value}</strong> <span class="muted">{s.label}</span>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        <textarea
          ref={setArea}
          rows={1}
          aria-label={props.label}
          placeholder={canSend ? props.label : 'Join the room to send messages'}
          disabled={!canSend}
          value={text}
          aria-controls={open ? listId : undefined}
          aria-autocomplete="list"
          aria-activedescendant={open ? `${listId}-${active}` : undefined}
          onInput={(e) => update(e.currentTarget.value, e.currentTarget.selectionStart ?? 0)}
          onKeyUp={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onClick={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onKeyDown={onKeyDown}
          maxLength={16000}
        />
        <button
          type="submit"
          class="send icon-button"
          aria-label="Send"
          title="Send (Enter)"
          disabled={!canSend || !text.trim()}
        >
          <Icon name="send" />
        </button>
      </div>
    </form>
  );
}
