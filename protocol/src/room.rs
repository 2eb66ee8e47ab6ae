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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use imbl::OrdSet;

use crate::auth::{self, AuthError, Target, TargetKind};
use crate::content::{Class, Content, Membership};
use crate::event::{Event, EventBody, Rejection};
use crate::ids::UserId;
use crate::ids::{EventId, NodeId, RoomId};
use crate::limits::MAX_PARENTS;
use crate::permissions::{OWNER_RANK, Rank};
use crate::state::RoomState;

/// Positions between checkpoints. Smaller costs memory (a checkpoint is a few
/// hundred bytes), larger costs replay time after an out-of-order insertion.
pub const CHECKPOINT_EVERY: usize = 64;

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

#[derive(Debug)]
struct Entry {
    event: Event,
    key: OrderKey,
    /// Effective time: the greater of the event's own clock and its parents'
    /// effective times. Monotone along every path, so a sender cannot step
    /// back before an event they saw (a timeout, their last message).
    time_ms: u64,
    pos: usize,
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
    tips: OrdSet<EventId>,
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
    entries: HashMap<EventId, Entry>,
    order: Vec<EventId>,
    slots: Vec<Slot>,
    /// `checkpoints[k]`: the fold before position `k * CHECKPOINT_EVERY`.
    checkpoints: Vec<Cursor>,
    end: Cursor,
    /// Bans and kicks by someone else: the events that may revoke.
    revocations: HashSet<EventId>,
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
            entries: HashMap::new(),
            order: Vec::new(),
            slots: Vec::new(),
            checkpoints: Vec::new(),
            end: Cursor::default(),
            revocations: HashSet::new(),
            revoked: HashSet::new(),
        };
        auth::authorize(&room.end.state, &create, create.origin_ts(), &|_| None)?;
        room.push_entry(create, 0, OWNER_RANK);
        room.replay_from(0);
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
        let mut tips: Vec<EventId> = self.end.tips.iter().copied().collect();
        if tips.len() > MAX_PARENTS {
            tips.sort_by_key(|id| Reverse(self.entries[id].key));
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
            .map(|id| self.entries[id].key.depth)
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
        self.entries.contains_key(id)
    }

    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.entries.get(id).map(|e| &e.event)
    }

    /// Position in the canonical order.
    pub fn position(&self, id: &EventId) -> Option<usize> {
        self.entries.get(id).map(|e| e.pos)
    }

    /// Accepted by the fold and not revoked: part of state and timeline.
    pub fn is_accepted(&self, id: &EventId) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| self.slots[e.pos].accepted && !self.revoked.contains(id))
    }

    /// Whether an event was refused after the fold: a message sent
    /// concurrently with its sender's ban or kick.
    pub fn is_revoked(&self, id: &EventId) -> bool {
        self.revoked.contains(id)
    }

    /// Effective time of an event (see [`Entry::time_ms`]).
    pub fn time_ms(&self, id: &EventId) -> Option<u64> {
        self.entries.get(id).map(|e| e.time_ms)
    }

    /// Every event in canonical order with whether resolution accepted it.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Event, bool)> + ExactSizeIterator + '_ {
        self.order.iter().zip(&self.slots).map(|(id, slot)| {
            (
                &self.entries[id].event,
                slot.accepted && !self.revoked.contains(id),
            )
        })
    }

    /// The event at a canonical position.
    pub fn at(&self, pos: usize) -> Option<(&Event, bool)> {
        let id = self.order.get(pos)?;
        Some((
            &self.entries[id].event,
            self.slots[pos].accepted && !self.revoked.contains(id),
        ))
    }

    /// The events that are neither among `known` nor ancestors of one, in
    /// canonical order (so parents come first): what a replica whose heads
    /// are `known` lacks. Ids this replica does not hold are ignored. Costs
    /// the walk from `known` back to the last cut below them, then the
    /// events after that cut — not the whole room.
    pub fn missing_for<'a>(&'a self, known: &[EventId]) -> impl Iterator<Item = &'a Event> + 'a {
        let (floor, above) = self.ancestry(known);
        (floor..self.order.len())
            .filter(move |pos| !above.contains(pos))
            .map(|pos| &self.entries[&self.order[pos]].event)
    }

    /// Parents of `event` this replica does not hold.
    pub fn missing_parents(&self, event: &Event) -> Vec<EventId> {
        event
            .parents()
            .iter()
            .filter(|p| !self.entries.contains_key(p))
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
        if self.entries.contains_key(&event.id()) {
            return Ok(Inserted::Duplicate);
        }
        let (time_ms, rank) = self.admit(&event)?;
        let key = key_of(&event, rank);
        // A new event built on the heads sorts last, so try the end first:
        // the search costs a map lookup per step, about 16 for a room of
        // 60,000 events.
        let pos = match self.order.last() {
            Some(last) if self.entries[last].key < key => self.order.len(),
            _ => self.order.partition_point(|id| self.entries[id].key < key),
        };
        let id = event.id();
        let appended = pos == self.order.len();
        self.order.insert(pos, id);
        self.slots.insert(pos, Slot::default());
        for later in &self.order[pos + 1..] {
            if let Some(entry) = self.entries.get_mut(later) {
                entry.pos += 1;
            }
        }
        self.entries.insert(
            id,
            Entry {
                event,
                key,
                time_ms,
                pos,
            },
        );
        let is_revocation = revocation_target(&self.entries[&id].event).is_some();
        if is_revocation {
            self.revocations.insert(id);
        }
        let before: Vec<bool> = self.slots[pos + 1..].iter().map(|s| s.accepted).collect();
        let mut refusal = if appended {
            self.apply_at_end(pos)
        } else {
            self.replay_from(pos)
        };
        // Every event whose slot or revocation may have moved, with its
        // effective outcome before this insertion.
        let mut was_accepted: HashMap<EventId, bool> = self.order[pos + 1..]
            .iter()
            .zip(&self.slots[pos + 1..])
            .zip(before)
            .filter(|((_, slot), was)| slot.accepted != *was)
            .map(|((id, _), was)| (*id, was && !self.revoked.contains(id)))
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
        changed.sort_by_key(|(other, _)| self.entries[other].pos);
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

    /// Admission checks; returns the event's effective time and its sender's
    /// rank at its parents.
    fn admit(&self, event: &Event) -> Result<(u64, Rank), InsertError> {
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
        Ok((time_ms, at_parents.state.rank(event.sender())))
    }

    fn check_depth(&self, event: &Event) -> Result<(), Rejection> {
        let parent_depth = event
            .parents()
            .iter()
            .filter_map(|p| self.entries.get(p))
            .map(|e| e.key.depth)
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
            .filter_map(|p| self.entries.get(p))
            .map(|e| e.time_ms)
            .fold(event.origin_ts(), u64::max)
    }

    fn push_entry(&mut self, event: Event, time_ms: u64, rank: Rank) {
        let pos = self.order.len();
        let id = event.id();
        self.order.push(id);
        self.slots.push(Slot::default());
        self.entries.insert(
            id,
            Entry {
                key: key_of(&event, rank),
                event,
                time_ms,
                pos,
            },
        );
    }

    /// What resolution knows about `id` for an event at `pos`.
    fn main_target(&self, id: &EventId, pos: usize) -> Option<Target> {
        let entry = self.entries.get(id)?;
        (entry.pos < pos && self.slots[entry.pos].accepted).then(|| target_of(&entry.event))
    }

    /// Applies position `pos`, the last one, to `end`.
    fn apply_at_end(&mut self, pos: usize) -> Option<AuthError> {
        if pos.is_multiple_of(CHECKPOINT_EVERY) {
            self.checkpoints.truncate(pos / CHECKPOINT_EVERY);
            self.checkpoints.push(self.end.clone());
        }
        let mut cursor = std::mem::take(&mut self.end);
        let refusal = self.step(&mut cursor, pos);
        self.end = cursor;
        refusal
    }

    /// Re-folds from the checkpoint at or before `from` to the end, updating
    /// acceptance, cuts and checkpoints. Returns the refusal at `from`.
    fn replay_from(&mut self, from: usize) -> Option<AuthError> {
        let k = from / CHECKPOINT_EVERY;
        let mut cursor = self.checkpoints.get(k).cloned().unwrap_or_default();
        self.checkpoints.truncate(k);
        let mut refusal = None;
        for pos in k * CHECKPOINT_EVERY..self.order.len() {
            if pos.is_multiple_of(CHECKPOINT_EVERY) {
                self.checkpoints.push(cursor.clone());
            }
            let r = self.step(&mut cursor, pos);
            if pos == from {
                refusal = r;
            }
        }
        self.end = cursor;
        refusal
    }

    /// Authorizes and applies one position onto `cursor`.
    fn step(&mut self, cursor: &mut Cursor, pos: usize) -> Option<AuthError> {
        let entry = &self.entries[&self.order[pos]];
        let verdict = {
            let targets = |id: &EventId| self.main_target(id, pos);
            auth::authorize(&cursor.state, &entry.event, entry.time_ms, &targets)
        };
        let revokes = verdict.is_ok()
            && revocation_target(&entry.event).is_some_and(|(target, membership)| {
                membership == Membership::Ban
                    || cursor.state.membership(target) == Some(Membership::Join)
            });
        if verdict.is_ok() {
            auth::apply(&mut cursor.state, &entry.event, entry.time_ms);
        }
        for parent in entry.event.parents() {
            cursor.tips.remove(parent);
        }
        cursor.tips.insert(entry.event.id());
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
        for id in &self.revocations {
            let entry = &self.entries[id];
            if !self.slots[entry.pos].revokes {
                continue;
            }
            let Some((target, _)) = revocation_target(&entry.event) else {
                continue;
            };
            let (cut_end, above) = self.ancestry(entry.event.parents());
            for pos in cut_end..entry.pos {
                let other = &self.entries[&self.order[pos]];
                if !above.contains(&pos)
                    && other.event.sender() == target
                    && other.event.class() == Class::Message
                    && self.slots[pos].accepted
                {
                    revoked.insert(other.event.id());
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
        let mut heap: BinaryHeap<usize> = BinaryHeap::new();
        let mut seen: HashSet<usize> = HashSet::new();
        for parent in parents {
            if let Some(entry) = self.entries.get(parent)
                && seen.insert(entry.pos)
            {
                heap.push(entry.pos);
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
            for parent in self.entries[&self.order[top]].event.parents() {
                if let Some(entry) = self.entries.get(parent)
                    && seen.insert(entry.pos)
                {
                    heap.push(entry.pos);
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
            let entry = &self.entries[&self.order[pos]];
            let targets = |id: &EventId| {
                let e = self.entries.get(id)?;
                let ok = if e.pos < cut_pos {
                    self.slots[e.pos].accepted
                } else {
                    accepted_above.contains(&e.pos)
                };
                (ok && e.pos < pos).then(|| target_of(&e.event))
            };
            if auth::authorize(&state, &entry.event, entry.time_ms, &targets).is_ok() {
                auth::apply(&mut state, &entry.event, entry.time_ms);
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
        let k = end / CHECKPOINT_EVERY;
        let mut state = self.checkpoints[k].state.clone();
        for pos in k * CHECKPOINT_EVERY..end {
            if self.slots[pos].accepted {
                let entry = &self.entries[&self.order[pos]];
                auth::apply(&mut state, &entry.event, entry.time_ms);
            }
        }
        state
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
        room.entries
            .get(id)
            .is_some_and(|e| e.pos < self.cut_end || self.above.contains(&e.pos))
    }

    fn target(&self, room: &Room, id: &EventId) -> Option<Target> {
        let e = room.entries.get(id)?;
        let accepted = if e.pos < self.cut_end {
            room.slots[e.pos].accepted
        } else {
            self.accepted_above.contains(&e.pos)
        };
        accepted.then(|| target_of(&e.event))
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

fn target_of(event: &Event) -> Target {
    Target {
        sender: event.sender().clone(),
        kind: TargetKind::of(event.content()),
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
    fn random_room(seed: u64, n_events: usize) -> Room {
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
            let ids: Vec<EventId> = room.order.clone();
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
                .map(|p| room.entries[p].key.depth)
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
            let _ = room.insert(body.sign(&keys[*node]).unwrap());
        }
        room
    }

    fn ancestors(room: &Room, id: &EventId) -> HashSet<EventId> {
        let mut seen = HashSet::new();
        let mut stack: Vec<EventId> = room.entries[id].event.parents().to_vec();
        while let Some(next) = stack.pop() {
            if seen.insert(next) {
                stack.extend_from_slice(room.entries[&next].event.parents());
            }
        }
        seen
    }

    /// The fold of the events at `positions` (ascending), by definition.
    fn naive_fold(room: &Room, positions: &[usize]) -> (RoomState, HashSet<usize>) {
        let mut state = RoomState::default();
        let mut accepted = HashSet::new();
        for &pos in positions {
            let entry = &room.entries[&room.order[pos]];
            let targets = |id: &EventId| {
                let e = room.entries.get(id)?;
                (accepted.contains(&e.pos) && e.pos < pos).then(|| target_of(&e.event))
            };
            if auth::authorize(&state, &entry.event, entry.time_ms, &targets).is_ok() {
                auth::apply(&mut state, &entry.event, entry.time_ms);
                accepted.insert(pos);
            }
        }
        (state, accepted)
    }

    fn check_room(room: &Room) {
        let n = room.len();
        // Positions and the main fold.
        for (pos, id) in room.order.iter().enumerate() {
            assert_eq!(room.entries[id].pos, pos);
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
        assert_eq!(room.checkpoints.len(), n.div_ceil(CHECKPOINT_EVERY));
        for (k, checkpoint) in room.checkpoints.iter().enumerate() {
            let (state, _) = naive_fold(room, &all[..k * CHECKPOINT_EVERY]);
            assert_eq!(checkpoint.state, state, "checkpoint {k}");
        }
        // Revocation, by its definition: for each accepted ban, or kick of a
        // joined member, the target's accepted messages that sort before it
        // and are not its ancestors.
        let mut revoked = HashSet::new();
        for pos in 0..n {
            let event = &room.entries[&room.order[pos]].event;
            let Some((target, membership)) = revocation_target(event) else {
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
            for earlier in &room.order[..pos] {
                let e = &room.entries[earlier];
                if !its_ancestors.contains(earlier)
                    && e.event.sender() == target
                    && e.event.class() == Class::Message
                    && accepted.contains(&e.pos)
                {
                    revoked.insert(*earlier);
                }
            }
        }
        assert_eq!(room.revoked, revoked, "revoked messages");
        let mut n_cuts = 0;
        for pos in 0..n {
            let id = room.order[pos];
            let ancestors = ancestors(room, &id);
            // A cut: everything before it is its ancestor.
            let cut = room.order[..pos]
                .iter()
                .all(|earlier| ancestors.contains(earlier));
            assert_eq!(room.slots[pos].cut, cut, "cut flag at {pos}");
            n_cuts += usize::from(cut);
            // The state at an event's parents is the fold of its ancestors alone.
            let parents = room.entries[&id].event.parents();
            let at = room.state_at(parents);
            let mut positions: Vec<usize> = ancestors.iter().map(|a| room.entries[a].pos).collect();
            positions.sort_unstable();
            let (state, accepted) = naive_fold(room, &positions);
            assert_eq!(at.state, state, "state at the parents of {pos}");
            for other in &room.order {
                assert_eq!(
                    at.is_ancestor(room, other),
                    ancestors.contains(other),
                    "ancestry of {other:?} for {pos}"
                );
                let resolves = at.target(room, other).is_some();
                assert_eq!(
                    resolves,
                    accepted.contains(&room.entries[other].pos),
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
            let room = random_room(seed, 3 * CHECKPOINT_EVERY + 10);
            check_room(&room);
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
            assert_eq!(loaded.order, room.order);
            assert_eq!(loaded.checkpoints.len(), room.checkpoints.len());
            for (a, b) in loaded.checkpoints.iter().zip(&room.checkpoints) {
                assert_eq!((&a.state, &a.tips), (&b.state, &b.tips));
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
        let room = random_room(4, 2 * CHECKPOINT_EVERY);
        let ids: Vec<EventId> = room.order.clone();
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
            let got: Vec<EventId> = room.missing_for(&known).map(Event::id).collect();
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
