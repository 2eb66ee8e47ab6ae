//! Errors of the password functions. Tokens have no error type: a presented
//! token either parses or is `None`, and whether it is live is the
//! session's business, decided by the node.

use core::fmt;

/// What went wrong hashing, verifying or vetting a password.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The password breaks the registration policy; the reason is fit to show the user.
    #[error("password rejected: {0}")]
    WeakPassword(PolicyViolation),
    /// The stored hash is not an argon2 PHC string with a salt and a hash.
    /// This is a fault in the store, not in the user's input.
    #[error("stored password hash is not a usable argon2 PHC string")]
    BadHash,
    /// argon2 refused to hash (out of memory, or input beyond its limits).
    #[error("password hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
}

/// Why [`check_password_policy`](crate::check_password_policy) rejected a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer than the minimum number of characters.
    TooShort {
        /// The minimum, in characters.
        min_chars: usize,
    },
    /// More than the maximum number of bytes (UTF-8).
    TooLong {
        /// The maximum, in bytes.
        max_bytes: usize,
    },
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min_chars } => write!(f, "must be at least {min_chars} characters"),
            Self::TooLong { max_bytes } => write!(f, "must be at most {max_bytes} bytes"),
        }
    }
}
