//! Services: the node's domain rules that are neither protocol (the engine
//! decides those under a room's lock) nor HTTP (the API only parses,
//! authenticates, calls one service method and renders).
//!
//! A service is a cheap-to-clone handle over the state it owns, with typed
//! errors that each caller (the API, federation) maps its own way. It never
//! imports `crate::api`. ARCHITECTURE.md, "Pattern for services", says where
//! its state, locks, tasks and blocking work go; [`links`] is the model.
//!
//! - [`accounts`]: accounts, sessions, invite tokens, profiles, settings,
//!   contacts, read markers: the store's per-user writes.
//! - [`backup`]: online backup of the data directory, and restore.
//! - [`links`]: room invite links, used by the API and by federation joins.
//! - [`search`]: full-text search: the indexer task that feeds
//!   `spaces-search` from the live stream, and queries filtered by the
//!   room API's readability.
//! - [`media`]: who may upload, fetch and attach a blob of `spaces_blobs`,
//!   and fetches blobs other nodes hold.
//! - [`txns`]: exactly-once sends: a session's client transaction ids and
//!   the events they made.
//! - [`export`]: a user's data, streamed as parts for the API's archive.
//! - [`erasure`]: deleting an account (disable, sessions, rooms, profile).
//! - [`passkeys`]: WebAuthn ceremonies (`spaces_passkey`) over the store's
//!   passkeys and sign-in policies.
//! - [`moderation`]: the local toxicity classifier (`spaces_moderation`),
//!   or why it is unavailable.
//! - [`automod`]: a room's AutoMod rules (keywords, regexes, link and
//!   mention limits), compiled and checked.
//! - [`banlists`]: shared ban lists: enforcing the policy-list rooms a room
//!   or the node follows (bans, refused joins, hidden events).
//! - [`media`]: who may upload, fetch and attach a blob of `spaces_blobs`.
//! - [`notify`]: notifications: the notifier task that applies
//!   `spaces_notify`'s rules to the live stream within the engine's
//!   readability, and the per-user records and settings.
//! - [`oidc`]: the OAuth2 / OpenID Connect provider: clients, codes, PKCE,
//!   ID tokens (`spaces_oidc`); its sessions are the accounts' sessions.
//! - [`push`]: Web Push: browsers' subscriptions, the node's VAPID key, and
//!   the pusher task that sends the durable queue's deliveries.
//! - [`operator`]: the admin console's rooms (list, shut down on this
//!   node) and the data directory's sizes.
//! - [`email`]: email addresses and their verification, password-reset
//!   mails, and the mailer task that sends them and the durable digests.
//! - [`on_disk`]: runs store writes (each ends in an fsync) off the async
//!   runtime; the tidy test `blocking_store_calls_stay_off_the_runtime`
//!   holds every caller in `node/src` to it.

pub mod accounts;
pub mod automod;
pub mod backup;
pub mod banlists;
mod disk;
pub mod email;
pub mod erasure;
pub mod export;
pub mod links;
pub mod media;
pub mod moderation;
pub mod notify;
pub mod oidc;
pub mod operator;
pub mod passkeys;
pub mod push;
pub mod search;
pub mod txns;

pub use disk::on_disk;
