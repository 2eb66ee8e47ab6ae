//! Identifiers: nodes, users, events, rooms, roles.
//!
//! Every identifier that another node must be able to check is derived from
//! key material or content, never chosen freely: a node id *is* its ed25519
//! public key (and so its libp2p `PeerId`), an event id is the hash of the
//! event's signed bytes, and a room id is the id of the room's create event.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::base32;
use crate::limits::MAX_LOCALPART_LEN;

/// Why a piece of text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected prefix `{0}`")]
    Prefix(char),
    #[error("not 52 characters of lowercase base32")]
    Encoding,
    #[error("user id must look like @localpart:node")]
    UserShape,
    #[error("localpart must be 1–{MAX_LOCALPART_LEN} of a-z 0-9 . _ -")]
    Localpart,
}

macro_rules! hash_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The text prefix that marks this kind of id.
            pub const PREFIX: char = $prefix;

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, base32::encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Short form: enough to tell ids apart in logs and test output.
                write!(f, "{}{}", $prefix, &base32::encode(&self.0)[..10])
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                let rest = text.strip_prefix($prefix).ok_or(IdError::Prefix($prefix))?;
                base32::decode::<32>(rest).map($name).ok_or(IdError::Encoding)
            }
        }
    };
}

hash_id!(
    /// A node: its ed25519 public key. Text form `~` + base32.
    NodeId,
    '~'
);
hash_id!(
    /// An event: BLAKE3 of its signed bytes (see `event.rs`). Text form `$` + base32.
    EventId,
    '$'
);
hash_id!(
    /// A room: the id of its create event. Text form `!` + base32.
    RoomId,
    '!'
);

impl RoomId {
    /// The id of the create event that names this room.
    pub fn create_event(&self) -> EventId {
        EventId(self.0)
    }
}

impl From<EventId> for RoomId {
    fn from(event_id: EventId) -> Self {
        RoomId(event_id.0)
    }
}

/// A user: a localpart on a home node. Text form `@localpart:~node`.
///
/// The node part is a key, not a host name, so any node can check that an
/// event from this user was signed by the user's home node.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserId {
    localpart: String,
    node: NodeId,
}

impl UserId {
    pub fn new(localpart: &str, node: NodeId) -> Result<UserId, IdError> {
        validate_localpart(localpart)?;
        Ok(UserId {
            localpart: localpart.to_owned(),
            node,
        })
    }

    pub fn localpart(&self) -> &str {
        &self.localpart
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Checks the invariants a decoder cannot: postcard builds the struct
    /// field by field, so a decoded user id is validated by the event checks.
    pub(crate) fn validate(&self) -> Result<(), IdError> {
        validate_localpart(&self.localpart)
    }
}

/// `1..=32` characters of `a-z 0-9 . _ -`: lowercase only, so that two
/// users can never differ by case alone.
pub fn validate_localpart(localpart: &str) -> Result<(), IdError> {
    let ok = !localpart.is_empty()
        && localpart.len() <= MAX_LOCALPART_LEN
        && localpart
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(IdError::Localpart) }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}:{}", self.localpart, self.node)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}:{:?}", self.localpart, self.node)
    }
}

impl FromStr for UserId {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, IdError> {
        let rest = text.strip_prefix('@').ok_or(IdError::Prefix('@'))?;
        let (localpart, node) = rest.split_once(':').ok_or(IdError::UserShape)?;
        // Localpart first, then the node (docs/spec/identities.md#user-ids).
        validate_localpart(localpart)?;
        UserId::new(localpart, node.parse()?)
    }
}

/// A role within one room. Role 0 is `@everyone`: every member has it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct RoleId(pub u32);

impl RoleId {
    pub const EVERYONE: RoleId = RoleId(0);
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let node = NodeId([7; 32]);
        let text = node.to_string();
        assert!(text.starts_with('~'));
        assert_eq!(text.parse::<NodeId>(), Ok(node));
        let event = EventId([9; 32]);
        assert_eq!(event.to_string().parse::<EventId>(), Ok(event));
        assert_eq!(
            RoomId::from(event).to_string().parse::<RoomId>(),
            Ok(RoomId([9; 32]))
        );
        let user = UserId::new("alice", node).unwrap();
        assert_eq!(user.to_string().parse::<UserId>(), Ok(user));
    }

    #[test]
    fn bad_text_is_refused() {
        let node = NodeId([7; 32]).to_string();
        let user = |text: &str| text.parse::<UserId>().err();
        let node_id = |text: &str| text.parse::<NodeId>().err();
        let cases: [(&str, Option<IdError>, Option<IdError>); 8] = [
            ("$abc", node_id("$abc"), Some(IdError::Prefix('~'))),
            ("~abc", node_id("~abc"), Some(IdError::Encoding)),
            ("alice", user("alice"), Some(IdError::Prefix('@'))),
            ("@alice", user("@alice"), Some(IdError::UserShape)),
            // The localpart is checked before the node part.
            ("@:x", user("@:x"), Some(IdError::Localpart)),
            ("@Alice:x", user("@Alice:x"), Some(IdError::Localpart)),
            ("@alice:x", user("@alice:x"), Some(IdError::Prefix('~'))),
            ("@alice:~abc", user("@alice:~abc"), Some(IdError::Encoding)),
        ];
        for (text, got, want) in cases {
            assert_eq!(got, want, "{text}");
        }
        for bad in ["Alice", "al ice", &"a".repeat(33), "ünï"] {
            assert_eq!(
                format!("@{bad}:{node}").parse::<UserId>().err(),
                Some(IdError::Localpart),
                "{bad}"
            );
        }
        // The `:` split takes the first colon, so a colon in the localpart is refused above.
        assert!(format!("@alice:{node}").parse::<UserId>().is_ok());
    }
}
