//! PKCE (RFC 7636), `S256` only.
//!
//! `plain` sends the verifier itself as the challenge, so anyone who sees
//! the authorization request can redeem the code: refused, and so is a
//! request without a method (RFC 7636 §4.3 makes that `plain`). The
//! challenge is checked to be what `S256` gives (43 base64url characters),
//! and the verifier to be 43–128 unreserved characters (§4.1), before any
//! hashing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Why an authorization request's PKCE parameters were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE with S256)")]
    MissingChallenge,
    #[error("code_challenge_method must be S256; plain and a missing method are refused")]
    MethodNotS256,
    #[error("code_challenge must be the base64url SHA-256 of the verifier: 43 characters")]
    BadChallenge,
}

/// Checks an authorization request's `code_challenge` and
/// `code_challenge_method`; answers the challenge to keep with the code.
pub fn check_challenge<'a>(
    challenge: Option<&'a str>,
    method: Option<&str>,
) -> Result<&'a str, PkceError> {
    let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
    if method != Some("S256") {
        return Err(PkceError::MethodNotS256);
    }
    let decodes = URL_SAFE_NO_PAD
        .decode(challenge)
        .is_ok_and(|bytes| bytes.len() == 32);
    if challenge.len() != 43 || !decodes {
        return Err(PkceError::BadChallenge);
    }
    Ok(challenge)
}

/// Whether `verifier` is well-formed and its `S256` transform is
/// `challenge` (compared in constant time).
pub fn verify_verifier(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (a, b) = (computed.as_bytes(), challenge.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(
            check_challenge(Some(CHALLENGE), Some("S256")),
            Ok(CHALLENGE)
        );
        assert!(verify_verifier(VERIFIER, CHALLENGE));
        assert!(!verify_verifier(VERIFIER, &CHALLENGE.replace('E', "F")));
        let mut other = VERIFIER.to_owned();
        other.push('x');
        assert!(!verify_verifier(&other, CHALLENGE));
    }

    #[test]
    fn refusals() {
        let cases = [
            (None, Some("S256"), PkceError::MissingChallenge),
            (Some(CHALLENGE), None, PkceError::MethodNotS256),
            (Some(CHALLENGE), Some("plain"), PkceError::MethodNotS256),
            (Some(CHALLENGE), Some("s256"), PkceError::MethodNotS256),
            (Some("short"), Some("S256"), PkceError::BadChallenge),
            (
                Some(&CHALLENGE[..42]),
                Some("S256"),
                PkceError::BadChallenge,
            ),
            (
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
                Some("S256"),
                PkceError::BadChallenge,
            ),
        ];
        for (challenge, method, error) in cases {
            assert_eq!(
                check_challenge(challenge, method),
                Err(error),
                "{challenge:?} {method:?}"
            );
        }
        // The plain transform (verifier = challenge) never verifies.
        assert!(!verify_verifier(CHALLENGE, CHALLENGE));
        // Malformed verifiers: too short, too long, outside the alphabet.
        assert!(!verify_verifier("abc", CHALLENGE));
        assert!(!verify_verifier(&"a".repeat(129), CHALLENGE));
        assert!(!verify_verifier(
            &format!("{}+", &VERIFIER[..42]),
            CHALLENGE
        ));
    }
}
