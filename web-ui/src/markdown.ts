// The markdown subset of messages, rendered to Preact nodes.
//
// Safe by construction: user text only ever becomes text children (Preact
// creates text nodes for strings), never markup, and the only attribute
// taken from user text is a link's href, and only after it parses as an
// http(s) or mailto URL. There is no innerHTML anywhere in this client.
//
// The subset: **bold**, *italic* / _italic_, ~~strike~~, `code`, fenced
// code blocks, > quotes, - and 1. lists, # headings (three levels),
// ||spoilers|| (hidden until clicked), :shortcode: emoji (emoji.ts),
// [text](https://…) links, bare https:// links, and @mentions. Everything
// else shows as typed.
//
// Linear time: delimiter searches remember where a search already failed,
// so a hostile message of 16 KiB of asterisks costs no more than reading it.

import { h, type ComponentChildren, type VNode as AnyVNode } from 'preact';
import { shortcode } from './emoji';

type VNode = AnyVNode<any>;

export interface MarkdownContext {
  /** Is `@name` a mention, and is it the viewer? */
  mention(name: string): 'me' | 'other' | null;
}

const MAX_DEPTH = 4;

export function safeUrl(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:'
    ? url.href
    : null;
}

function link(href: string, children: ComponentChildren): VNode {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow ugc' }, children);
}

// ---- blocks ---------------------------------------------------------------

const FENCE = /^\s{0,3}```/;
const QUOTE = /^\s{0,3}> ?/;
const HEADING = /^(#{1,3}) +(\S.*)$/;
const BULLET = /^\s{0,3}[-*+]\s+(?=\S)/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(?=\S)/;

export function renderMarkdown(text: string, ctx: MarkdownContext): VNode[] {
  return blocks(text.replace(/\r\n?/g, '\n').split('\n'), ctx, 0);
}

function blocks(lines: string[], ctx: MarkdownContext, depth: number): VNode[] {
  const out: VNode[] = [];
  let i = 0;
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length === 0) return;
    const children: ComponentChildren[] = [];
    paragraph.forEach((line, n) => {
      if (n > 0) children.push(h('br', null));
      children.push(...inline(line, ctx, depth));
    });
    out.push(h('p', null, children));
    paragraph = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const end = lines.findIndex((l, n) => n > i && FENCE.test(l));
      if (end !== -1) {
        flush();
        out.push(h('pre', null, h('code', null, lines.slice(i + 1, end).join('\n'))));
        i = end + 1;
        continue;
      }
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      // h3–h5: the page's own headings keep levels 1 and 2.
      out.push(h(`h${heading[1].length + 2}`, { class: 'md-heading' }, inline(heading[2], ctx, depth)));
      i++;
      continue;
    }
    if (depth < MAX_DEPTH && QUOTE.test(line)) {
      flush();
      const quoted: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(lines[i++].replace(QUOTE, ''));
      out.push(h('blockquote', null, blocks(quoted, ctx, depth + 1)));
      continue;
    }
    const ordered = ORDERED.exec(line);
    if (BULLET.test(line) || ordered) {
      flush();
      const pattern = ordered ? ORDERED : BULLET;
      const items: VNode[] = [];
      while (i < lines.length && pattern.test(lines[i])) {
        items.push(h('li', null, inline(lines[i++].replace(pattern, ''), ctx, depth)));
      }
      const start = ordered ? Number(ordered[1]) : 1;
      out.push(
        ordered ? h('ol', start !== 1 ? { start } : null, items) : h('ul', null, items),
      );
      continue;
    }
    if (line.trim() === '') flush();
    else paragraph.push(line);
    i++;
  }
  flush();
  return out;
}

// ---- inline ---------------------------------------------------------------

const ESCAPABLE = '\\`*_~[]()@>#-+.!|';
const SPANS: ReadonlyArray<[string, string]> = [
  ['**', 'strong'],
  ['~~', 's'],
  ['*', 'em'],
  ['_', 'em'],
];
const WORD = /[\p{L}\p{N}_]/u;
const SPACE = /\s/;
const URL_START = /^https?:\/\//i;
const URL_BODY = /^[^\s<>"]+/;
const MENTION = /^@(room\b|[a-z0-9._-]+(?::~[a-z2-7]+)?)/;
const SHORTCODE = /^:([a-z0-9_+&.-]{1,32}):/;

/** `||hidden||`: shown blurred until clicked (or Enter/Space). */
function spoiler(children: ComponentChildren[]): VNode {
  const reveal = (e: Event) => {
    const el = e.currentTarget as HTMLElement;
    if (el.classList.contains('revealed')) return;
    e.preventDefault();
    el.classList.add('revealed');
    el.setAttribute('aria-expanded', 'true');
    el.removeAttribute('aria-label');
  };
  return h(
    'span',
    {
      class: 'spoiler',
      role: 'button',
      tabIndex: 0,
      'aria-expanded': 'false',
      'aria-label': 'Spoiler, press to reveal',
      onClick: reveal,
      onKeyDown: (e: KeyboardEvent) => {
        if (e.key === 'Enter' || e.key === ' ') reveal(e);
      },
    },
    children,
  );
}

function isWord(ch: string | undefined): boolean {
  return ch !== undefined && WORD.test(ch);
}

export function inline(text: string, ctx: MarkdownContext, depth = 0): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  // Position from which a closer for a delimiter is known not to exist.
  const noCloser = new Map<string, number>();
  let buf = '';
  let i = 0;
  const flush = () => {
    if (buf) out.push(buf);
    buf = '';
  };

  const findCloser = (delim: string, from: number): number => {
    const failed = noCloser.get(delim);
    if (failed !== undefined && from >= failed) return -1;
    let at = text.indexOf(delim, from);
    while (at !== -1) {
      const before = text[at - 1];
      const after = text[at + delim.length];
      // A closer follows non-space; single * and _ must not be part of a
      // longer run, and _ must not sit inside a word (snake_case).
      const ok =
        at > from &&
        !SPACE.test(before) &&
        !(delim === '*' && (after === '*' || before === '*')) &&
        !(delim === '_' && isWord(after));
      if (ok) return at;
      at = text.indexOf(delim, at + 1);
    }
    noCloser.set(delim, from);
    return -1;
  };

  outer: while (i < text.length) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      buf += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '`') {
      let n = 1;
      while (text[i + n] === '`') n++;
      const fence = '`'.repeat(n);
      const end = findCloserExact(text, fence, i + n, noCloser);
      if (end > i + n) {
        flush();
        out.push(h('code', null, text.slice(i + n, end)));
        i = end + n;
      } else {
        buf += fence;
        i += n;
      }
      continue;
    }
    if (depth < MAX_DEPTH) {
      for (const [delim, tag] of SPANS) {
        if (!text.startsWith(delim, i)) continue;
        const next = text[i + delim.length];
        if (next === undefined || SPACE.test(next)) continue;
        if (delim === '_' && isWord(text[i - 1])) continue;
        if (delim === '*' && next === '*') continue;
        const end = findCloser(delim, i + delim.length);
        if (end === -1) continue;
        flush();
        out.push(h(tag, null, inline(text.slice(i + delim.length, end), ctx, depth + 1)));
        i = end + delim.length;
        continue outer;
      }
    }
    if (ch === '|' && text[i + 1] === '|' && depth < MAX_DEPTH) {
      const failed = noCloser.get('||');
      const end = failed !== undefined && i + 2 >= failed ? -1 : text.indexOf('||', i + 2);
      if (end === -1) noCloser.set('||', i + 2);
      if (end > i + 2) {
        flush();
        out.push(spoiler(inline(text.slice(i + 2, end), ctx, depth + 1)));
        i = end + 2;
        continue;
      }
    }
    if (ch === ':') {
      const match = SHORTCODE.exec(text.slice(i, i + 40));
      const emoji = match ? shortcode(match[1]) : undefined;
      if (match && emoji) {
        flush();
        out.push(h('span', { class: 'emoji', title: match[0], role: 'img', 'aria-label': match[1].replace(/_/g, ' ') }, emoji));
        i += match[0].length;
        continue;
      }
    }
    if (ch === '[') {
      const close = text.indexOf('](', i + 1);
      const newline = text.indexOf('\n', i + 1);
      if (close !== -1 && (newline === -1 || close < newline)) {
        const end = text.indexOf(')', close + 2);
        const target = end === -1 ? '' : text.slice(close + 2, end);
        const href = target && !/\s/.test(target) ? safeUrl(target) : null;
        if (href && close > i + 1) {
          flush();
          out.push(link(href, inline(text.slice(i + 1, close), ctx, depth + 1)));
          i = end + 1;
          continue;
        }
      }
    }
    if ((ch === 'h' || ch === 'H') && !isWord(text[i - 1]) && URL_START.test(text.slice(i, i + 8))) {
      const body = URL_BODY.exec(text.slice(i))?.[0] ?? '';
      // Trailing punctuation belongs to the sentence, not the link.
      let raw = body.replace(/[.,:;!?'"]+$/, '');
      if (raw.endsWith(')') && !raw.includes('(')) raw = raw.slice(0, -1);
      const href = safeUrl(raw);
      if (href && raw.length > 8) {
        flush();
        out.push(link(href, raw));
        i += raw.length;
        continue;
      }
    }
    if (ch === '@' && !isWord(text[i - 1])) {
      const match = MENTION.exec(text.slice(i, i + 120));
      let name = match?.[1] ?? '';
      let kind = name ? ctx.mention(name) : null;
      // "@alice." at the end of a sentence: the dot is not part of the name.
      const trimmed = name.replace(/[._-]+$/, '');
      if (!kind && trimmed && trimmed !== name) {
        name = trimmed;
        kind = ctx.mention(name);
      }
      if (kind) {
        flush();
        out.push(h('span', { class: kind === 'me' ? 'mention me' : 'mention' }, '@' + name));
        i += 1 + name.length;
        continue;
      }
    }
    buf += ch;
    i++;
  }
  flush();
  return out;
}

function findCloserExact(
  text: string,
  fence: string,
  from: number,
  noCloser: Map<string, number>,
): number {
  const key = 'code' + fence.length;
  const failed = noCloser.get(key);
  if (failed !== undefined && from >= failed) return -1;
  let at = text.indexOf(fence, from);
  while (at !== -1) {
    // The closing run must be exactly as long as the opening one.
    if (text[at - 1] !== '`' && text[at + fence.length] !== '`') return at;
    at = text.indexOf(fence, at + 1);
  }
  noCloser.set(key, from);
  return -1;
}

/** Plain text of a body, for previews and reply quotes. */
export function plainPreview(text: string, max = 140): string {
  const flat = text
    .replace(/```[\s\S]*?```/g, '[code]')
    .replace(/\*\*|__|~~|`/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}
