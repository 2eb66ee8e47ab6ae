//! `spaces-passkey`: passkeys (WebAuthn) for Spaces, on webauthn-rs.
//!
//! - `ceremony`: [`Passkeys`], the handle: registration, sign-in with a discoverable credential
//!   (no username), and a passkey as the second factor after a password.
//! - `pending`: the ceremonies begun and not finished: bounded in count, per source and in
//!   bytes, expiring, each finished at most once.
//! - `error`: [`Error`].
//!
//! This crate knows no users, sessions, storage or HTTP: the node stores the credentials it
//! hands out (opaque bytes) and passes in the time. What it checks is what WebAuthn checks:
//! origin, relying-party id, challenge, user verification, signature, and that the signature
//! counter went up.

mod ceremony;
mod error;
mod pending;

pub use ceremony::{
    CeremonyId, NewCredential, Options, Passkeys, SignInStart, Verified, credential_id_of,
};
pub use error::Error;
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
