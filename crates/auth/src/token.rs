//! Access tokens: JWT claims (RFC 7519) in a compact JWS (RFC 7515), HS256 only.
//!
//! The node is both the only issuer and the only verifier of these tokens, so
//! a symmetric key is enough and there is exactly one algorithm. The header's
//! `alg` must be `HS256`, checked before the signature: with no algorithm
//! dispatch there is nothing for `alg: none` or an RSA/HMAC confusion to reach.
//! `typ` must be `JWT` (explicit typing, RFC 8725 3.11), so a differently typed
//! token signed with the same key is not taken for an access token.
//!
//! Access tokens are short-lived and never stored. Replacing the [`TokenKey`]
//! invalidates every access token at once; clients then go through their
//! refresh token (see `refresh`), which does not depend on this key.

use core::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header of every token issued here.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const ALG: &str = "HS256";
const TYP: &str = "JWT";

/// Longest token accepted, checked before any decoding so that a client
/// cannot make us decode and parse megabytes. Our tokens are about 300 bytes;
/// 4 KiB is also what browsers guarantee for a cookie.
const MAX_TOKEN_LEN: usize = 4096;

/// Clock skew tolerated on `iat` and `nbf`: the node that issues a token may
/// be a different process, and its clock may run a little ahead.
const LEEWAY_S: u64 = 60;

/// SHA-256's block size: HMAC zero-pads shorter keys to it (RFC 2104).
const HMAC_BLOCK_LEN: usize = 64;

/// The HS256 key that signs and verifies access tokens. Its `Debug` output
/// never shows the key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// What an access token asserts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer: the node's public base URL or name.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// The session this token was issued under, so a revoked session can be
    /// refused before its tokens expire.
    pub sid: String,
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds; the token is refused from this second on.
    pub exp: u64,
    /// The user is a node administrator.
    #[serde(default)]
    pub adm: bool,
}

/// Why [`TokenKey::verify`] refused a token. Every variant means "401";
/// they differ for logs and for clients deciding whether to refresh.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS we understand: wrong shape, size, encoding or JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256, including `none`.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not match this key.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `iat` or `nbf` lies in the future by more than the allowed skew.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not this node.
    #[error("token from another issuer")]
    WrongIssuer,
}

/// The header fields we look at. Unknown ones (such as `kid`) are ignored;
/// duplicate fields fail to parse, so a header cannot say two things.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    /// Extensions the verifier must understand; we understand none (RFC 7515 4.1.11).
    crit: Option<serde_json::Value>,
}

/// The signed payload: our claims, plus `nbf`, which we never issue but honour.
#[derive(Deserialize)]
struct Payload {
    #[serde(flatten)]
    claims: Claims,
    nbf: Option<u64>,
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

    /// Signs `claims` into a compact JWS with header `{"alg":"HS256","typ":"JWT"}`.
    pub fn issue(&self, claims: &Claims) -> String {
        // Claims holds only strings, integers and a bool: serde_json cannot fail on it.
        let payload_json = serde_json::to_vec(claims).expect("Claims always serialises to JSON");
        let mut token = URL_SAFE_NO_PAD.encode(HEADER_JSON);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload_json, &mut token);
        let signature = hs256(&self.hmac_key(), token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }

    /// Checks `token` and returns its claims.
    ///
    /// Checks, in order: length and shape (3 base64url segments, no padding),
    /// header `alg` exactly `HS256`, no `crit`, `typ` exactly `JWT`, the
    /// signature (constant time), the claims JSON, `iss == expected_issuer`,
    /// `exp > now_s`, and `iat`/`nbf` at most 60 s after `now_s`.
    ///
    /// # Errors
    ///
    /// The first check that failed, as a [`TokenError`].
    pub fn verify(
        &self,
        token: &str,
        now_s: u64,
        expected_issuer: &str,
    ) -> Result<Claims, TokenError> {
        self.verify_payload(token, now_s, expected_issuer)
            .map(|payload| payload.claims)
    }

    fn verify_payload(
        &self,
        token: &str,
        now_s: u64,
        expected_issuer: &str,
    ) -> Result<Payload, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header_b64, payload_b64) =
            signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.contains('.') {
            return Err(TokenError::Malformed);
        }

        let header: Header = decode_json(header_b64)?;
        if header.alg != ALG {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        if header.crit.is_some() || header.typ.as_deref() != Some(TYP) {
            return Err(TokenError::Malformed);
        }

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = HmacSha256::new(&self.hmac_key().into());
        mac.update(signing_input.as_bytes());
        // Constant-time, and fails on a signature of the wrong length.
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        let payload: Payload = decode_json(payload_b64)?;
        payload.check(now_s, expected_issuer)?;
        Ok(payload)
    }

    /// The key as one HMAC block. HMAC zero-pads keys shorter than a block
    /// (RFC 2104), so this is exactly HMAC under the 32-byte key, and lets us
    /// use the infallible fixed-size constructor.
    fn hmac_key(&self) -> [u8; HMAC_BLOCK_LEN] {
        let mut block = [0u8; HMAC_BLOCK_LEN];
        block[..self.0.len()].copy_from_slice(&self.0);
        block
    }
}

impl Payload {
    /// What the token claims, checked against the clock and the issuer.
    fn check(&self, now_s: u64, expected_issuer: &str) -> Result<(), TokenError> {
        if self.claims.iss != expected_issuer {
            return Err(TokenError::WrongIssuer);
        }
        if self.claims.exp <= now_s {
            return Err(TokenError::Expired);
        }
        let latest_start = now_s.saturating_add(LEEWAY_S);
        if self.claims.iat > latest_start || self.nbf.is_some_and(|nbf| nbf > latest_start) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }
}

/// Access tokens whose signature was already checked, so that a client
/// making many requests with one token pays for the HMAC, the base64 and
/// the JSON once. A hit is the exact token string seen before, and its
/// claims are checked against the clock and the issuer again on every use;
/// only tokens that verified under its key are ever kept, so nobody without
/// a valid token can fill it. Bounded: when full it starts over.
pub struct TokenVerifier {
    key: TokenKey,
    verified: std::sync::Mutex<std::collections::HashMap<Box<str>, std::sync::Arc<Payload>>>,
    capacity: usize,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("verified", &self.lock().len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// About 1.5 MiB when full.
    pub const DEFAULT_CAPACITY: usize = 4096;

    pub fn new(key: TokenKey, capacity: usize) -> TokenVerifier {
        TokenVerifier {
            key,
            verified: Default::default(),
            capacity,
        }
    }

    /// [`TokenKey::verify`] under its key, with the signature and decoding
    /// skipped for a token verified before.
    pub fn verify(
        &self,
        token: &str,
        now_s: u64,
        expected_issuer: &str,
    ) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let seen = self.lock().get(token).cloned();
        if let Some(payload) = seen {
            payload.check(now_s, expected_issuer)?;
            return Ok(payload.claims.clone());
        }
        let payload =
            std::sync::Arc::new(self.key.verify_payload(token, now_s, expected_issuer)?);
        let claims = payload.claims.clone();
        let mut verified = self.lock();
        if verified.len() >= self.capacity {
            verified.clear();
        }
        verified.insert(token.into(), payload);
        Ok(claims)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Box<str>, std::sync::Arc<Payload>>>
    {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// HMAC-SHA256 of `message` under a key of exactly one block.
fn hs256(key: &[u8; HMAC_BLOCK_LEN], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new(key.into());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, TokenError> {
    let json = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::seeded;

    const ISSUER: &str = "spaces.example";
    const NOW: u64 = 1_700_000_000;

    /// Key, claims and token of the fixed vector below.
    const VECTOR_KEY: &[u8; 32] = b"spaces-test-key-0123456789abcdef";
    /// Produced with Python's standard library:
    /// `h = b64url(b'{"alg":"HS256","typ":"JWT"}')`,
    /// `p = b64url(json.dumps(claims, separators=(",", ":")))` with the claims of
    /// `vector_claims()` in field order, `s = b64url(hmac.new(key, h + "." + p,
    /// sha256).digest())`, where `b64url` is `urlsafe_b64encode` without `=`.
    const VECTOR_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzcGFjZXMuZXhhbXBsZSIsInN1YiI6InVfYWxpY2UiLCJzaWQiOiJzXzAwMDEiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDkwMCwiYWRtIjpmYWxzZX0.AjISjQ0UmHD-VCZdtJEiHWJsjGR-56tQ_NsgyER2DHM";

    fn vector_claims() -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "u_alice".into(),
            sid: "s_0001".into(),
            iat: NOW,
            exp: NOW + 900,
            adm: false,
        }
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with an arbitrary header and payload, correctly signed by `key`.
    fn signed(key: &TokenKey, header: &str, payload: &str) -> String {
        let signing_input = format!("{}.{}", b64(header), b64(payload));
        let signature = hs256(&key.hmac_key(), signing_input.as_bytes());
        format!("{signing_input}.{}", b64(signature))
    }

    fn vector_key() -> TokenKey {
        TokenKey::from_bytes(*VECTOR_KEY)
    }

    #[test]
    fn round_trip() {
        let key = TokenKey::generate(&mut seeded(7));
        let claims = Claims {
            adm: true,
            ..vector_claims()
        };
        let token = key.issue(&claims);
        assert_eq!(key.verify(&token, NOW, ISSUER), Ok(claims));
    }

    #[test]
    fn key_bytes_round_trip() {
        let key = TokenKey::generate(&mut seeded(8));
        assert_eq!(
            TokenKey::from_bytes(key.to_bytes()).to_bytes(),
            key.to_bytes()
        );
        assert_ne!(
            key.to_bytes(),
            TokenKey::generate(&mut seeded(9)).to_bytes()
        );
    }

    #[test]
    fn debug_hides_key() {
        let key = TokenKey::from_bytes(*VECTOR_KEY);
        assert_eq!(format!("{key:?}"), "TokenKey(..)");
    }

    #[test]
    fn issues_known_vector() {
        assert_eq!(vector_key().issue(&vector_claims()), VECTOR_TOKEN);
        assert_eq!(
            vector_key().verify(VECTOR_TOKEN, NOW, ISSUER),
            Ok(vector_claims())
        );
    }

    /// RFC 7515 appendix A.1: HS256 over the RFC's own signing input, with
    /// its 64-byte JWK key `k`. Checks the HMAC path against an external vector.
    #[test]
    fn rfc7515_a1_signature() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let key: [u8; 64] = key.try_into().unwrap();
        let signing_input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        assert_eq!(
            b64(hs256(&key, signing_input.as_bytes())),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn tampered_payload_is_bad_signature() {
        let (header, rest) = VECTOR_TOKEN.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let claims = Claims {
            adm: true,
            ..vector_claims()
        };
        let payload = b64(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{header}.{payload}.{signature}");
        assert_eq!(
            vector_key().verify(&forged, NOW, ISSUER),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn other_key_is_bad_signature() {
        let token = TokenKey::generate(&mut seeded(3)).issue(&vector_claims());
        assert_eq!(
            vector_key().verify(&token, NOW, ISSUER),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused() {
        let key = vector_key();
        let payload = serde_json::to_string(&vector_claims()).unwrap();
        let cases = [
            // The classic: no signature at all.
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&payload)),
            signed(&key, r#"{"alg":"none","typ":"JWT"}"#, &payload),
            signed(&key, r#"{"alg":"HS512","typ":"JWT"}"#, &payload),
            signed(&key, r#"{"alg":"RS256","typ":"JWT"}"#, &payload),
            signed(&key, r#"{"alg":"hs256","typ":"JWT"}"#, &payload),
        ];
        for token in cases {
            assert_eq!(
                key.verify(&token, NOW, ISSUER),
                Err(TokenError::UnsupportedAlgorithm),
                "{token}"
            );
        }
    }

    #[test]
    fn time_and_issuer() {
        let key = vector_key();
        let token = key.issue(&vector_claims());
        let exp = vector_claims().exp;
        let cases = [
            (NOW, ISSUER, Ok(())),
            (exp - 1, ISSUER, Ok(())),
            (exp, ISSUER, Err(TokenError::Expired)),
            (u64::MAX, ISSUER, Err(TokenError::Expired)),
            (NOW - 60, ISSUER, Ok(())),
            (NOW - 61, ISSUER, Err(TokenError::NotYetValid)),
            (NOW, "other.example", Err(TokenError::WrongIssuer)),
            (NOW, "", Err(TokenError::WrongIssuer)),
        ];
        for (now_s, issuer, expected) in cases {
            assert_eq!(
                key.verify(&token, now_s, issuer).map(|_| ()),
                expected,
                "now_s={now_s} issuer={issuer}"
            );
        }
    }

    #[test]
    fn a_token_verified_before_is_checked_again_against_clock_and_issuer() {
        let (key, cache) = (vector_key(), TokenVerifier::new(vector_key(), 16));
        let token = key.issue(&vector_claims());
        assert_eq!(cache.verify(&token, NOW, ISSUER), Ok(vector_claims()));
        assert_eq!(cache.len(), 1);
        let exp = vector_claims().exp;
        for (now_s, issuer, expected) in [
            (exp - 1, ISSUER, Ok(vector_claims())),
            (exp, ISSUER, Err(TokenError::Expired)),
            (NOW - 61, ISSUER, Err(TokenError::NotYetValid)),
            (NOW, "other.example", Err(TokenError::WrongIssuer)),
        ] {
            assert_eq!(
                cache.verify(&token, now_s, issuer),
                expected,
                "now_s={now_s} issuer={issuer}"
            );
        }
        // nbf is kept with the claims.
        let later = signed(
            &key,
            HEADER_JSON,
            &format!(
                r#"{{"iss":"{ISSUER}","sub":"u","sid":"s","iat":{NOW},"exp":{},"adm":false,"nbf":{}}}"#,
                NOW + 900,
                NOW + 300
            ),
        );
        assert_eq!(
            cache.verify(&later, NOW + 240, ISSUER).map(|c| c.sub),
            Ok("u".to_owned())
        );
        assert_eq!(
            cache.verify(&later, NOW, ISSUER),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn only_tokens_that_verify_are_kept_and_never_more_than_the_capacity() {
        let (key, cache) = (vector_key(), TokenVerifier::new(vector_key(), 2));
        let token = key.issue(&vector_claims());
        let mut forged = token.clone();
        forged.replace_range(token.len() - 2.., "AA");
        assert_eq!(
            cache.verify(&forged, NOW, ISSUER),
            Err(TokenError::BadSignature)
        );
        let stranger = TokenKey::generate(&mut seeded(3)).issue(&vector_claims());
        assert_eq!(
            cache.verify(&stranger, NOW, ISSUER),
            Err(TokenError::BadSignature)
        );
        assert_eq!(cache.len(), 0);
        for sid in ["a", "b", "c", "d", "e"] {
            let token = key.issue(&Claims {
                sid: sid.into(),
                ..vector_claims()
            });
            assert!(cache.verify(&token, NOW, ISSUER).is_ok());
            assert!(cache.len() <= 2);
        }
    }

    #[test]
    fn nbf_is_honoured() {
        let key = vector_key();
        let header = HEADER_JSON;
        let payload = |nbf: u64| {
            format!(
                r#"{{"iss":"{ISSUER}","sub":"u","sid":"s","iat":{NOW},"exp":{},"nbf":{nbf}}}"#,
                NOW + 900
            )
        };
        let early = signed(&key, header, &payload(NOW + 61));
        assert_eq!(
            key.verify(&early, NOW, ISSUER),
            Err(TokenError::NotYetValid)
        );
        let ok = signed(&key, header, &payload(NOW + 60));
        let claims = key.verify(&ok, NOW, ISSUER).unwrap();
        assert!(!claims.adm, "adm defaults to false when absent");
    }

    #[test]
    fn malformed_tokens_are_refused_without_panic() {
        let key = vector_key();
        let payload = serde_json::to_string(&vector_claims()).unwrap();
        let (header_b64, rest) = VECTOR_TOKEN.split_once('.').unwrap();
        let (payload_b64, signature_b64) = rest.split_once('.').unwrap();
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "not a token".into(),
            format!("{header_b64}.{payload_b64}"),
            format!("{header_b64}.{payload_b64}.{signature_b64}.{signature_b64}"),
            format!("{header_b64}.{payload_b64}.{signature_b64}."),
            format!("!!!.{payload_b64}.{signature_b64}"),
            format!("{header_b64}.{payload_b64}.{signature_b64}=="),
            format!("{header_b64}=.{payload_b64}.{signature_b64}"),
            format!("{header_b64}.{payload_b64}.sig+nature/"),
            format!("{}.{payload_b64}.{signature_b64}", "a".repeat(5000)),
            format!("{VECTOR_TOKEN}{}", "A".repeat(MAX_TOKEN_LEN)),
            // Well-formed base64, but not JSON / not our header / not our claims.
            signed(&key, "not json", &payload),
            signed(&key, "[]", &payload),
            signed(&key, r#"{"typ":"JWT"}"#, &payload),
            signed(&key, r#"{"alg":"HS256"}"#, &payload),
            signed(&key, r#"{"alg":"HS256","typ":"at+jwt"}"#, &payload),
            signed(
                &key,
                r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
                &payload,
            ),
            signed(
                &key,
                r#"{"alg":"HS256","alg":"none","typ":"JWT"}"#,
                &payload,
            ),
            signed(&key, HEADER_JSON, "not json"),
            signed(&key, HEADER_JSON, r#"{"iss":"spaces.example"}"#),
            signed(&key, HEADER_JSON, &payload.replace("1700000900", "-1")),
            signed(&key, HEADER_JSON, &payload.replace("1700000900", "1.5")),
            // Invalid UTF-8 in the header.
            format!("{}.{payload_b64}.{signature_b64}", b64([0xff, 0xfe])),
        ];
        for token in cases {
            assert_eq!(
                key.verify(&token, NOW, ISSUER),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
    }
}
