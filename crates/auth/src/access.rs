//! Access tokens: opaque bearer secrets, `a1.<session id>.<secret>`.
//!
//! Every request reads its session anyway (the store caches sessions by
//! id), so a signed, self-describing token would buy nothing stateless. An
//! access token only names its session and carries 256 random bits; the
//! session record keeps the token's hash and expiry, never the token.
//! Checking one is a parse, one hash and a constant-time comparison with
//! the few hashes the session holds, and it dies with its session.
//!
//! The prefix tells an access token from a refresh token (`<session
//! id>.<secret>`, see `refresh`) and a device token (`d1.`), and lets
//! secret scanners recognize a leaked one. As with refresh tokens, a fast
//! unsalted hash is right: the secret has 256 bits, nothing to guess. The
//! hash is SHA-256 of the prefix and the secret, without the session id:
//! 46 bytes, one SHA-256 block instead of two, on every request. The
//! session id needs no binding, since a token is only ever compared with
//! the hashes of the session it names; the prefix keeps the hash apart
//! from a refresh token's.

use core::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::CryptoRng;
use sha2::{Digest, Sha256};

/// What every access token starts with; the digit is the format's version.
pub const ACCESS_TOKEN_PREFIX: &str = "a1.";
/// 256 bits: beyond guessing for the life of any deployment.
const SECRET_LEN: usize = 32;
/// base64url of 32 bytes, unpadded.
const SECRET_CHARS: usize = 43;
/// base64url of a 16-byte session id (`refresh::new_session_id`), unpadded.
const SESSION_ID_CHARS: usize = 22;
/// Every access token is exactly this long: 3 + 22 + 1 + 43.
pub const ACCESS_TOKEN_LEN: usize = ACCESS_TOKEN_PREFIX.len() + SESSION_ID_CHARS + 1 + SECRET_CHARS;

/// An access token as minted: `token` goes to the client, `hash` to the
/// session record. `Debug` shows neither.
pub struct NewAccessToken {
    /// `a1.<session id>.<secret>`. Never stored or logged.
    pub token: String,
    /// What the session keeps: see [`hash_access_secret`].
    pub hash: [u8; 32],
}

impl fmt::Debug for NewAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccessToken").finish_non_exhaustive()
    }
}

/// A well-formed access token as presented: the session it names and its
/// hash, to compare with the hashes that session keeps. `Debug` hides the hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedAccessToken<'a> {
    pub session_id: &'a str,
    pub hash: [u8; 32],
}

impl fmt::Debug for PresentedAccessToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedAccessToken")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Mints an access token for session `session_id` (one made by
/// `new_session_id`) and the hash to keep for it.
pub fn new_access_token(session_id: &str, rng: &mut (impl CryptoRng + ?Sized)) -> NewAccessToken {
    let mut secret = [0u8; SECRET_LEN];
    rng.fill_bytes(&mut secret);
    let mut token = String::with_capacity(ACCESS_TOKEN_LEN);
    token.push_str(ACCESS_TOKEN_PREFIX);
    token.push_str(session_id);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(secret, &mut token);
    let hash = hash_access_secret(&token[token.len() - SECRET_CHARS..]);
    NewAccessToken { token, hash }
}

/// SHA-256 of `a1.` and a token's secret (its base64url text).
fn hash_access_secret(secret: &str) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(ACCESS_TOKEN_PREFIX.as_bytes());
    sha.update(secret.as_bytes());
    sha.finalize().into()
}

/// Reads a presented access token: `None` unless it is exactly
/// `a1.<22 base64url characters>.<43 base64url characters>`, checked
/// before hashing, so junk costs nothing and never reaches the store.
pub fn parse_access_token(token: &str) -> Option<PresentedAccessToken<'_>> {
    if token.len() != ACCESS_TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(ACCESS_TOKEN_PREFIX)?;
    let (session_id, secret) = rest.split_at_checked(SESSION_ID_CHARS)?;
    let secret = secret.strip_prefix('.')?;
    let base64url = |text: &str| {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !base64url(session_id) || !base64url(secret) {
        return None;
    }
    Some(PresentedAccessToken {
        session_id,
        hash: hash_access_secret(secret),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::new_session_id;
    use crate::test_rng::{COUNTING, ReplayRng, seeded};

    #[test]
    fn known_vector() {
        // Python: s = urlsafe_b64encode(bytes(range(32))).rstrip(b"=");
        // token = b"a1." + session_id + b"." + s; sha256(b"a1." + s).digest().
        let session_id = new_session_id(&mut ReplayRng(&COUNTING));
        let minted = new_access_token(&session_id, &mut ReplayRng(&COUNTING));
        assert_eq!(
            minted.token,
            "a1.AAECAwQFBgcICQoLDA0ODw.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
        let expected = [
            0x98, 0x52, 0x31, 0x6a, 0xc9, 0xa7, 0x65, 0x5b, 0x2a, 0x92, 0x69, 0xdf, 0x8a, 0x40,
            0xd3, 0x3a, 0x6c, 0x2f, 0x36, 0x79, 0xf2, 0x42, 0x01, 0x1e, 0x27, 0x8f, 0x0a, 0x13,
            0xe5, 0x9d, 0x70, 0x3e,
        ];
        assert_eq!(minted.hash, expected);
        assert_eq!(
            parse_access_token(&minted.token),
            Some(PresentedAccessToken {
                session_id: &session_id,
                hash: expected
            })
        );
    }

    /// The same secret as a refresh token's hashes differently.
    #[test]
    fn the_hash_is_not_a_refresh_tokens() {
        let minted = new_access_token("AAECAwQFBgcICQoLDA0ODw", &mut ReplayRng(&COUNTING));
        let secret = &minted.token[ACCESS_TOKEN_LEN - SECRET_CHARS..];
        assert_ne!(minted.hash, crate::hash_refresh_token(secret));
    }

    #[test]
    fn minted_tokens_parse_to_their_session_and_hash() {
        let mut rng = seeded(21);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let session_id = new_session_id(&mut rng);
            let minted = new_access_token(&session_id, &mut rng);
            assert_eq!(minted.token.len(), ACCESS_TOKEN_LEN);
            let presented = parse_access_token(&minted.token).expect("parses");
            assert_eq!(presented.session_id, session_id);
            assert_eq!(presented.hash, minted.hash);
            assert!(seen.insert(minted.hash));
        }
    }

    #[test]
    fn malformed_tokens_are_none() {
        let good = "a1.AAECAwQFBgcICQoLDA0ODw.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        assert!(parse_access_token(good).is_some());
        let cases = [
            String::new(),
            "a1.".into(),
            "not a token".into(),
            "not.a.jwt".into(),
            // A JWT of the format this replaced.
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1In0.AjISjQ0UmHD-VCZdtJEiHWJsjGR-56tQ_NsgyER2DHM".into(),
            // A refresh token: `<session id>.<secret>`, no prefix.
            good[3..].into(),
            good.replacen("a1.", "a2.", 1),
            good.replacen("a1.", "A1.", 1),
            format!("{good}A"),
            good[..good.len() - 1].into(),
            // The dot moved: a 21- or 23-character session id.
            good.replacen("ODw.A", "OD.wA", 1),
            good.replacen("ODw.A", "ODwA.", 1),
            good.replacen('A', "+", 1),
            good.replacen('h', "/", 1),
            good.replacen('h', "=", 1),
            format!("{}é", &good[..ACCESS_TOKEN_LEN - 2]),
            format!("{good}{}", "A".repeat(10_000)),
        ];
        for token in &cases {
            assert_eq!(parse_access_token(token), None, "{token}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let minted = new_access_token("AAECAwQFBgcICQoLDA0ODw", &mut seeded(22));
        let debug = format!("{minted:?}");
        assert_eq!(debug, "NewAccessToken { .. }");
        let presented = parse_access_token(&minted.token).unwrap();
        let debug = format!("{presented:?}");
        assert!(!debug.contains(&minted.token[26..]), "{debug}");
        assert!(debug.contains("AAECAwQFBgcICQoLDA0ODw"), "{debug}");
    }
}
