//! Presence: who is around, as this node knows it (docs/spec/federation.md
//! §Presence, api.md §Presence).
//!
//! A local user's presence follows their WebSocket connections: online
//! while any connected client says it is in use, away while all say they
//! are idle, offline once the last one has been gone for a grace period (so
//! a reconnect does not flap). A remote user's presence is what their home
//! node last announced, in each room the two nodes share; an announcement
//! holds for the time-to-live it carries, and the home node repeats it
//! before then, so a node that vanishes takes its users offline with it.
//! Announcements older than the newest one heard for a user are dropped, so
//! neither a replay nor a reordering brings back a state that has passed.
//!
//! The table is plain data; time comes in as an argument, so the rules are
//! unit-tested without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spaces_protocol::content::Membership;
use spaces_protocol::ephemeral::EPHEMERAL_MAX_AGE_MS;
use spaces_protocol::{Presence, RoomId, UserId};
use tokio::sync::broadcast;

use super::{Engine, EphemeralItem};

/// The longest time-to-live taken from another node: a node that claims
/// more still has its users lapse within this.
pub const MAX_PRESENCE_TTL: Duration = Duration::from_secs(600);
/// How long the newest announcement's time is kept after a user went
/// offline: as long as a replay of an older one could still be taken.
const REPLAY_WINDOW: Duration = Duration::from_millis(EPHEMERAL_MAX_AGE_MS);
/// Local presence changes buffered for federation (a lagging reader
/// catches up at the next refresh; a lost `offline` lapses by its TTL).
const CHANGES_BUFFER: usize = 1024;

/// How a node handles presence (config `[presence]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceOptions {
    /// Off: the node neither tracks, announces nor shows presence.
    pub enabled: bool,
    /// How long after a user's last client leaves they go offline.
    pub grace: Duration,
    /// How often the node repeats its users' presence to other nodes; its
    /// announcements hold for three of these.
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

impl PresenceOptions {
    /// The time-to-live this node puts on its announcements.
    pub fn ttl(&self) -> Duration {
        (self.refresh * 3).min(MAX_PRESENCE_TTL)
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
    /// When the last client left, while none is connected.
    left_at: Option<Instant>,
    /// A grace timer is running for the user (at most one is).
    timing: bool,
}

#[derive(Debug)]
struct Remote {
    state: Presence,
    /// The newest announcement's time (the origin's clock): older ones are
    /// replays or overtaken, and dropped.
    ts: u64,
    /// Rooms the announcement came through, each until it lapses.
    rooms: HashMap<RoomId, Instant>,
    /// When the entry may be forgotten once no room holds it.
    keep_until: Instant,
}

/// What a change to a local user's connections asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// Nothing to tell anyone.
    None,
    /// Tell local clients and other nodes the user's new presence.
    Announce(Presence),
    /// The last client left: start the (one) grace timer, then call
    /// [`PresenceTable::grace_check`].
    StartGrace,
}

/// What a grace timer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum GraceCheck {
    /// Sleep this long and check again: a client left more recently.
    Wait(Duration),
    /// The timer is done; this is the change to make.
    Done(LocalChange),
}

/// A remote user's presence as the announcements of it changed it, for the
/// local clients to hear.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// Tell viewers joined to any of these rooms…
    pub rooms: Vec<RoomId>,
    /// …unless they are joined to one of these, where it still holds.
    pub unless_in: Vec<RoomId>,
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
            left_at: None,
            timing: false,
        });
        *local.count(state) += 1;
        local.left_at = None;
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
    pub fn disconnect(&mut self, user: &UserId, state: Presence, now: Instant) -> LocalChange {
        let Some(local) = self.local.get_mut(user) else {
            return LocalChange::None;
        };
        let count = local.count(state);
        *count = count.saturating_sub(1);
        if local.connected() != Presence::Offline {
            return self.settle(user);
        }
        local.left_at = Some(now);
        if local.timing {
            return LocalChange::None;
        }
        local.timing = true;
        LocalChange::StartGrace
    }

    /// The grace timer's check: offline once `grace` has passed since the
    /// last client left with none back since.
    pub fn grace_check(&mut self, user: &UserId, grace: Duration, now: Instant) -> GraceCheck {
        let Some(local) = self.local.get_mut(user) else {
            return GraceCheck::Done(LocalChange::None);
        };
        let Some(left_at) = local
            .left_at
            .filter(|_| local.connected() == Presence::Offline)
        else {
            local.timing = false;
            return GraceCheck::Done(LocalChange::None);
        };
        let gone_for = now.saturating_duration_since(left_at);
        if gone_for < grace {
            return GraceCheck::Wait(grace - gone_for);
        }
        let was = local.announced;
        self.local.remove(user);
        GraceCheck::Done(if was == Presence::Offline {
            LocalChange::None
        } else {
            LocalChange::Announce(Presence::Offline)
        })
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

    /// An announcement by `user`'s home node made at `ts` (its clock),
    /// taken in `room`, holding until `until`.
    pub fn remote(
        &mut self,
        user: &UserId,
        room: RoomId,
        state: Presence,
        ts: u64,
        until: Instant,
        now: Instant,
    ) -> Heard {
        let entry = self.remote.entry(user.clone()).or_insert(Remote {
            state: Presence::Offline,
            ts,
            rooms: HashMap::new(),
            keep_until: now,
        });
        if ts < entry.ts {
            return Heard::default();
        }
        entry.ts = ts;
        if state == Presence::Offline {
            // Presence is the user's, not the room's: offline in one room
            // is offline everywhere.
            entry.keep_until = entry.keep_until.max(now + REPLAY_WINDOW);
            if entry.state == Presence::Offline {
                return Heard::default();
            }
            entry.state = Presence::Offline;
            return Heard {
                rooms: entry.rooms.drain().map(|(room, _)| room).collect(),
                unless_in: Vec::new(),
            };
        }
        let new_room = entry.rooms.insert(room, until).is_none();
        entry.keep_until = entry.keep_until.max(until);
        let rooms = if entry.state != state {
            entry.state = state;
            entry.rooms.keys().copied().collect()
        } else if new_room {
            vec![room]
        } else {
            Vec::new()
        };
        Heard {
            rooms,
            unless_in: Vec::new(),
        }
    }

    /// Lapses announcements not repeated in time: for each remote user with
    /// rooms where their presence lapsed, what local clients should hear
    /// (offline, except where it still holds).
    pub fn expire(&mut self, now: Instant) -> Vec<(UserId, Heard)> {
        let mut heard = Vec::new();
        self.remote.retain(|user, entry| {
            let mut lapsed = Vec::new();
            entry.rooms.retain(|room, until| {
                let keep = *until > now;
                if !keep {
                    lapsed.push(*room);
                }
                keep
            });
            if !lapsed.is_empty() && entry.state != Presence::Offline {
                heard.push((
                    user.clone(),
                    Heard {
                        rooms: lapsed,
                        unless_in: entry.rooms.keys().copied().collect(),
                    },
                ));
            }
            if entry.rooms.is_empty() && entry.state != Presence::Offline {
                // Lapsed everywhere: offline, remembered like an offline.
                entry.state = Presence::Offline;
                entry.keep_until = entry.keep_until.max(now + REPLAY_WINDOW);
            }
            !entry.rooms.is_empty() || entry.keep_until > now
        });
        heard
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

    /// Remote users who are not offline, with the rooms they are so in.
    pub fn remote_present(&self) -> impl Iterator<Item = (&UserId, Presence, Vec<RoomId>)> {
        self.remote
            .iter()
            .filter(|(_, entry)| entry.state != Presence::Offline)
            .map(|(user, entry)| (user, entry.state, entry.rooms.keys().copied().collect()))
    }

    /// A remote user's presence as heard in `room`.
    pub fn remote_state(&self, user: &UserId, room: &RoomId, now: Instant) -> Presence {
        match self.remote.get(user) {
            Some(entry) if entry.rooms.get(room).is_some_and(|until| *until > now) => entry.state,
            _ => Presence::Offline,
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
            changes: broadcast::channel(CHANGES_BUFFER).0,
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
        let change =
            self.engine
                .inner
                .presence
                .table()
                .disconnect(&self.user, self.state, Instant::now());
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
        let index = self.memberships();
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
            table.remote_state(user, room, Instant::now())
        }
    }

    /// Whether `viewer`'s clients get an ephemeral item: it is about
    /// someone else, addressed to them if addressed at all, and they share
    /// one of its rooms (and none where it does not apply).
    pub fn ephemeral_for(&self, viewer: &UserId, item: &EphemeralItem) -> bool {
        item.user != *viewer
            && item.to.as_ref().is_none_or(|to| to == viewer)
            && item
                .rooms
                .iter()
                .any(|room| self.joined_before(viewer, room, item.made))
            && !item
                .unless_in
                .iter()
                .any(|room| self.is_joined_local(viewer, room))
    }

    /// Whether a local user was joined to `room` at `instant` (and still is).
    fn joined_before(&self, user: &UserId, room: &RoomId, instant: std::time::Instant) -> bool {
        self.inner
            .joined_at
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .and_then(|rooms| rooms.get(room))
            .is_some_and(|since| *since <= instant)
    }

    /// Presence frames for a client that just caught up: everyone not
    /// offline who shares a room with `viewer`.
    pub fn presence_snapshot(&self, viewer: &UserId) -> Vec<EphemeralItem> {
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
            .map(|(user, state, rooms)| EphemeralItem::presence(user, state, rooms))
            .collect()
    }

    /// A local user just joined `room`: its members on this node hear of
    /// the user's presence now, and the user hears of theirs. Returns the
    /// presence to announce to the room's other nodes, if any.
    pub fn presence_joined(&self, user: &UserId, room: RoomId) -> Option<Presence> {
        if !self.inner.presence.options.enabled {
            return None;
        }
        let members: Vec<UserId> = {
            let index = self.memberships();
            index
                .iter()
                .filter(|(other, rooms)| {
                    *other != user && rooms.get(&room) == Some(&Membership::Join)
                })
                .map(|(other, _)| other.clone())
                .collect()
        };
        let (state, present) = {
            let table = self.inner.presence.table();
            let local = members
                .into_iter()
                .map(|member| {
                    let state = table.local_state(&member);
                    (member, state)
                })
                .filter(|(_, state)| *state != Presence::Offline);
            let remote = table
                .remote_present()
                .filter(|(_, _, rooms)| rooms.contains(&room))
                .map(|(member, state, _)| (member.clone(), state));
            let present: Vec<(UserId, Presence)> =
                local.chain(remote.collect::<Vec<_>>()).collect();
            (table.local_state(user), present)
        };
        for (member, member_state) in present {
            let mut item = EphemeralItem::presence(member, member_state, vec![room]);
            item.to = Some(user.clone());
            let _ = self.inner.ephemeral.send(Arc::new(item));
        }
        if state == Presence::Offline {
            return None;
        }
        self.show_presence(user.clone(), state, vec![room]);
        Some(state)
    }

    /// Lapses other nodes' announcements that were not repeated in time,
    /// and tells local clients who went offline by it.
    pub fn expire_presence(&self) {
        let heard = self.inner.presence.table().expire(Instant::now());
        for (user, heard) in heard {
            let mut item = EphemeralItem::presence(user, Presence::Offline, heard.rooms);
            item.unless_in = heard.unless_in;
            let _ = self.inner.ephemeral.send(Arc::new(item));
        }
    }

    /// An announcement from a remote user's node, already checked (F29).
    pub(super) fn take_presence(
        &self,
        user: UserId,
        room: RoomId,
        state: Presence,
        ts: u64,
        ttl: Duration,
    ) {
        // Our own announcements, sent back by a peer, are not news: our
        // users' presence is what their connections say.
        if !self.inner.presence.options.enabled || self.is_local(&user) {
            return;
        }
        let now = Instant::now();
        let until = now + ttl.min(MAX_PRESENCE_TTL);
        let heard = self
            .inner
            .presence
            .table()
            .remote(&user, room, state, ts, until, now);
        if !heard.rooms.is_empty() {
            self.show_presence(user, state, heard.rooms);
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
            LocalChange::StartGrace => {
                let grace = self.inner.presence.options.grace;
                let check = {
                    let inner = &self.inner;
                    move |now| inner.presence.table().grace_check(user, grace, now)
                };
                let runtime = tokio::runtime::Handle::try_current();
                let (Ok(runtime), false) = (runtime, grace.is_zero()) else {
                    if let GraceCheck::Done(change) = check(Instant::now()) {
                        self.local_change(user, change);
                    }
                    return;
                };
                // One timer per user, on a weak handle: a pending timer
                // must not keep a stopping node's engine (and its writer)
                // alive.
                let engine = Arc::downgrade(&self.inner);
                let user = user.clone();
                runtime.spawn(async move {
                    let mut wait = grace;
                    loop {
                        tokio::time::sleep(wait).await;
                        let Some(inner) = engine.upgrade() else {
                            return;
                        };
                        let engine = Engine { inner };
                        let now = Instant::now();
                        let check = engine.inner.presence.table().grace_check(&user, grace, now);
                        match check {
                            GraceCheck::Wait(more) => wait = more,
                            GraceCheck::Done(change) => {
                                engine.local_change(&user, change);
                                return;
                            }
                        }
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spaces_protocol::NodeId;

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name, NodeId([7; 32])).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[test]
    fn a_user_is_online_while_any_client_is_and_offline_only_after_grace() {
        let mut table = PresenceTable::default();
        let alice = user("alice");
        let t0 = Instant::now();
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
        assert_eq!(
            table.disconnect(&alice, Presence::Away, t0),
            LocalChange::None
        );
        assert_eq!(
            table.disconnect(&alice, Presence::Away, t0),
            LocalChange::StartGrace
        );
        // Still away to everyone during the grace period.
        assert_eq!(table.local_state(&alice), Presence::Away);
        assert_eq!(
            table.grace_check(&alice, GRACE, t0 + Duration::from_secs(4)),
            GraceCheck::Wait(Duration::from_secs(6))
        );
        // Back within the grace period: the timer ends without a change.
        assert_eq!(
            table.connect(&alice, Presence::Online),
            LocalChange::Announce(Presence::Online)
        );
        assert_eq!(
            table.grace_check(&alice, GRACE, t0 + GRACE),
            GraceCheck::Done(LocalChange::None)
        );
        // Leaving again starts one timer; leaving and coming back while it
        // runs starts no other, and the timer waits from the last leaving.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(
            table.disconnect(&alice, Presence::Online, t1),
            LocalChange::StartGrace
        );
        table.connect(&alice, Presence::Online);
        let t2 = t1 + Duration::from_secs(5);
        assert_eq!(
            table.disconnect(&alice, Presence::Online, t2),
            LocalChange::None
        );
        assert_eq!(
            table.grace_check(&alice, GRACE, t1 + GRACE),
            GraceCheck::Wait(Duration::from_secs(5))
        );
        assert_eq!(
            table.grace_check(&alice, GRACE, t2 + GRACE),
            GraceCheck::Done(LocalChange::Announce(Presence::Offline))
        );
        assert_eq!(table.local_state(&alice), Presence::Offline);
        assert!(table.local_present().is_empty());
    }

    #[test]
    fn remote_presence_is_per_user_lapses_per_room_and_never_goes_back() {
        let mut table = PresenceTable::default();
        let bob = user("bob");
        let (r1, r2) = (RoomId([1; 32]), RoomId([2; 32]));
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let heard = |rooms: Vec<RoomId>| Heard {
            rooms,
            unless_in: Vec::new(),
        };
        assert_eq!(
            table.remote(&bob, r1, Presence::Online, 100, t0 + ttl, t0),
            heard(vec![r1])
        );
        // The same news through another room reaches only that room.
        assert_eq!(
            table.remote(&bob, r2, Presence::Online, 100, t0 + ttl, t0),
            heard(vec![r2])
        );
        // A repeat is nothing new.
        assert_eq!(
            table.remote(&bob, r1, Presence::Online, 101, t0 + ttl, t0),
            Heard::default()
        );
        let mut away = table.remote(&bob, r1, Presence::Away, 200, t0 + ttl, t0);
        away.rooms.sort();
        assert_eq!(away, heard(vec![r1, r2]));
        // An older announcement, replayed or overtaken, changes nothing.
        assert_eq!(
            table.remote(&bob, r1, Presence::Online, 150, t0 + ttl, t0),
            Heard::default()
        );
        assert_eq!(table.remote_state(&bob, &r2, t0), Presence::Away);
        // Repeated through r1 only: r2's lapses first, and only viewers
        // who share no other room with bob hear he is offline.
        let t1 = t0 + Duration::from_secs(20);
        table.remote(&bob, r1, Presence::Away, 300, t1 + ttl, t1);
        let t2 = t0 + ttl + Duration::from_secs(1);
        assert_eq!(
            table.expire(t2),
            vec![(
                bob.clone(),
                Heard {
                    rooms: vec![r2],
                    unless_in: vec![r1]
                }
            )]
        );
        assert_eq!(table.remote_state(&bob, &r2, t2), Presence::Offline);
        assert_eq!(table.remote_state(&bob, &r1, t2), Presence::Away);
        let t3 = t1 + ttl + Duration::from_secs(1);
        assert_eq!(table.expire(t3), vec![(bob.clone(), heard(vec![r1]))]);
        assert_eq!(table.remote_present().count(), 0);
        // Offline in one room is offline in all, told once; a replay of an
        // online from before it is dropped.
        table.remote(&bob, r1, Presence::Online, 400, t3 + ttl, t3);
        table.remote(&bob, r2, Presence::Online, 400, t3 + ttl, t3);
        let mut offline = table.remote(&bob, r2, Presence::Offline, 500, t3, t3);
        offline.rooms.sort();
        assert_eq!(offline, heard(vec![r1, r2]));
        assert_eq!(
            table.remote(&bob, r1, Presence::Offline, 501, t3, t3),
            Heard::default()
        );
        assert_eq!(
            table.remote(&bob, r1, Presence::Online, 400, t3 + ttl, t3),
            Heard::default()
        );
        // The record of it is kept as long as a replay could be taken.
        assert!(table.expire(t3 + REPLAY_WINDOW / 2).is_empty());
        assert!(table.remote.contains_key(&bob));
        table.expire(t3 + REPLAY_WINDOW + Duration::from_secs(1));
        assert!(!table.remote.contains_key(&bob));
    }
}
