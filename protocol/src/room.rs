//! A room replica: the DAG of its events, their canonical order, and the
//! state they resolve to (docs/spec/state-resolution.md).
//!
//! **Canonical order.** Events are sorted by `(depth, class, rank, id)`.
//! Depth is 1 + the greatest parent depth, so the order is topological;
//! class puts changes to someone's standing before other state and state
//! before messages among events of one depth; among those, the sender with
//! the higher rank at the event's parents goes first; the id only breaks
//! ties between equals. Nothing a sender chooses freely — its clock, or a
//! ground id — moves an event past a higher authority. Every replica that
//! holds the same events holds the same order.
//!
//! **Resolution.** The room's state is the fold of the events in canonical
//! order, each *applied* only if it passes the auth rules against the state
//! just before it. So a ban sorts before the banned user's concurrent
//! messages of the same or greater depth and they are refused everywhere.
//!
//! **Admission.** Separately, an event must pass the auth rules against the
//! state *at its parents* (the fold of its ancestors alone). That check
//! depends only on the event and its ancestors, never on what else arrived,
//! so every honest node admits or drops an event alike; an admitted event is
//! kept even when resolution later refuses it, because others may name it as
//! a parent.
//!
//! **Cost.** State snapshots are O(1) clones (persistent maps). Checkpoints
//! of the running fold every [`CHECKPOINT_EVERY`] positions bound a replay
//! after an insertion to the events after the insertion point plus one
//! checkpoint interval: linear in the size of the conflict, not the room.
//! Computing the state at an event's parents walks back from the parents to
//! the nearest *cut* (a position whose prefix has that event as its only
//! tip); for an event built on the current head that walk is one step.
//!
//! **Memory.** Events are held by *handle* (a `u32`, their arrival index in
//! the replica): each id is stored once, in an arena, and found through a
//! table of handles; parents are handles in one flat list; senders are
//! interned. An event given as a skeleton ([`Event::skeleton`]) whose
//! content is a plain message, an edit or a redaction — the bulk of a room —
//! is kept as a fixed-size record and rebuilt, equal to the skeleton it
//! came from, when asked for ([`Room::event`]). Every other event (state,
//! reactions, files, and any event given whole, with its signed bytes) is
//! kept as given. About 100 bytes written an event for a room of messages,
//! 134 on the heap with the vectors' spare capacity (`tests/resident.rs`).
//! An event appended on the head of a linear history (every local send, and
//! every event at start-up for such a room) is authorized once: admission's
//! check against the state at its parents is resolution's check at the end.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::auth::{self, AuthError, Target, TargetKind};
use crate::content::{Class, Content, Edit, Membership, Mentions, Message, Redaction};
use crate::event::{Event, EventBody, Rejection};
use crate::ids::UserId;
use crate::ids::{EventId, NodeId, RoomId};
use crate::limits::MAX_PARENTS;
use crate::permissions::{OWNER_RANK, Rank};
use crate::state::RoomState;

/// Positions between checkpoints. Smaller costs memory (a checkpoint is a few
/// hundred bytes), larger costs replay time after an out-of-order insertion.
pub const CHECKPOINT_EVERY: usize = 64;

/// The newest checkpoints are all kept: insertions out of order and events
/// on older parents land near the end. Of the older ones only every
/// [`SPARSE_EVERY`]th is, because a checkpoint is not a few hundred bytes
/// once messages run: each holds its own copy of every node of the senders'
/// last-message times (slowmode's clock) that changed since the one before
/// (imbl's nodes are kilobytes), tens of kilobytes with a hundred senders.
/// A replay or fold from an old position then starts up to
/// `SPARSE_EVERY * CHECKPOINT_EVERY` positions earlier.
const DENSE: usize = if cfg!(test) { 1 } else { 4 };
const SPARSE_EVERY: usize = if cfg!(test) { 2 } else { 64 };

/// An event's index in the replica's arenas, in arrival order. Never reused
/// or moved: positions in the canonical order change, handles do not.
type Handle = u32;
/// No event (an absent reply or thread target).
const NO_HANDLE: Handle = Handle::MAX;

/// Sort key of the canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    depth: u64,
    class: Class,
    /// The sender's rank at the event's parents, highest first: among
    /// concurrent events of one depth and class, authority decides, not an
    /// id the sender could grind.
    rank: Reverse<Rank>,
    id: EventId,
}

/// What the replica keeps of one event besides its id: 48 bytes.
#[derive(Clone, Copy, Debug)]
struct Rec {
    origin_ts: u64,
    /// Effective time: the greater of the event's own clock and its parents'
    /// effective times. Monotone along every path, so a sender cannot step
    /// back before an event they saw (a timeout, their last message).
    time_ms: u64,
    /// 1 + the greatest parent depth: less than the number of events, so
    /// it fits (a handle does).
    depth: u32,
    /// Position in the canonical order.
    pos: u32,
    rank: Rank,
    /// Index into `Room::users`.
    sender: u32,
    /// Where its run of parents starts in `Room::parents`; the next event's
    /// starts where it ends.
    parents: u32,
    body: Body,
}

/// An event's content as the replica keeps it. The compact forms hold
/// exactly what [`Content::skeleton`] keeps of them, so the rebuilt event
/// equals the skeleton it was made from; their class is
/// [`Class::Message`].
#[derive(Clone, Copy, Debug)]
enum Body {
    /// Kept as given: `Room::whole[i]`.
    Whole(u32),
    /// A message without files: its thread root and reply target (or
    /// [`NO_HANDLE`]) and its `@room` flag.
    Message {
        thread: Handle,
        reply_to: Handle,
        room: bool,
    },
    Edit {
        target: Handle,
        room: bool,
    },
    Redaction {
        target: Handle,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    accepted: bool,
    /// The prefix up to and including this position has this event as its
    /// only tip: every earlier event is its ancestor.
    cut: bool,
    /// An accepted ban, or kick of a joined member: it revokes the target's
    /// concurrent messages (see [`Room::revoked`]).
    revokes: bool,
}

/// The running fold at one position.
#[derive(Clone, Debug, Default)]
struct Cursor {
    state: RoomState,
    /// Sorted. A vector, not a persistent set: there are few tips, and a
    /// persistent set's smallest node is kilobytes, copied at every
    /// checkpoint.
    tips: Vec<EventId>,
}

/// Why an event was not inserted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// Invalid here: drop it, do not forward it, score its sender down.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Fetch these first, then insert again.
    #[error("{} parent(s) not yet known", .0.len())]
    MissingParents(Vec<EventId>),
}

/// What an insertion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Already held; nothing changed.
    Duplicate,
    New {
        /// Whether resolution applied it (it is part of state and timeline).
        accepted: bool,
        /// Why resolution refused it, when it did.
        refusal: Option<AuthError>,
        /// Its place in the canonical order.
        position: usize,
        /// Earlier events whose acceptance changed, with their new value: a
        /// concurrent ban can retroactively refuse what it raced.
        changed: Vec<(EventId, bool)>,
    },
}

/// A replica of one room.
#[derive(Debug)]
pub struct Room {
    room_id: RoomId,
    /// Every event's id, by handle.
    ids: Vec<EventId>,
    /// Handles, found by the hash of their id (`hasher`): the id is stored
    /// once, in `ids`.
    index: HashTable<Handle>,
    hasher: RandomState,
    /// Every event's record, by handle.
    recs: Vec<Rec>,
    /// Parents of every event, as handles, one run per event.
    parents: Vec<Handle>,
    /// Senders, interned.
    users: Vec<UserId>,
    user_index: HashMap<UserId, u32>,
    /// The events kept as given (see [`Body::Whole`]).
    whole: Vec<Event>,
    /// Handles in canonical order.
    order: Vec<Handle>,
    slots: Vec<Slot>,
    /// `checkpoints[k]`: the fold before position `k * CHECKPOINT_EVERY`;
    /// `None` for older ones thinned out (see [`DENSE`]). The first is
    /// always kept.
    checkpoints: Vec<Option<Cursor>>,
    end: Cursor,
    /// Bans and kicks by someone else: the events that may revoke.
    revocations: HashSet<Handle>,
    /// Messages refused after the fold because a ban or kick of their sender
    /// was concurrent with them (docs/spec/state-resolution.md §Revocation).
    revoked: HashSet<EventId>,
}

impl Room {
    /// Starts a replica from the room's create event.
    pub fn new(create: Event) -> Result<Room, Rejection> {
        if !matches!(create.content(), Content::Create(_)) {
            return Err(Rejection::Shape("a room starts with its create event"));
        }
        let mut room = Room {
            room_id: RoomId(create.id().0),
            ids: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            recs: Vec::new(),
            parents: Vec::new(),
            users: Vec::new(),
            user_index: HashMap::new(),
            whole: Vec::new(),
            order: Vec::new(),
            slots: Vec::new(),
            checkpoints: Vec::new(),
            end: Cursor::default(),
            revocations: HashSet::new(),
            revoked: HashSet::new(),
        };
        auth::authorize(&room.end.state, &create, create.origin_ts(), &|_| None)?;
        room.push_entry(&create, 0, OWNER_RANK, 0);
        room.replay_from(0, None);
        Ok(room)
    }

    /// Rebuilds a replica from events this node verified and admitted
    /// earlier (its own store), in any order, without checking signatures
    /// again: one sort, then insertion in depth order, which for a linear
    /// history appends every time. Events whose parents are absent, or that
    /// are no longer admissible, are skipped and returned, so a damaged store
    /// degrades instead of failing.
    pub fn load(
        create: Event,
        events: impl IntoIterator<Item = Event>,
    ) -> Result<(Room, Vec<EventId>), Rejection> {
        let mut room = Room::new(create)?;
        let mut rest: Vec<Event> = events
            .into_iter()
            .filter(|e| e.id() != room.room_id.create_event())
            .collect();
        rest.sort_by_key(|e| (e.depth(), e.class(), e.id()));
        rest.dedup_by_key(|e| e.id());
        // The order needs each sender's rank at its event's parents, which is
        // what admission computes: insert in depth order (parents first).
        // For a linear history every insertion is an append.
        let mut skipped = Vec::new();
        for event in rest {
            let id = event.id();
            if room.insert(event).is_err() {
                skipped.push(id);
            }
        }
        Ok((room, skipped))
    }

    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    /// The resolved current state.
    pub fn state(&self) -> &RoomState {
        &self.end.state
    }

    /// The DAG's current tips, which a new event names as parents. At most
    /// [`MAX_PARENTS`]: the deepest, if there are more (the rest are merged
    /// by later events).
    pub fn heads(&self) -> Vec<EventId> {
        let mut tips: Vec<EventId> = self.end.tips.clone();
        if tips.len() > MAX_PARENTS {
            tips.sort_by_key(|id| Reverse(self.handle(id).map(|h| self.key(h))));
            tips.truncate(MAX_PARENTS);
        }
        tips.sort();
        tips
    }

    /// A new event's body on the current heads: the caller signs it.
    pub fn draft(
        &self,
        origin: NodeId,
        sender: &str,
        origin_ts: u64,
        content: Content,
    ) -> EventBody {
        let parents = self.heads();
        let depth = parents
            .iter()
            .filter_map(|id| self.rec(id))
            .map(|r| u64::from(r.depth))
            .max()
            .unwrap_or(0)
            + 1;
        EventBody {
            origin,
            room: Some(self.room_id),
            sender: sender.to_owned(),
            parents,
            depth,
            origin_ts,
            content,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, id: &EventId) -> bool {
        self.handle(id).is_some()
    }

    /// The event as this replica holds it: as inserted (a skeleton, or
    /// whole), rebuilt when it was kept as a record.
    pub fn event(&self, id: &EventId) -> Option<Event> {
        self.handle(id).map(|h| self.event_of(h))
    }

    /// Position in the canonical order.
    pub fn position(&self, id: &EventId) -> Option<usize> {
        self.rec(id).map(|r| r.pos as usize)
    }

    /// An event's index in this replica: its arrival order, from 0 for the
    /// create event. Stable (unlike its position), so a holder can key its
    /// own per-event data by it in a vector instead of a map by id.
    pub fn index_of(&self, id: &EventId) -> Option<u32> {
        self.handle(id)
    }

    /// The id of the event with an index from [`Room::index_of`].
    pub fn id_of(&self, index: u32) -> Option<EventId> {
        self.ids.get(index as usize).copied()
    }

    /// Whether an event is a message ([`Content::Message`]: not a reaction,
    /// edit or redaction), without rebuilding it.
    pub fn is_message(&self, id: &EventId) -> bool {
        self.rec(id).is_some_and(|r| match r.body {
            Body::Whole(i) => matches!(self.whole[i as usize].content(), Content::Message(_)),
            Body::Message { .. } => true,
            Body::Edit { .. } | Body::Redaction { .. } => false,
        })
    }

    /// Who sent an event, without rebuilding it.
    pub fn sender(&self, id: &EventId) -> Option<&UserId> {
        self.rec(id).map(|r| &self.users[r.sender as usize])
    }

    /// The id of the event at a canonical position.
    pub fn id_at(&self, pos: usize) -> Option<EventId> {
        self.order.get(pos).map(|&h| self.ids[h as usize])
    }

    /// Accepted by the fold and not revoked: part of state and timeline.
    pub fn is_accepted(&self, id: &EventId) -> bool {
        self.rec(id)
            .is_some_and(|r| self.slots[r.pos as usize].accepted && !self.revoked.contains(id))
    }

    /// Whether an event was refused after the fold: a message sent
    /// concurrently with its sender's ban or kick.
    pub fn is_revoked(&self, id: &EventId) -> bool {
        self.revoked.contains(id)
    }

    /// Effective time of an event (see [`Rec::time_ms`]).
    pub fn time_ms(&self, id: &EventId) -> Option<u64> {
        self.rec(id).map(|r| r.time_ms)
    }

    /// Every event in canonical order with whether resolution accepted it.
    /// Events kept as records are rebuilt one by one: to find state events,
    /// [`Room::iter_whole`] is cheaper.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (Event, bool)> + ExactSizeIterator + '_ {
        (0..self.order.len()).map(|pos| self.at_pos(pos))
    }

    /// The events kept as given — every state event, reaction and message
    /// with files — with their canonical position and acceptance, in
    /// canonical order.
    pub fn iter_whole(&self) -> impl DoubleEndedIterator<Item = (usize, &Event, bool)> + '_ {
        self.order.iter().enumerate().filter_map(move |(pos, &h)| {
            match self.recs[h as usize].body {
                Body::Whole(i) => {
                    let event = &self.whole[i as usize];
                    Some((pos, event, self.accepted_at(pos)))
                }
                _ => None,
            }
        })
    }

    /// The events whose content refers to an earlier one (replies,
    /// threads, reactions, edits, redactions, pins), in canonical order
    /// with whether resolution accepted them: a read model's input, without
    /// rebuilding the plain messages between them.
    pub fn iter_referring(&self) -> impl Iterator<Item = (Event, bool)> + '_ {
        (0..self.order.len())
            .filter(|&pos| match self.recs[self.order[pos] as usize].body {
                Body::Whole(i) => !self.whole[i as usize].content().references().is_empty(),
                Body::Message {
                    thread, reply_to, ..
                } => thread != NO_HANDLE || reply_to != NO_HANDLE,
                Body::Edit { .. } | Body::Redaction { .. } => true,
            })
            .map(|pos| self.at_pos(pos))
    }

    /// The event at a canonical position.
    pub fn at(&self, pos: usize) -> Option<(Event, bool)> {
        (pos < self.order.len()).then(|| self.at_pos(pos))
    }

    /// The events that are neither among `known` nor ancestors of one, in
    /// canonical order (so parents come first): what a replica whose heads
    /// are `known` lacks. Ids this replica does not hold are ignored. Costs
    /// the walk from `known` back to the last cut below them, then the
    /// events after that cut — not the whole room.
    pub fn missing_for<'a>(&'a self, known: &[EventId]) -> impl Iterator<Item = Event> + 'a {
        self.missing_ids_for(known)
            .map(|id| self.event(&id).expect("held"))
    }

    /// The ids of [`Room::missing_for`], without rebuilding the events.
    pub fn missing_ids_for<'a>(&'a self, known: &[EventId]) -> impl Iterator<Item = EventId> + 'a {
        let (floor, above) = self.ancestry(known);
        (floor..self.order.len())
            .filter(move |pos| !above.contains(pos))
            .map(|pos| self.ids[self.order[pos] as usize])
    }

    /// Parents of `event` this replica does not hold.
    pub fn missing_parents(&self, event: &Event) -> Vec<EventId> {
        event
            .parents()
            .iter()
            .filter(|p| !self.contains(p))
            .copied()
            .collect()
    }

    /// Would `event` be admitted and accepted if inserted now? Checks
    /// everything [`Room::insert`] checks without changing the replica.
    pub fn check(&self, event: &Event) -> Result<Option<AuthError>, InsertError> {
        self.admit(event)?;
        // Appended at the end (a new local event always sorts last when built
        // on `heads()`), resolution sees the current state.
        let time_ms = self.effective_time(event);
        let targets = |id: &EventId| self.main_target(id, self.order.len());
        Ok(auth::authorize(&self.end.state, event, time_ms, &targets).err())
    }

    /// Inserts a verified event. See the module docs for what is checked.
    pub fn insert(&mut self, event: Event) -> Result<Inserted, InsertError> {
        if self.contains(&event.id()) {
            return Ok(Inserted::Duplicate);
        }
        let (time_ms, rank, on_end) = self.admit(&event)?;
        let key = key_of(&event, rank);
        // A new event built on the heads sorts last, so try the end first:
        // the search costs a record lookup per step, about 16 for a room of
        // 60,000 events.
        let pos = match self.order.last() {
            Some(&last) if self.key(last) < key => self.order.len(),
            _ => self.order.partition_point(|&h| self.key(h) < key),
        };
        let id = event.id();
        let appended = pos == self.order.len();
        let handle = self.push_entry(&event, time_ms, rank, pos);
        let is_revocation = revocation_target(&event).is_some();
        if is_revocation {
            self.revocations.insert(handle);
        }
        let before: Vec<bool> = self.slots[pos + 1..].iter().map(|s| s.accepted).collect();
        let mut refusal = if appended {
            self.apply_at_end(pos, &event, on_end)
        } else {
            self.replay_from(pos, Some(&event))
        };
        // Every event whose slot or revocation may have moved, with its
        // effective outcome before this insertion.
        let mut was_accepted: HashMap<EventId, bool> = self.order[pos + 1..]
            .iter()
            .zip(&self.slots[pos + 1..])
            .zip(before)
            .filter(|((_, slot), was)| slot.accepted != *was)
            .map(|((&h, _), was)| {
                let id = self.ids[h as usize];
                (id, was && !self.revoked.contains(&id))
            })
            .collect();
        // An event appended at the end is concurrent with no revocation
        // before it and revokes nothing unless it is one.
        if !appended || is_revocation || !was_accepted.is_empty() {
            let old = std::mem::take(&mut self.revoked);
            self.revoked = self.compute_revoked();
            for gone in old.difference(&self.revoked) {
                // It was revoked, so it was refused.
                was_accepted.entry(*gone).or_insert(false);
            }
            for new in self.revoked.difference(&old) {
                // Only accepted slots are revoked; an unflipped slot was
                // accepted before too.
                was_accepted.entry(*new).or_insert(true);
            }
        }
        was_accepted.remove(&id);
        // Report the effective outcome of each event whose outcome moved: a
        // slot flip cancelled by a revocation flip is no change.
        let mut changed: Vec<(EventId, bool)> = was_accepted
            .into_iter()
            .map(|(other, was)| (other, was, self.is_accepted(&other)))
            .filter(|(_, was, now)| was != now)
            .map(|(other, _, now)| (other, now))
            .collect();
        changed.sort_by_key(|(other, _)| self.position(other));
        if self.revoked.contains(&id) {
            refusal = Some(AuthError::Revoked);
        }
        Ok(Inserted::New {
            accepted: self.is_accepted(&id),
            refusal,
            position: pos,
            changed,
        })
    }

    // ---- the arenas ----

    fn handle(&self, id: &EventId) -> Option<Handle> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&h| self.ids[h as usize] == *id)
            .copied()
    }

    fn rec(&self, id: &EventId) -> Option<&Rec> {
        self.handle(id).map(|h| &self.recs[h as usize])
    }

    fn key(&self, h: Handle) -> OrderKey {
        let rec = &self.recs[h as usize];
        OrderKey {
            depth: u64::from(rec.depth),
            class: self.class_of(h),
            rank: Reverse(rec.rank),
            id: self.ids[h as usize],
        }
    }

    fn class_of(&self, h: Handle) -> Class {
        match self.recs[h as usize].body {
            Body::Whole(i) => self.whole[i as usize].class(),
            _ => Class::Message,
        }
    }

    fn parents_of(&self, h: Handle) -> &[Handle] {
        let start = self.recs[h as usize].parents as usize;
        let end = self
            .recs
            .get(h as usize + 1)
            .map_or(self.parents.len(), |next| next.parents as usize);
        &self.parents[start..end]
    }

    fn accepted_at(&self, pos: usize) -> bool {
        self.slots[pos].accepted && !self.revoked.contains(&self.ids[self.order[pos] as usize])
    }

    fn at_pos(&self, pos: usize) -> (Event, bool) {
        (self.event_of(self.order[pos]), self.accepted_at(pos))
    }

    fn opt_id(&self, h: Handle) -> Option<EventId> {
        (h != NO_HANDLE).then(|| self.ids[h as usize])
    }

    /// The event with handle `h`: the one kept, or its skeleton rebuilt.
    fn event_of(&self, h: Handle) -> Event {
        let rec = &self.recs[h as usize];
        let mentions = |room| Mentions {
            room,
            ..Mentions::default()
        };
        let content = match rec.body {
            Body::Whole(i) => return self.whole[i as usize].clone(),
            Body::Message {
                thread,
                reply_to,
                room,
            } => Content::Message(Message {
                body: String::new(),
                mentions: mentions(room),
                reply_to: self.opt_id(reply_to),
                thread: self.opt_id(thread),
                attachments: Vec::new(),
            }),
            Body::Edit { target, room } => Content::Edit(Edit {
                target: self.ids[target as usize],
                body: String::new(),
                mentions: mentions(room),
            }),
            Body::Redaction { target } => Content::Redaction(Redaction {
                target: self.ids[target as usize],
                reason: None,
            }),
        };
        let sender = &self.users[rec.sender as usize];
        let body = EventBody {
            origin: sender.node(),
            room: Some(self.room_id),
            sender: sender.localpart().to_owned(),
            parents: self
                .parents_of(h)
                .iter()
                .map(|&p| self.ids[p as usize])
                .collect(),
            depth: u64::from(rec.depth),
            origin_ts: rec.origin_ts,
            content,
        };
        Event::kept(self.ids[h as usize], self.room_id, sender.clone(), body)
    }

    /// How the replica keeps `event`: as a record when it is a skeleton
    /// (no signed bytes) of a plain message, an edit or a redaction whose
    /// targets it holds; whole otherwise.
    fn compact_body(&self, event: &Event) -> Option<Body> {
        if !event.bytes().is_empty() || event.body().room != Some(self.room_id) {
            return None;
        }
        let plain = |m: &Mentions| m.users.is_empty() && m.roles.is_empty();
        let target = |id: &EventId| self.handle(id);
        let optional = |id: &Option<EventId>| match id {
            None => Some(NO_HANDLE),
            Some(id) => self.handle(id),
        };
        match event.content() {
            Content::Message(Message {
                body,
                mentions,
                reply_to,
                thread,
                attachments,
            }) if body.is_empty() && plain(mentions) && attachments.is_empty() => {
                Some(Body::Message {
                    thread: optional(thread)?,
                    reply_to: optional(reply_to)?,
                    room: mentions.room,
                })
            }
            Content::Edit(Edit {
                target: id,
                body,
                mentions,
            }) if body.is_empty() && plain(mentions) => Some(Body::Edit {
                target: target(id)?,
                room: mentions.room,
            }),
            Content::Redaction(Redaction {
                target: id,
                reason: None,
            }) => Some(Body::Redaction {
                target: target(id)?,
            }),
            _ => None,
        }
    }

    fn intern_user(&mut self, user: &UserId) -> u32 {
        if let Some(&i) = self.user_index.get(user) {
            return i;
        }
        let i = u32::try_from(self.users.len()).expect("fewer than 2³² senders");
        self.users.push(user.clone());
        self.user_index.insert(user.clone(), i);
        i
    }

    /// Adds `event` to the arenas and at `pos` in the order; returns its
    /// handle. Later positions move up by one.
    fn push_entry(&mut self, event: &Event, time_ms: u64, rank: Rank, pos: usize) -> Handle {
        let h = Handle::try_from(self.ids.len())
            .ok()
            .filter(|&h| h != NO_HANDLE)
            .expect("fewer than 2³² events in a room");
        let body = match self.compact_body(event) {
            Some(body) => body,
            None => {
                self.whole.push(event.clone());
                Body::Whole((self.whole.len() - 1) as u32)
            }
        };
        let sender = self.intern_user(event.sender());
        let parents = self.parents.len() as u32;
        for parent in event.parents() {
            // Admission checked that every parent is held.
            let p = self.handle(parent).expect("parents are held");
            self.parents.push(p);
        }
        self.recs.push(Rec {
            origin_ts: event.origin_ts(),
            time_ms,
            // Admission checked it against the parents' (the create's is 0).
            depth: u32::try_from(event.depth()).expect("a depth below the event count"),
            pos: pos as u32,
            rank,
            sender,
            parents,
            body,
        });
        self.ids.push(event.id());
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(event.id()), h, |&k| {
                hasher.hash_one(ids[k as usize])
            });
        self.order.insert(pos, h);
        self.slots.insert(pos, Slot::default());
        for &later in &self.order[pos + 1..] {
            self.recs[later as usize].pos += 1;
        }
        h
    }

    // ---- admission and resolution ----

    /// Admission checks; returns the event's effective time, its sender's
    /// rank at its parents, and whether the state at its parents is the
    /// current state (its parent is the head of a linear history): then it
    /// is appended, and resolution's check of it is the one just made.
    fn admit(&self, event: &Event) -> Result<(u64, Rank, bool), InsertError> {
        if event.room_id() != self.room_id {
            return Err(Rejection::WrongRoom.into());
        }
        let missing = self.missing_parents(event);
        if !missing.is_empty() {
            return Err(InsertError::MissingParents(missing));
        }
        self.check_depth(event)?;
        let time_ms = self.effective_time(event);
        let at_parents = self.state_at(event.parents());
        for reference in event.content().references() {
            if !at_parents.is_ancestor(self, &reference) {
                return Err(Rejection::UnknownReference(reference).into());
            }
        }
        let targets = |id: &EventId| at_parents.target(self, id);
        auth::authorize(&at_parents.state, event, time_ms, &targets).map_err(Rejection::from)?;
        let on_end = at_parents.above.is_empty() && at_parents.cut_end == self.order.len();
        Ok((time_ms, at_parents.state.rank(event.sender()), on_end))
    }

    fn check_depth(&self, event: &Event) -> Result<(), Rejection> {
        let parent_depth = event
            .parents()
            .iter()
            .filter_map(|p| self.rec(p))
            .map(|r| u64::from(r.depth))
            .max();
        match parent_depth {
            Some(depth) if event.depth() == depth + 1 => Ok(()),
            _ => Err(Rejection::BadDepth),
        }
    }

    fn effective_time(&self, event: &Event) -> u64 {
        event
            .parents()
            .iter()
            .filter_map(|p| self.rec(p))
            .map(|r| r.time_ms)
            .fold(event.origin_ts(), u64::max)
    }

    /// What resolution knows about `id` for an event at `pos`.
    fn main_target(&self, id: &EventId, pos: usize) -> Option<Target> {
        let h = self.handle(id)?;
        let at = self.recs[h as usize].pos as usize;
        (at < pos && self.slots[at].accepted).then(|| self.target_of(h))
    }

    fn target_of(&self, h: Handle) -> Target {
        let rec = &self.recs[h as usize];
        let kind = match rec.body {
            Body::Whole(i) => TargetKind::of(self.whole[i as usize].content()),
            Body::Message { thread, .. } if thread != NO_HANDLE => TargetKind::ThreadReply,
            Body::Message { .. } => TargetKind::Message,
            Body::Edit { .. } => TargetKind::Edit,
            Body::Redaction { .. } => TargetKind::Redaction,
        };
        Target {
            sender: self.users[rec.sender as usize].clone(),
            kind,
        }
    }

    /// The event at `pos`: `hot` when it is that one (the event being
    /// inserted, in hand), else as kept.
    fn event_at(&self, pos: usize, hot: Option<&Event>) -> Event {
        let h = self.order[pos];
        match hot {
            Some(event) if event.id() == self.ids[h as usize] => event.clone(),
            _ => self.event_of(h),
        }
    }

    /// Applies position `pos`, the last one, holding `event`, to `end`;
    /// `admitted_on_end`: admission authorized it against `end` already.
    fn apply_at_end(
        &mut self,
        pos: usize,
        event: &Event,
        admitted_on_end: bool,
    ) -> Option<AuthError> {
        if pos.is_multiple_of(CHECKPOINT_EVERY) {
            self.checkpoints.truncate(pos / CHECKPOINT_EVERY);
            self.push_checkpoint(self.end.clone());
        }
        let mut cursor = std::mem::take(&mut self.end);
        let refusal = self.step(&mut cursor, pos, event, admitted_on_end);
        self.end = cursor;
        refusal
    }

    /// Re-folds from the checkpoint at or before `from` to the end, updating
    /// acceptance, cuts and checkpoints. Returns the refusal at `from`.
    fn replay_from(&mut self, from: usize, hot: Option<&Event>) -> Option<AuthError> {
        let (k, mut cursor) = self.checkpoint_before(from);
        self.checkpoints.truncate(k);
        let mut refusal = None;
        for pos in k * CHECKPOINT_EVERY..self.order.len() {
            if pos.is_multiple_of(CHECKPOINT_EVERY) {
                self.push_checkpoint(cursor.clone());
            }
            let event = self.event_at(pos, hot);
            let r = self.step(&mut cursor, pos, &event, false);
            if pos == from {
                refusal = r;
            }
        }
        self.end = cursor;
        refusal
    }

    /// The kept checkpoint nearest before position `pos`: its index and a
    /// copy.
    fn checkpoint_before(&self, pos: usize) -> (usize, Cursor) {
        let k = (pos / CHECKPOINT_EVERY).min(self.checkpoints.len().saturating_sub(1));
        (0..=k)
            .rev()
            .find_map(|k| Some((k, self.checkpoints.get(k)?.clone()?)))
            .unwrap_or_default()
    }

    /// Appends the next checkpoint and thins out the one that just left
    /// the dense window, unless it is one of the sparse ones kept.
    fn push_checkpoint(&mut self, cursor: Cursor) {
        self.checkpoints.push(Some(cursor));
        if let Some(old) = self.checkpoints.len().checked_sub(DENSE + 1)
            && !old.is_multiple_of(SPARSE_EVERY)
        {
            self.checkpoints[old] = None;
        }
    }

    /// Authorizes and applies one position, holding `event`, onto `cursor`.
    /// `authorized`: it passed the same check (same state, same targets,
    /// same time) already, so it is not made again.
    fn step(
        &mut self,
        cursor: &mut Cursor,
        pos: usize,
        event: &Event,
        authorized: bool,
    ) -> Option<AuthError> {
        let time_ms = self.recs[self.order[pos] as usize].time_ms;
        let verdict = if authorized {
            Ok(())
        } else {
            let targets = |id: &EventId| self.main_target(id, pos);
            auth::authorize(&cursor.state, event, time_ms, &targets)
        };
        let revokes = verdict.is_ok()
            && revocation_target(event).is_some_and(|(target, membership)| {
                membership == Membership::Ban
                    || cursor.state.membership(target) == Some(Membership::Join)
            });
        if verdict.is_ok() {
            auth::apply(&mut cursor.state, event, time_ms);
        }
        for parent in event.parents() {
            if let Ok(i) = cursor.tips.binary_search(parent) {
                cursor.tips.remove(i);
            }
        }
        if let Err(i) = cursor.tips.binary_search(&event.id()) {
            cursor.tips.insert(i, event.id());
        }
        self.slots[pos] = Slot {
            accepted: verdict.is_ok(),
            cut: cursor.tips.len() == 1,
            revokes,
        };
        verdict.err()
    }

    /// Every message-class event by the target of an accepted ban or kick
    /// that sorts before the ban or kick without being its ancestor: sent
    /// concurrently, so the revocation wins. Computed from the fold; it never
    /// changes the fold (messages carry no state but the sender's slowmode
    /// clock, and a revoked sender's clock is theirs alone).
    fn compute_revoked(&self) -> HashSet<EventId> {
        let mut revoked = HashSet::new();
        for &h in &self.revocations {
            let rec = &self.recs[h as usize];
            if !self.slots[rec.pos as usize].revokes {
                continue;
            }
            let Body::Whole(i) = rec.body else { continue };
            let event = &self.whole[i as usize];
            let Some((target, _)) = revocation_target(event) else {
                continue;
            };
            // Someone who never sent anything has nothing to revoke.
            let Some(&target) = self.user_index.get(target) else {
                continue;
            };
            let (cut_end, above) = self.ancestry(event.parents());
            for pos in cut_end..rec.pos as usize {
                let other = &self.recs[self.order[pos] as usize];
                if !above.contains(&pos)
                    && other.sender == target
                    && self.class_of(self.order[pos]) == Class::Message
                    && self.slots[pos].accepted
                {
                    revoked.insert(self.ids[self.order[pos] as usize]);
                }
            }
        }
        revoked
    }

    /// The ancestors of a set of parents: every position below the first
    /// returned, plus the positions in the set.
    fn ancestry(&self, parents: &[EventId]) -> (usize, HashSet<usize>) {
        let (cut, above) = self.walk_to_cut(parents);
        (cut.map_or(0, |c| c + 1), above.into_iter().collect())
    }

    /// Walks back from `parents` in descending position until the frontier
    /// is one cut: returns the cut and the ancestors above it.
    fn walk_to_cut(&self, parents: &[EventId]) -> (Option<usize>, Vec<usize>) {
        // An event on a cut (one built on a linear history's head): the
        // walk below stops there at once; answer without its allocations.
        if let [parent] = parents
            && let Some(rec) = self.rec(parent)
            && self.slots[rec.pos as usize].cut
        {
            return (Some(rec.pos as usize), Vec::new());
        }
        let mut heap: BinaryHeap<usize> = BinaryHeap::new();
        let mut seen: HashSet<usize> = HashSet::new();
        for parent in parents {
            if let Some(rec) = self.rec(parent)
                && seen.insert(rec.pos as usize)
            {
                heap.push(rec.pos as usize);
            }
        }
        let mut above: Vec<usize> = Vec::new();
        let cut = loop {
            let Some(top) = heap.pop() else { break None };
            // Everything before a cut is its ancestor, so the rest of the
            // frontier is already covered.
            if self.slots[top].cut {
                break Some(top);
            }
            above.push(top);
            for &parent in self.parents_of(self.order[top]) {
                let pos = self.recs[parent as usize].pos as usize;
                if seen.insert(pos) {
                    heap.push(pos);
                }
            }
        };
        (cut, above)
    }

    /// The state at a set of parents: the fold of their ancestors alone.
    fn state_at(&self, parents: &[EventId]) -> AtParents {
        let (cut, mut above) = self.walk_to_cut(parents);
        let mut state = match cut {
            Some(cut) => self.fold_prefix(cut + 1),
            None => RoomState::default(),
        };
        // Fold the ancestors above the cut in order, judged on their own.
        above.sort_unstable();
        let mut accepted_above: HashSet<usize> = HashSet::new();
        let cut_pos = cut.map_or(0, |c| c + 1);
        for &pos in &above {
            let h = self.order[pos];
            let time_ms = self.recs[h as usize].time_ms;
            let event = self.event_of(h);
            let targets = |id: &EventId| {
                let h = self.handle(id)?;
                let at = self.recs[h as usize].pos as usize;
                let ok = if at < cut_pos {
                    self.slots[at].accepted
                } else {
                    accepted_above.contains(&at)
                };
                (ok && at < pos).then(|| self.target_of(h))
            };
            if auth::authorize(&state, &event, time_ms, &targets).is_ok() {
                auth::apply(&mut state, &event, time_ms);
                accepted_above.insert(pos);
            }
        }
        AtParents {
            state,
            cut_end: cut_pos,
            above: above.into_iter().collect(),
            accepted_above,
        }
    }

    /// The main fold before position `end` (which must be at most `len`).
    fn fold_prefix(&self, end: usize) -> RoomState {
        if end == self.order.len() {
            return self.end.state.clone();
        }
        let (k, Cursor { mut state, .. }) = self.checkpoint_before(end);
        for pos in k * CHECKPOINT_EVERY..end {
            if self.slots[pos].accepted {
                self.apply_kept(&mut state, self.order[pos]);
            }
        }
        state
    }

    /// [`auth::apply`] of the event with handle `h`, without rebuilding it
    /// when it is kept as a record.
    fn apply_kept(&self, state: &mut RoomState, h: Handle) {
        let rec = &self.recs[h as usize];
        match rec.body {
            Body::Whole(i) => auth::apply(state, &self.whole[i as usize], rec.time_ms),
            Body::Message { .. } => {
                auth::apply_message(state, &self.users[rec.sender as usize], rec.time_ms);
            }
            // Nothing, as in `auth::apply`.
            Body::Edit { .. } | Body::Redaction { .. } => {}
        }
    }
}

/// The state at an event's parents, and which events are its ancestors.
struct AtParents {
    state: RoomState,
    /// Every position below this is an ancestor.
    cut_end: usize,
    /// Ancestors above the cut.
    above: HashSet<usize>,
    accepted_above: HashSet<usize>,
}

impl AtParents {
    fn is_ancestor(&self, room: &Room, id: &EventId) -> bool {
        room.position(id)
            .is_some_and(|pos| pos < self.cut_end || self.above.contains(&pos))
    }

    fn target(&self, room: &Room, id: &EventId) -> Option<Target> {
        let h = room.handle(id)?;
        let pos = room.recs[h as usize].pos as usize;
        let accepted = if pos < self.cut_end {
            room.slots[pos].accepted
        } else {
            self.accepted_above.contains(&pos)
        };
        accepted.then(|| room.target_of(h))
    }
}

/// The target and membership of a ban or of a `leave` sent by someone else
/// (a kick, an unban, or a revoked invite): the events that may revoke.
fn revocation_target(event: &Event) -> Option<(&UserId, Membership)> {
    match event.content() {
        Content::Member(m)
            if &m.target != event.sender()
                && matches!(m.membership, Membership::Ban | Membership::Leave) =>
        {
            Some((&m.target, m.membership))
        }
        _ => None,
    }
}

fn key_of(event: &Event, rank: Rank) -> OrderKey {
    OrderKey {
        depth: event.depth(),
        class: event.class(),
        rank: Reverse(rank),
        id: event.id(),
    }
}

#[cfg(test)]
mod tests {
    //! The optimised paths (checkpoints, cuts, the walk back in `state_at`)
    //! against their definitions, computed naively, on random DAGs.

    use super::*;
    use crate::content::{
        HistoryVisibility, JoinRule, Member, MemberRoles, Membership, Message, Reaction, RoomKind,
    };
    use crate::ids::{RoleId, UserId};
    use crate::keys::NodeKey;
    use crate::permissions::Permissions;

    impl Room {
        fn order_ids(&self) -> Vec<EventId> {
            (0..self.len())
                .map(|pos| self.id_at(pos).unwrap())
                .collect()
        }
    }

    fn target_of(event: &Event) -> Target {
        Target {
            sender: event.sender().clone(),
            kind: TargetKind::of(event.content()),
        }
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const T0: u64 = 1_800_000_000_000;

    /// A room grown by random events on random (known) parents; inadmissible
    /// ones are dropped.
    fn random_room(seed: u64, n_events: usize, skeletons: bool) -> Room {
        let mut rng = Rng(seed | 1);
        let keys = [NodeKey::from_seed([1; 32]), NodeKey::from_seed([2; 32])];
        let names = ["owner", "ann", "ben", "cat"];
        let users: Vec<(usize, UserId)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i % 2, UserId::new(n, keys[i % 2].node_id()).unwrap()))
            .collect();
        let create = EventBody::create(
            keys[0].node_id(),
            "owner",
            T0,
            RoomKind::Room,
            JoinRule::Public,
            HistoryVisibility::Shared,
            [0; 16],
        )
        .sign(&keys[0])
        .unwrap();
        let mut room = Room::new(create).unwrap();
        let mut clock = T0;
        while room.len() < n_events {
            let sender = rng.below(users.len());
            let (node, user) = &users[sender];
            let target = users[rng.below(users.len())].1.clone();
            let ids: Vec<EventId> = room.order_ids();
            let recent = |rng: &mut Rng| ids[ids.len() - 1 - rng.below(ids.len().min(12))];
            let mut parents: Vec<EventId> =
                (0..1 + rng.below(3)).map(|_| recent(&mut rng)).collect();
            parents.sort();
            parents.dedup();
            let content = match rng.below(9) {
                0 => Content::Member(Member {
                    target: user.clone(),
                    membership: Membership::Join,
                    reason: None,
                }),
                1 => Content::Member(Member {
                    target,
                    membership: Membership::Ban,
                    reason: None,
                }),
                2 => Content::Member(Member {
                    target,
                    membership: Membership::Leave,
                    reason: None,
                }),
                3 => Content::Role(crate::content::RoleDef {
                    role: RoleId(1),
                    name: "r".into(),
                    rank: 1 + rng.below(9) as u32,
                    permissions: Permissions(rng.below(1 << 12) as u64),
                    color: None,
                    deleted: false,
                }),
                4 => Content::MemberRoles(MemberRoles {
                    target,
                    roles: vec![RoleId(1)][..rng.below(2)].to_vec(),
                }),
                5 => Content::Reaction(Reaction {
                    target: recent(&mut rng),
                    key: "+".into(),
                }),
                6 => Content::Slowmode(crate::content::Slowmode {
                    seconds: rng.below(2) as u32,
                }),
                _ => Content::Message(Message {
                    body: "m".into(),
                    ..Message::default()
                }),
            };
            clock += rng.below(3_000) as u64;
            let depth = parents
                .iter()
                .map(|p| u64::from(room.rec(p).unwrap().depth))
                .max()
                .unwrap()
                + 1;
            let body = EventBody {
                origin: keys[*node].node_id(),
                room: Some(room.room_id),
                sender: names[sender].into(),
                parents,
                depth,
                origin_ts: clock,
                content,
            };
            let event = body.sign(&keys[*node]).unwrap();
            let _ = room.insert(if skeletons { event.skeleton() } else { event });
        }
        room
    }

    fn ancestors(room: &Room, id: &EventId) -> HashSet<EventId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<EventId> = room.event(id).unwrap().parents().to_vec();
        while let Some(next) = stack.pop() {
            if seen.insert(next) {
                stack.extend_from_slice(room.event(&next).unwrap().parents());
            }
        }
        seen
    }

    /// The fold of the events at `positions` (ascending), by definition.
    fn naive_fold(room: &Room, positions: &[usize]) -> (RoomState, HashSet<usize>) {
        let mut state = RoomState::default();
        let mut accepted = HashSet::new();
        for &pos in positions {
            let id = room.id_at(pos).unwrap();
            let (event, time_ms) = (room.event(&id).unwrap(), room.time_ms(&id).unwrap());
            let targets = |id: &EventId| {
                let at = room.position(id)?;
                (accepted.contains(&at) && at < pos).then(|| target_of(&room.event(id).unwrap()))
            };
            if auth::authorize(&state, &event, time_ms, &targets).is_ok() {
                auth::apply(&mut state, &event, time_ms);
                accepted.insert(pos);
            }
        }
        (state, accepted)
    }

    fn check_room(room: &Room) {
        let n = room.len();
        // Positions and the main fold.
        let order = room.order_ids();
        for (pos, id) in order.iter().enumerate() {
            assert_eq!(room.position(id), Some(pos));
        }
        let all: Vec<usize> = (0..n).collect();
        let (state, accepted) = naive_fold(room, &all);
        assert_eq!(&state, room.state());
        for pos in 0..n {
            assert_eq!(
                room.slots[pos].accepted,
                accepted.contains(&pos),
                "acceptance at {pos}"
            );
        }
        // Checkpoints are the fold before their position.
        // The newest are all kept, the older ones thinned out.
        let n_checkpoints = n.div_ceil(CHECKPOINT_EVERY);
        assert_eq!(room.checkpoints.len(), n_checkpoints);
        for (k, checkpoint) in room.checkpoints.iter().enumerate() {
            let kept = k + DENSE >= n_checkpoints || k.is_multiple_of(SPARSE_EVERY);
            assert_eq!(checkpoint.is_some(), kept, "checkpoint {k} kept");
            if let Some(checkpoint) = checkpoint {
                let (state, _) = naive_fold(room, &all[..k * CHECKPOINT_EVERY]);
                assert_eq!(checkpoint.state, state, "checkpoint {k}");
            }
        }
        // Revocation, by its definition: for each accepted ban, or kick of a
        // joined member, the target's accepted messages that sort before it
        // and are not its ancestors.
        let mut revoked = HashSet::new();
        for pos in 0..n {
            let event = room.event(&order[pos]).unwrap();
            let Some((target, membership)) = revocation_target(&event) else {
                continue;
            };
            let (before, _) = naive_fold(room, &all[..pos]);
            let revokes = accepted.contains(&pos)
                && (membership == Membership::Ban
                    || before.membership(target) == Some(Membership::Join));
            if !revokes {
                continue;
            }
            let its_ancestors = ancestors(room, &event.id());
            for earlier in &order[..pos] {
                let e = room.event(earlier).unwrap();
                if !its_ancestors.contains(earlier)
                    && e.sender() == target
                    && e.class() == Class::Message
                    && accepted.contains(&room.position(earlier).unwrap())
                {
                    revoked.insert(*earlier);
                }
            }
        }
        assert_eq!(room.revoked, revoked, "revoked messages");
        let mut n_cuts = 0;
        for pos in 0..n {
            let id = order[pos];
            let ancestors = ancestors(room, &id);
            // A cut: everything before it is its ancestor.
            let cut = order[..pos]
                .iter()
                .all(|earlier| ancestors.contains(earlier));
            assert_eq!(room.slots[pos].cut, cut, "cut flag at {pos}");
            n_cuts += usize::from(cut);
            // The state at an event's parents is the fold of its ancestors alone.
            let event = room.event(&id).unwrap();
            let at = room.state_at(event.parents());
            let mut positions: Vec<usize> = ancestors
                .iter()
                .map(|a| room.position(a).unwrap())
                .collect();
            positions.sort_unstable();
            let (state, accepted) = naive_fold(room, &positions);
            assert_eq!(at.state, state, "state at the parents of {pos}");
            for other in &order {
                assert_eq!(
                    at.is_ancestor(room, other),
                    ancestors.contains(other),
                    "ancestry of {other:?} for {pos}"
                );
                let resolves = at.target(room, other).is_some();
                assert_eq!(
                    resolves,
                    accepted.contains(&room.position(other).unwrap()),
                    "target {other:?} for {pos}"
                );
            }
        }
        assert!(n_cuts > 1, "the DAGs should have some cuts");
    }

    #[test]
    fn optimised_fold_matches_its_definition_on_random_dags() {
        let mut n_revoked = 0;
        for seed in [1, 2, 3] {
            let room = random_room(seed, 3 * CHECKPOINT_EVERY + 10, seed != 2);
            check_room(&room);
            // Whole events or skeletons (most kept as records): one outcome.
            let other = random_room(seed, 3 * CHECKPOINT_EVERY + 10, seed == 2);
            assert_eq!(other.order_ids(), room.order_ids());
            assert!(
                other
                    .iter()
                    .map(|(_, ok)| ok)
                    .eq(room.iter().map(|(_, ok)| ok))
            );
            assert_eq!(&other.end.state, room.state());
            assert_eq!(other.revoked, room.revoked);
            n_revoked += room.revoked.len();
            assert!(
                room.iter().any(|(_, accepted)| !accepted),
                "some events should be refused"
            );
            // A reload reproduces every private structure, not just the outcome.
            let (loaded, skipped) = Room::load(
                room.at(0).unwrap().0.clone(),
                room.iter().map(|(e, _)| e.clone()),
            )
            .unwrap();
            assert!(skipped.is_empty());
            assert_eq!(loaded.order_ids(), room.order_ids());
            assert_eq!(loaded.checkpoints.len(), room.checkpoints.len());
            for (a, b) in loaded.checkpoints.iter().zip(&room.checkpoints) {
                assert_eq!(
                    a.as_ref().map(|a| (&a.state, &a.tips)),
                    b.as_ref().map(|b| (&b.state, &b.tips))
                );
            }
            for (a, b) in loaded.slots.iter().zip(&room.slots) {
                assert_eq!(
                    (a.accepted, a.cut, a.revokes),
                    (b.accepted, b.cut, b.revokes)
                );
            }
            assert_eq!(loaded.revoked, room.revoked);
        }
        assert!(n_revoked > 0, "the random rooms should exercise revocation");
    }

    #[test]
    fn missing_for_is_everything_but_the_known_and_their_ancestors() {
        let room = random_room(4, 2 * CHECKPOINT_EVERY, true);
        let ids: Vec<EventId> = room.order_ids();
        let mut rng = Rng(99);
        for round in 0..40 {
            // Known sets of one to four events anywhere, and some the room
            // has never seen.
            let mut known: Vec<EventId> = (0..=rng.below(4))
                .map(|_| ids[rng.below(ids.len())])
                .collect();
            if round % 5 == 0 {
                known.push(EventId([round as u8; 32]));
            }
            let mut shared: HashSet<EventId> = HashSet::new();
            for id in known.iter().filter(|id| room.contains(id)) {
                shared.insert(*id);
                shared.extend(ancestors(&room, id));
            }
            let want: Vec<EventId> = ids
                .iter()
                .filter(|id| !shared.contains(id))
                .copied()
                .collect();
            let got: Vec<EventId> = room.missing_for(&known).map(|e| e.id()).collect();
            assert_eq!(got, want, "known {known:?}");
        }
        assert_eq!(room.missing_for(&[]).count(), room.len());
        assert_eq!(room.missing_for(&ids).count(), 0);
    }

    #[test]
    fn heads_keep_the_deepest_tips_when_there_are_too_many() {
        let key = NodeKey::from_seed([1; 32]);
        let create = EventBody::create(
            key.node_id(),
            "owner",
            T0,
            RoomKind::Room,
            JoinRule::Public,
            HistoryVisibility::Shared,
            [0; 16],
        )
        .sign(&key)
        .unwrap();
        let mut room = Room::new(create.clone()).unwrap();
        // 25 single-event branches off the create event, 5 of them one deeper.
        let mut deep = Vec::new();
        for i in 0..25u64 {
            let body = room.draft(
                key.node_id(),
                "owner",
                T0 + i,
                Content::Message(Message::default()),
            );
            let body = EventBody {
                parents: vec![create.id()],
                depth: 1,
                ..body
            };
            let event = body.sign(&key).unwrap();
            room.insert(event.clone()).unwrap();
            if i < 5 {
                let child = EventBody {
                    parents: vec![event.id()],
                    depth: 2,
                    ..room.draft(
                        key.node_id(),
                        "owner",
                        T0 + 100 + i,
                        Content::Message(Message::default()),
                    )
                };
                let child = child.sign(&key).unwrap();
                room.insert(child.clone()).unwrap();
                deep.push(child.id());
            }
        }
        assert_eq!(room.end.tips.len(), 25);
        let heads = room.heads();
        assert_eq!(heads.len(), MAX_PARENTS);
        assert!(
            heads.windows(2).all(|w| w[0] < w[1]),
            "sorted, as parents must be"
        );
        assert!(
            deep.iter().all(|id| heads.contains(id)),
            "the deepest tips are kept"
        );
        // A draft on them is a valid event, and merging shrinks the tips.
        let body = room.draft(
            key.node_id(),
            "owner",
            T0 + 1_000,
            Content::Message(Message::default()),
        );
        assert_eq!(body.depth, 3);
        room.insert(body.sign(&key).unwrap()).unwrap();
        assert_eq!(room.end.tips.len(), 25 - MAX_PARENTS + 1);
    }
}
