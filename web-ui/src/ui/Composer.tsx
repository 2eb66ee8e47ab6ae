// The message box: Enter sends, Shift+Enter breaks the line, @ completes
// room members, Up in an empty box edits your last message, Escape drops a
// reply. Drafts are kept per room (and per thread) while the page lives.
// Files come from the attach button, a paste or a drop; each uploads at
// once with a progress bar, and the message carries those that finished.

import type { Ref } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { plainPreview } from '../markdown';
import type { AttachmentJson, MediaUpload } from '../api/types';
import { can, formatSize, localpart, nameOf, noteTyping, send, store, uploadFile, useStore } from '../store';
import { formatTime, Icon } from './common';
import { useMyTimeout } from './Roles';

const drafts = new Map<string, string>();
const MAX_SUGGESTIONS = 6;
/** Files on one message: the node takes at most 16. */
const MAX_FILES = 16;

interface PendingFile {
  id: number;
  name: string;
  size: number;
  progress: number;
  done?: MediaUpload;
  error?: string;
}

let fileCounter = 0;

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
  const mutedUntil = useMyTimeout(props.room);
  const canSend = (!entry || entry.info.membership === 'join') && !mutedUntil;
  const [files, setFiles] = useState<PendingFile[]>([]);
  const fileInput = useRef<HTMLInputElement>(null);
  const uploading = files.some((f) => !f.done && !f.error);
  const ready = files.filter((f) => f.done);

  const patchFile = (id: number, patch: Partial<PendingFile>) =>
    setFiles((list) => list.map((f) => (f.id === id ? { ...f, ...patch } : f)));

  const addFiles = (list: FileList | File[] | null | undefined) => {
    if (!list || !canSend) return;
    for (const file of Array.from(list).slice(0, MAX_FILES)) {
      const id = ++fileCounter;
      const name = file.name || (file.type.startsWith('image/') ? 'pasted-image' : 'file');
      setFiles((all) => (all.length >= MAX_FILES ? all : [...all, { id, name, size: file.size, progress: 0 }]));
      uploadFile(file, name, (progress) => patchFile(id, { progress })).then(
        (done) => patchFile(id, { done, progress: 1 }),
        (error: unknown) => patchFile(id, { error: error instanceof Error ? error.message : 'Upload failed.' }),
      );
    }
  };

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
    if ((!body && ready.length === 0) || !canSend || uploading) return;
    const attachments: AttachmentJson[] = ready.map((f) => ({
      hash: f.done!.hash,
      size: f.done!.size,
      mime: f.done!.mime,
      name: f.done!.name,
      width: f.done!.width,
      height: f.done!.height,
      node: '',
    }));
    update('', 0);
    setFiles([]);
    void send(props.room, body, { replyTo: props.replyTo ?? null, thread: props.thread ?? null, attachments });
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
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
      }}
      onDrop={(e) => {
        if (!e.dataTransfer?.files.length) return;
        e.preventDefault();
        addFiles(e.dataTransfer.files);
      }}
    >
      {files.length > 0 && (
        <ul class="pending-files" aria-label="Files to send">
          {files.map((f) => (
            <li key={f.id} class={f.error ? 'failed' : undefined}>
              <span class="file-name">{f.name}</span>
              <span class="muted">{formatSize(f.size)}</span>
              {f.error ? (
                <span role="alert">{f.error}</span>
              ) : (
                <progress
                  max={1}
                  value={f.progress}
                  aria-label={`Uploading ${f.name}`}
                  aria-valuetext={f.done ? 'uploaded' : `${Math.round(f.progress * 100)}%`}
                />
              )}
              <button
                type="button"
                class="icon-button small"
                aria-label={`Remove ${f.name}`}
                onClick={() => setFiles((all) => all.filter((x) => x.id !== f.id))}
              >
                <Icon name="x" size={14} />
              </button>
            </li>
          ))}
        </ul>
      )}
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
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-label="Choose files"
          onChange={(e) => {
            addFiles(e.currentTarget.files);
            e.currentTarget.value = '';
          }}
        />
        <button
          type="button"
          class="icon-button"
          aria-label="Attach files"
          title="Attach files"
          disabled={!canSend}
          onClick={() => fileInput.current?.click()}
        >
          <Icon name="paperclip" />
        </button>
        <textarea
          ref={setArea}
          rows={1}
          aria-label={props.label}
          placeholder={
            canSend
              ? props.label
              : mutedUntil
                ? `You are timed out until ${formatTime(mutedUntil)}`
                : 'Join the room to send messages'
          }
          disabled={!canSend}
          value={text}
          aria-controls={open ? listId : undefined}
          aria-autocomplete="list"
          aria-activedescendant={open ? `${listId}-${active}` : undefined}
          onInput={(e) => update(e.currentTarget.value, e.currentTarget.selectionStart ?? 0)}
          onKeyUp={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onClick={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
          onKeyDown={onKeyDown}
          onPaste={(e) => {
            const pasted = e.clipboardData?.files;
            if (pasted && pasted.length > 0) {
              e.preventDefault();
              addFiles(pasted);
            }
          }}
          maxLength={16000}
        />
        <button
          type="submit"
          class="send icon-button"
          aria-label="Send"
          title="Send (Enter)"
          disabled={!canSend || uploading || (!text.trim() && ready.length === 0)}
        >
          <Icon name="send" />
        </button>
      </div>
    </form>
  );
}
