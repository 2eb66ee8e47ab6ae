//! `spaces-store`: the node's durable state in sled.
//!
//! It knows nothing about the protocol: an event is opaque bytes named by a 32-byte id, with the
//! 32-byte id of its room. Whatever it acknowledges is on disk (see `store` for durability and
//! crash behaviour).
//!
//! - `store`: the [`Store`] handle and [`Options`]; opening, flushing, node metadata.
//! - `events`: the append-only event log in stream order, one atomic batch per group commit.
//! - `accounts`: per-user state: accounts, profiles, settings, contacts, read markers.
//! - `sessions`: refresh-token sessions and their rotation.
//! - `invites`: registration invite tokens.
//! - `directory`: finding local users by username or display name (user search).
//! - `links`: room invite links and their atomic use.
//! - `txns`: the client transaction ids a session sent with, for exactly-once sends.
//! - `passkeys`: WebAuthn credentials (opaque here), their counters, and sign-in policies.
//! - `oauth`: the OAuth2 provider's registered clients and authorization codes.
//! - `moderation`: this node's moderation marks on received events (hidden, flagged, revealed).
//! - `notifications`: per-user notification records, unread marks, settings, the notifier's cursor.
//! - `email`: account email addresses, digest state and queue, password-reset tokens.
//! - `check`: reading every record back and reporting what does not decode or agree.
//! - `snapshot`: a consistent copy of a running store, and restoring one into a new directory.
//! - `keys`: the on-disk layout, every tree and key encoding.
//! - `records`: the stored structs and their versioned encoding.
//! - `error`: [`Error`].

mod accounts;
mod check;
mod directory;
mod email;
mod error;
mod events;
mod invites;
mod keys;
mod links;
mod moderation;
mod notifications;
mod oauth;
mod passkeys;
mod records;
mod registration;
mod sessions;
mod snapshot;
mod store;
mod txns;

pub use check::CheckReport;
pub use directory::FoundUser;
pub use email::{DueEmails, EmailKey};
pub use error::Error;
pub use events::{NewEvent, StoredEvent, StoredFlips};
pub use notifications::{DuePushes, NotificationAt, PushKey};
pub use oauth::{CodeRedemption, MAX_OAUTH_CODES};
pub use passkeys::{MAX_CREDENTIAL_ID, MAX_PASSKEYS_PER_USER, PasskeyUpdate, PasskeyUse};
pub use records::{
    AccessGrant, Account, AuthPolicy, DigestState, EmailAddress, EmailDelivery, InviteLink,
    InviteToken, ModerationMark, Notification, NotifySettings, OAuthClient, OAuthCode, OAuthGrant,
    PasskeyRecord, Profile, PushDelivery, PushSubscription, ResetToken, RoomNotifySetting, Session,
    SignInMethod,
};
pub use sessions::{Renewal, Rotation};
pub use snapshot::{Entry, Restorer, Snapshot};
pub use store::{Options, Store};
pub use txns::MAX_TXNS_PER_SESSION;

/// An event or room id: a 32-byte hash chosen by the protocol.
pub type Id = [u8; 32];
