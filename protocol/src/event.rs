//! Signed events: the envelope, its encoding, signing and verification.
//!
//! Wire form (docs/spec/encoding.md):
//!
//! ```text
//! version (1 byte = 0x01) ‖ body (postcard of EventBody) ‖ signature (64 bytes)
//! ```
//!
//! The body starts with the origin node's 32-byte public key, so a decoder
//! can check the signature before it interprets any other byte: *sign bytes,
//! not objects*. The event id is BLAKE3 (derive-key mode, context
//! [`ID_CONTEXT`]) of everything before the signature; the signature is
//! ed25519 over [`SIGN_CONTEXT`] ‖ id. Decoding then re-encodes the body and
//! requires the same bytes, so an event has exactly one encoding and one id.

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::content::{Class, Content, Create, HistoryVisibility, JoinRule, RoomKind};
use crate::ids::{EventId, NodeId, RoomId, UserId, validate_localpart};
use crate::keys::NodeKey;
use crate::limits::{MAX_EVENT_BYTES, MAX_PARENTS};

/// The envelope version this crate writes and reads.
pub const VERSION: u8 = 1;
/// BLAKE3 derive-key context for event ids.
pub const ID_CONTEXT: &str = "spaces 2026-11 event id v1";
/// Prefix of the signed message, so a signature over an event can never be
/// replayed as a signature over anything else the node key signs.
pub const SIGN_CONTEXT: &[u8; 16] = b"spaces/event/v1\n";

const SIGNATURE_LEN: usize = 64;
/// version + origin key + signature: the shortest possible frame.
const MIN_LEN: usize = 1 + 32 + SIGNATURE_LEN;

/// What an event says, before it is signed. Field order is wire order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// The node that signed the event and is home to its sender. First, so
    /// the key is at a fixed offset.
    pub origin: NodeId,
    /// `None` only for a create event, whose own id names the room.
    pub room: Option<RoomId>,
    /// The sender's localpart on `origin`.
    pub sender: String,
    /// The room's heads as the author saw them: sorted, distinct.
    pub parents: Vec<EventId>,
    /// 0 for create, else 1 + the greatest depth among the parents.
    pub depth: u64,
    /// The author's clock, unix milliseconds. Informational: nothing orders
    /// or authorizes by it except through [`crate::room`]'s effective time.
    pub origin_ts: u64,
    pub content: Content,
}

/// Why an event is refused. Each has a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("event is {0} bytes, more than the {MAX_EVENT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("event is truncated")]
    Truncated,
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("origin is not a valid ed25519 public key")]
    BadKey,
    #[error("signature does not verify against the origin key")]
    BadSignature,
    #[error("body does not decode: {0}")]
    Malformed(String),
    #[error("body is not in canonical encoding")]
    NonCanonical,
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    #[error("malformed event: {0}")]
    Shape(&'static str),
    #[error("event belongs to another room")]
    WrongRoom,
    #[error("depth does not follow from the parents")]
    BadDepth,
    #[error("event refers to {0}, which is not among its ancestors")]
    UnknownReference(EventId),
    #[error("not authorized: {0}")]
    Unauthorized(#[from] crate::auth::AuthError),
}

impl Rejection {
    /// Stable code for APIs, logs and peer scoring.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge(_) => "too_large",
            Rejection::Truncated => "truncated",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::BadKey => "bad_key",
            Rejection::BadSignature => "bad_signature",
            Rejection::Malformed(_) => "malformed",
            Rejection::NonCanonical => "non_canonical",
            Rejection::Limit(_) => "limit",
            Rejection::Shape(_) => "shape",
            Rejection::WrongRoom => "wrong_room",
            Rejection::BadDepth => "bad_depth",
            Rejection::UnknownReference(_) => "unknown_reference",
            Rejection::Unauthorized(e) => e.code(),
        }
    }
}

/// A verified event: its signature checked, its body decoded and in shape.
/// Cheap to clone. The only ways to get one are [`Event::decode`] and
/// [`EventBody::sign`].
#[derive(Clone, Debug)]
pub struct Event(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    id: EventId,
    room_id: RoomId,
    sender: UserId,
    body: EventBody,
    bytes: Vec<u8>,
}

impl EventBody {
    /// The body of a new room's create event (room version 1): no room, no
    /// parents, depth 0. `nonce` is the caller's randomness, so one user's
    /// rooms created in the same millisecond still differ.
    pub fn create(
        origin: NodeId,
        sender: &str,
        origin_ts: u64,
        kind: RoomKind,
        join_rule: JoinRule,
        history_visibility: HistoryVisibility,
        nonce: [u8; 16],
    ) -> EventBody {
        EventBody {
            origin,
            room: None,
            sender: sender.to_owned(),
            parents: Vec::new(),
            depth: 0,
            origin_ts,
            content: Content::Create(Create {
                room_version: 1,
                kind,
                join_rule,
                history_visibility,
                nonce,
            }),
        }
    }

    /// Encodes, checks and signs. Fails if the body breaks a limit or shape
    /// rule, so a node can never sign an event its peers would refuse for
    /// its form. `key` must be the origin's.
    pub fn sign(self, key: &NodeKey) -> Result<Event, Rejection> {
        if key.node_id() != self.origin {
            return Err(Rejection::Shape("origin is not the signing node"));
        }
        let mut bytes = Vec::with_capacity(256);
        bytes.push(VERSION);
        let mut bytes =
            postcard::to_extend(&self, bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let id = event_id_of(&bytes);
        bytes.extend_from_slice(&key.sign(&signed_message(&id)));
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(Rejection::TooLarge(bytes.len()));
        }
        Event::from_parts(id, self, bytes)
    }
}

impl Event {
    /// Verifies and decodes an event received from anyone. Never panics on
    /// any input; the order of checks is the spec's (docs/spec/encoding.md).
    pub fn decode(bytes: &[u8]) -> Result<Event, Rejection> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(Rejection::TooLarge(bytes.len()));
        }
        if bytes.len() < MIN_LEN {
            return Err(Rejection::Truncated);
        }
        if bytes[0] != VERSION {
            return Err(Rejection::UnsupportedVersion(bytes[0]));
        }
        let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        let origin: [u8; 32] = signed[1..33].try_into().map_err(|_| Rejection::Truncated)?;
        let key = VerifyingKey::from_bytes(&origin).map_err(|_| Rejection::BadKey)?;
        let signature = Signature::from_slice(signature).map_err(|_| Rejection::BadSignature)?;
        let id = event_id_of(signed);
        // Strict: rejects small-order keys and non-canonical signatures, so
        // no third party can make a second valid signature for an event.
        key.verify_strict(&signed_message(&id), &signature)
            .map_err(|_| Rejection::BadSignature)?;

        let (body, rest) = postcard::take_from_bytes::<EventBody>(&signed[1..])
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Rejection::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        let reencoded =
            postcard::to_allocvec(&body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if reencoded != signed[1..] {
            return Err(Rejection::NonCanonical);
        }
        Event::from_parts(id, body, bytes.to_vec())
    }

    /// Decodes bytes this node verified before (its own store) without
    /// checking the signature again: loading a room must not cost one
    /// signature check per stored event. Never use it on bytes from a peer
    /// or a client.
    pub fn decode_trusted(bytes: &[u8]) -> Result<Event, Rejection> {
        if bytes.len() < MIN_LEN {
            return Err(Rejection::Truncated);
        }
        let signed = &bytes[..bytes.len() - SIGNATURE_LEN];
        let body: EventBody = postcard::from_bytes(signed.get(1..).ok_or(Rejection::Truncated)?)
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        Event::from_parts(event_id_of(signed), body, bytes.to_vec())
    }

    /// [`Event::decode_trusted`], keeping only the [`Event::skeleton`]: for
    /// a replica loaded from its own store.
    pub fn decode_skeleton(bytes: &[u8]) -> Result<Event, Rejection> {
        Ok(Event::decode_trusted(bytes)?.skeleton())
    }

    /// [`Event::decode_skeleton`] of bytes stored beside their id (the
    /// node's own log): the id is taken, not recomputed, so reading a stored
    /// event costs no hash of its bytes, whatever its size. `id` must be
    /// the one computed when the event was verified.
    pub fn decode_skeleton_with_id(bytes: &[u8], id: EventId) -> Result<Event, Rejection> {
        if bytes.len() < MIN_LEN {
            return Err(Rejection::Truncated);
        }
        let signed = &bytes[..bytes.len() - SIGNATURE_LEN];
        let body: EventBody = postcard::from_bytes(signed.get(1..).ok_or(Rejection::Truncated)?)
            .map_err(|e| Rejection::Malformed(e.to_string()))?;
        let body = EventBody {
            content: body.content.skeleton(),
            ..body
        };
        Event::from_parts(id, body, Vec::new())
    }

    /// The event as a replica keeps it ([`Content::skeleton`], no signed
    /// bytes): its id, room, sender, parents, depth and clock are unchanged,
    /// so admission, resolution and the order see no difference, but its
    /// text and files are not held. Only for a holder whose store keeps the
    /// whole event; [`Event::bytes`] of the copy is empty.
    pub fn skeleton(&self) -> Event {
        Event(Arc::new(Inner {
            id: self.0.id,
            room_id: self.0.room_id,
            sender: self.0.sender.clone(),
            body: EventBody {
                origin: self.0.body.origin,
                room: self.0.body.room,
                sender: self.0.body.sender.clone(),
                parents: self.0.body.parents.clone(),
                depth: self.0.body.depth,
                origin_ts: self.0.body.origin_ts,
                content: self.0.body.content.skeleton(),
            },
            bytes: Vec::new(),
        }))
    }

    /// A skeleton a replica kept as a record ([`crate::room`]), rebuilt
    /// from its parts: no checks, no signed bytes. Only for parts taken from
    /// an event that was verified and in shape.
    pub(crate) fn kept(id: EventId, room_id: RoomId, sender: UserId, body: EventBody) -> Event {
        Event(Arc::new(Inner {
            id,
            room_id,
            sender,
            body,
            bytes: Vec::new(),
        }))
    }

    fn from_parts(id: EventId, body: EventBody, bytes: Vec<u8>) -> Result<Event, Rejection> {
        check_shape(&body)?;
        let sender = UserId::new(&body.sender, body.origin)
            .map_err(|_| Rejection::Shape("sender localpart"))?;
        let room_id = body.room.unwrap_or(RoomId(id.0));
        Ok(Event(Arc::new(Inner {
            id,
            room_id,
            sender,
            body,
            bytes,
        })))
    }

    pub fn id(&self) -> EventId {
        self.0.id
    }
    pub fn room_id(&self) -> RoomId {
        self.0.room_id
    }
    pub fn sender(&self) -> &UserId {
        &self.0.sender
    }
    pub fn origin(&self) -> NodeId {
        self.0.body.origin
    }
    pub fn parents(&self) -> &[EventId] {
        &self.0.body.parents
    }
    pub fn depth(&self) -> u64 {
        self.0.body.depth
    }
    pub fn origin_ts(&self) -> u64 {
        self.0.body.origin_ts
    }
    pub fn content(&self) -> &Content {
        &self.0.body.content
    }
    pub fn body(&self) -> &EventBody {
        &self.0.body
    }
    /// The exact bytes that were signed and verified: store and forward these.
    /// Empty for a copy made by [`Event::skeleton`].
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }
    pub fn class(&self) -> Class {
        self.content().class_for(self.sender())
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Event {}

fn event_id_of(signed: &[u8]) -> EventId {
    EventId(
        *blake3::Hasher::new_derive_key(ID_CONTEXT)
            .update(signed)
            .finalize()
            .as_bytes(),
    )
}

fn signed_message(id: &EventId) -> [u8; 48] {
    let mut message = [0u8; 48];
    message[..16].copy_from_slice(SIGN_CONTEXT);
    message[16..].copy_from_slice(&id.0);
    message
}

/// Rules on the envelope that need no room state.
fn check_shape(body: &EventBody) -> Result<(), Rejection> {
    validate_localpart(&body.sender).map_err(|_| Rejection::Shape("sender localpart"))?;
    body.content.check_limits().map_err(Rejection::Limit)?;
    if body.parents.len() > MAX_PARENTS {
        return Err(Rejection::Limit("too many parents"));
    }
    if !body.parents.windows(2).all(|w| w[0] < w[1]) {
        return Err(Rejection::Shape("parents must be sorted and distinct"));
    }
    match (&body.content, &body.room) {
        (Content::Create(_), None) if body.parents.is_empty() && body.depth == 0 => Ok(()),
        (Content::Create(_), _) => Err(Rejection::Shape(
            "create has no room, no parents and depth 0",
        )),
        (_, None) => Err(Rejection::Shape("event names no room")),
        (_, Some(_)) if body.parents.is_empty() => Err(Rejection::Shape("event has no parents")),
        (_, Some(_)) if body.depth == 0 => Err(Rejection::BadDepth),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{HistoryVisibility, JoinRule, RoomKind};

    #[test]
    fn constants_match_the_spec() {
        // docs/spec/encoding.md: 97-byte minimum, 48-byte signed message.
        assert_eq!(MIN_LEN, 97);
        assert_eq!(SIGN_CONTEXT.len(), 16);
        let id = EventId([0xee; 32]);
        let message = signed_message(&id);
        assert_eq!(&message[..16], b"spaces/event/v1\n");
        assert_eq!(&message[16..], &[0xee; 32]);
        // derive-key mode, not a plain or keyed hash.
        assert_ne!(event_id_of(b"x").0, *blake3::hash(b"x").as_bytes());
        assert_eq!(event_id_of(b"x").0, blake3::derive_key(ID_CONTEXT, b"x"));
    }

    #[test]
    fn an_event_carries_its_room_and_exact_bytes() {
        let key = NodeKey::from_seed([3; 32]);
        let body = EventBody::create(
            key.node_id(),
            "owner",
            5,
            RoomKind::Direct,
            JoinRule::Invite,
            HistoryVisibility::Joined,
            [9; 16],
        );
        let event = body.clone().sign(&key).unwrap();
        assert_eq!(
            event.room_id().0,
            event.id().0,
            "a create event names its own room"
        );
        assert_eq!(event.bytes()[0], VERSION);
        assert_eq!(&event.bytes()[1..33], &key.node_id().0);
        assert_eq!(event.body(), &body);
        assert_eq!(event.class(), Class::Create);
        // Clones share the bytes; equality is by id.
        let clone = event.clone();
        assert!(Arc::ptr_eq(&clone.0, &event.0));
        assert_eq!(Event::decode(event.bytes()).unwrap(), event);
        // The store path skips the signature but not the shape.
        let mut tampered = event.bytes().to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            Event::decode_trusted(&tampered).unwrap().id(),
            event.id(),
            "the id does not cover the signature"
        );
        assert_eq!(
            Event::decode(&tampered).unwrap_err(),
            Rejection::BadSignature
        );
        // A skeleton is the same event to admission and resolution.
        for resident in [
            event.skeleton(),
            Event::decode_skeleton(event.bytes()).unwrap(),
            Event::decode_skeleton_with_id(event.bytes(), event.id()).unwrap(),
        ] {
            assert!(resident.bytes().is_empty());
            assert_eq!(resident, event);
            assert_eq!(resident.content(), &event.content().skeleton());
            assert_eq!(resident.parents(), event.parents());
            assert_eq!(
                (resident.depth(), resident.origin_ts(), resident.origin()),
                (event.depth(), event.origin_ts(), event.origin())
            );
            assert_eq!(
                (resident.room_id(), resident.sender(), resident.class()),
                (event.room_id(), event.sender(), event.class())
            );
        }
    }
}
