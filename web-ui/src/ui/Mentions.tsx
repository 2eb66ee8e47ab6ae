// The mentions of the user in a room, from its header: a list of the
// loaded messages that name them (or @room), newest first; choosing one
// shows it in the timeline.

import { useState } from 'preact/hooks';
import { plainPreview } from '../markdown';
import { nameOf, reveal, store, useStore } from '../store';
import { formatTime, Icon } from './common';
import { REVEAL_EVENT } from './Timeline';

/** Mentions listed at most. */
const MAX_LISTED = 50;

export function MentionsButton({ room }: { room: string }) {
  const [open, setOpen] = useState(false);
  const ids = useStore(() => store.rooms.get(room)?.timeline.ids);
  const msgs = useStore(() => store.msgs);
  const me = store.me?.user_id;
  const found: string[] = [];
  for (let i = (ids?.length ?? 0) - 1; i >= 0 && found.length < MAX_LISTED; i--) {
    const msg = msgs.get(ids![i]);
    if (!msg || msg.type !== 'message' || msg.redacted || msg.sender === me) continue;
    if ((me && msg.mentions.users.includes(me)) || msg.mentions.room) found.push(msg.id);
  }
  const show = async (id: string) => {
    setOpen(false);
    if (!(await reveal(room, id))) return;
    requestAnimationFrame(() => dispatchEvent(new CustomEvent(REVEAL_EVENT, { detail: id })));
  };
  return (
    <div class="mentions-wrap">
      <button
        type="button"
        class="icon-button"
        aria-label={`Mentions of you (${found.length})`}
        aria-expanded={open}
        title="Mentions of you"
        onClick={() => setOpen((o) => !o)}
      >
        <Icon name="at" />
        {found.length > 0 && (
          <span class="count" aria-hidden="true">
            {found.length}
          </span>
        )}
      </button>
      {open && (
        <div
          class="mentions-pop"
          role="dialog"
          aria-label="Mentions of you"
          onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}
        >
          {found.length === 0 ? (
            <p class="muted small">No one mentioned you in the messages loaded here.</p>
          ) : (
            <ul role="list">
              {found.map((id) => {
                const msg = msgs.get(id)!;
                return (
                  <li key={id}>
                    <button type="button" class="mention-hit" onClick={() => void show(id)}>
                      <span class="mention-who">
                        {nameOf(msg.sender)} <time class="muted">{formatTime(msg.ts)}</time>
                      </span>
                      <span class="mention-text">{plainPreview(msg.body, 140)}</span>
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
