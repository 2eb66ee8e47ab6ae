// The full emoji picker: every emoji of emoji-data.ts, searchable by name
// (":sparkles:", "party", "thumbs up"), shown in a grid; arrows and Enter
// work from the search field.

import { useMemo, useState } from 'preact/hooks';
import { searchEmoji } from '../emoji';

/** Shown at most: a grid this size renders in well under a frame. */
const SHOWN = 160;

export function EmojiSearch(props: { onPick: (emoji: string) => void; label?: string }) {
  const [query, setQuery] = useState('');
  const found = useMemo(() => searchEmoji(query, SHOWN), [query]);
  return (
    <div class="emoji-search">
      <input
        type="search"
        aria-label="Search emoji"
        placeholder="Search emoji"
        autoFocus
        value={query}
        onInput={(e) => setQuery(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && found[0]) {
            e.preventDefault();
            props.onPick(found[0].char);
          }
        }}
      />
      <div class="emoji-grid" role="group" aria-label={props.label ?? 'Emoji'}>
        {found.length === 0 ? (
          <p class="muted small">No emoji found.</p>
        ) : (
          found.map((e) => (
            <button
              type="button"
              key={e.char}
              title={`:${e.names[0]}:`}
              aria-label={`React with ${e.char} ${e.names[0].replace(/_/g, ' ')}`}
              onClick={() => props.onPick(e.char)}
            >
              {e.char}
            </button>
          ))
        )}
      </div>
    </div>
  );
}
