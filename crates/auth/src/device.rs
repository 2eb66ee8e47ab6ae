//! Device tokens: a client's proof that it signed in to an account before.
//!
//! A node hands one out at every successful sign-in and the client sends it
//! back with later ones. It grants no access by itself — the password is
//! still checked — it only tells the node's sign-in throttling that this
//! attempt comes from a device the account's owner used, so that an attacker
//! guessing the password elsewhere cannot lock the owner out.
//!
//! Format: `d1.<payload>.<mac>`, both base64url without padding. The payload
//! is the issue time (unix seconds, 8 bytes big-endian) and a random 16-byte
//! device id; the MAC is HMAC-SHA256 over a domain label, the account's
//! username and the payload, under a key derived from the node's token
//! secret (`key.rs`). Access tokens are opaque (`a1.`, see `access.rs`), so
//! neither can pass for the other. Stateless: the node stores nothing per
//! device, and a token stops working when it expires or the token key changes.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use rand::CryptoRng;
use sha2::Sha256;

use crate::TokenKey;

type HmacSha256 = Hmac<Sha256>;

/// 128 bits: device ids only need to be unique, never guessed.
pub const DEVICE_ID_LEN: usize = 16;
/// A device id: random, chosen by the node at the device's first sign-in.
pub type DeviceId = [u8; DEVICE_ID_LEN];

const PREFIX: &str = "d1.";
const PAYLOAD_LEN: usize = 8 + DEVICE_ID_LEN;
/// What the MAC covers first, so a MAC made under this key for anything
/// else cannot pass for a device token's.
const LABEL: &[u8] = b"spaces device token v1\0";
/// Our tokens are 3 + 32 + 1 + 43 = 79 characters; anything longer is refused
/// before decoding.
const MAX_LEN: usize = 80;
/// Issue times at most this far ahead of `now` are accepted (clock skew).
const LEEWAY_S: u64 = 60;

/// The key that signs device tokens; derived from a [`TokenKey`].
#[derive(Clone)]
pub struct DeviceKey([u8; 32]);

impl core::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl TokenKey {
    /// The key for device tokens: HMAC of a fixed label under this key, so it
    /// differs from the node's token secret but needs no secret of its own.
    pub fn device_key(&self) -> DeviceKey {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.to_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"spaces device token key v1");
        DeviceKey(mac.finalize().into_bytes().into())
    }
}

/// A fresh device id.
pub fn new_device_id(rng: &mut (impl CryptoRng + ?Sized)) -> DeviceId {
    let mut id = [0u8; DEVICE_ID_LEN];
    rng.fill_bytes(&mut id);
    id
}

impl DeviceKey {
    /// A token saying that `device_id` signed in to `username` at `now_s`.
    /// `username` must be in the form the node compares (lowercased).
    pub fn issue(&self, username: &str, device_id: &DeviceId, now_s: u64) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..8].copy_from_slice(&now_s.to_be_bytes());
        payload[8..].copy_from_slice(device_id);
        let mut token = String::with_capacity(MAX_LEN);
        token.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(self.mac(username, &payload), &mut token);
        token
    }

    /// The device id of `token` if this key issued it for `username`, at most
    /// `max_age_s` seconds before `now_s` (and not more than a minute after).
    /// Anything else, malformed input included, is `None`.
    pub fn verify(
        &self,
        token: &str,
        username: &str,
        now_s: u64,
        max_age_s: u64,
    ) -> Option<DeviceId> {
        if token.len() > MAX_LEN {
            return None;
        }
        let (payload_b64, mac_b64) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let payload: [u8; PAYLOAD_LEN] =
            URL_SAFE_NO_PAD.decode(payload_b64).ok()?.try_into().ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac_b64).ok()?;
        // Constant time, and fails on a MAC of the wrong length.
        self.hmac(username, &payload).verify_slice(&mac).ok()?;
        let issued_s = u64::from_be_bytes(payload[..8].try_into().ok()?);
        if issued_s > now_s.saturating_add(LEEWAY_S) || now_s.saturating_sub(issued_s) > max_age_s {
            return None;
        }
        payload[8..].try_into().ok()
    }

    fn hmac(&self, username: &str, payload: &[u8; PAYLOAD_LEN]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(LABEL);
        // Length-prefixed, so no (username, payload) pair reads as another.
        mac.update(&(username.len() as u64).to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(payload);
        mac
    }

    fn mac(&self, username: &str, payload: &[u8; PAYLOAD_LEN]) -> [u8; 32] {
        self.hmac(username, payload).finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::seeded;

    const DAY: u64 = 86_400;

    fn key(n: u8) -> DeviceKey {
        TokenKey::from_bytes([n; 32]).device_key()
    }

    #[test]
    fn round_trip_and_shape() {
        let device_id = new_device_id(&mut seeded(1));
        let token = key(1).issue("alice", &device_id, 1_000);
        assert!(token.starts_with("d1."), "{token}");
        assert_eq!(token.len(), 79);
        assert_eq!(key(1).verify(&token, "alice", 1_000, DAY), Some(device_id));
    }

    /// Each check fails on its own: key, username, age, clock, any changed byte.
    #[test]
    fn refusals() {
        let device_id = [7; DEVICE_ID_LEN];
        let token = key(1).issue("alice", &device_id, 10 * DAY);
        assert_eq!(key(2).verify(&token, "alice", 10 * DAY, DAY), None);
        assert_eq!(key(1).verify(&token, "alicf", 10 * DAY, DAY), None);
        assert_eq!(key(1).verify(&token, "Alice", 10 * DAY, DAY), None);
        assert_eq!(key(1).verify(&token, "alice", 11 * DAY + 1, DAY), None);
        assert!(key(1).verify(&token, "alice", 11 * DAY, DAY).is_some());
        assert_eq!(key(1).verify(&token, "alice", 10 * DAY - 61, DAY), None);
        assert!(key(1).verify(&token, "alice", 10 * DAY - 60, DAY).is_some());
        for i in 3..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                key(1).verify(&tampered, "alice", 10 * DAY, DAY),
                None,
                "byte {i}"
            );
        }
    }

    #[test]
    fn malformed_input_is_none() {
        let k = key(1);
        for junk in [
            "",
            "d1.",
            "d1..",
            "d1.AAAA.AAAA",
            "d2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA",
            &"d1.".repeat(100),
            "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
        ] {
            assert_eq!(k.verify(junk, "alice", 0, DAY), None, "{junk:?}");
        }
    }

    /// A device token is not an access token and the reverse: the formats
    /// differ, and the device key is not the node's token secret.
    #[test]
    fn the_device_key_is_not_the_token_key() {
        let token_key = TokenKey::from_bytes([1; 32]);
        assert_ne!(token_key.device_key().0, token_key.to_bytes());
        let access = crate::new_access_token("AAECAwQFBgcICQoLDA0ODw", &mut seeded(5)).token;
        assert_eq!(
            token_key.device_key().verify(&access, "alice", 0, DAY),
            None
        );
        let device = token_key.device_key().issue("alice", &[1; 16], 0);
        assert!(crate::parse_access_token(&device).is_none());
    }
}
