// Views few people open (the admin console, a room's review queue) are
// loaded on first use, as chunks of their own, so the first load does not
// carry them.

import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { FieldError } from './common';

/** Renders the component `load` resolves to, once it has loaded. */
export function Lazy<P extends object>(props: { load: () => Promise<ComponentType<P>>; props: P }) {
  const [loaded, setLoaded] = useState<{ view: ComponentType<P> } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    props.load().then(
      (view) => setLoaded({ view }),
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  }, []);
  if (error) return <FieldError error={`Could not load this view: ${error}`} />;
  if (!loaded) return null;
  const View = loaded.view;
  return <View {...props.props} />;
}

export const loadAdmin = () => import('./Admin').then((m) => m.AdminDialog);
export const loadReviewQueue = () => import('./Moderation').then((m) => m.ReviewQueueDialog);
