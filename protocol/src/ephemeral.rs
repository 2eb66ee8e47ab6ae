//! Ephemeral messages: typing notices, read receipts and presence. Signed by the
//! sender's home node like events, but never stored and never part of a
//! room's DAG (docs/spec/federation.md §Ephemeral messages).
//!
//! Wire form: `0x02 ‖ postcard(EphemeralBody) ‖ sig64`, the signature by
//! `origin` over `"spaces/ephemeral/v1\n" ‖ postcard(EphemeralBody)`. The
//! first byte tells them from events (`0x01`) on the same channels.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::event::Rejection;
use crate::ids::{EventId, NodeId, RoomId, UserId};
use crate::keys::NodeKey;

/// First byte of an ephemeral message.
pub const EPHEMERAL_TAG: u8 = 0x02;
/// Domain separation of ephemeral signatures from event signatures.
pub const EPHEMERAL_SIGN_CONTEXT: &[u8; 20] = b"spaces/ephemeral/v1\n";
/// Largest ephemeral message.
pub const MAX_EPHEMERAL_BYTES: usize = 512;
/// How old (by its own clock) an ephemeral message may be when taken, or
/// how far ahead: older ones are replays or stale, and dropped.
pub const EPHEMERAL_MAX_AGE_MS: u64 = 60_000;

const SIGNATURE_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EphemeralKind {
    /// The user started (`true`) or stopped typing.
    Typing(bool),
    /// The user has read the room up to this event.
    Receipt(EventId),
    /// The user's presence, announced when it changes and repeated while
    /// it is not offline (docs/spec/federation.md §Presence). It holds for
    /// `ttl_secs` unless repeated: a node that vanishes takes its users
    /// offline with it.
    Presence { state: Presence, ttl_secs: u32 },
}

/// Whether a user is around. (JSON names are lowercase; postcard encodes
/// the variant index.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// A client of theirs is connected and in use.
    Online,
    /// Connected, but their clients report them idle.
    Away,
    /// No client connected.
    Offline,
}

impl Presence {
    /// The name the HTTP API and WebSocket use.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Offline => "offline",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralBody {
    pub origin: NodeId,
    pub room: RoomId,
    /// The sender's localpart on `origin`.
    pub sender: String,
    pub ts: u64,
    pub kind: EphemeralKind,
}

/// A verified ephemeral message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ephemeral {
    pub body: EphemeralBody,
    pub sender: UserId,
}

impl EphemeralBody {
    /// The signed wire bytes.
    pub fn sign(&self, key: &NodeKey) -> Vec<u8> {
        debug_assert_eq!(self.origin, key.node_id());
        let body = postcard::to_allocvec(self).expect("in-memory encoding");
        let mut message = EPHEMERAL_SIGN_CONTEXT.to_vec();
        message.extend_from_slice(&body);
        let mut bytes = Vec::with_capacity(1 + body.len() + SIGNATURE_LEN);
        bytes.push(EPHEMERAL_TAG);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&key.sign(&message));
        bytes
    }
}

impl Ephemeral {
    /// Verifies and decodes an ephemeral message from anyone. `now_ms`
    /// bounds its age both ways.
    pub fn decode(bytes: &[u8], now_ms: u64) -> Result<Ephemeral, Rejection> {
        if bytes.len() > MAX_EPHEMERAL_BYTES {
            return Err(Rejection::TooLarge(bytes.len()));
        }
        if bytes.len() < 1 + 32 + SIGNATURE_LEN {
            return Err(Rejection::Truncated);
        }
        if bytes[0] != EPHEMERAL_TAG {
            return Err(Rejection::UnsupportedVersion(bytes[0]));
        }
        let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let body_bytes = &signed[1..];
        let origin: [u8; 32] = body_bytes[..32]
            .try_into()
            .map_err(|_| Rejection::Truncated)?;
        let key = VerifyingKey::from_bytes(&origin).map_err(|_| Rejection::BadKey)?;
        let signature = Signature::from_slice(signature).map_err(|_| Rejection::BadSignature)?;
        let mut message = EPHEMERAL_SIGN_CONTEXT.to_vec();
        message.extend_from_slice(body_bytes);
        key.verify_strict(&message, &signature)
            .map_err(|_| Rejection::BadSignature)?;
        let body: EphemeralBody =
            postcard::from_bytes(body_bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if postcard::to_allocvec(&body).ok().as_deref() != Some(body_bytes) {
            return Err(Rejection::NonCanonical);
        }
        if body.ts.saturating_add(EPHEMERAL_MAX_AGE_MS) < now_ms
            || body.ts > now_ms.saturating_add(EPHEMERAL_MAX_AGE_MS)
        {
            return Err(Rejection::Shape("ephemeral message out of date"));
        }
        let sender = UserId::new(&body.sender, body.origin)
            .map_err(|_| Rejection::Shape("sender localpart"))?;
        Ok(Ephemeral { body, sender })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typing(key: &NodeKey, ts: u64) -> Vec<u8> {
        EphemeralBody {
            origin: key.node_id(),
            room: RoomId([5; 32]),
            sender: "alice".into(),
            ts,
            kind: EphemeralKind::Typing(true),
        }
        .sign(key)
    }

    #[test]
    fn signed_messages_verify_and_tampered_or_stale_ones_do_not() {
        let key = NodeKey::from_seed([9; 32]);
        let now = 1_800_000_000_000;
        let bytes = typing(&key, now);
        let ephemeral = Ephemeral::decode(&bytes, now).unwrap();
        assert_eq!(ephemeral.sender.localpart(), "alice");
        assert_eq!(ephemeral.body.kind, EphemeralKind::Typing(true));

        let mut tampered = bytes.clone();
        let n = tampered.len();
        tampered[n - 70] ^= 1;
        assert_eq!(
            Ephemeral::decode(&tampered, now).unwrap_err().code(),
            "bad_signature"
        );
        // Someone else's key cannot speak for alice's node.
        let mut forged = typing(&NodeKey::from_seed([8; 32]), now);
        forged[1..33].copy_from_slice(&key.node_id().0);
        assert_eq!(
            Ephemeral::decode(&forged, now).unwrap_err().code(),
            "bad_signature"
        );
        let stale = typing(&key, now - EPHEMERAL_MAX_AGE_MS - 1);
        assert_eq!(Ephemeral::decode(&stale, now).unwrap_err().code(), "shape");
        // An event's envelope is not an ephemeral message.
        let mut event_tag = bytes;
        event_tag[0] = 0x01;
        assert_eq!(
            Ephemeral::decode(&event_tag, now).unwrap_err().code(),
            "unsupported_version"
        );
        assert_eq!(
            Ephemeral::decode(&[2; 10], now).unwrap_err().code(),
            "truncated"
        );
    }

    #[test]
    fn presence_round_trips_with_its_frozen_variant_index() {
        let key = NodeKey::from_seed([9; 32]);
        let now = 1_800_000_000_000;
        for (state, index) in [
            (Presence::Online, 0),
            (Presence::Away, 1),
            (Presence::Offline, 2),
        ] {
            let body = EphemeralBody {
                origin: key.node_id(),
                room: RoomId([5; 32]),
                sender: "alice".into(),
                ts: now,
                kind: EphemeralKind::Presence {
                    state,
                    ttl_secs: 180,
                },
            };
            let bytes = body.sign(&key);
            // The body ends with the kind's index (2), the state's, and the
            // time-to-live as a varint (180 = 0xb4 0x01).
            let end = bytes.len() - 64;
            assert_eq!(bytes[end - 4..end], [2, index, 0xb4, 0x01]);
            assert_eq!(Ephemeral::decode(&bytes, now).unwrap().body, body);
        }
    }
}
