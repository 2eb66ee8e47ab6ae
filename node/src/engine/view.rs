//! A room as the node's users see it: the protocol replica plus the read
//! model derived from it (reactions, edits, redactions, threads, the node's
//! arrival sequence numbers). Everything here can be rebuilt from the
//! replica and the store, and is rebuilt whenever resolution changes its
//! mind about an earlier event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use spaces_protocol::content::{Content, Membership};
use spaces_protocol::{Event, EventId, Room, UserId};

/// Reactions on one message: key → (user, reaction event), in canonical order.
pub type Reactions = BTreeMap<String, Vec<(UserId, EventId)>>;

/// A room's last timeline message, as [`RoomView::last_message`] finds it.
#[derive(Debug)]
pub struct LastMessage {
    /// The skeleton: id, sender, time; its text is read from the store.
    pub event: Event,
    pub edit: Option<EventId>,
    pub redacted: bool,
}

#[derive(Debug, Default)]
pub struct Aggregates {
    pub reactions: HashMap<EventId, Reactions>,
    /// The latest accepted edit of a message (its body is in the store).
    pub edits: HashMap<EventId, EventId>,
    pub redacted: HashSet<EventId>,
    /// Thread root → replies, in canonical order.
    pub threads: HashMap<EventId, Vec<EventId>>,
}

#[derive(Debug)]
pub struct RoomView {
    pub room: Room,
    pub agg: Aggregates,
    /// Node-local arrival seqs, behind a lock of their own: a send records
    /// its event's seq once durable without taking the room lock again (it
    /// would queue behind every other sender). Lock order: the room, then
    /// this.
    pub arrivals: Arc<Mutex<Arrivals>>,
    /// Stored events the replica left out when it was loaded (their
    /// parents were missing), with their seqs: if one arrives again it is
    /// taken into the replica but not stored a second time.
    pub stored_unheld: HashMap<EventId, u64>,
}

/// The seq of every stored event of a room, and its messages in seq order.
/// Keyed by each event's index in the replica ([`Room::index_of`]), not by
/// id: 8 bytes an event and 16 a message, where maps by id cost several
/// times that (ARCHITECTURE.md, "What is resident").
#[derive(Debug, Default)]
pub struct Arrivals {
    /// By replica index; 0 while the event is not durable.
    seqs: Vec<u64>,
    /// (seq, sender, replica index) of every stored message, accepted or not
    /// (that is asked of the replica when counting), ascending seq: unread
    /// counts. The sender is an index into `senders`: a room has far fewer
    /// senders than messages, and this list is held for every message.
    messages: Vec<(u64, u32, u32)>,
    senders: Vec<UserId>,
    sender_index: HashMap<UserId, u32>,
}

impl Arrivals {
    /// Records the arrival of an event that was just stored with `seq`;
    /// `index` is its index in the room's replica.
    pub fn stored(&mut self, event: &Event, index: u32, seq: u64) {
        let message_by = matches!(event.content(), Content::Message(_)).then(|| event.sender());
        self.record(index, seq, message_by);
    }

    /// [`Arrivals::stored`] from what the replica says of the event: its
    /// sender when it is a message ([`Room::is_message`]).
    pub fn record(&mut self, index: u32, seq: u64, message_by: Option<&UserId>) {
        let i = index as usize;
        if self.seqs.len() <= i {
            self.seqs.resize(i + 1, 0);
        }
        self.seqs[i] = seq;
        if let Some(user) = message_by {
            let sender = match self.sender_index.get(user) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.senders.len()).unwrap_or(u32::MAX);
                    self.senders.push(user.clone());
                    self.sender_index.insert(user.clone(), i);
                    i
                }
            };
            let entry = (seq, sender, index);
            // Seqs grow with arrival, but two sends of one commit may record
            // theirs in either order.
            match self.messages.last() {
                Some((last, ..)) if *last > seq => {
                    let pos = self.messages.partition_point(|(other, ..)| *other < seq);
                    self.messages.insert(pos, entry);
                }
                _ => self.messages.push(entry),
            }
        }
    }

    /// The seq an event of `room` (this room's replica) was stored with;
    /// `None` while it is not durable.
    pub fn seq(&self, room: &Room, event_id: &EventId) -> Option<u64> {
        self.seq_at(room.index_of(event_id)?)
    }

    fn seq_at(&self, index: u32) -> Option<u64> {
        self.seqs
            .get(index as usize)
            .copied()
            .filter(|&seq| seq != 0)
    }

    /// Up to `limit` of `user`'s stored messages with a seq above `after`,
    /// as (seq, id) in ascending seq: an account export's pages. `room` is
    /// this room's replica.
    pub fn messages_by(
        &self,
        room: &Room,
        user: &UserId,
        after: u64,
        limit: usize,
    ) -> Vec<(u64, EventId)> {
        let Some(&sender) = self.sender_index.get(user) else {
            return Vec::new();
        };
        let start = self.messages.partition_point(|(seq, ..)| *seq <= after);
        self.messages[start..]
            .iter()
            .filter(|(_, by, _)| *by == sender)
            .filter_map(|(seq, _, index)| Some((*seq, room.id_of(*index)?)))
            .take(limit)
            .collect()
    }
}

impl RoomView {
    /// A view of `room`, whose stored events have the arrival `seqs`.
    pub fn new(room: Room, mut seqs: HashMap<EventId, u64>) -> RoomView {
        let mut arrivals = Arrivals::default();
        // In seq order, so each message appends: in canonical order a room
        // merged from several nodes would insert mid-list, O(n²).
        let mut stored: Vec<(u64, u32, EventId)> = Vec::new();
        seqs.retain(|id, seq| match room.index_of(id) {
            Some(index) => {
                stored.push((*seq, index, *id));
                false
            }
            None => true,
        });
        stored.sort_unstable_by_key(|(seq, ..)| *seq);
        for (seq, index, id) in stored {
            arrivals.record(index, seq, message_by(&room, &id));
        }
        RoomView::loaded(room, arrivals, seqs)
    }

    /// A view of `room` whose stored events' seqs are in `arrivals`
    /// already, with the stored events the replica did not take.
    pub fn loaded(
        room: Room,
        arrivals: Arrivals,
        stored_unheld: HashMap<EventId, u64>,
    ) -> RoomView {
        let mut view = RoomView {
            room,
            agg: Aggregates::default(),
            arrivals: Arc::new(Mutex::new(arrivals)),
            stored_unheld,
        };
        view.rebuild();
        view
    }

    /// Recomputes the read model from the replica: from the events that
    /// refer to others (plain messages add nothing to it).
    pub fn rebuild(&mut self) {
        self.agg = Aggregates::default();
        for (event, ok) in self.room.iter_referring() {
            if ok {
                self.agg.add(&event);
            }
        }
    }

    /// The seq an event of this room was stored with; `None` while it is
    /// not durable.
    pub fn seq(&self, event_id: &EventId) -> Option<u64> {
        self.arrivals().seq(&self.room, event_id)
    }

    pub fn arrivals(&self) -> MutexGuard<'_, Arrivals> {
        // Arrivals are changed by whole-entry inserts: a panic elsewhere
        // cannot leave them half-updated.
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepted messages after `marker` not sent by `user`, counted up to
    /// `cap`.
    pub fn unread(&self, user: &UserId, marker: u64, cap: usize) -> usize {
        let arrivals = self.arrivals();
        let start = arrivals
            .messages
            .partition_point(|(seq, ..)| *seq <= marker);
        let own = arrivals.sender_index.get(user).copied();
        arrivals.messages[start..]
            .iter()
            .filter(|(_, sender, index)| Some(*sender) != own && self.accepted(*index))
            .take(cap)
            .count()
    }

    /// The seq of the room's last accepted message; 0 if none.
    pub fn last_message_seq(&self) -> u64 {
        self.arrivals()
            .messages
            .iter()
            .rev()
            .find(|(_, _, index)| self.accepted(*index))
            .map_or(0, |(seq, ..)| *seq)
    }

    /// The first accepted timeline message (not a thread reply) after
    /// `marker` that `user` did not send: where a client opening the room
    /// lands. Walks only the messages after the marker.
    pub fn first_unread(&self, user: &UserId, marker: u64) -> Option<EventId> {
        let arrivals = self.arrivals();
        let start = arrivals
            .messages
            .partition_point(|(seq, ..)| *seq <= marker);
        let own = arrivals.sender_index.get(user).copied();
        arrivals.messages[start..]
            .iter()
            .filter(|(_, sender, index)| Some(*sender) != own && self.accepted(*index))
            .filter_map(|(_, _, index)| self.room.id_of(*index))
            .find(|id| self.in_timeline(id))
    }

    /// The room's last accepted timeline message (not a thread reply): its
    /// event (a skeleton: the text is in the store), the id of its latest
    /// accepted edit, and whether it was deleted.
    pub fn last_message(&self) -> Option<LastMessage> {
        let id = self
            .arrivals()
            .messages
            .iter()
            .rev()
            .filter_map(|(_, _, index)| self.room.id_of(*index))
            .find(|id| self.room.is_accepted(id) && self.in_timeline(id))?;
        Some(LastMessage {
            event: self.room.event(&id)?,
            edit: self.agg.edits.get(&id).copied(),
            redacted: self.agg.redacted.contains(&id),
        })
    }

    /// Whether the event with this replica index is accepted.
    fn accepted(&self, index: u32) -> bool {
        self.room
            .id_of(index)
            .is_some_and(|id| self.room.is_accepted(&id))
    }

    /// Whether a stored message is in the timeline (thread replies are not).
    fn in_timeline(&self, id: &EventId) -> bool {
        matches!(
            self.room.event(id).as_ref().map(Event::content),
            Some(Content::Message(m)) if m.thread.is_none()
        )
    }

    /// The canonical position from which `user` may read history, or `None`
    /// when they may not read it at all. Invariant 4: non-members see nothing
    /// unless the room is world-readable.
    pub fn readable_from(&self, user: &UserId) -> Option<usize> {
        use spaces_protocol::content::HistoryVisibility::*;
        let state = self.room.state();
        let membership = state.membership(user);
        let visibility = state.history_visibility();

        match membership {
            Some(Membership::Join) | Some(Membership::Invite) => {}
            _ if visibility == WorldReadable => return Some(0),
            _ => return None,
        }
        let wanted: &[Membership] = match visibility {
            WorldReadable | Shared => return Some(0),
            Invited => &[Membership::Invite, Membership::Join],
            Joined => &[Membership::Join],
        };
        // The start of the user's current stay: the earliest of the run of
        // wanted memberships that ends in their current one.
        let mut from = None;
        // Memberships and the create event are state: kept whole.
        for (pos, event, ok) in self.room.iter_whole().rev() {
            // The creator joined with the create event itself.
            let membership = match event.content() {
                Content::Member(m) if ok && &m.target == user => m.membership,
                Content::Create(_) if ok && event.sender() == user => Membership::Join,
                _ => continue,
            };
            if wanted.contains(&membership) {
                from = Some(pos);
            } else {
                break;
            }
        }
        from.or(Some(self.room.len()))
    }
}

/// The sender of a message of `room`, for [`Arrivals::record`]; `None` for
/// any other event.
pub fn message_by<'a>(room: &'a Room, id: &EventId) -> Option<&'a UserId> {
    if room.is_message(id) {
        room.sender(id)
    } else {
        None
    }
}

impl Aggregates {
    /// Folds one accepted event into the aggregates.
    pub fn add(&mut self, event: &Event) {
        match event.content() {
            Content::Message(m) => {
                if let Some(root) = m.thread {
                    self.threads.entry(root).or_default().push(event.id());
                }
            }
            Content::Reaction(r) => {
                let users = self
                    .reactions
                    .entry(r.target)
                    .or_default()
                    .entry(r.key.clone())
                    .or_default();
                if !users.iter().any(|(u, _)| u == event.sender()) {
                    users.push((event.sender().clone(), event.id()));
                }
            }
            Content::Edit(e) => {
                self.edits.insert(e.target, event.id());
            }
            Content::Redaction(r) => {
                self.redacted.insert(r.target);
                // A redacted reaction no longer counts.
                for reactions in self.reactions.values_mut() {
                    for users in reactions.values_mut() {
                        users.retain(|(_, id)| *id != r.target);
                    }
                    reactions.retain(|_, users| !users.is_empty());
                }
            }
            _ => {}
        }
    }
}

/// A public room with shared history created by "owner" of the node whose
/// key comes from `seed`: the key, the create event and the replica.
#[cfg(test)]
pub(super) fn test_room(seed: u8) -> (spaces_protocol::NodeKey, Event, Room) {
    use spaces_protocol::content::{HistoryVisibility, JoinRule, RoomKind};
    let key = spaces_protocol::NodeKey::from_seed([seed; 32]);
    let create = spaces_protocol::EventBody::create(
        key.node_id(),
        "owner",
        1,
        RoomKind::Room,
        JoinRule::Public,
        HistoryVisibility::Shared,
        [0; 16],
    )
    .sign(&key)
    .unwrap();
    let room = Room::new(create.clone()).unwrap();
    (key, create, room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces_protocol::content::Message;

    /// Seqs recorded out of order (two sends of one commit) still count in
    /// order; only others' messages count as unread.
    #[test]
    fn arrivals_keep_seq_order_and_unread_counts_others() {
        let (key, create, mut room) = test_room(3);
        let mut message = |n: u64| {
            let content = Content::Message(Message {
                body: format!("m{n}"),
                ..Default::default()
            });
            let event = room
                .draft(key.node_id(), "owner", 1 + n, content)
                .sign(&key)
                .unwrap();
            room.insert(event.clone()).unwrap();
            event
        };
        let (first, second) = (message(1), message(2));
        let owner = create.sender().clone();
        let view = RoomView::new(room, HashMap::from([(create.id(), 1)]));
        assert_eq!(view.last_message_seq(), 0);
        let index = |event: &Event| view.room.index_of(&event.id()).unwrap();
        view.arrivals().stored(&second, index(&second), 3);
        view.arrivals().stored(&first, index(&first), 2);
        assert_eq!(view.seq(&first.id()), Some(2));
        assert_eq!(view.seq(&create.id()), Some(1));
        assert_eq!(view.last_message_seq(), 3);
        let other = UserId::new("other", key.node_id()).unwrap();
        assert_eq!(view.unread(&other, 0, 10), 2);
        assert_eq!(view.unread(&other, 2, 10), 1);
        assert_eq!(view.unread(&other, 0, 1), 1);
        assert_eq!(view.unread(&owner, 0, 10), 0);
        let seqs: Vec<u64> = view.arrivals().messages.iter().map(|m| m.0).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(view.first_unread(&other, 0), Some(first.id()));
        assert_eq!(view.first_unread(&other, 2), Some(second.id()));
        assert_eq!(view.first_unread(&other, 3), None);
        assert_eq!(view.first_unread(&owner, 0), None);
        let last = view.last_message().unwrap();
        assert_eq!(
            (last.event.id(), last.edit, last.redacted),
            (second.id(), None, false)
        );
    }
}
