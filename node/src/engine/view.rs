//! A room as the node's users see it: the protocol replica plus the read
//! model derived from it (reactions, edits, redactions, threads, the node's
//! arrival sequence numbers). Everything here can be rebuilt from the
//! replica and the store, and is rebuilt whenever resolution changes its
//! mind about an earlier event.

use std::collections::{BTreeMap, HashMap, HashSet};

use spaces_protocol::content::{Content, Membership};
use spaces_protocol::{Event, EventId, Room, UserId};

/// Reactions on one message: key → (user, reaction event), in canonical order.
pub type Reactions = BTreeMap<String, Vec<(UserId, EventId)>>;

#[derive(Debug, Default)]
pub struct Aggregates {
    pub reactions: HashMap<EventId, Reactions>,
    /// The latest accepted edit of a message: (edit id, new body).
    pub edits: HashMap<EventId, (EventId, String)>,
    pub redacted: HashSet<EventId>,
    /// Thread root → replies, in canonical order.
    pub threads: HashMap<EventId, Vec<EventId>>,
}

#[derive(Debug)]
pub struct RoomView {
    pub room: Room,
    pub agg: Aggregates,
    /// Node-local arrival sequence of each stored event.
    pub seqs: HashMap<EventId, u64>,
    /// (seq, sender) of every accepted message, ascending seq: unread counts.
    pub message_seqs: Vec<(u64, UserId)>,
}

impl RoomView {
    /// A view of `room`, whose stored events have the arrival `seqs`.
    pub fn new(room: Room, seqs: HashMap<EventId, u64>) -> RoomView {
        let mut view = RoomView {
            room,
            agg: Aggregates::default(),
            seqs,
            message_seqs: Vec::new(),
        };
        view.rebuild();
        view
    }

    /// Recomputes the read model from the replica.
    pub fn rebuild(&mut self) {
        self.agg = Aggregates::default();
        let accepted: Vec<Event> = self
            .room
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(e, _)| e.clone())
            .collect();
        for event in &accepted {
            self.agg.add(event);
        }
        self.rebuild_message_seqs();
    }

    fn rebuild_message_seqs(&mut self) {
        let mut seqs: Vec<(u64, UserId)> = self
            .room
            .iter()
            .filter(|(e, ok)| *ok && matches!(e.content(), Content::Message(_)))
            .filter_map(|(e, _)| Some((*self.seqs.get(&e.id())?, e.sender().clone())))
            .collect();
        seqs.sort();
        self.message_seqs = seqs;
    }

    /// Records the arrival of an event that was just stored with `seq`.
    pub fn stored(&mut self, event: &Event, seq: u64, accepted: bool) {
        self.seqs.insert(event.id(), seq);
        if accepted && matches!(event.content(), Content::Message(_)) {
            // Appends keep the vector sorted: seqs grow with arrival.
            self.message_seqs.push((seq, event.sender().clone()));
        }
    }

    /// Messages after `marker` not sent by `user`, counted up to `cap`.
    pub fn unread(&self, user: &UserId, marker: u64, cap: usize) -> usize {
        let start = self.message_seqs.partition_point(|(seq, _)| *seq <= marker);
        self.message_seqs[start..]
            .iter()
            .filter(|(_, sender)| sender != user)
            .take(cap)
            .count()
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
        for (pos, (event, ok)) in self.room.iter().enumerate().rev() {
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
                self.edits.insert(e.target, (event.id(), e.body.clone()));
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
