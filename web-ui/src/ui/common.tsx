// Small shared pieces: icons, avatars, dialogs, time formatting.

import {
  Component,
  h,
  type ComponentChildren,
  type ComponentType,
  type FunctionComponent,
  type TargetedEvent,
} from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { nameOf } from '../store';
import { useAvatarImage } from './avatar';

type Shape = string | { c: [number, number, number] };

const ICONS: Record<string, Shape[]> = {
  plus: ['M12 5v14M5 12h14'],
  x: ['M18 6 6 18M6 6l12 12'],
  back: ['M19 12H5M12 19l-7-7 7-7'],
  hash: ['M4 9h16M4 15h16M10 3 8 21M16 3l-2 18'],
  lock: ['M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4'],
  users: [
    'M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M23 21v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75',
    { c: [9, 7, 4] },
  ],
  sliders: ['M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6'],
  search: [{ c: [11, 11, 7] }, 'm21 21-4.35-4.35'],
  chat: ['M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z'],
  reply: ['M9 14 4 9l5-5M20 20v-7a4 4 0 0 0-4-4H4'],
  thread: ['M21 11.5a8.38 8.38 0 0 1-9 8.5 8.5 8.5 0 0 1-3.8-.9L3 21l1.9-5.7A8.5 8.5 0 0 1 12 3a8.38 8.38 0 0 1 9 8.5z'],
  smile: [{ c: [12, 12, 10] }, 'M8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01'],
  edit: ['M12 20h9M16.5 3.5a2.12 2.12 0 0 1 3 3L7 19l-4 1 1-4z'],
  trash: ['M3 6h18M19 6l-1 14H6L5 6M10 11v6M14 11v6M9 6V4h6v2'],
  send: ['M22 2 11 13M22 2l-7 20-4-9-9-4z'],
  sun: [
    { c: [12, 12, 4] },
    'M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4',
  ],
  moon: ['M21 12.8A9 9 0 1 1 11.2 3 7 7 0 0 0 21 12.8z'],
  contrast: [{ c: [12, 12, 9] }, 'M12 3v18a9 9 0 0 0 0-18z'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9'],
  userPlus: ['M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M20 8v6M23 11h-6', { c: [8.5, 7, 4] }],
  link: [
    'M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71',
  ],
  down: ['M12 5v14M19 12l-7 7-7-7'],
  up: ['M12 19V5M5 12l7-7 7 7'],
  at: [{ c: [12, 12, 4] }, 'M16 8v5a3 3 0 0 0 6 0v-1a10 10 0 1 0-3.92 7.94'],
  menu: ['M3 12h18M3 6h18M3 18h18'],
  paperclip: ['M21.4 11.1 12.2 20.3a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5'],
  file: ['M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6'],
  bell: ['M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9M13.73 21a2 2 0 0 1-3.46 0'],
  shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z'],
  flag: ['M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1zM4 22v-7'],
};

export function Icon({ name, size = 18 }: { name: keyof typeof ICONS | string; size?: number }) {
  const shapes = ICONS[name] ?? [];
  return (
    <svg
      class="icon"
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      stroke-width="2"
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      {shapes.map((shape, i) =>
        typeof shape === 'string' ? (
          <path key={i} d={shape} />
        ) : (
          <circle key={i} cx={shape.c[0]} cy={shape.c[1]} r={shape.c[2]} />
        ),
      )}
    </svg>
  );
}

/** A stable, well-spread hue per user (FNV-1a, then the golden angle). */
function hue(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return Math.round(((hash >>> 0) % 97) * 137.508) % 360;
}

export function Avatar({ user, size = 36 }: { user: string; size?: number }) {
  const name = nameOf(user);
  const letter = (name.match(/\p{L}|\p{N}/u)?.[0] ?? '?').toUpperCase();
  const src = useAvatarImage(user);
  return (
    <span
      class="avatar"
      aria-hidden="true"
      style={{ '--h': String(hue(user)), width: `${size}px`, height: `${size}px` }}
    >
      {src ? <img src={src} alt="" width={size} height={size} /> : letter}
    </span>
  );
}

export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const opener = document.activeElement as HTMLElement | null;
    return () => opener?.focus?.();
  }, []);
  const id = `dlg-${props.title.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'dialog wide' : 'dialog'}
      aria-labelledby={id}
      onClose={props.onClose}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
      onClick={(e) => {
        // A click on the backdrop (the dialog element itself) closes it.
        if (e.target === ref.current) props.onClose();
      }}
    >
      <div class="dialog-body">
        <header class="dialog-head">
          <h2 id={id}>{props.title}</h2>
          <button type="button" class="icon-button" aria-label="Close" onClick={props.onClose}>
            <Icon name="x" />
          </button>
        </header>
        {props.children}
      </div>
    </dialog>
  );
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'long',
  month: 'long',
  day: 'numeric',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

export function formatTime(ts: number): string {
  return timeFormat.format(ts);
}

export function formatFull(ts: number): string {
  return fullFormat.format(ts);
}

export function dayLabel(ts: number): string {
  const day = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (day.toDateString() === today.toDateString()) return 'Today';
  if (day.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return dayFormat.format(ts);
}

export function FieldError({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export type InputEvent = TargetedEvent<HTMLInputElement | HTMLTextAreaElement, Event>;

export function value(e: InputEvent): string {
  return e.currentTarget.value;
}

/** Skips re-rendering when props are shallowly equal (preact/compat's memo
 *  without the rest of compat). */
export function memo<P extends object>(render: FunctionComponent<P>): ComponentType<P> {
  class Memo extends Component<P> {
    override shouldComponentUpdate(next: P): boolean {
      const now = this.props as Record<string, unknown>;
      const then = next as Record<string, unknown>;
      for (const key in now) if (!(key in then)) return true;
      for (const key in then) if (now[key] !== then[key]) return true;
      return false;
    }
    override render(props: P) {
      return h(render, props);
    }
  }
  return Memo;
}
