// The threads of a room, from its header: the loaded messages that have
// replies, newest first; choosing one opens it in the side panel.

import { useContext, useState } from 'preact/hooks';
import { plainPreview } from '../markdown';
import { nameOf, store, useStore } from '../store';
import { formatTime, Icon } from './common';
import { RoomContext } from './room-context';

export function ThreadsButton({ room }: { room: string }) {
  const ctx = useContext(RoomContext)!;
  const [open, setOpen] = useState(false);
  const ids = useStore(() => store.rooms.get(room)?.timeline.ids);
  const msgs = useStore(() => store.msgs);
  const roots = (ids ?? [])
    .map((id) => msgs.get(id))
    .filter((m) => !!m && m.type === 'message' && m.threadCount > 0 && !m.redacted)
    .reverse();
  return (
    <div class="mentions-wrap">
      <button
        type="button"
        class="icon-button"
        aria-label={`Threads (${roots.length})`}
        aria-expanded={open}
        title="Threads"
        onClick={() => setOpen((o) => !o)}
      >
        <Icon name="thread" />
      </button>
      {open && (
        <div
          class="mentions-pop"
          role="dialog"
          aria-label="Threads"
          onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}
        >
          {roots.length === 0 ? (
            <p class="muted small">No threads in the messages loaded here.</p>
          ) : (
            <ul role="list">
              {roots.map((m) => (
                <li key={m!.id}>
                  <button
                    type="button"
                    class="mention-hit"
                    onClick={() => {
                      setOpen(false);
                      ctx.openThread(m!.id);
                    }}
                  >
                    <span class="mention-who">
                      {nameOf(m!.sender)} <time class="muted">{formatTime(m!.ts)}</time> ·{' '}
                      {m!.threadCount} {m!.threadCount === 1 ? 'reply' : 'replies'}
                    </span>
                    <span class="mention-text">{plainPreview(m!.body, 140)}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
