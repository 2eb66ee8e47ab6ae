//! Spaces user authentication primitives.
//!
//! Pure functions and small types: no I/O, no clock, no ambient randomness.
//! Callers pass the current time (unix seconds) and a cryptographically secure
//! RNG, so every function here is deterministic under test.
//!
//! | module       | what it holds                                                        |
//! | ------------ | -------------------------------------------------------------------- |
//! | `password`   | argon2id password hashes as PHC strings, the password policy         |
//! | `access`     | opaque access tokens naming their session (stored hashed)            |
//! | `refresh`    | opaque secrets: refresh tokens (stored hashed), session ids, invites |
//! | `key`        | the node's token secret, from which the device-token key derives    |
//! | `device`     | device tokens: proof of an earlier sign-in, for sign-in throttling   |
//! | `error`      | [`Error`] for passwords                                              |
//!
//! ```
//! use spaces_auth::{
//!     hash_password, hashes_equal, new_access_token, new_session_id, parse_access_token,
//!     verify_password,
//! };
//!
//! let mut rng = rand::rng();
//! let phc = hash_password("correct horse battery staple", &mut rng)?;
//! assert!(verify_password(&phc, "correct horse battery staple")?);
//!
//! // The node keeps `minted.hash` in the session record and hands out `minted.token`.
//! let session_id = new_session_id(&mut rng);
//! let minted = new_access_token(&session_id, &mut rng);
//! let presented = parse_access_token(&minted.token).expect("well-formed");
//! assert_eq!(presented.session_id, session_id);
//! assert!(hashes_equal(&presented.hash, &minted.hash));
//! # Ok::<(), spaces_auth::Error>(())
//! ```
//!
//! What this crate does not know: users, sessions, storage, HTTP or time.
//! The node stores the hashes and decides what a live session is; this crate
//! only mints secrets and checks them.

mod access;
mod device;
mod error;
mod key;
mod password;
mod refresh;

#[cfg(test)]
mod test_rng;

pub use access::{
    ACCESS_TOKEN_LEN, ACCESS_TOKEN_PREFIX, NewAccessToken, PresentedAccessToken, new_access_token,
    parse_access_token,
};
pub use device::{DEVICE_ID_LEN, DeviceId, DeviceKey, new_device_id};
pub use error::{Error, PolicyViolation};
pub use key::TokenKey;
pub use password::{check_password_policy, hash_password, verify_password};
pub use refresh::{
    NewRefreshToken, hash_refresh_token, hashes_equal, new_invite_token, new_refresh_token,
    new_session_id,
};
