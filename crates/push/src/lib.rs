//! `spaces-push`: Web Push for browsers.
//!
//! - `vapid`: the node's VAPID key (P-256, RFC 8292), kept in the data
//!   directory, and the ES256 JWT that names the node to a push service.
//! - `subscription`: a browser's `PushSubscription` (endpoint, `p256dh`,
//!   `auth`), checked before it is kept: an endpoint must be `https`, or
//!   `http` on a loopback address when the node allows it (tests).
//! - `request`: a push request: the payload encrypted with `aes128gcm`
//!   (RFC 8291, through web-push-native), `TTL`, `Urgency` and the VAPID
//!   `Authorization`.
//!
//! The crate sends nothing: it builds `http::Request`s that the node
//! sends, only ever to endpoints of registered subscriptions.

mod request;
mod subscription;
mod vapid;

pub use request::{MAX_PAYLOAD_BYTES, Urgency, build};
pub use subscription::{MAX_ENDPOINT_BYTES, Subscription, SubscriptionError};
pub use vapid::VapidKey;

/// Why a push request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("payload of {0} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("encryption: {0}")]
    Encrypt(String),
    #[error("bad VAPID key: {0}")]
    Key(String),
}
