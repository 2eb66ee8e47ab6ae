//! The Spaces protocol: everything two nodes must agree on.
//!
//! - [`ids`]: node, user, event, room and role identifiers.
//! - [`keys`]: the node's ed25519 key.
//! - [`event`]: the signed event envelope — encode, sign, decode, verify.
//! - [`content`]: what events say (state and messages).
//! - [`glob`]: the patterns of ban lists.
//! - [`permissions`]: role permission bits and ranks.
//! - [`text`]: characters a node refuses in the text its own users send.
//! - [`state`]: room state.
//! - [`auth`]: the auth rules.
//! - [`room`]: a room replica — canonical order, state resolution, admission.
//!
//! This crate is pure: no I/O, no clock, no randomness of its own. Callers
//! pass the time and any random bytes. The normative text is `docs/spec/`.

pub mod auth;
mod base32;
pub mod content;
pub mod ephemeral;
pub mod event;
pub mod glob;
pub mod ids;
pub mod keys;
pub mod limits;
pub mod permissions;
pub mod room;
pub mod state;
pub mod text;

pub use auth::AuthError;
pub use content::Content;
pub use ephemeral::{Ephemeral, EphemeralBody, EphemeralKind, Presence};
pub use event::{Event, EventBody, Rejection};
pub use ids::{EventId, NodeId, RoleId, RoomId, UserId};
pub use keys::NodeKey;
pub use permissions::Permissions;
pub use room::{InsertError, Inserted, Room};
pub use state::RoomState;
