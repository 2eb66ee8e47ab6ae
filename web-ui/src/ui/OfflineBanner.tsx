// A banner across the top of every screen while the node cannot be
// reached, saying what happens to messages written meanwhile.

import { useRef } from 'preact/hooks';
import { queuedCount, store, useStore } from '../store';

export function OfflineBanner() {
  const status = useStore(() => store.status);
  // Re-render when echoes change state, so the count follows the outbox.
  useStore(() => store.msgs);
  const seenLive = useRef(false);
  if (status === 'live') seenLive.current = true;
  // Before the first connection "connecting" is the normal start.
  if (status === 'live' || (!seenLive.current && status === 'connecting')) return null;
  const waiting = queuedCount();
  return (
    <div class="offline-banner" role="alert">
      <strong>You are offline.</strong>{' '}
      {waiting
        ? `${waiting} ${waiting === 1 ? 'message waits' : 'messages wait'} and will be sent when the connection returns.`
        : 'Messages you write will be sent when the connection returns.'}
    </div>
  );
}
