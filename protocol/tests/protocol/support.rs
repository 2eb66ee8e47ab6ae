//! The test harness: deterministic keys and users, signed events on chosen
//! parents, raw frames the crate itself would refuse to sign, a linear room
//! for table-driven auth tests, and a `Replica` that takes events in any
//! order.

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::Signer;
use spaces_protocol::content::*;
use spaces_protocol::event::{ID_CONTEXT, SIGN_CONTEXT, VERSION};
use spaces_protocol::room::{InsertError, Inserted};
use spaces_protocol::{
    AuthError, Event, EventBody, EventId, NodeKey, Permissions, Rejection, RoleId, Room, RoomId,
    UserId,
};

/// A node key from a one-byte seed: `[seed; 32]`.
pub fn node_key(seed: u8) -> NodeKey {
    NodeKey::from_seed([seed; 32])
}

/// A user on a node, able to sign events as that node.
#[derive(Clone, Debug)]
pub struct Author {
    pub key: NodeKey,
    pub localpart: String,
}

impl Author {
    pub fn new(node_seed: u8, localpart: &str) -> Author {
        Author {
            key: node_key(node_seed),
            localpart: localpart.to_owned(),
        }
    }

    pub fn user(&self) -> UserId {
        UserId::new(&self.localpart, self.key.node_id()).unwrap()
    }

    /// A create event with a nonce derived from the localpart.
    pub fn create(&self, kind: RoomKind, join_rule: JoinRule, origin_ts: u64) -> Event {
        let mut nonce = [0u8; 16];
        for (n, b) in nonce.iter_mut().zip(self.localpart.bytes()) {
            *n = b;
        }
        let create = Create {
            room_version: 1,
            kind,
            join_rule,
            history_visibility: HistoryVisibility::Shared,
            nonce,
        };
        self.create_body(create, origin_ts).sign(&self.key).unwrap()
    }

    pub fn create_body(&self, create: Create, origin_ts: u64) -> EventBody {
        EventBody {
            origin: self.key.node_id(),
            room: None,
            sender: self.localpart.clone(),
            parents: Vec::new(),
            depth: 0,
            origin_ts,
            content: Content::Create(create),
        }
    }

    /// The unsigned body of an event on `parents` (depth and order derived).
    pub fn body(
        &self,
        room_id: RoomId,
        parents: &[&Event],
        origin_ts: u64,
        content: Content,
    ) -> EventBody {
        let mut parent_ids: Vec<EventId> = parents.iter().map(|p| p.id()).collect();
        parent_ids.sort();
        parent_ids.dedup();
        EventBody {
            origin: self.key.node_id(),
            room: Some(room_id),
            sender: self.localpart.clone(),
            parents: parent_ids,
            depth: parents.iter().map(|p| p.depth()).max().unwrap_or(0) + 1,
            origin_ts,
            content,
        }
    }

    /// A signed event on `parents`.
    pub fn on(
        &self,
        room_id: RoomId,
        parents: &[&Event],
        origin_ts: u64,
        content: Content,
    ) -> Event {
        self.body(room_id, parents, origin_ts, content)
            .sign(&self.key)
            .unwrap()
    }
}

// ---- content builders ----

pub fn text(body: &str) -> Content {
    Content::Message(Message {
        body: body.to_owned(),
        ..Message::default()
    })
}

pub fn reply(body: &str, reply_to: EventId) -> Content {
    Content::Message(Message {
        body: body.to_owned(),
        reply_to: Some(reply_to),
        ..Message::default()
    })
}

pub fn in_thread(body: &str, root: EventId) -> Content {
    Content::Message(Message {
        body: body.to_owned(),
        thread: Some(root),
        ..Message::default()
    })
}

pub fn member(target: &UserId, membership: Membership) -> Content {
    Content::Member(Member {
        target: target.clone(),
        membership,
        reason: None,
    })
}

pub fn role(id: u32, rank: u32, permissions: Permissions) -> Content {
    Content::Role(RoleDef {
        role: RoleId(id),
        name: format!("role{id}"),
        rank,
        permissions,
        color: None,
        deleted: false,
    })
}

pub fn delete_role(id: u32, rank: u32) -> Content {
    Content::Role(RoleDef {
        role: RoleId(id),
        name: String::new(),
        rank,
        permissions: Permissions::NONE,
        color: None,
        deleted: true,
    })
}

pub fn everyone(permissions: Permissions) -> Content {
    Content::Role(RoleDef {
        role: RoleId::EVERYONE,
        name: "everyone".into(),
        rank: 0,
        permissions,
        color: None,
        deleted: false,
    })
}

pub fn roles(target: &UserId, ids: &[u32]) -> Content {
    Content::MemberRoles(MemberRoles {
        target: target.clone(),
        roles: ids.iter().map(|&i| RoleId(i)).collect(),
    })
}

pub fn timeout(target: &UserId, until_ms: u64) -> Content {
    Content::Timeout(Timeout {
        target: target.clone(),
        until_ms,
        reason: None,
    })
}

pub fn react(target: EventId, key: &str) -> Content {
    Content::Reaction(Reaction {
        target,
        key: key.to_owned(),
    })
}

pub fn edit(target: EventId, body: &str) -> Content {
    Content::Edit(Edit {
        target,
        body: body.to_owned(),
        mentions: Mentions::default(),
    })
}

pub fn redact(target: EventId) -> Content {
    Content::Redaction(Redaction {
        target,
        reason: None,
    })
}

pub fn attachment(node: &NodeKey) -> Attachment {
    Attachment {
        hash: [0xab; 32],
        size: 1234,
        mime: "image/png".into(),
        name: "cat.png".into(),
        width: Some(64),
        height: Some(48),
        node: node.node_id(),
    }
}

// ---- raw frames ----

/// `VERSION ‖ postcard(body)`: the signed part of a frame, without the crate's checks.
pub fn signed_part(body: &EventBody) -> Vec<u8> {
    let mut bytes = vec![VERSION];
    bytes.extend(postcard::to_allocvec(body).unwrap());
    bytes
}

/// The event id of a signed part, computed from the spec rather than `event.rs`.
pub fn id_of(signed: &[u8]) -> EventId {
    EventId(blake3::derive_key(ID_CONTEXT, signed))
}

/// The signature over a signed part, computed from the spec: ed25519 over
/// `SIGN_CONTEXT ‖ id`.
pub fn signature_of(key: &NodeKey, signed: &[u8]) -> [u8; 64] {
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&key.seed());
    let mut message = SIGN_CONTEXT.to_vec();
    message.extend_from_slice(&id_of(signed).0);
    signing_key.sign(&message).to_bytes()
}

/// Signs arbitrary bytes as a frame: lets a test send what an honest node
/// would never sign (bad shapes, non-canonical encodings, trailing bytes).
pub fn frame(key: &NodeKey, signed: &[u8]) -> Vec<u8> {
    let mut bytes = signed.to_vec();
    bytes.extend_from_slice(&signature_of(key, signed));
    bytes
}

/// A frame for a body, signed without the crate's shape and limit checks.
pub fn raw_event(key: &NodeKey, body: &EventBody) -> Vec<u8> {
    frame(key, &signed_part(body))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The reason code of a failed insertion; `missing_parents` for a wait.
pub fn insert_code(result: &Result<Inserted, InsertError>) -> &'static str {
    match result {
        Ok(Inserted::Duplicate) => "duplicate",
        Ok(Inserted::New { accepted: true, .. }) => "accepted",
        Ok(Inserted::New {
            accepted: false, ..
        }) => "refused",
        Err(InsertError::Rejected(rejection)) => rejection.code(),
        Err(InsertError::MissingParents(_)) => "missing_parents",
    }
}

/// A deterministic PRNG (xorshift64*), so test inputs never depend on a crate's
/// seeding and a failure can be replayed from the printed seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-enough in `0..n` (n > 0) for test input generation.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

// ---- a linear room ----

/// A room grown one event at a time on its heads, with a clock that moves
/// one second per event unless told otherwise. Linear, so the state at an
/// event's parents is the resolved state and admission decides acceptance.
#[derive(Debug)]
pub struct Chain {
    pub room: Room,
    pub create: Event,
    pub clock: u64,
}

pub const T0: u64 = 1_800_000_000_000;

impl Chain {
    pub fn new(owner: &Author, kind: RoomKind, join_rule: JoinRule) -> Chain {
        let create = owner.create(kind, join_rule, T0);
        Chain {
            room: Room::new(create.clone()).unwrap(),
            create,
            clock: T0,
        }
    }

    pub fn room_id(&self) -> RoomId {
        self.room.room_id()
    }

    /// The next event by `author` on the current heads, signed, not inserted.
    pub fn next(&mut self, author: &Author, content: Content) -> Event {
        self.clock += 1000;
        self.next_at(author, self.clock, content)
    }

    /// As [`Chain::next`] with an explicit author clock (the chain's clock is untouched).
    pub fn next_at(&self, author: &Author, origin_ts: u64, content: Content) -> Event {
        let body = self
            .room
            .draft(author.key.node_id(), &author.localpart, origin_ts, content);
        body.sign(&author.key).unwrap()
    }

    /// Inserts and returns the outcome, checking that [`Room::check`]
    /// predicted it.
    pub fn insert(&mut self, event: &Event) -> Result<(), AuthError> {
        let predicted = self.room.check(event);
        let result = self.room.insert(event.clone());
        match (&result, predicted) {
            (
                Ok(Inserted::New {
                    accepted: true,
                    refusal: None,
                    changed,
                    ..
                }),
                Ok(None),
            ) => {
                assert!(
                    changed.is_empty(),
                    "an append changed earlier events: {changed:?}"
                );
                Ok(())
            }
            (
                Err(InsertError::Rejected(Rejection::Unauthorized(e))),
                Err(InsertError::Rejected(p)),
            ) => {
                assert_eq!(
                    p,
                    Rejection::Unauthorized(e.clone()),
                    "check() and insert() disagree"
                );
                Err(e.clone())
            }
            (other, predicted) => panic!("unexpected outcome {other:?} (check said {predicted:?})"),
        }
    }

    /// Authors and inserts; Ok if accepted, the auth error if refused.
    pub fn attempt(&mut self, author: &Author, content: Content) -> Result<(), AuthError> {
        let event = self.next(author, content);
        self.insert(&event)
    }

    /// Authors and inserts, requiring acceptance; returns the event.
    pub fn push(&mut self, author: &Author, content: Content) -> Event {
        let event = self.next(author, content);
        if let Err(e) = self.insert(&event) {
            panic!(
                "{} by {} refused: {e:?}",
                event.content().type_name(),
                author.localpart
            );
        }
        event
    }

    pub fn push_at(&mut self, author: &Author, origin_ts: u64, content: Content) -> Event {
        let event = self.next_at(author, origin_ts, content);
        if let Err(e) = self.insert(&event) {
            panic!(
                "{} by {} refused: {e:?}",
                event.content().type_name(),
                author.localpart
            );
        }
        event
    }

    /// Brings `who` into the room (invited by the owner unless public).
    pub fn join(&mut self, owner: &Author, who: &Author) {
        if self.room.state().join_rule() != JoinRule::Public {
            self.push(owner, member(&who.user(), Membership::Invite));
        }
        self.push(who, member(&who.user(), Membership::Join));
    }

    /// Defines role `id` (rank, permissions) and gives it to `who`, as the owner.
    pub fn grant(
        &mut self,
        owner: &Author,
        who: &Author,
        id: u32,
        rank: u32,
        permissions: Permissions,
    ) {
        if self.room.state().role(RoleId(id)).is_none() {
            self.push(owner, role(id, rank, permissions));
        }
        let mut held: Vec<u32> = self
            .room
            .state()
            .roles_of(&who.user())
            .iter()
            .map(|r| r.0)
            .collect();
        held.push(id);
        held.sort();
        held.dedup();
        self.push(owner, roles(&who.user(), &held));
    }

    pub fn last(&self) -> Event {
        self.room.at(self.room.len() - 1).unwrap().0.clone()
    }
}

// ---- replicas ----

/// A room replica fed events in any order: events whose parents are missing
/// wait until the parents arrive. Keeps its own record of acceptance from
/// what `insert` reports, so a test can check `Inserted::New::changed`.
#[derive(Debug)]
pub struct Replica {
    pub room: Room,
    // Ordered, so a proptest seed replays the same delivery order.
    pending: BTreeMap<EventId, Event>,
    /// Acceptance as learnt from `Inserted` reports alone.
    pub reported: HashMap<EventId, bool>,
    /// Events refused at admission, with the reason code.
    pub rejected: HashMap<EventId, &'static str>,
    pub n_duplicates: usize,
}

impl Replica {
    pub fn new(create: &Event) -> Replica {
        let room = Room::new(create.clone()).unwrap();
        let mut reported = HashMap::new();
        reported.insert(create.id(), true);
        Replica {
            room,
            pending: BTreeMap::new(),
            reported,
            rejected: HashMap::new(),
            n_duplicates: 0,
        }
    }

    /// Delivers wire bytes, as a peer would: decode and verify first.
    pub fn deliver_bytes(&mut self, bytes: &[u8]) {
        let event = Event::decode(bytes).expect("replicas get valid frames");
        self.deliver(event);
    }

    pub fn deliver(&mut self, event: Event) {
        let mut queue = vec![event];
        while let Some(event) = queue.pop() {
            let id = event.id();
            match self.room.insert(event.clone()) {
                Ok(Inserted::Duplicate) => self.n_duplicates += 1,
                Ok(Inserted::New {
                    accepted,
                    changed,
                    refusal,
                    ..
                }) => {
                    assert_eq!(accepted, refusal.is_none(), "accepted iff no refusal");
                    self.reported.insert(id, accepted);
                    for (changed_id, now) in changed {
                        let was = self.reported.insert(changed_id, now);
                        assert_eq!(
                            was,
                            Some(!now),
                            "`changed` reported a non-change for {changed_id:?}"
                        );
                    }
                    // Anything waiting on this event may go in now.
                    let ready: Vec<EventId> = self
                        .pending
                        .values()
                        .filter(|e| e.parents().contains(&id))
                        .map(|e| e.id())
                        .collect();
                    for ready_id in ready {
                        let waiting = self.pending.remove(&ready_id).unwrap();
                        if self.room.missing_parents(&waiting).is_empty() {
                            queue.push(waiting);
                        } else {
                            self.pending.insert(ready_id, waiting);
                        }
                    }
                }
                Err(InsertError::MissingParents(missing)) => {
                    assert!(!missing.is_empty());
                    self.pending.insert(id, event);
                }
                Err(InsertError::Rejected(rejection)) => {
                    self.rejected.insert(id, rejection.code());
                }
            }
        }
    }

    pub fn n_pending(&self) -> usize {
        self.pending.len()
    }
}
