// Emoji by name: the :shortcodes: of the markdown subset and the search of
// the emoji picker, over the table generated into emoji-data.ts. The table
// is read into memory on first use (a few thousand short lines).

import { EMOJI_TEXT } from './emoji-data';

export interface Emoji {
  char: string;
  /** The first is its shortcode. */
  names: string[];
}

let list: Emoji[] | null = null;
let byName: Map<string, string> | null = null;

export function allEmoji(): Emoji[] {
  if (!list) {
    list = EMOJI_TEXT.split('\n').map((line) => {
      const [char, ...names] = line.split(' ');
      return { char, names };
    });
  }
  return list;
}

/** The emoji named `name` (any of its names), if there is one. */
export function shortcode(name: string): string | undefined {
  if (!byName) {
    byName = new Map();
    for (const e of allEmoji()) for (const n of e.names) if (!byName.has(n)) byName.set(n, e.char);
  }
  return byName.get(name.toLowerCase());
}

/** Emoji whose names contain every word of `query`; names starting with
 *  the first word come first. At most `limit`. */
export function searchEmoji(query: string, limit = 120): Emoji[] {
  const words = query.toLowerCase().split(/[\s:]+/).filter(Boolean);
  if (words.length === 0) return allEmoji().slice(0, limit);
  const starts: Emoji[] = [];
  const contains: Emoji[] = [];
  for (const e of allEmoji()) {
    const text = e.names.join(' ');
    if (!words.every((w) => text.includes(w))) continue;
    if (e.names.some((n) => n.startsWith(words[0]) || n.includes('_' + words[0]))) starts.push(e);
    else contains.push(e);
    if (starts.length >= limit) break;
  }
  return [...starts, ...contains].slice(0, limit);
}
