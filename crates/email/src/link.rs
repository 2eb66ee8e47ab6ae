//! Signed links in mails: address verification (expiring) and one-click
//! unsubscribe (RFC 8058, lasting as long as the address).
//!
//! Format: `<kind>.<username>.<expiry>.<mac>`: `kind` is `v1` (verify) or
//! `u1` (unsubscribe); the username base64url without padding; the expiry
//! unix seconds in decimal (`0` for an unsubscribe link, which does not
//! expire); the MAC base64url of HMAC-SHA256 over a label naming the kind,
//! then the username, the address and the expiry, each length-prefixed.
//! The address is in the MAC, not in the link: a link made for one address
//! stops working when the account's address changes, and the link does not
//! show the address to whoever reads it. The node checks a link against
//! the address it holds for the username now ([`LinkKey::check`]);
//! anything else — a changed byte, another kind's link, a stale address,
//! an expired link — is refused, and nothing is changed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longer input is refused before it is decoded: a 64-byte username makes
/// a link of about 150 characters.
const MAX_LINK_LEN: usize = 512;

/// Which link: they are not interchangeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Verify,
    Unsubscribe,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Verify => "v1",
            Kind::Unsubscribe => "u1",
        }
    }

    fn label(self) -> &'static [u8] {
        match self {
            Kind::Verify => b"spaces email verify v1\0",
            Kind::Unsubscribe => b"spaces email unsubscribe v1\0",
        }
    }
}

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match (changed, or made for another address)")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

/// A link as parsed, before its MAC is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub kind: Kind,
    /// Whom the link names; only trusted after [`LinkKey::check`].
    pub username: String,
    pub expires_s: u64,
    mac: Vec<u8>,
}

/// The key that signs links: derived from the node's token secret.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// The link key of a node whose token secret is `secret`: HMAC of a
    /// fixed label under it, so it is neither the secret nor any other key
    /// derived from it.
    pub fn derive(secret: &[u8]) -> LinkKey {
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"spaces email link key v1");
        LinkKey(mac.finalize().into_bytes().into())
    }

    /// A verification link's token for `username` and `address`, valid
    /// until `expires_s`.
    pub fn verify_token(&self, username: &str, address: &str, expires_s: u64) -> String {
        self.token(Kind::Verify, username, address, expires_s)
    }

    /// An unsubscribe link's token for `username` while their address is
    /// `address`.
    pub fn unsubscribe_token(&self, username: &str, address: &str) -> String {
        self.token(Kind::Unsubscribe, username, address, 0)
    }

    fn token(&self, kind: Kind, username: &str, address: &str, expires_s: u64) -> String {
        let mac = self.mac(kind, username, address, expires_s);
        format!(
            "{}.{}.{expires_s}.{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(username),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    fn mac(&self, kind: Kind, username: &str, address: &str, expires_s: u64) -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(kind.label());
        for part in [username.as_bytes(), address.as_bytes()] {
            // Length-prefixed, so no (username, address) pair reads as another.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&expires_s.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks `claim` against the address the node holds for its username
    /// now, at `now_s`.
    pub fn check(&self, claim: &Claim, address: &str, now_s: u64) -> Result<(), LinkError> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(claim.kind.label());
        for part in [claim.username.as_bytes(), address.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&claim.expires_s.to_be_bytes());
        // Constant time; fails on a MAC of the wrong length too.
        mac.verify_slice(&claim.mac)
            .map_err(|_| LinkError::BadSignature)?;
        if claim.kind == Kind::Verify && now_s > claim.expires_s {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

impl Claim {
    /// Reads a token of `kind`; its MAC is checked by [`LinkKey::check`].
    pub fn parse(kind: Kind, token: &str) -> Result<Claim, LinkError> {
        if token.len() > MAX_LINK_LEN {
            return Err(LinkError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(prefix), Some(user), Some(expiry), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LinkError::Malformed);
        };
        if prefix != kind.prefix()
            || expiry.is_empty()
            || !expiry.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(LinkError::Malformed);
        }
        let username = URL_SAFE_NO_PAD
            .decode(user)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|name| !name.is_empty())
            .ok_or(LinkError::Malformed)?;
        let expires_s = expiry.parse().map_err(|_| LinkError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| LinkError::Malformed)?;
        Ok(Claim {
            kind,
            username,
            expires_s,
            mac,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::derive(&[7; 32])
    }

    #[test]
    fn a_verify_link_checks_until_it_expires_and_only_for_its_address() {
        let token = key().verify_token("al", "al@example.org", 1_000);
        let claim = Claim::parse(Kind::Verify, &token).unwrap();
        assert_eq!(claim.username, "al");
        assert_eq!(key().check(&claim, "al@example.org", 999), Ok(()));
        assert_eq!(key().check(&claim, "al@example.org", 1_000), Ok(()));
        assert_eq!(
            key().check(&claim, "al@example.org", 1_001),
            Err(LinkError::Expired)
        );
        assert_eq!(
            key().check(&claim, "other@example.org", 999),
            Err(LinkError::BadSignature)
        );
        // Another node's key.
        assert_eq!(
            LinkKey::derive(&[8; 32]).check(&claim, "al@example.org", 999),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn tampered_links_are_refused() {
        let token = key().unsubscribe_token("al", "al@example.org");
        let claim = Claim::parse(Kind::Unsubscribe, &token).unwrap();
        assert_eq!(key().check(&claim, "al@example.org", u64::MAX), Ok(()));
        // A verification link is not an unsubscribe link, and back.
        assert_eq!(
            Claim::parse(Kind::Verify, &token),
            Err(LinkError::Malformed)
        );
        let verify = key().verify_token("al", "al@example.org", 0);
        assert_eq!(
            Claim::parse(Kind::Unsubscribe, &verify),
            Err(LinkError::Malformed)
        );
        // Every single-character change of the token is refused, by the
        // parser or by the MAC.
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'A', b'b', b'0', b'.', b'_'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut changed = bytes.to_vec();
                changed[i] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                let refused = Claim::parse(Kind::Unsubscribe, &changed)
                    .and_then(|claim| key().check(&claim, "al@example.org", 0));
                assert!(refused.is_err(), "{changed} accepted");
            }
        }
        // Another user's name under this user's MAC.
        let (_, rest) = token.split_once('.').unwrap();
        let (_, rest) = rest.split_once('.').unwrap();
        let forged = format!("u1.{}.{rest}", URL_SAFE_NO_PAD.encode("bo"));
        let claim = Claim::parse(Kind::Unsubscribe, &forged).unwrap();
        assert_eq!(
            key().check(&claim, "al@example.org", 0),
            Err(LinkError::BadSignature)
        );
        for bad in ["", "u1", "u1..0.", "u1.YWw.x.AA", &"u".repeat(600)] {
            assert_eq!(
                Claim::parse(Kind::Unsubscribe, bad),
                Err(LinkError::Malformed),
                "{bad}"
            );
        }
    }
}
