// The page: the login screen, or the signed-in shell (sidebar, room, side
// panel). On a phone only one of the three shows at a time.

import { useEffect, useState } from 'preact/hooks';
import { currentSession, onSessionChange, type EndReason, type Session } from '../api/client';
import { navigate, useRoute } from '../router';
import { boot, reset, setActive, store, useStore } from '../store';
import { AuthScreen } from './Auth';
import { ConsentPage } from './Consent';
import { CreateRoomDialog, DirectoryDialog, DmDialog } from './Dialogs';
import { declineBlocked } from './Dm';
import { JoinView } from './JoinView';
import { Lazy, loadAdmin } from './lazy';
import { NotificationsDialog } from './Notifications';
import { OfflineBanner } from './OfflineBanner';
import { Overlays } from './Overlays';
import { Panel, type PanelState } from './Panel';
import { RoomView } from './RoomView';
import { SearchDialog } from './Search';
import { SecurityDialog } from './Security';
import { Sidebar } from './Sidebar';

export function App() {
  const [session, setSession] = useState<Session | null>(currentSession);
  const [reason, setReason] = useState<EndReason | undefined>();
  useEffect(
    () =>
      onSessionChange((next, why) => {
        setSession(next);
        setReason(why);
      }),
    [],
  );
  if (!session) return <AuthScreen reason={reason} />;
  // An OAuth client's authorization request: decided, then the browser leaves.
  if (location.pathname === '/consent') return <ConsentPage />;
  return <Shell key={session.user_id} />;
}

export type DialogKind =
  | 'create'
  | 'directory'
  | 'dm'
  | 'search'
  | 'security'
  | 'notifications'
  | 'admin'
  | null;

function Shell() {
  const route = useRoute();
  const booted = useStore(() => store.booted);
  const bootError = useStore(() => store.bootError);
  const [panel, setPanel] = useState<PanelState>(null);
  const [dialog, setDialog] = useState<DialogKind>(null);

  useEffect(() => {
    void boot();
    return () => reset();
  }, []);

  // Ctrl+K (⌘K) anywhere, or "/" outside a text field, opens search.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      const typing =
        !!target &&
        (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
      if (((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') || (e.key === '/' && !typing)) {
        e.preventDefault();
        setDialog('search');
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const room = route.name === 'room' ? route.room : null;
  useEffect(() => {
    setActive(room);
    setPanel((p) => (p && p.kind === 'thread' && p.room !== room ? null : p));
  }, [room]);

  // Requests from people this user blocked are declined unseen.
  useEffect(() => {
    if (booted) void declineBlocked();
  }, [booted]);

  // A room we are no longer in (left, kicked) closes.
  const present = useStore(() => (room ? store.rooms.has(room) : true));
  useEffect(() => {
    if (booted && room && !present) navigate('/', true);
  }, [booted, room, present]);

  if (!booted) {
    return (
      <main class="splash" aria-busy={!bootError}>
        {bootError ? (
          <div role="alert">
            <p>Cannot load your rooms: {bootError}</p>
            <button type="button" class="primary" onClick={() => void boot()}>
              Try again
            </button>
          </div>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  }

  const view = route.name === 'home' ? 'list' : 'room';
  return (
    <div class="shell" data-view={view} data-panel={panel ? 'open' : 'closed'}>
      <OfflineBanner />
      <Sidebar active={room} openDialog={setDialog} />
      <main class="main" id="main">
        {route.name === 'room' && store.rooms.has(route.room) ? (
          <RoomView room={route.room} panel={panel} setPanel={setPanel} />
        ) : route.name === 'join' ? (
          <JoinView target={route.target} />
        ) : (
          <Home openDialog={setDialog} />
        )}
      </main>
      {panel && room && <Panel state={panel} room={room} setPanel={setPanel} />}
      {dialog === 'create' && <CreateRoomDialog onClose={() => setDialog(null)} />}
      {dialog === 'directory' && <DirectoryDialog onClose={() => setDialog(null)} />}
      {dialog === 'dm' && <DmDialog onClose={() => setDialog(null)} />}
      {dialog === 'search' && <SearchDialog room={room} onClose={() => setDialog(null)} />}
      <Overlays />
      {dialog === 'security' && <SecurityDialog onClose={() => setDialog(null)} />}
      {dialog === 'notifications' && <NotificationsDialog onClose={() => setDialog(null)} />}
      {dialog === 'admin' && <Lazy load={loadAdmin} props={{ onClose: () => setDialog(null) }} />}
    </div>
  );
}

function Home({ openDialog }: { openDialog: (d: DialogKind) => void }) {
  const count = useStore(() => store.rooms.size);
  return (
    <section class="home" aria-labelledby="home-title">
      <h2 id="home-title">Welcome to Spaces</h2>
      <p class="muted">
        {count
          ? 'Pick a room on the left, or start something new.'
          : 'You are not in any room yet. Create one, or find one to join.'}
      </p>
      <div class="home-actions">
        <button type="button" class="primary" onClick={() => openDialog('create')}>
          Create a room
        </button>
        <button type="button" onClick={() => openDialog('directory')}>
          Browse public rooms
        </button>
        <button type="button" onClick={() => openDialog('dm')}>
          Message someone
        </button>
      </div>
    </section>
  );
}
