//! Who is where: the local-membership index and each room's reach, kept
//! under the room lock from its state, and the delivery rules built on them
//! (which stream items and acceptance changes a user's clients get).

use std::collections::HashMap;

use spaces_protocol::content::*;
use spaces_protocol::{Event, EventId, NodeId, RoomId, UserId};

use super::*;

/// Where a room's events travel from this node (federation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub public: bool,
    /// Other nodes with a joined or invited member.
    pub nodes: Vec<NodeId>,
    /// Whether a local user is joined or invited.
    pub local: bool,
}

/// Whether the event is a membership change of `user`.
pub(super) fn is_about(user: &UserId, item: &StreamItem) -> bool {
    matches!(item.event.content(), Content::Member(m) if &m.target == user)
}

impl Engine {
    /// Rooms where a local user is joined, invited or knocking.
    pub fn rooms_of(&self, user: &UserId) -> Vec<RoomId> {
        let index = self.memberships();
        index
            .get(user)
            .map(|rooms| rooms.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether a live event should reach `user`'s clients: resolution
    /// accepted it, and they are joined or it is about them (their invite,
    /// kick or ban). Invitees and knockers see only their own membership
    /// until they join (invariant 4). A refused event — say a banned
    /// member's message backdated past the ban — is shown to no one.
    pub fn delivers_to(&self, user: &UserId, item: &StreamItem) -> bool {
        if !item.accepted {
            return false;
        }
        is_about(user, item) || self.is_joined_local(user, &item.room_id)
    }

    /// Whether a local user is joined to a room.
    pub fn is_joined_local(&self, user: &UserId, room_id: &RoomId) -> bool {
        let index = self.memberships();
        index.get(user).and_then(|rooms| rooms.get(room_id)) == Some(&Membership::Join)
    }

    /// [`Engine::delivers_to`] for a page of events from the stored backlog,
    /// which may predate the user's join: each must be accepted now, and
    /// within the history they may read (the room's history visibility)
    /// unless it is about them. Each room of the page is locked, and its
    /// floor computed, once.
    pub async fn backlog_filter(&self, user: &UserId, items: &[StreamItem]) -> Vec<bool> {
        let mut verdicts = vec![false; items.len()];
        let mut by_room: HashMap<RoomId, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if self.delivers_to(user, item) {
                by_room.entry(item.room_id).or_default().push(i);
            }
        }
        for (room_id, indexes) in by_room {
            let Ok(slot) = self.room(&room_id) else {
                continue;
            };
            let view = slot.lock().await;
            let floor = view.readable_from(user);
            for i in indexes {
                let id = items[i].event.id();
                verdicts[i] = view.room.is_accepted(&id)
                    && (is_about(user, &items[i])
                        || floor.is_some_and(|floor| view.shows(floor, &id)));
            }
        }
        verdicts
    }

    /// What became of `flipped`, events of a room whose acceptance some
    /// later event changed, as `user`'s clients should hear it now: the ids
    /// refused, and the events accepted that are within the history they
    /// may read. `None` when there is nothing to say or the user is not in
    /// the room.
    pub async fn acceptance_for(
        &self,
        user: &UserId,
        room_id: &RoomId,
        flipped: Vec<EventId>,
    ) -> Option<(Vec<EventId>, Vec<Event>)> {
        if flipped.is_empty() || !self.is_joined_local(user, room_id) {
            return None;
        }
        let slot = self.room(room_id).ok()?;
        let view = slot.lock().await;
        let floor = view.readable_from(user)?;
        let mut refused = Vec::new();
        let mut accepted = Vec::new();
        for id in flipped {
            // Nothing before the floor, not even an id (invariant 4).
            if view.room.position(&id).is_none_or(|p| p < floor) {
                continue;
            }
            if view.room.is_accepted(&id) {
                accepted.push(id);
            } else {
                refused.push(id);
            }
        }
        // The replica holds skeletons: the accepted are read back whole.
        let accepted: Vec<Event> = match self.show(view, &accepted, false).await {
            Ok(shown) => shown.into_iter().map(|s| s.event).collect(),
            Err(error) => {
                tracing::error!(%error, "reading events whose acceptance changed");
                Vec::new()
            }
        };
        (!refused.is_empty() || !accepted.is_empty()).then_some((refused, accepted))
    }

    /// Where a room's events go from here, as of its current state.
    pub fn reach(&self, room_id: &RoomId) -> Option<Reach> {
        self.inner
            .reaches
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
    }

    /// Brings the local-membership index and the room's reach in line with
    /// its state. Called under the room lock after every change that can
    /// move a membership or the join rule: an accepted `create`, `member`
    /// or `join_rule` event, or resolution changing what was accepted.
    pub(super) fn index_room(&self, view: &RoomView) {
        let room_id = view.room.room_id();
        let state = view.room.state();
        if state.kind() == Some(RoomKind::Direct) {
            self.inner
                .directs
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(room_id);
        }
        let mut reach = Reach {
            public: state.join_rule() == JoinRule::Public,
            nodes: Vec::new(),
            local: false,
        };
        {
            let mut index = self
                .inner
                .memberships
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let mut joined_at = self
                .inner
                .joined_at
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            for (user, membership) in state.members() {
                let in_room = matches!(membership, Membership::Join | Membership::Invite);
                if user.node() != self.inner.node_id {
                    if in_room && !reach.nodes.contains(&user.node()) {
                        reach.nodes.push(user.node());
                    }
                    continue;
                }
                reach.local |= in_room;
                if membership == Membership::Join {
                    joined_at
                        .entry(user.clone())
                        .or_default()
                        .entry(room_id)
                        .or_insert(now);
                } else if let Some(rooms) = joined_at.get_mut(&user) {
                    rooms.remove(&room_id);
                }
                let rooms = index.entry(user).or_default();
                if in_room || membership == Membership::Knock {
                    rooms.insert(room_id, membership);
                } else {
                    rooms.remove(&room_id);
                }
            }
        }
        self.inner
            .reaches
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room_id, reach);
        let blocking = state
            .moderation_policy()
            .filter(|policy| policy.rules.iter().any(|r| r.action == PolicyAction::Block));
        let mut policies = self
            .inner
            .policies
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match blocking {
            Some(policy) => {
                policies.insert(room_id, policy.clone());
            }
            None => {
                policies.remove(&room_id);
            }
        }
        drop(policies);
        let mut automods = self
            .inner
            .automods
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match state.automod() {
            Some(rules) => {
                automods.insert(room_id, rules.clone());
            }
            None => {
                automods.remove(&room_id);
            }
        }
    }

    /// The room's AutoMod rules: what a local send is checked against,
    /// read without the room lock.
    pub fn automod(&self, room_id: &RoomId) -> Option<Arc<AutoMod>> {
        self.inner
            .automods
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
    }

    /// The room's moderation policy if it has a rule that blocks: what a
    /// local send is vetted against, read without the room lock.
    pub fn blocking_policy(&self, room_id: &RoomId) -> Option<Arc<ModerationPolicy>> {
        self.inner
            .policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
    }

    /// Local users' rooms and memberships.
    pub(super) fn memberships(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<UserId, HashMap<RoomId, Membership>>> {
        self.inner
            .memberships
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a room whose creation never reached the store out of the
    /// room map and every index. Nobody else knew its id yet.
    pub(super) fn forget_new_room(&self, room_id: &RoomId) {
        self.write_rooms().remove(room_id);
        for rooms in self
            .inner
            .memberships
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            rooms.remove(room_id);
        }
        for rooms in self
            .inner
            .joined_at
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            rooms.remove(room_id);
        }
        self.inner
            .reaches
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room_id);
        self.inner
            .directs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room_id);
        self.inner
            .policies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room_id);
        self.inner
            .automods
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(room_id);
    }
}
