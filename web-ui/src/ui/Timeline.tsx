// A scrolling list of messages that keeps the reader's place.
//
// Two rules: a reader at the bottom stays at the bottom as messages arrive;
// anyone else keeps the message they are looking at where it is, whatever
// changes above it (older history loaded, a reaction or an edit that
// changes a row's height). The browser's own scroll anchoring does this in
// some cases; we do it ourselves in all of them, so it is turned off in CSS.
// After every scroll and every size change we note the first visible row
// and its offset; when the list's size changes, we put that row back.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { nameOf, store, type Msg } from '../store';
import { dayLabel, formatTime, Icon } from './common';
import { Row } from './Message';

/** Within this many pixels of the end counts as "at the bottom". */
const BOTTOM_SLACK = 48;
/** Start fetching older history this far from the top. */
const LOAD_AHEAD = 400;
/** Dispatched on `window` with a message id as `detail`: the timeline that
 *  holds the message scrolls to it (search results). */
export const REVEAL_EVENT = 'spaces-reveal';
/** Messages from one sender closer than this share a header. */
const GROUP_MS = 5 * 60_000;

interface Props {
  ids: string[];
  label: string;
  hasMore: boolean;
  loading: boolean;
  loadOlder?: () => void;
  onBottom?: (atBottom: boolean) => void;
  head?: preact.ComponentChildren;
  empty?: string;
  /** The first unread message: a "New messages" divider goes above it,
   *  and the list opens there rather than at the bottom. */
  divider?: string | null;
}

/** The landing point sits this far down the view (a fraction of its height). */
const LAND_AT = 0.25;

export function Timeline(props: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ id: string; offset: number } | null>(null);
  const [atBottom, setAtBottom] = useState(true);
  const atBottomRef = useRef(true);
  /** Landed at the divider already (once per list). */
  const landed = useRef(false);
  const [dividerAbove, setDividerAbove] = useState(false);
  // Observers outlive a render: they read the latest props through here.
  const latest = useRef(props);
  latest.current = props;

  const record = () => {
    const el = scroller.current;
    const rows = list.current?.children;
    if (!el || !rows) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < BOTTOM_SLACK;
    stick.current = bottom;
    if (bottom !== atBottomRef.current) {
      atBottomRef.current = bottom;
      setAtBottom(bottom);
      latest.current.onBottom?.(bottom);
    }
    // Binary search for the first row whose bottom edge is below the top.
    let lo = 0;
    let hi = rows.length - 1;
    let first = rows.length;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const row = rows[mid] as HTMLElement;
      if (row.offsetTop + row.offsetHeight > el.scrollTop) {
        first = mid;
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    // Day separators move when older rows arrive: anchor on a real row.
    let found: HTMLElement | null = null;
    for (let i = first; i < rows.length && !found; i++) {
      const row = rows[i] as HTMLElement;
      if (row.dataset.id) found = row;
    }
    const id = found?.dataset.id;
    anchor.current = found && id ? { id, offset: found.offsetTop - el.scrollTop } : null;
    const divider = list.current?.querySelector<HTMLElement>('.new-divider');
    setDividerAbove(!!divider && divider.offsetTop + divider.offsetHeight <= el.scrollTop);
  };
  /** Puts the divider a quarter down the view; false when it is not rendered. */
  const toDivider = () => {
    const el = scroller.current;
    const divider = list.current?.querySelector<HTMLElement>('.new-divider');
    if (!el || !divider) return false;
    stick.current = false;
    el.scrollTop = Math.max(0, divider.offsetTop - el.clientHeight * LAND_AT);
    record();
    return true;
  };
  const restore = () => {
    const el = scroller.current;
    if (!el) return;
    if (stick.current) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor.current) {
      const row = list.current?.querySelector<HTMLElement>(`[data-id="${CSS.escape(anchor.current.id)}"]`);
      if (row) {
        const delta = row.offsetTop - el.scrollTop - anchor.current.offset;
        if (delta !== 0) el.scrollTop += delta;
      }
    }
    record();
  };

  // Any change of the list's height: restore the reader's place.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const observer = new ResizeObserver(() => restore());
    observer.observe(el);
    const outer = new ResizeObserver(() => restore());
    if (scroller.current) outer.observe(scroller.current);
    return () => {
      observer.disconnect();
      outer.disconnect();
    };
  }, []);

  // New rows (appended, prepended, swapped): same rule, right after render.
  useLayoutEffect(() => {
    if (props.divider && !landed.current && toDivider()) landed.current = true;
    else restore();
    maybeLoad();
  }, [props.ids, props.divider]);

  const maybeLoad = () => {
    const el = scroller.current;
    const { loadOlder, hasMore, loading } = latest.current;
    if (!el || !loadOlder || !hasMore || loading) return;
    if (el.scrollTop < LOAD_AHEAD) loadOlder();
  };

  useEffect(() => {
    maybeLoad();
  }, [props.hasMore, props.loading]);

  // A search hit opened in this list: centre its row, keep the reader's
  // place there (not at the bottom), and flash it.
  useEffect(() => {
    const onReveal = (e: Event) => {
      const id = (e as CustomEvent<string>).detail;
      const el = scroller.current;
      const row = list.current?.querySelector<HTMLElement>(`[data-id="${CSS.escape(id)}"]`);
      if (!el || !row) return;
      stick.current = false;
      el.scrollTop = row.offsetTop - (el.clientHeight - row.offsetHeight) / 2;
      record();
      row.focus({ preventScroll: true });
      row.classList.add('flash');
      setTimeout(() => row.classList.remove('flash'), 2000);
    };
    addEventListener(REVEAL_EVENT, onReveal);
    return () => removeEventListener(REVEAL_EVENT, onReveal);
  }, []);

  const toBottom = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = true;
    el.scrollTop = el.scrollHeight;
    record();
  };

  const rows: preact.VNode[] = [];
  let previous: Msg | undefined;
  const lastMessage = findLastMessage(props.ids);
  const ids = props.ids;
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    const msg = store.msgs.get(id);
    if (!msg) continue;
    const day = dayLabel(msg.ts);
    if (!previous || dayLabel(previous.ts) !== day) {
      rows.push(
        <div class="day" role="separator" key={`day-${id}`}>
          <span>{day}</span>
        </div>,
      );
    }
    // Several people joining in a row: one light line.
    if (isJoin(msg)) {
      const group = [id];
      while (k + 1 < ids.length) {
        const next = store.msgs.get(ids[k + 1]);
        if (!next || !isJoin(next) || ids[k + 1] === props.divider || dayLabel(next.ts) !== day) break;
        group.push(ids[++k]);
      }
      if (group.length > 1) {
        rows.push(<JoinGroup key={id} ids={group} />);
        previous = store.msgs.get(group[group.length - 1]);
        continue;
      }
    }
    const isDivider = id === props.divider;
    if (isDivider) {
      rows.push(
        <div class="new-divider" role="separator" aria-label="New messages" key="new-divider">
          <span>New messages</span>
        </div>,
      );
    }
    const continued =
      !isDivider &&
      !!previous &&
      previous.type === 'message' &&
      msg.type === 'message' &&
      previous.sender === msg.sender &&
      dayLabel(previous.ts) === day &&
      msg.ts - previous.ts < GROUP_MS &&
      !msg.replyTo;
    rows.push(<Row key={id} id={id} continued={continued} tabStop={id === lastMessage} />);
    previous = msg;
  }

  return (
    <div class="timeline-wrap">
      <div
        class="timeline"
        ref={scroller}
        role="log"
        aria-label={props.label}
        aria-busy={props.loading}
        onScroll={() => {
          record();
          maybeLoad();
        }}
      >
        <div class="timeline-top">
          {props.loading ? (
            <p class="muted small" aria-live="polite">
              Loading older messages…
            </p>
          ) : !props.hasMore ? (
            props.head
          ) : props.loadOlder ? (
            <button type="button" class="link small" onClick={props.loadOlder}>
              Load older messages
            </button>
          ) : null}
        </div>
        <div class="rows" ref={list}>
          {rows}
        </div>
        {props.ids.length === 0 && !props.loading && props.empty && (
          <p class="muted empty">{props.empty}</p>
        )}
      </div>
      {dividerAbove && (
        <button type="button" class="jump jump-unread" onClick={toDivider}>
          <Icon name="up" size={16} /> Jump to first unread
        </button>
      )}
      {!atBottom && (
        <button type="button" class="jump" onClick={toBottom}>
          <Icon name="down" size={16} /> Jump to latest
        </button>
      )}
    </div>
  );
}

function findLastMessage(ids: string[]): string | undefined {
  for (let i = ids.length - 1; i >= 0; i--) {
    if (store.msgs.get(ids[i])?.type === 'message') return ids[i];
  }
  return undefined;
}

function isJoin(msg: Msg): boolean {
  return msg.type === 'member' && msg.content.membership === 'join';
}

/** "bob and carol joined", "5 people joined" (names in the tooltip). */
function JoinGroup({ ids }: { ids: string[] }) {
  const names = ids.map((id) => {
    const target = store.msgs.get(id)?.content.target;
    return typeof target === 'string' ? nameOf(target) : '?';
  });
  const last = store.msgs.get(ids[ids.length - 1]);
  const text = names.length === 2 ? `${names[0]} and ${names[1]} joined` : `${names.length} people joined`;
  return (
    <div class="sys sys-group" data-id={ids[0]} title={names.join(', ')}>
      <span>{text}</span>{' '}
      {last && <time dateTime={new Date(last.ts).toISOString()}>{formatTime(last.ts)}</time>}
    </div>
  );
}
