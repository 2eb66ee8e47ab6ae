// Search: a dialog (Ctrl+K or "/") with the query, filters and hits; a hit
// opens its room at that message, which flashes briefly.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { SearchHit } from '../api/types';
import { navigate, roomPath } from '../router';
import { nameOf, reveal, roomName, search, store, useStore } from '../store';
import { Dialog, FieldError, formatFull, value } from './common';
import { REVEAL_EVENT } from './Timeline';

/** Wait this long after the last keystroke before asking the node. */
const TYPING_MS = 250;
/** Characters of a hit's body shown around its first highlight. */
const SNIPPET_CHARS = 160;

/** `body` cut to about SNIPPET_CHARS code points around the first highlight,
 *  as plain and highlighted pieces. */
export function snippet(body: string, highlights: [number, number][]): { text: string; mark: boolean }[] {
  const chars = Array.from(body);
  const first = highlights[0]?.[0] ?? 0;
  const start = Math.max(0, Math.min(first - 40, chars.length - SNIPPET_CHARS));
  const end = Math.min(chars.length, start + SNIPPET_CHARS);
  const pieces: { text: string; mark: boolean }[] = [];
  let at = start;
  for (const [a, b] of highlights) {
    if (b <= start || a >= end) continue;
    const from = Math.max(a, start);
    const to = Math.min(b, end);
    if (from > at) pieces.push({ text: chars.slice(at, from).join(''), mark: false });
    pieces.push({ text: chars.slice(from, to).join(''), mark: true });
    at = to;
  }
  if (at < end) pieces.push({ text: chars.slice(at, end).join(''), mark: false });
  if (start > 0) pieces.unshift({ text: '…', mark: false });
  if (end < chars.length) pieces.push({ text: '…', mark: false });
  return pieces;
}

/** Opens `hit`'s room and shows the message in context, flashing it. */
export async function openHit(hit: SearchHit): Promise<void> {
  navigate(roomPath(hit.room_id));
  if (!(await reveal(hit.room_id, hit.event_id))) return;
  // After the timeline rendered the row.
  requestAnimationFrame(() =>
    dispatchEvent(new CustomEvent(REVEAL_EVENT, { detail: hit.event_id })),
  );
}

export function SearchDialog(props: { onClose: () => void; room: string | null }) {
  const [q, setQ] = useState('');
  const [here, setHere] = useState(false);
  const [has, setHas] = useState<'' | 'file' | 'image' | 'link'>('');
  const [order, setOrder] = useState<'relevance' | 'recent'>('relevance');
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const asked = useRef(0);
  useStore(() => store.names);
  useStore(() => store.rooms);

  const run = async (cursor: string | null) => {
    const text = q.trim();
    if (!text && !has) {
      setHits(null);
      setError(null);
      return;
    }
    const ticket = ++asked.current;
    setBusy(true);
    try {
      const page = await search({
        q: text,
        room: here ? props.room : null,
        has: has || null,
        order,
        cursor,
      });
      if (ticket !== asked.current) return;
      setHits((before) => (cursor && before ? [...before, ...page.results] : page.results));
      setNext(page.next_cursor);
      setTotal(page.estimated_total);
      setError(null);
    } catch (err) {
      if (ticket !== asked.current) return;
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      if (ticket === asked.current) setBusy(false);
    }
  };

  useEffect(() => {
    const timer = setTimeout(() => void run(null), TYPING_MS);
    return () => clearTimeout(timer);
  }, [q, here, has, order]);

  const open = (hit: SearchHit) => {
    props.onClose();
    void openHit(hit);
  };

  return (
    <Dialog title="Search messages" onClose={props.onClose} wide>
      <form
        class="stack search-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void run(null);
        }}
      >
        <label class="search">
          <span class="visually-hidden">Search messages</span>
          <input
            type="search"
            name="q"
            placeholder='Words, "a phrase", from:@user:~node, has:link'
            value={q}
            autoFocus
            maxLength={512}
            onInput={(e) => setQ(value(e))}
          />
        </label>
        <div class="row search-filters">
          {props.room && (
            <label class="check">
              <input type="checkbox" checked={here} onChange={(e) => setHere((e.target as HTMLInputElement).checked)} />
              This room only
            </label>
          )}
          <label>
            Has{' '}
            <select value={has} onChange={(e) => setHas((e.target as HTMLSelectElement).value as typeof has)}>
              <option value="">anything</option>
              <option value="file">a file</option>
              <option value="image">an image</option>
              <option value="link">a link</option>
            </select>
          </label>
          <label>
            Order{' '}
            <select value={order} onChange={(e) => setOrder((e.target as HTMLSelectElement).value as typeof order)}>
              <option value="relevance">best match</option>
              <option value="recent">newest</option>
            </select>
          </label>
        </div>
      </form>
      <FieldError error={error} />
      {hits === null ? (
        <p class="muted small">Search every room you can read. Press Enter to search now.</p>
      ) : hits.length === 0 && !busy ? (
        <p class="muted">No messages match.</p>
      ) : (
        <>
          <p class="muted small" aria-live="polite">
            {busy ? 'Searching…' : `About ${total} ${total === 1 ? 'message' : 'messages'}`}
          </p>
          <ul class="search-hits" role="list" aria-label="Search results">
            {hits.map((hit) => {
              const entry = store.rooms.get(hit.room_id);
              return (
                <li key={hit.event_id}>
                  <button type="button" class="search-hit" data-event={hit.event_id} onClick={() => open(hit)}>
                    <span class="search-hit-head">
                      <strong>{nameOf(hit.sender)}</strong>
                      <span class="muted small">
                        {entry ? roomName(entry) : 'a room'} · {formatFull(hit.origin_ts)}
                      </span>
                    </span>
                    <span class="search-hit-body">
                      {snippet(hit.body, hit.highlights).map((piece, i) =>
                        piece.mark ? <mark key={i}>{piece.text}</mark> : <span key={i}>{piece.text}</span>,
                      )}
                    </span>
                  </button>
                </li>
              );
            })}
          </ul>
          {next && (
            <button type="button" class="link" disabled={busy} onClick={() => void run(next)}>
              More results
            </button>
          )}
        </>
      )}
    </Dialog>
  );
}
