//! Opaque secrets: refresh tokens, session ids and invite tokens.
//!
//! A refresh token is 256 random bits, shown to the client once. The server
//! keeps only its SHA-256, so a leaked store yields no usable token. A fast,
//! unsalted hash is right here, unlike for passwords: the input already has
//! 256 bits of entropy, so there is nothing to guess, and a deterministic hash
//! lets the store look a presented token up by its hash.
//!
//! All three are unpadded base64url, safe in URLs, headers and JSON as is.

use core::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::digest::CtOutput;
use rand::CryptoRng;
use sha2::{Digest, Sha256};

/// 256 bits: beyond guessing for the life of any deployment.
const REFRESH_TOKEN_LEN: usize = 32;
/// 128 bits: session ids are not secret (they are readable in access and refresh tokens)
/// but must never collide, and 2^64 sessions are needed before a collision is likely.
const SESSION_ID_LEN: usize = 16;
/// 144 bits: invites are bearer secrets pasted by hand; 18 bytes is a multiple
/// of 3, so they encode to exactly 24 characters with no partial group.
const INVITE_TOKEN_LEN: usize = 18;

/// A refresh token as minted: `token` goes to the client, `hash` to the store.
/// `Debug` shows neither.
pub struct NewRefreshToken {
    /// The secret, base64url of 32 random bytes. Never stored or logged.
    pub token: String,
    /// SHA-256 of `token`, as [`hash_refresh_token`] computes it.
    pub hash: [u8; 32],
}

impl fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRefreshToken").finish_non_exhaustive()
    }
}

/// Mints a refresh token and the hash to store for it.
pub fn new_refresh_token(rng: &mut (impl CryptoRng + ?Sized)) -> NewRefreshToken {
    let token = random_base64url::<REFRESH_TOKEN_LEN>(rng);
    let hash = hash_refresh_token(&token);
    NewRefreshToken { token, hash }
}

/// SHA-256 of the token string as presented (its base64url text, not the raw bytes).
pub fn hash_refresh_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh session id: 16 random bytes, base64url (22 characters).
pub fn new_session_id(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    random_base64url::<SESSION_ID_LEN>(rng)
}

/// A fresh invite token: 18 random bytes, base64url (24 characters).
pub fn new_invite_token(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    random_base64url::<INVITE_TOKEN_LEN>(rng)
}

/// Whether two hashes are equal, in time independent of where they differ.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // `CtOutput` compares with RustCrypto's constant-time `ctutils::CtEq`.
    CtOutput::<Sha256>::new((*a).into()) == CtOutput::<Sha256>::new((*b).into())
}

fn random_base64url<const N: usize>(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::test_rng::{COUNTING, ReplayRng, seeded};

    #[test]
    fn refresh_token_known_vector() {
        // Python: t = urlsafe_b64encode(bytes(range(32))).rstrip(b"=");
        // sha256(t).digest().
        let minted = new_refresh_token(&mut ReplayRng(&COUNTING));
        assert_eq!(minted.token, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let expected = [
            0xea, 0x86, 0x6a, 0x75, 0x7e, 0x4c, 0x38, 0xba, 0xbf, 0xa8, 0x12, 0x7c, 0xbe, 0x9a,
            0x40, 0x9d, 0x3e, 0x1f, 0x93, 0xa0, 0x0f, 0xf1, 0x48, 0x8f, 0xf7, 0x35, 0xfc, 0xf9,
            0x17, 0xaf, 0xff, 0xd0,
        ];
        assert_eq!(minted.hash, expected);
        assert_eq!(hash_refresh_token(&minted.token), expected);
    }

    #[test]
    fn refresh_token_hash_is_stable_and_matches() {
        let mut rng = seeded(11);
        let minted = new_refresh_token(&mut rng);
        assert_eq!(minted.token.len(), 43);
        assert_eq!(hash_refresh_token(&minted.token), minted.hash);
        assert!(hashes_equal(
            &hash_refresh_token(&minted.token),
            &minted.hash
        ));
        let other = new_refresh_token(&mut rng);
        assert_ne!(other.token, minted.token);
        assert!(!hashes_equal(&other.hash, &minted.hash));
    }

    #[test]
    fn debug_hides_refresh_token() {
        let minted = new_refresh_token(&mut seeded(12));
        let debug = format!("{minted:?}");
        assert!(!debug.contains(&minted.token), "{debug}");
        assert_eq!(debug, "NewRefreshToken { .. }");
    }

    #[test]
    fn hashes_equal_compares_every_byte() {
        let a = [7u8; 32];
        assert!(hashes_equal(&a, &a));
        for i in [0, 15, 31] {
            let mut b = a;
            b[i] ^= 1;
            assert!(!hashes_equal(&a, &b), "byte {i}");
        }
    }

    #[test]
    fn ids_have_their_lengths_and_alphabet() {
        assert_eq!(
            new_session_id(&mut ReplayRng(&COUNTING)),
            "AAECAwQFBgcICQoLDA0ODw"
        );
        assert_eq!(
            new_invite_token(&mut ReplayRng(&COUNTING)),
            "AAECAwQFBgcICQoLDA0ODxAR"
        );
        let mut rng = seeded(13);
        for _ in 0..100 {
            let session_id = new_session_id(&mut rng);
            let invite = new_invite_token(&mut rng);
            assert_eq!((session_id.len(), invite.len()), (22, 24));
            for id in [session_id, invite] {
                assert!(
                    id.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{id}"
                );
            }
        }
    }

    #[test]
    fn session_ids_are_unique_across_draws() {
        let mut rng = seeded(14);
        let n_draws = 10_000;
        let session_ids: HashSet<String> = (0..n_draws).map(|_| new_session_id(&mut rng)).collect();
        assert_eq!(session_ids.len(), n_draws);
        let invites: HashSet<String> = (0..n_draws).map(|_| new_invite_token(&mut rng)).collect();
        assert_eq!(invites.len(), n_draws);
    }
}
