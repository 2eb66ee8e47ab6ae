//! The node's token secret (`token.key` in its data directory).
//!
//! Access and refresh tokens are opaque and checked against hashes in the
//! store, so they need no key. What does: device tokens, which are
//! stateless and signed under a key derived from this one
//! ([`TokenKey::device_key`]). Replacing the secret makes every device
//! token unknown; sessions are untouched.

use core::fmt;

use rand::CryptoRng;

/// A 32-byte secret. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut (impl CryptoRng + ?Sized)) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key's bytes, to store.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::seeded;

    #[test]
    fn debug_hides_the_key_and_bytes_round_trip() {
        let key = TokenKey::generate(&mut seeded(1));
        assert_eq!(format!("{key:?}"), "TokenKey(..)");
        assert_eq!(
            TokenKey::from_bytes(key.to_bytes()).to_bytes(),
            key.to_bytes()
        );
        assert_ne!(
            TokenKey::generate(&mut seeded(2)).to_bytes(),
            key.to_bytes()
        );
    }
}
