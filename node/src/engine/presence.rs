//! Presence: who is around, as this node knows it (docs/spec/federation.md
//! §Presence, api.md §Presence).
//!
//! A local user's presence follows their WebSocket connections: online
//! while any connected client says it is in use, away while all say they
//! are idle, offline once the last one has been gone for a grace period (so
//! a reconnect does not flap). A remote user's presence is what their home
//! node last announced in each room the two nodes share; an announcement
//! lasts a time-to-live, and the home node repeats it before then, so a
//! node that vanishes takes its users offline with it.
//!
//! The table is plain data; time comes in as an argument, so the rules are
//! unit-tested without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spaces_protocol::content::Membership;
use spaces_protocol::{Presence, RoomId, UserId};
use tokio::sync::broadcast;

use super::{Engine, EphemeralItem};

/// How a node handles presence (config `[presence]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceOptions {
    /// Off: the node neither tracks, announces nor shows presence.
    pub enabled: bool,
    /// How long after a user's last client leaves they go offline.
    pub grace: Duration,
    /// How often the node repeats its users' presence to other nodes;
    /// another node's announcement is forgotten after three of these.
    pub refresh: Duration,
}

impl Default for PresenceOptions {
    fn default() -> Self {
        PresenceOptions {
            enabled: true,
            grace: Duration::from_secs(10),
            refresh: Duration::from_secs(60),
        }
    }
}

/// The engine's presence state.
#[derive(Debug)]
pub(super) struct State {
    options: PresenceOptions,
    table: Mutex<PresenceTable>,
    /// Local users' changes, for federation to announce.
    changes: broadcast::Sender<(UserId, Presence)>,
}

impl State {
    pub(super) fn new(options: PresenceOptions) -> State {
        State {
            options,
            table: Mutex::new(PresenceTable::default()),
            changes: broadcast::channel(1024).0,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, PresenceTable> {
        // Every method leaves the table consistent before it can panic.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connected client's part in its user's presence; dropping it is the
/// client leaving.
#[derive(Debug)]
pub struct ClientPresence {
    engine: Engine,
    user: UserId,
    state: Presence,
}

impl ClientPresence {
    /// The client says it is in use (`Online`) or idle (`Away`).
    pub fn set(&mut self, state: Presence) {
        if state == self.state || state == Presence::Offline {
            return;
        }
        let presence = &self.engine.inner.presence;
        let change = presence.table().switch(&self.user, self.state, state);
        self.state = state;
        self.engine.local_change(&self.user, change);
    }
}

impl Drop for ClientPresence {
    fn drop(&mut self) {
        let change = self
            .engine
            .inner
            .presence
            .table()
            .disconnect(&self.user, self.state);
        self.engine.local_change(&self.user, change);
    }
}

impl Engine {
    pub fn presence_options(&self) -> PresenceOptions {
        self.inner.presence.options
    }

    /// A client of a local user connected and is in use; `None` when the
    /// node does not do presence.
    pub fn client_connected(&self, user: &UserId) -> Option<ClientPresence> {
        let presence = &self.inner.presence;
        if !presence.options.enabled {
            return None;
        }
        let change = presence.table().connect(user, Presence::Online);
        self.local_change(user, change);
        Some(ClientPresence {
            engine: self.clone(),
            user: user.clone(),
            state: Presence::Online,
        })
    }

    /// Local users' presence changes, as they happen (lossy: a lagging
    /// subscriber catches up at the next refresh).
    pub fn presence_changes(&self) -> broadcast::Receiver<(UserId, Presence)> {
        self.inner.presence.changes.subscribe()
    }

    /// Local users who are not offline: what the node repeats to others.
    pub fn local_presence(&self) -> Vec<(UserId, Presence)> {
        self.inner.presence.table().local_present()
    }

    /// Rooms where a local user is joined.
    pub fn joined_rooms(&self, user: &UserId) -> Vec<RoomId> {
        let index = self
            .inner
            .memberships
            .read()
            .unwrap_or_else(|p| p.into_inner());
        index.get(user).map_or_else(Vec::new, |rooms| {
            rooms
                .iter()
                .filter(|(_, m)| **m == Membership::Join)
                .map(|(room, _)| *room)
                .collect()
        })
    }

    /// A user's presence as seen from `room` (the caller checks that the
    /// viewer may see the room's members).
    pub fn presence(&self, room: &RoomId, user: &UserId) -> Presence {
        let table = self.inner.presence.table();
        if self.is_local(user) {
            table.local_state(user)
        } else {
            table.remote_state(user, room)
        }
    }

    /// Presence frames for a client that just caught up: everyone not
    /// offline who shares a room with `viewer`.
    pub fn presence_snapshot(&self, viewer: &UserId) -> Vec<Arc<EphemeralItem>> {
        if !self.inner.presence.options.enabled {
            return Vec::new();
        }
        let mine = self.joined_rooms(viewer);
        let shares = |rooms: &[RoomId]| rooms.iter().any(|room| mine.contains(room));
        let (local, remote): (Vec<_>, Vec<_>) = {
            let table = self.inner.presence.table();
            let remote = table
                .remote_present()
                .filter(|(_, _, rooms)| shares(rooms))
                .map(|(user, state, rooms)| (user.clone(), state, rooms))
                .collect();
            (table.local_present(), remote)
        };
        let local = local.into_iter().filter_map(|(user, state)| {
            let rooms = self.joined_rooms(&user);
            (user != *viewer && shares(&rooms)).then_some((user, state, rooms))
        });
        local
            .chain(remote)
            .map(|(user, state, rooms)| Arc::new(EphemeralItem::presence(user, state, rooms)))
            .collect()
    }

    /// A local user just joined `room`: its members on this node hear of
    /// the user's presence now rather than at the next change. Returns the
    /// presence to announce to the room's other nodes, if any.
    pub fn presence_joined(&self, user: &UserId, room: RoomId) -> Option<Presence> {
        if !self.inner.presence.options.enabled {
            return None;
        }
        let state = self.inner.presence.table().local_state(user);
        if state == Presence::Offline {
            return None;
        }
        self.show_presence(user.clone(), state, vec![room]);
        Some(state)
    }

    /// Forgets other nodes' announcements older than three refreshes, and
    /// tells local clients who went offline by it.
    pub fn expire_presence(&self) {
        let ttl = self.inner.presence.options.refresh * 3;
        let Some(deadline) = Instant::now().checked_sub(ttl) else {
            return;
        };
        let gone = self.inner.presence.table().expire(deadline);
        for (user, rooms) in gone {
            self.show_presence(user, Presence::Offline, rooms);
        }
    }

    /// An announcement from a remote user's node, already checked (F29).
    pub(super) fn take_presence(&self, user: UserId, room: RoomId, state: Presence) {
        if !self.inner.presence.options.enabled {
            return;
        }
        let rooms = self
            .inner
            .presence
            .table()
            .remote(&user, room, state, Instant::now());
        if !rooms.is_empty() {
            self.show_presence(user, state, rooms);
        }
    }

    fn show_presence(&self, user: UserId, state: Presence, rooms: Vec<RoomId>) {
        let item = EphemeralItem::presence(user, state, rooms);
        let _ = self.inner.ephemeral.send(Arc::new(item));
    }

    fn local_change(&self, user: &UserId, change: LocalChange) {
        match change {
            LocalChange::None => {}
            LocalChange::Announce(state) => {
                self.show_presence(user.clone(), state, self.joined_rooms(user));
                let _ = self.inner.presence.changes.send((user.clone(), state));
            }
            LocalChange::Grace(generation) => {
                let grace = self.inner.presence.options.grace;
                let runtime = tokio::runtime::Handle::try_current();
                let (Ok(runtime), false) = (runtime, grace.is_zero()) else {
                    let change = self.inner.presence.table().grace_over(user, generation);
                    return self.local_change(user, change);
                };
                // A weak handle: a pending timer must not keep a stopping
                // node's engine (and its writer) alive.
                let engine = Arc::downgrade(&self.inner);
                let user = user.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(grace).await;
                    if let Some(inner) = engine.upgrade() {
                        let engine = Engine { inner };
                        let change = engine.inner.presence.table().grace_over(&user, generation);
                        engine.local_change(&user, change);
                    }
                });
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct PresenceTable {
    local: HashMap<UserId, Local>,
    remote: HashMap<UserId, Remote>,
}

#[derive(Debug)]
struct Local {
    /// Connected clients that say they are in use, and that say idle.
    online: u32,
    away: u32,
    /// What the node last told everyone.
    announced: Presence,
    /// Bumped at each disconnect, so only the latest grace timer counts.
    generation: u64,
}

#[derive(Debug)]
struct Remote {
    state: Presence,
    /// Rooms the announcement came through, with when it last did.
    rooms: HashMap<RoomId, Instant>,
}

/// What a change to a local user's connections asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// Nothing to tell anyone.
    None,
    /// Tell local clients and other nodes the user's new presence.
    Announce(Presence),
    /// The last client left: after the grace period, call
    /// [`PresenceTable::grace_over`] with this generation.
    Grace(u64),
}

impl Local {
    fn connected(&self) -> Presence {
        if self.online > 0 {
            Presence::Online
        } else if self.away > 0 {
            Presence::Away
        } else {
            Presence::Offline
        }
    }

    fn count(&mut self, state: Presence) -> &mut u32 {
        match state {
            Presence::Away => &mut self.away,
            _ => &mut self.online,
        }
    }
}

impl PresenceTable {
    /// A client of `user` connected, reporting `state` (online or away).
    pub fn connect(&mut self, user: &UserId, state: Presence) -> LocalChange {
        let local = self.local.entry(user.clone()).or_insert(Local {
            online: 0,
            away: 0,
            announced: Presence::Offline,
            generation: 0,
        });
        *local.count(state) += 1;
        self.settle(user)
    }

    /// A connected client of `user` switched between online and away.
    pub fn switch(&mut self, user: &UserId, from: Presence, to: Presence) -> LocalChange {
        let Some(local) = self.local.get_mut(user) else {
            return LocalChange::None;
        };
        let count = local.count(from);
        *count = count.saturating_sub(1);
        *local.count(to) += 1;
        self.settle(user)
    }

    /// A client of `user` that last reported `state` disconnected.
    pub fn disconnect(&mut self, user: &UserId, state: Presence) -> LocalChange {
        let Some(local) = self.local.get_mut(user) else {
            return LocalChange::None;
        };
        let count = local.count(state);
        *count = count.saturating_sub(1);
        if local.connected() == Presence::Offline {
            local.generation += 1;
            return LocalChange::Grace(local.generation);
        }
        self.settle(user)
    }

    /// The grace period after the disconnect numbered `generation` is over:
    /// the user goes offline unless a client came back or left again since.
    pub fn grace_over(&mut self, user: &UserId, generation: u64) -> LocalChange {
        let Some(local) = self.local.get(user) else {
            return LocalChange::None;
        };
        if local.generation != generation || local.connected() != Presence::Offline {
            return LocalChange::None;
        }
        let was = local.announced;
        self.local.remove(user);
        if was == Presence::Offline {
            LocalChange::None
        } else {
            LocalChange::Announce(Presence::Offline)
        }
    }

    fn settle(&mut self, user: &UserId) -> LocalChange {
        let Some(local) = self.local.get_mut(user) else {
            return LocalChange::None;
        };
        let now = local.connected();
        if now == local.announced || now == Presence::Offline {
            return LocalChange::None;
        }
        local.announced = now;
        LocalChange::Announce(now)
    }

    /// An announcement by `user`'s home node, taken in `room`: the rooms
    /// whose local members should hear of it (none if nothing changed for
    /// them).
    pub fn remote(
        &mut self,
        user: &UserId,
        room: RoomId,
        state: Presence,
        now: Instant,
    ) -> Vec<RoomId> {
        if state == Presence::Offline {
            // Presence is the user's, not the room's: offline in one room
            // is offline everywhere.
            return match self.remote.remove(user) {
                Some(entry) if entry.state != Presence::Offline => {
                    entry.rooms.into_keys().collect()
                }
                _ => Vec::new(),
            };
        }
        let entry = self.remote.entry(user.clone()).or_insert(Remote {
            state: Presence::Offline,
            rooms: HashMap::new(),
        });
        let new_room = entry.rooms.insert(room, now).is_none();
        if entry.state != state {
            entry.state = state;
            entry.rooms.keys().copied().collect()
        } else if new_room {
            vec![room]
        } else {
            Vec::new()
        }
    }

    /// Forgets announcements last heard before `deadline`: each remote user
    /// who thereby goes offline, with the rooms to tell.
    pub fn expire(&mut self, deadline: Instant) -> Vec<(UserId, Vec<RoomId>)> {
        let mut gone = Vec::new();
        self.remote.retain(|user, entry| {
            let mut stale = Vec::new();
            entry.rooms.retain(|room, heard| {
                let keep = *heard >= deadline;
                if !keep {
                    stale.push(*room);
                }
                keep
            });
            if entry.rooms.is_empty() {
                gone.push((user.clone(), stale));
                return false;
            }
            true
        });
        gone
    }

    /// A local user's presence as announced.
    pub fn local_state(&self, user: &UserId) -> Presence {
        self.local
            .get(user)
            .map_or(Presence::Offline, |local| local.announced)
    }

    /// Local users who are not offline.
    pub fn local_present(&self) -> Vec<(UserId, Presence)> {
        self.local
            .iter()
            .filter(|(_, local)| local.announced != Presence::Offline)
            .map(|(user, local)| (user.clone(), local.announced))
            .collect()
    }

    /// Remote users who are not offline, with the rooms they were heard in.
    pub fn remote_present(&self) -> impl Iterator<Item = (&UserId, Presence, Vec<RoomId>)> {
        self.remote
            .iter()
            .map(|(user, entry)| (user, entry.state, entry.rooms.keys().copied().collect()))
    }

    /// A remote user's presence as heard in `room`.
    pub fn remote_state(&self, user: &UserId, room: &RoomId) -> Presence {
        match self.remote.get(user) {
            Some(entry) if entry.rooms.contains_key(room) => entry.state,
            _ => Presence::Offline,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use spaces_protocol::NodeId;

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name, NodeId([7; 32])).unwrap()
    }

    #[test]
    fn a_user_is_online_while_any_client_is_and_offline_only_after_grace() {
        let mut table = PresenceTable::default();
        let alice = user("alice");
        assert_eq!(
            table.connect(&alice, Presence::Online),
            LocalChange::Announce(Presence::Online)
        );
        // A second device changes nothing; one of two going idle neither.
        assert_eq!(table.connect(&alice, Presence::Online), LocalChange::None);
        assert_eq!(
            table.switch(&alice, Presence::Online, Presence::Away),
            LocalChange::None
        );
        assert_eq!(
            table.switch(&alice, Presence::Online, Presence::Away),
            LocalChange::Announce(Presence::Away)
        );
        assert_eq!(table.local_state(&alice), Presence::Away);
        assert_eq!(table.disconnect(&alice, Presence::Away), LocalChange::None);
        let LocalChange::Grace(first) = table.disconnect(&alice, Presence::Away) else {
            panic!("the last client leaving starts the grace period");
        };
        // Still away to everyone during the grace period.
        assert_eq!(table.local_state(&alice), Presence::Away);
        // Back within the grace period: the old timer does nothing.
        assert_eq!(
            table.connect(&alice, Presence::Online),
            LocalChange::Announce(Presence::Online)
        );
        assert_eq!(table.grace_over(&alice, first), LocalChange::None);
        let LocalChange::Grace(second) = table.disconnect(&alice, Presence::Online) else {
            panic!("grace again");
        };
        assert_eq!(table.grace_over(&alice, first), LocalChange::None);
        assert_eq!(
            table.grace_over(&alice, second),
            LocalChange::Announce(Presence::Offline)
        );
        assert_eq!(table.local_state(&alice), Presence::Offline);
        assert!(table.local_present().is_empty());
    }

    #[test]
    fn remote_presence_is_per_user_and_expires_per_room() {
        let mut table = PresenceTable::default();
        let bob = user("bob");
        let (r1, r2) = (RoomId([1; 32]), RoomId([2; 32]));
        let t0 = Instant::now();
        assert_eq!(table.remote(&bob, r1, Presence::Online, t0), vec![r1]);
        // The same news through another room reaches only that room.
        assert_eq!(table.remote(&bob, r2, Presence::Online, t0), vec![r2]);
        // A repeat is nothing new.
        assert!(table.remote(&bob, r1, Presence::Online, t0).is_empty());
        let mut rooms = table.remote(&bob, r1, Presence::Away, t0);
        rooms.sort();
        assert_eq!(rooms, vec![r1, r2]);
        assert_eq!(table.remote_state(&bob, &r2), Presence::Away);
        // Refreshed through r1 only: r2's announcement runs out first.
        let t1 = t0 + Duration::from_secs(10);
        table.remote(&bob, r1, Presence::Away, t1);
        assert!(table.expire(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(table.remote_state(&bob, &r2), Presence::Offline);
        assert_eq!(
            table.expire(t1 + Duration::from_secs(1)),
            vec![(bob.clone(), vec![r1])]
        );
        assert_eq!(table.remote_present().count(), 0);
        // Offline in one room is offline in all, told once.
        table.remote(&bob, r1, Presence::Online, t1);
        table.remote(&bob, r2, Presence::Online, t1);
        let mut rooms = table.remote(&bob, r2, Presence::Offline, t1);
        rooms.sort();
        assert_eq!(rooms, vec![r1, r2]);
        assert!(table.remote(&bob, r1, Presence::Offline, t1).is_empty());
    }
}
