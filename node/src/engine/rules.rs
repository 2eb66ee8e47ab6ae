//! Rules that a check alone cannot decide: each is checked and acted on
//! under one lock, so two concurrent requests cannot both pass the check.
//!
//! - Readability ([`RoomView::readable`]): the one home of "may this user
//!   read this room", for every handler and service; [`RoomView::shows`]
//!   and [`Engine::readable_events`] apply it to single events (search
//!   hits, a WebSocket's backlog).
//! - Reaction uniqueness ([`Engine::react`], [`Engine::unreact`]): decided
//!   under the room's lock, which the reaction's send keeps until it is
//!   queued, so the read model already holds the first of two identical
//!   reactions when the second looks.
//! - Direct-message de-duplication ([`Engine::direct_room`]): one lock per
//!   shard of user pairs, held across the lookup and the creation; the
//!   lookup locks only the user's direct rooms (the `directs` index).

use std::hash::{Hash, Hasher};

use spaces_protocol::content::*;
use spaces_protocol::{AuthError, Event, EventId, UserId};
use tokio::sync::OwnedMutexGuard;

use super::{Engine, EngineError, NewRoom, RoomId, RoomView, forbidden};

/// Shards of the direct-room creation locks: two pairs share a lock only by
/// hash collision, and DM creation is rare and rate-limited, so 16 is plenty.
pub(super) const DM_LOCK_SHARDS: usize = 16;

/// What the room shows of a message now ([`RoomView::message_now`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageNow {
    /// Refused, redacted, or not a message: no text to show or find.
    Hidden,
    /// Shown, with the text of its latest accepted edit if it has one.
    Shown { latest_edit: Option<EventId> },
}

impl RoomView {
    /// The first position `user` may read from, or why not: `UnknownRoom`
    /// to someone never in a private room (invariant 4), `Forbidden
    /// (NotMember)` to anyone else.
    pub fn readable(&self, user: &UserId) -> Result<usize, EngineError> {
        self.readable_from(user)
            .ok_or_else(|| forbidden(self, user, AuthError::NotMember))
    }

    /// Whether the event `id` is one a reader whose history starts at
    /// `floor` ([`RoomView::readable`]) sees through the room API now:
    /// accepted, and at or after their floor.
    pub fn shows(&self, floor: usize, id: &EventId) -> bool {
        self.room.is_accepted(id) && self.room.position(id).is_some_and(|p| p >= floor)
    }

    /// What the message an event is about (a message is about itself, an
    /// edit or a redaction about its target) reads like now: `None` when
    /// the room shows no text for it (refused, redacted, not a message),
    /// else its latest accepted edit, if any. For the search index: it
    /// reads bodies from the store, never from the replica.
    pub fn message_now(&self, id: &EventId) -> Option<(EventId, MessageNow)> {
        let target = match self.room.event(id)?.content() {
            Content::Message(_) => *id,
            Content::Edit(edit) => edit.target,
            Content::Redaction(redaction) => redaction.target,
            _ => return None,
        };
        let shown = self.room.is_message(&target)
            && self.room.is_accepted(&target)
            && !self.agg.redacted.contains(&target);
        let now = match shown {
            false => MessageNow::Hidden,
            true => MessageNow::Shown {
                latest_edit: self.agg.edits.get(&target).copied(),
            },
        };
        Some((target, now))
    }

    /// The id of `user`'s reaction `key` to `target`, if they made one.
    fn reaction_of(&self, user: &UserId, target: &EventId, key: &str) -> Option<EventId> {
        self.agg
            .reactions
            .get(target)
            .and_then(|reactions| reactions.get(key))
            .and_then(|users| users.iter().find(|(u, _)| u == user).map(|(_, id)| *id))
    }
}

impl Engine {
    /// Reacts to `target` with `key` as `sender`; `AlreadyReacted` if they
    /// have, decided under the room lock the send keeps.
    pub async fn react(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: EventId,
        key: String,
    ) -> Result<Event, EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock_owned().await;
        if view.reaction_of(sender, &target, &key).is_some() {
            return Err(EngineError::AlreadyReacted);
        }
        let reaction = Content::Reaction(Reaction { target, key });
        self.send_locked(view, sender, reaction).await
    }

    /// Takes back `sender`'s reaction `key` to `target` (a redaction of
    /// it); `NotReacted` if there is none, decided under the room lock.
    pub async fn unreact(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: EventId,
        key: &str,
    ) -> Result<Event, EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock_owned().await;
        let reaction = view
            .reaction_of(sender, &target, key)
            .ok_or(EngineError::NotReacted)?;
        let redaction = Content::Redaction(Redaction {
            target: reaction,
            reason: None,
        });
        self.send_locked(view, sender, redaction).await
    }

    /// Of `events` (room, event), those `user` may read through the room
    /// API now ([`RoomView::readable`], then [`RoomView::shows`]) and that
    /// are not redacted: the filter on search hits. Each room is locked,
    /// and its floor computed, once.
    pub async fn readable_events(&self, user: &UserId, events: &[(RoomId, EventId)]) -> Vec<bool> {
        let mut verdicts = vec![false; events.len()];
        let mut by_room: std::collections::HashMap<RoomId, Vec<usize>> = Default::default();
        for (i, (room_id, _)) in events.iter().enumerate() {
            by_room.entry(*room_id).or_default().push(i);
        }
        for (room_id, indexes) in by_room {
            let Ok(slot) = self.room(&room_id) else {
                continue;
            };
            let view = slot.lock().await;
            let Some(floor) = view.readable_from(user) else {
                continue;
            };
            for i in indexes {
                let id = &events[i].1;
                verdicts[i] = view.shows(floor, id) && !view.agg.redacted.contains(id);
            }
        }
        verdicts
    }

    /// [`RoomView::message_now`] for each of `events` of a room, under one
    /// lock; events the room does not hold, or that are about no message,
    /// are left out.
    pub async fn messages_now(
        &self,
        room_id: &RoomId,
        events: &[EventId],
    ) -> Vec<(EventId, MessageNow)> {
        let Ok(slot) = self.room(room_id) else {
            return Vec::new();
        };
        let view = slot.lock().await;
        events
            .iter()
            .filter_map(|id| view.message_now(id))
            .collect()
    }

    /// The direct room of `creator` (local) with `other`: the existing one
    /// (`creator` joined, `other` joined or invited) or a new one, and
    /// whether it is new. Concurrent calls for one pair yield one room.
    pub async fn direct_room(
        &self,
        creator: &UserId,
        other: &UserId,
    ) -> Result<(RoomId, bool), EngineError> {
        let _pair = self.dm_lock(creator, other).lock().await;
        if let Some(room_id) = self.find_direct(creator, other).await {
            return Ok((room_id, false));
        }
        let options = NewRoom {
            kind: RoomKind::Direct,
            join_rule: JoinRule::Invite,
            history_visibility: HistoryVisibility::Shared,
            name: None,
            topic: None,
            invite: vec![other.clone()],
        };
        Ok((self.create_room(creator, options).await?, true))
    }

    async fn find_direct(&self, creator: &UserId, other: &UserId) -> Option<RoomId> {
        let candidates: Vec<RoomId> = {
            let directs = self.inner.directs.read().unwrap_or_else(|p| p.into_inner());
            self.rooms_of(creator)
                .into_iter()
                .filter(|room_id| directs.contains(room_id))
                .collect()
        };
        for room_id in candidates {
            let Ok(slot) = self.room(&room_id) else {
                continue;
            };
            let view = slot.lock().await;
            let room_state = view.room.state();
            if matches!(
                room_state.membership(other),
                Some(Membership::Join | Membership::Invite)
            ) && room_state.is_joined(creator)
            {
                return Some(room_id);
            }
        }
        None
    }

    /// The creation lock of the unordered pair {a, b}.
    fn dm_lock(&self, a: &UserId, b: &UserId) -> &tokio::sync::Mutex<()> {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        // Fixed keys: the shard only has to be the same for the same pair.
        let mut hasher = std::hash::DefaultHasher::new();
        first.hash(&mut hasher);
        second.hash(&mut hasher);
        &self.inner.dm_locks[hasher.finish() as usize % DM_LOCK_SHARDS]
    }

    /// [`Engine::send`] on a room already locked by the caller, who decided
    /// something under that lock.
    pub(super) async fn send_locked(
        &self,
        mut view: OwnedMutexGuard<RoomView>,
        sender: &UserId,
        content: Content,
    ) -> Result<Event, EngineError> {
        let fresh = self.draft_insert(&mut view, sender, content)?;
        let (event, accepted) = (fresh.event.clone(), fresh.accepted);
        self.persist(view, vec![fresh]).await?;
        if !accepted {
            // Only possible with more heads than one event may merge; it is
            // stored (others may build on it) but had no effect.
            return Err(EngineError::Forbidden(AuthError::Value(
                "refused by resolution",
            )));
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::view::test_room;
    use super::*;

    /// What the search index is told of a message: shown with its latest
    /// edit, hidden once redacted; edits and redactions point at their
    /// target; other events are about no message.
    #[test]
    fn message_now_follows_edits_and_redactions() {
        let (key, create, mut room) = test_room(5);
        let mut add = |n: u64, content: Content| {
            let event = room
                .draft(key.node_id(), "owner", 1 + n, content)
                .sign(&key)
                .unwrap();
            room.insert(event.clone()).unwrap();
            event.id()
        };
        let message = add(
            1,
            Content::Message(Message {
                body: "first".into(),
                ..Default::default()
            }),
        );
        let other = add(
            2,
            Content::Message(Message {
                body: "second".into(),
                ..Default::default()
            }),
        );
        let edit = add(
            3,
            Content::Edit(Edit {
                target: message,
                body: "first, edited".into(),
                mentions: Mentions::default(),
            }),
        );
        let redaction = add(
            4,
            Content::Redaction(Redaction {
                target: other,
                reason: None,
            }),
        );
        let view = RoomView::new(room, HashMap::new());
        let shown_edited = MessageNow::Shown {
            latest_edit: Some(edit),
        };
        assert_eq!(view.message_now(&message), Some((message, shown_edited)));
        assert_eq!(view.message_now(&edit), Some((message, shown_edited)));
        assert_eq!(view.message_now(&other), Some((other, MessageNow::Hidden)));
        assert_eq!(
            view.message_now(&redaction),
            Some((other, MessageNow::Hidden))
        );
        assert_eq!(view.message_now(&create.id()), None);
        // Readability per event: the whole shared history from position 0.
        let floor = view.readable(create.sender()).unwrap();
        assert!(view.shows(floor, &message));
        assert!(!view.shows(view.room.len(), &message), "before the floor");
    }
}
