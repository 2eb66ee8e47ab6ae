//! Permissions and ranks, Discord-style.
//!
//! A role carries a permission bitfield and a rank. A member's permissions
//! are the union of `@everyone`'s and their roles'; their rank is the highest
//! rank among their roles (0 without roles). The room's creator owns it:
//! rank [`OWNER_RANK`] and every permission. Two rules keep the hierarchy
//! safe: nobody can grant a permission they lack, and nobody can act on a
//! member of equal or higher rank.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};

use serde::{Deserialize, Serialize};

/// A set of permissions. Unknown bits are kept as sent (a newer node may know
/// them) but grant nothing here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Permissions(pub u64);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);
    pub const SEND_MESSAGES: Permissions = Permissions(1 << 0);
    pub const ADD_REACTIONS: Permissions = Permissions(1 << 1);
    pub const ATTACH_FILES: Permissions = Permissions(1 << 2);
    /// Mention `@room`, notifying every member.
    pub const MENTION_ROOM: Permissions = Permissions(1 << 3);
    pub const INVITE: Permissions = Permissions(1 << 4);
    pub const KICK: Permissions = Permissions(1 << 5);
    /// Ban and unban.
    pub const BAN: Permissions = Permissions(1 << 6);
    /// Time members out (mute until a time).
    pub const TIMEOUT: Permissions = Permissions(1 << 7);
    /// Redact others' messages and pin messages.
    pub const MANAGE_MESSAGES: Permissions = Permissions(1 << 8);
    /// Name, topic, avatar, join rule, history visibility, slowmode,
    /// encryption, and the rooms of a space.
    pub const MANAGE_ROOM: Permissions = Permissions(1 << 9);
    /// Define roles and assign them.
    pub const MANAGE_ROLES: Permissions = Permissions(1 << 10);
    pub const BYPASS_SLOWMODE: Permissions = Permissions(1 << 11);

    /// Every permission this protocol version defines.
    pub const ALL: Permissions = Permissions((1 << 12) - 1);

    /// What `@everyone` may do in a new room: talk, react, share files and
    /// invite friends; moderation is granted through roles.
    pub const DEFAULT_EVERYONE: Permissions = Permissions(
        Self::SEND_MESSAGES.0 | Self::ADD_REACTIONS.0 | Self::ATTACH_FILES.0 | Self::INVITE.0,
    );

    pub const fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    const NAMES: [(Permissions, &'static str); 12] = [
        (Self::SEND_MESSAGES, "send_messages"),
        (Self::ADD_REACTIONS, "add_reactions"),
        (Self::ATTACH_FILES, "attach_files"),
        (Self::MENTION_ROOM, "mention_room"),
        (Self::INVITE, "invite"),
        (Self::KICK, "kick"),
        (Self::BAN, "ban"),
        (Self::TIMEOUT, "timeout"),
        (Self::MANAGE_MESSAGES, "manage_messages"),
        (Self::MANAGE_ROOM, "manage_room"),
        (Self::MANAGE_ROLES, "manage_roles"),
        (Self::BYPASS_SLOWMODE, "bypass_slowmode"),
    ];

    /// Names of the set bits, for APIs and error messages.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(p, _)| self.contains(*p))
            .map(|(_, name)| name)
    }

    /// Parses a permission name as used by the HTTP API.
    pub fn from_name(name: &str) -> Option<Permissions> {
        Self::NAMES
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(p, _)| p)
    }
}

impl BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 | rhs.0)
    }
}

impl BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Permissions) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Permissions {
    type Output = Permissions;
    fn bitand(self, rhs: Permissions) -> Permissions {
        Permissions(self.0 & rhs.0)
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A rank orders members for moderation: higher acts on lower.
pub type Rank = u32;

/// The creator's rank. No role may reach it, so the owner can never be
/// kicked, banned, timed out or stripped of roles.
pub const OWNER_RANK: Rank = Rank::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (p, name) in Permissions::NAMES {
            assert_eq!(Permissions::from_name(name), Some(p));
            assert!(Permissions::ALL.contains(p));
        }
        assert_eq!(Permissions::from_name("root"), None);
        let set = Permissions::KICK | Permissions::BAN;
        assert_eq!(set.names().collect::<Vec<_>>(), ["kick", "ban"]);
        assert!(!set.contains(Permissions::KICK | Permissions::INVITE));
    }
}
