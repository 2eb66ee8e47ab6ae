//! Room state: what the state events of a room add up to at one point of
//! its canonical order. Persistent maps (imbl) make a snapshot an O(1)
//! clone, which is what lets [`crate::room`] keep checkpoints cheaply.

use std::sync::Arc;

use imbl::{HashMap, OrdMap};

use crate::content::*;
use crate::ids::{EventId, NodeId, RoleId, RoomId, UserId};
use crate::permissions::{OWNER_RANK, Permissions, Rank};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub rank: Rank,
    pub permissions: Permissions,
    pub color: Option<u32>,
}

/// The state of a room. Two replicas that applied the same events in the
/// same order hold equal states (`==` compares every field).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RoomState {
    pub(crate) creator: Option<UserId>,
    pub(crate) kind: Option<RoomKind>,
    pub(crate) members: HashMap<UserId, Membership>,
    pub(crate) member_roles: HashMap<UserId, Arc<[RoleId]>>,
    pub(crate) roles: OrdMap<RoleId, Role>,
    /// Ids of deleted roles, never defined again.
    pub(crate) deleted_roles: imbl::OrdSet<RoleId>,
    pub(crate) timeouts: HashMap<UserId, u64>,
    /// Effective time of each member's last accepted message, for slowmode.
    pub(crate) last_message_ms: HashMap<UserId, u64>,
    pub(crate) name: Option<String>,
    pub(crate) topic: Option<String>,
    pub(crate) avatar: Option<Attachment>,
    pub(crate) join_rule: Option<JoinRule>,
    pub(crate) history_visibility: Option<HistoryVisibility>,
    pub(crate) slowmode_seconds: u32,
    /// The room's moderation policy; `None` when none or an empty one was set.
    pub(crate) moderation_policy: Option<Arc<ModerationPolicy>>,
    /// The room's AutoMod rules; `None` when none or empty ones were set.
    pub(crate) automod: Option<Arc<AutoMod>>,
    /// This room's entries as a ban list, by target.
    pub(crate) ban_entries: OrdMap<BanTarget, Arc<BanEntry>>,
    /// The ban lists this room follows.
    pub(crate) ban_lists: Arc<[RoomId]>,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) pins: Arc<[EventId]>,
    pub(crate) space_children: OrdMap<RoomId, Arc<[NodeId]>>,
    pub(crate) space_parents: OrdMap<RoomId, Arc<[NodeId]>>,
}

impl RoomState {
    pub fn creator(&self) -> Option<&UserId> {
        self.creator.as_ref()
    }
    pub fn kind(&self) -> Option<RoomKind> {
        self.kind
    }
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }
    pub fn avatar(&self) -> Option<&Attachment> {
        self.avatar.as_ref()
    }
    pub fn join_rule(&self) -> JoinRule {
        self.join_rule.unwrap_or(JoinRule::Invite)
    }
    pub fn history_visibility(&self) -> HistoryVisibility {
        self.history_visibility.unwrap_or(HistoryVisibility::Shared)
    }
    pub fn slowmode_seconds(&self) -> u32 {
        self.slowmode_seconds
    }
    /// The room's moderation policy, shared: the node's indexes and its
    /// screening keep it without copying.
    pub fn moderation_policy(&self) -> Option<&Arc<ModerationPolicy>> {
        self.moderation_policy.as_ref()
    }
    /// The room's AutoMod rules, shared: a caller that compiled them tells
    /// a new version by [`Arc::ptr_eq`].
    pub fn automod(&self) -> Option<&Arc<AutoMod>> {
        self.automod.as_ref()
    }
    /// This room's ban-list entries. A cheap clone of a persistent map:
    /// [`imbl::OrdMap::ptr_eq`] tells a caller that compiled it whether it
    /// changed.
    pub fn ban_entries(&self) -> &OrdMap<BanTarget, Arc<BanEntry>> {
        &self.ban_entries
    }
    /// Patterns among [`RoomState::ban_entries`].
    pub fn ban_patterns(&self) -> usize {
        self.ban_entries
            .keys()
            .filter(|t| matches!(t, BanTarget::Pattern(_)))
            .count()
    }
    /// The ban lists (list rooms) this room follows.
    pub fn ban_lists(&self) -> &[RoomId] {
        &self.ban_lists
    }
    pub fn encryption(&self) -> Option<Encryption> {
        self.encryption
    }
    pub fn pins(&self) -> &[EventId] {
        &self.pins
    }
    pub fn space_children(&self) -> impl Iterator<Item = (&RoomId, &[NodeId])> {
        self.space_children
            .iter()
            .map(|(room, via)| (room, &via[..]))
    }
    pub fn space_parents(&self) -> impl Iterator<Item = (&RoomId, &[NodeId])> {
        self.space_parents
            .iter()
            .map(|(room, via)| (room, &via[..]))
    }

    pub fn membership(&self, user: &UserId) -> Option<Membership> {
        self.members.get(user).copied()
    }
    pub fn is_joined(&self, user: &UserId) -> bool {
        self.membership(user) == Some(Membership::Join)
    }
    /// Every user with a membership, in a stable order.
    pub fn members(&self) -> Vec<(UserId, Membership)> {
        let mut members: Vec<_> = self.members.iter().map(|(u, m)| (u.clone(), *m)).collect();
        members.sort();
        members
    }
    /// Joined members, sorted.
    pub fn joined(&self) -> Vec<UserId> {
        let mut joined: Vec<_> = self
            .members
            .iter()
            .filter(|(_, m)| **m == Membership::Join)
            .map(|(u, _)| u.clone())
            .collect();
        joined.sort();
        joined
    }
    /// Nodes that are home to at least one joined member: where the room lives.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<_> = self
            .members
            .iter()
            .filter(|(_, m)| **m == Membership::Join)
            .map(|(u, _)| u.node())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    pub fn roles(&self) -> impl Iterator<Item = (&RoleId, &Role)> {
        self.roles.iter()
    }
    pub fn role(&self, role: RoleId) -> Option<&Role> {
        self.roles.get(&role)
    }
    pub fn roles_of(&self, user: &UserId) -> &[RoleId] {
        self.member_roles.get(user).map_or(&[], |roles| roles)
    }
    pub fn timeout_until(&self, user: &UserId) -> Option<u64> {
        self.timeouts.get(user).copied()
    }

    pub fn is_owner(&self, user: &UserId) -> bool {
        self.creator.as_ref() == Some(user)
    }

    /// The highest rank among the user's roles; [`OWNER_RANK`] for the creator.
    pub fn rank(&self, user: &UserId) -> Rank {
        if self.is_owner(user) {
            return OWNER_RANK;
        }
        self.roles_of(user)
            .iter()
            .filter_map(|role| self.roles.get(role))
            .map(|role| role.rank)
            .max()
            .unwrap_or(0)
    }

    /// `@everyone`'s permissions plus those of the user's roles; all for the creator.
    pub fn permissions(&self, user: &UserId) -> Permissions {
        if self.is_owner(user) {
            return Permissions::ALL;
        }
        let everyone = self
            .roles
            .get(&RoleId::EVERYONE)
            .map_or(Permissions::NONE, |r| r.permissions);
        self.roles_of(user)
            .iter()
            .filter_map(|role| self.roles.get(role))
            .fold(everyone, |acc, role| acc | role.permissions)
            & Permissions::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name, NodeId([1; 32])).unwrap()
    }

    fn role(rank: Rank, permissions: Permissions) -> Role {
        Role {
            name: String::new(),
            rank,
            permissions,
            color: None,
        }
    }

    #[test]
    fn rank_and_permissions_follow_the_defined_roles() {
        let (owner, alice, bob) = (user("owner"), user("alice"), user("bob"));
        let mut state = RoomState {
            creator: Some(owner.clone()),
            ..RoomState::default()
        };
        state
            .roles
            .insert(RoleId::EVERYONE, role(0, Permissions::SEND_MESSAGES));
        state
            .roles
            .insert(RoleId(1), role(5, Permissions::KICK | Permissions(1 << 50)));
        state.roles.insert(RoleId(2), role(9, Permissions::BAN));
        state.member_roles.insert(
            alice.clone(),
            Arc::from(&[RoleId(1), RoleId(2), RoleId(7)][..]),
        );
        // The highest rank; the union of permissions within ALL; undefined role 7 counts for nothing.
        assert_eq!(state.rank(&alice), 9);
        assert_eq!(
            state.permissions(&alice),
            Permissions::SEND_MESSAGES | Permissions::KICK | Permissions::BAN
        );
        // No roles: @everyone only, rank 0.
        assert_eq!(state.rank(&bob), 0);
        assert_eq!(state.permissions(&bob), Permissions::SEND_MESSAGES);
        // The owner: everything, whatever the roles say.
        assert_eq!(state.rank(&owner), OWNER_RANK);
        assert_eq!(state.permissions(&owner), Permissions::ALL);
        // No @everyone definition: nothing.
        state.roles.remove(&RoleId::EVERYONE);
        assert_eq!(state.permissions(&bob), Permissions::NONE);
        // Deleting role 2 lowers alice's rank.
        state.roles.remove(&RoleId(2));
        assert_eq!(state.rank(&alice), 5);
    }

    #[test]
    fn member_lists_are_sorted_and_nodes_deduplicated() {
        let mut state = RoomState::default();
        let far = UserId::new("zed", NodeId([9; 32])).unwrap();
        for (u, m) in [
            (user("carol"), Membership::Join),
            (user("alice"), Membership::Join),
            (far.clone(), Membership::Join),
            (user("bob"), Membership::Invite),
            (
                UserId::new("gone", NodeId([5; 32])).unwrap(),
                Membership::Leave,
            ),
        ] {
            state.members.insert(u, m);
        }
        assert_eq!(
            state.joined(),
            vec![user("alice"), user("carol"), far.clone()]
        );
        assert_eq!(state.nodes(), vec![NodeId([1; 32]), NodeId([9; 32])]);
        assert_eq!(state.members().len(), 5);
        assert!(state.members().windows(2).all(|w| w[0] < w[1]));
        assert!(state.is_joined(&far) && !state.is_joined(&user("bob")));
    }
}
