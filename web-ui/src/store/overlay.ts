// The app's own overlays, one at a time: a person's profile card, our
// profile, or a question (instead of the browser's `confirm()`).

import { changed, store } from './core';
import type { Overlay } from './model';

export function openOverlay(overlay: Overlay): void {
  if (store.overlay?.kind === 'confirm') store.overlay.resolve(false);
  store.overlay = overlay;
  changed();
}

export function closeOverlay(): void {
  if (store.overlay?.kind === 'confirm') store.overlay.resolve(false);
  store.overlay = null;
  changed();
}

/** Asks a yes/no question in the app's dialog; resolves true on `action`. */
export function ask(question: { title: string; text: string; action: string; danger?: boolean }): Promise<boolean> {
  return new Promise((resolve) => {
    openOverlay({
      kind: 'confirm',
      ...question,
      resolve: (yes) => {
        if (store.overlay?.kind === 'confirm') {
          store.overlay = null;
          changed();
        }
        resolve(yes);
      },
    });
  });
}
