//! Spaces user authentication primitives.
//!
//! Pure functions and small types: no I/O, no clock, no ambient randomness.
//! Callers pass the current time (unix seconds) and a cryptographically secure
//! RNG, so every function here is deterministic under test.
//!
//! | module       | what it holds                                                        |
//! | ------------ | -------------------------------------------------------------------- |
//! | `password`   | argon2id password hashes as PHC strings, the password policy         |
//! | `token`      | short-lived HS256 access tokens (JWT in compact JWS form)            |
//! | `refresh`    | opaque secrets: refresh tokens (stored hashed), session ids, invites |
//! | `device`     | device tokens: proof of an earlier sign-in, for sign-in throttling   |
//! | `error`      | [`Error`] for passwords; tokens have their own [`TokenError`]        |
//!
//! ```
//! use spaces_auth::{Claims, TokenKey, hash_password, new_session_id, verify_password};
//!
//! let mut rng = rand::rng();
//! let phc = hash_password("correct horse battery staple", &mut rng)?;
//! assert!(verify_password(&phc, "correct horse battery staple")?);
//!
//! let key = TokenKey::generate(&mut rng);
//! let now_s = 1_700_000_000;
//! let claims = Claims {
//!     iss: "spaces.example".into(),
//!     sub: "u_alice".into(),
//!     sid: new_session_id(&mut rng),
//!     iat: now_s,
//!     exp: now_s + 900,
//!     adm: false,
//! };
//! let token = key.issue(&claims);
//! assert_eq!(key.verify(&token, now_s, "spaces.example"), Ok(claims));
//! # Ok::<(), spaces_auth::Error>(())
//! ```
//!
//! What this crate does not know: users, sessions, storage, HTTP or time.
//! The node stores the hashes and decides what a live session is; this crate
//! only mints secrets and checks them.

mod device;
mod error;
mod password;
mod refresh;
mod token;

#[cfg(test)]
mod test_rng;

pub use device::{DEVICE_ID_LEN, DeviceId, DeviceKey, new_device_id};
pub use error::{Error, PolicyViolation};
pub use password::{check_password_policy, hash_password, verify_password};
pub use refresh::{
    NewRefreshToken, hash_refresh_token, hashes_equal, new_invite_token, new_refresh_token,
    new_session_id,
};
pub use token::{Claims, TokenError, TokenKey, TokenVerifier};
