// A room's review queue, for its moderators on this node (loaded on first
// open): messages the node's moderation hid or flagged and messages people
// reported, each with what can be done about it. Reveal is the node's own
// decision; delete, time out, remove and ban are the room's ordinary
// protocol events. Once acted on, an item is resolved (taken off the
// queue); a hidden message leaves it by being revealed or deleted.

import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api/client';
import type { EventJson } from '../api/types';
import { ask, can, markRevealed, moderate, nameOf, store } from '../store';
import { Dialog, FieldError, formatFull } from './common';

interface QueueItem {
  event_id: string;
  hidden: boolean;
  flagged: boolean;
  labels: string[];
  at_ms: number;
  revealed_by: string | null;
  reported_by: string[];
  event: EventJson;
}

/** The classifier's labels as people say them. */
const LABELS: Record<string, string> = {
  insult: 'insult',
  threat: 'threat',
  self_harm: 'self-harm',
  sexual: 'sexual content',
  hate: 'hate',
};

export function labelText(labels: string[]): string {
  return labels.map((l) => LABELS[l] ?? l).join(', ');
}

/** What brought an item here, in a few words. */
function why(item: QueueItem): string {
  const parts: string[] = [];
  if (item.hidden) parts.push(`Hidden: ${labelText(item.labels)}`);
  else if (item.revealed_by) parts.push(`Revealed by ${nameOf(item.revealed_by)}`);
  else if (item.flagged) parts.push(`Flagged: ${labelText(item.labels)}`);
  const n = item.reported_by.length;
  if (n) parts.push(`reported by ${n === 1 ? nameOf(item.reported_by[0]) : `${n} people`}`);
  return parts.join(' · ');
}

export function ReviewQueueDialog({ room, onClose }: { room: string; onClose: () => void }) {
  const [items, setItems] = useState<QueueItem[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const entry = store.rooms.get(room);
  const base = `/api/v1/rooms/${seg(room)}`;
  const reload = async () => {
    const queue = await api<{ items: QueueItem[] }>('GET', `${base}/moderation/queue`);
    setItems(queue.items);
  };
  useEffect(() => {
    reload().catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [room]);

  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      await reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  const resolve = (item: QueueItem) => api('DELETE', `${base}/moderation/queue/${seg(item.event_id)}`);
  /** Acts on the sender, then resolves the item unless the message is still
   *  hidden (it stays queued to be revealed or deleted). */
  const onSender = (item: QueueItem, verb: string, work: () => Promise<unknown>) =>
    void ask({
      title: `${verb} ${nameOf(item.event.sender)}`,
      text: `${verb} ${nameOf(item.event.sender)} in this room?`,
      action: verb,
      danger: true,
    }).then((yes) => {
      if (yes)
        void run(async () => {
          await work();
          if (!item.hidden) await resolve(item);
        });
    });

  return (
    <Dialog title="Review queue" onClose={onClose} wide>
      {items === null ? (
        <p class="muted">{error ?? 'Loading…'}</p>
      ) : items.length === 0 ? (
        <p class="muted">Nothing to review in this room.</p>
      ) : (
        <ul class="security-list review-queue" aria-label="Messages to review">
          {items.map((item) => {
            const sender = item.event.sender;
            const body = item.event.edited?.body ?? (item.event.content as { body?: string }).body ?? '';
            return (
              <li key={item.event_id} data-id={item.event_id} class={item.hidden ? 'hidden-item' : undefined}>
                <div class="security-info">
                  <strong>
                    {nameOf(sender)} <span class="muted small">{formatFull(item.event.origin_ts)}</span>
                  </strong>
                  <span class="review-why">{why(item)}</span>
                  <p class="review-body">{body}</p>
                  <div class="row admin-actions" role="group" aria-label={`Actions for the message from ${nameOf(sender)}`}>
                    {item.hidden ? (
                      <button
                        type="button"
                        class="primary"
                        disabled={busy}
                        onClick={() =>
                          void run(async () => {
                            await api('POST', `${base}/messages/${seg(item.event_id)}/reveal`);
                            markRevealed(item.event_id);
                            await resolve(item);
                          })
                        }
                      >
                        Reveal
                      </button>
                    ) : (
                      <button type="button" disabled={busy} onClick={() => void run(() => resolve(item))}>
                        Dismiss
                      </button>
                    )}
                    <button
                      type="button"
                      class="danger"
                      disabled={busy}
                      onClick={() =>
                        void ask({
                          title: 'Delete message',
                          text: 'Delete this message for everyone?',
                          action: 'Delete',
                          danger: true,
                        }).then((yes) => {
                          if (yes) void run(() => api('DELETE', `${base}/messages/${seg(item.event_id)}`));
                        })
                      }
                    >
                      Delete
                    </button>
                    {can(entry, 'timeout') && (
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() =>
                          onSender(item, 'Time out', () =>
                            api('PUT', `${base}/members/${seg(sender)}/timeout`, {
                              seconds: 3600,
                              reason: 'from the review queue',
                            }),
                          )
                        }
                      >
                        Time out 1 h
                      </button>
                    )}
                    {can(entry, 'kick') && (
                      <button
                        type="button"
                        disabled={busy}
                        onClick={() => onSender(item, 'Remove', () => moderate(room, 'kick', sender))}
                      >
                        Remove
                      </button>
                    )}
                    {can(entry, 'ban') && (
                      <button
                        type="button"
                        class="danger"
                        disabled={busy}
                        onClick={() => onSender(item, 'Ban', () => moderate(room, 'ban', sender))}
                      >
                        Ban
                      </button>
                    )}
                  </div>
                </div>
              </li>
            );
          })}
        </ul>
      )}
      <FieldError error={error} />
    </Dialog>
  );
}
