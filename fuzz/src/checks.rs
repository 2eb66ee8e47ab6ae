//! Properties checked on arbitrary input. Shared by the fuzz targets and by
//! `protocol/tests/protocol/fuzz_smoke.rs` (which includes this file by path),
//! so a stable `cargo test` exercises exactly what the fuzzer does.
//!
//! A failed property panics: under libFuzzer that is a crash with the input
//! saved; under `cargo test` it is a failing test.

use ed25519_dalek::Signer;
use spaces_protocol::content::*;
use spaces_protocol::event::{ID_CONTEXT, SIGN_CONTEXT, VERSION};
use spaces_protocol::room::{InsertError, Inserted};
use spaces_protocol::{
    Event, EventBody, EventId, NodeKey, Permissions, RoleId, Room, RoomId, UserId,
};

/// Any bytes: decoding never panics, and an accepted frame re-encodes to the
/// same bytes and id; the store path (`decode_trusted`) agrees with it.
pub fn check_decode(data: &[u8]) -> Option<Event> {
    let event = match Event::decode(data) {
        Ok(event) => event,
        Err(rejection) => {
            assert!(!rejection.code().is_empty());
            assert!(!rejection.to_string().is_empty());
            // The store path takes damaged bytes without panicking too.
            let _ = Event::decode_trusted(data);
            return None;
        }
    };
    assert_eq!(
        event.bytes(),
        data,
        "an event keeps the exact bytes it was decoded from"
    );
    let signed = &data[..data.len() - 64];
    let mut reencoded = vec![VERSION];
    reencoded.extend(postcard::to_allocvec(event.body()).expect("a decoded body encodes"));
    assert_eq!(reencoded, signed, "re-encoding gives other bytes");
    assert_eq!(
        EventId(blake3::derive_key(ID_CONTEXT, &reencoded)),
        event.id(),
        "id is the hash of the signed bytes"
    );
    reencoded.extend_from_slice(&data[data.len() - 64..]);
    let again = Event::decode(&reencoded).expect("the re-encoded frame decodes");
    assert_eq!((again.id(), again.body()), (event.id(), event.body()));
    let trusted = Event::decode_trusted(data).expect("verified bytes decode on the store path");
    assert_eq!((trusted.id(), trusted.body()), (event.id(), event.body()));
    // Derived fields follow from the body.
    assert_eq!(event.origin(), event.body().origin);
    assert_eq!(
        event.sender(),
        &UserId::new(&event.body().sender, event.origin()).expect("sender was validated")
    );
    let room_id = event.body().room.unwrap_or(RoomId(event.id().0));
    assert_eq!(event.room_id(), room_id);
    assert!(event.parents().windows(2).all(|w| w[0] < w[1]));
    // A ban list's pattern from a peer: an accepted event's pattern parses,
    // and matches as the definition says.
    if let Content::BanEntry(BanEntry {
        target: BanTarget::Pattern(pattern),
        ..
    }) = event.content()
    {
        assert!(
            spaces_protocol::glob::Glob::parse(pattern).is_ok(),
            "an accepted pattern parses"
        );
        check_glob(pattern, &event.sender().to_string());
    }
    Some(event)
}

/// Any pattern and text: parsing never panics, and a parsed glob matches
/// exactly when the definition (`*` any run, `?` one character, the rest
/// itself, over the whole text) says, computed here by dynamic programming.
pub fn check_glob(pattern: &str, text: &str) {
    let Ok(glob) = spaces_protocol::glob::Glob::parse(pattern) else {
        return;
    };
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // fits[i][j]: p[i..] matches t[j..].
    let mut fits = vec![vec![false; t.len() + 1]; p.len() + 1];
    fits[p.len()][t.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=t.len()).rev() {
            fits[i][j] = match p[i] {
                '*' => fits[i + 1][j] || (j < t.len() && fits[i][j + 1]),
                '?' => j < t.len() && fits[i + 1][j + 1],
                c => j < t.len() && t[j] == c && fits[i + 1][j + 1],
            };
        }
    }
    assert_eq!(
        glob.matches(text),
        fits[0][0],
        "glob {pattern:?} against {text:?}"
    );
}

/// The seed of the key [`check_signed_body`] signs with.
pub const FUZZ_SEED: [u8; 32] = [0x5a; 32];

/// Treats `body` as the bytes after the origin key, signs them with a fixed
/// key, and checks the frame: the way past signature verification to the
/// body decoder and the shape checks.
pub fn check_signed_body(body: &[u8]) -> Option<Event> {
    let key = NodeKey::from_seed(FUZZ_SEED);
    let mut signed = vec![VERSION];
    signed.extend_from_slice(&key.node_id().0);
    signed.extend_from_slice(body);
    let frame = sign_frame(&key, signed);
    let event = check_decode(&frame);
    if frame.len() <= spaces_protocol::limits::MAX_EVENT_BYTES {
        // A signature by the right key never fails, so only the body can be at fault.
        if let Err(rejection) = Event::decode(&frame) {
            assert!(
                !matches!(
                    rejection.code(),
                    "bad_signature" | "bad_key" | "truncated" | "unsupported_version"
                ),
                "{rejection:?}"
            );
        }
    }
    event
}

/// Appends the ed25519 signature of `key` over `SIGN_CONTEXT ‖ id(signed)`.
pub fn sign_frame(key: &NodeKey, mut signed: Vec<u8>) -> Vec<u8> {
    let id = blake3::derive_key(ID_CONTEXT, &signed);
    let mut message = SIGN_CONTEXT.to_vec();
    message.extend_from_slice(&id);
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&key.seed());
    signed.extend_from_slice(&signing_key.sign(&message).to_bytes());
    signed
}

/// Reads fuzz input a byte at a time; zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }
    fn next(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.next(), self.next()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

const T0: u64 = 1_800_000_000_000;
const USERS: [(usize, &str); 5] = [(0, "owner"), (0, "mod"), (1, "ann"), (1, "ben"), (2, "cat")];

/// Interprets `data` as a script of events for one room: generated events
/// (signed by the room's users, on chosen parents, some with wrong depths or
/// flipped bits) and raw frames. Checks the replica after every insertion
/// and, at the end, that `Room::load` of the same events agrees.
pub fn check_room(data: &[u8]) {
    let keys: Vec<NodeKey> = (1..=3u8).map(|i| NodeKey::from_seed([i; 32])).collect();
    let users: Vec<UserId> = USERS
        .iter()
        .map(|(node, name)| UserId::new(name, keys[*node].node_id()).unwrap())
        .collect();
    let create = EventBody::create(
        keys[0].node_id(),
        "owner",
        T0,
        RoomKind::Space,
        JoinRule::Public,
        HistoryVisibility::Shared,
        [0; 16],
    )
    .sign(&keys[0])
    .expect("the create event signs");
    let mut room = Room::new(create.clone()).expect("a room starts from its create event");
    let mut events: Vec<Event> = vec![create.clone()];
    let mut input = Input(data);
    let mut clock = T0;
    while let Some(op) = input.byte() {
        let event = if op % 8 == 0 {
            let len = usize::from(input.u16());
            match check_decode(input.take(len)) {
                Some(event) => event,
                None => continue,
            }
        } else {
            clock += u64::from(input.u16()) * 10;
            let user = usize::from(input.next()) % USERS.len();
            let key = &keys[USERS[user].0];
            let mut parents: Vec<EventId> = (0..1 + input.next() % 3)
                .map(|_| {
                    // Biased towards recent events, where the heads are.
                    let back = usize::from(input.next() % 16);
                    events[events.len().saturating_sub(1 + back)].id()
                })
                .collect();
            parents.sort();
            parents.dedup();
            let depth = parents
                .iter()
                .filter_map(|p| room.event(p))
                .map(|e| e.depth())
                .max()
                .unwrap_or(0)
                + 1;
            let depth = if op % 8 == 1 {
                depth
                    .saturating_add(u64::from(input.next() % 3))
                    .saturating_sub(1)
            } else {
                depth
            };
            let content = content(&mut input, &users, &events, clock);
            let body = EventBody {
                origin: key.node_id(),
                room: Some(room.room_id()),
                sender: USERS[user].1.into(),
                parents,
                depth,
                origin_ts: clock,
                content,
            };
            let Ok(event) = body.sign(key) else { continue };
            if op % 8 == 7 {
                // A flipped bit: usually a bad signature, sometimes a bad key.
                let mut bytes = event.bytes().to_vec();
                let at = usize::from(input.u16()) % bytes.len();
                bytes[at] ^= 1 << (input.next() % 8);
                match check_decode(&bytes) {
                    Some(event) => event,
                    None => continue,
                }
            } else {
                event
            }
        };
        if insert_and_check(&mut room, event.clone()) {
            events.push(event);
        }
    }
    check_order(&room);
    // The store path: the same events, newest first, give the same replica.
    let (loaded, skipped) = Room::load(create, events.iter().rev().cloned()).expect("load");
    assert!(
        skipped.is_empty(),
        "load skipped admitted events: {skipped:?}"
    );
    let timeline = |room: &Room| {
        room.iter()
            .map(|(e, accepted)| (e.id(), accepted))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        timeline(&loaded),
        timeline(&room),
        "load and insert disagree on the timeline"
    );
    assert_eq!(
        loaded.state(),
        room.state(),
        "load and insert disagree on the state"
    );
    assert_eq!(loaded.heads(), room.heads());
}

/// Inserts and checks what `insert` reported against the replica. Returns
/// whether the event is new in the room.
fn insert_and_check(room: &mut Room, event: Event) -> bool {
    let id = event.id();
    let len = room.len();
    let was_there = room.contains(&id);
    let predicted = room.check(&event);
    let result = room.insert(event);
    match &result {
        Ok(Inserted::Duplicate) => {
            assert!(was_there);
            assert_eq!(room.len(), len);
            false
        }
        Ok(Inserted::New {
            accepted,
            refusal,
            position,
            changed,
        }) => {
            assert!(!was_there);
            assert_eq!(room.len(), len + 1);
            assert_eq!(room.position(&id), Some(*position));
            assert_eq!(
                room.at(*position).map(|(e, a)| (e.id(), a)),
                Some((id, *accepted))
            );
            assert_eq!(*accepted, refusal.is_none());
            // Appended events are judged against the state `check` saw.
            if *position == len {
                assert_eq!(
                    predicted,
                    Ok(refusal.clone()),
                    "check() mispredicted an append"
                );
            } else {
                assert!(
                    predicted.is_ok(),
                    "check() refused an admitted event: {predicted:?}"
                );
            }
            for (changed_id, now) in changed {
                assert!(room.position(changed_id).is_some_and(|p| p > *position));
                assert_eq!(room.is_accepted(changed_id), *now);
            }
            true
        }
        Err(error) => {
            assert_eq!(room.len(), len);
            assert!(!room.contains(&id));
            if let InsertError::MissingParents(missing) = error {
                assert!(!missing.is_empty());
            }
            assert_eq!(
                predicted.as_ref().err(),
                Some(error),
                "check() and insert() disagree"
            );
            false
        }
    }
}

/// The canonical order is strictly increasing in (depth, class, id) and
/// every event comes after its parents.
fn check_order(room: &Room) {
    let keys: Vec<(u64, Class, EventId)> = room
        .iter()
        .map(|(e, _)| (e.depth(), e.class(), e.id()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "canonical order is not sorted"
    );
    for (pos, (event, _)) in room.iter().enumerate() {
        assert_eq!(room.position(&event.id()), Some(pos));
        for parent in event.parents() {
            assert!(room.position(parent).is_some_and(|p| p < pos));
        }
    }
    let heads = room.heads();
    assert!(!heads.is_empty() && heads.len() <= spaces_protocol::limits::MAX_PARENTS);
    assert!(heads.iter().all(|h| room.contains(h)));
}

fn content(input: &mut Input<'_>, users: &[UserId], events: &[Event], now: u64) -> Content {
    let kind = input.next();
    let a = input.next();
    let b = input.next();
    let target = users[usize::from(a) % users.len()].clone();
    let event = events[usize::from(b) % events.len()].id();
    let membership = [
        Membership::Join,
        Membership::Invite,
        Membership::Leave,
        Membership::Knock,
        Membership::Ban,
    ][usize::from(b) % 5];
    match kind % 20 {
        0..=3 => Content::Message(Message {
            body: format!("m{b}"),
            mentions: Mentions {
                users: vec![target],
                roles: vec![],
                room: a.is_multiple_of(7),
            },
            reply_to: (a.is_multiple_of(3)).then_some(event),
            thread: (a.is_multiple_of(5)).then_some(event),
            attachments: vec![],
        }),
        4 => Content::Reaction(Reaction {
            target: event,
            key: "👍".into(),
        }),
        5 => Content::Edit(Edit {
            target: event,
            body: "edited".into(),
            mentions: Mentions::default(),
        }),
        6 => Content::Redaction(Redaction {
            target: event,
            reason: None,
        }),
        7 | 8 => Content::Member(Member {
            target,
            membership,
            reason: None,
        }),
        9 => Content::MemberRoles(MemberRoles {
            target,
            roles: [
                &[][..],
                &[RoleId(1)],
                &[RoleId(2)],
                &[RoleId(1), RoleId(2)],
                &[RoleId(2), RoleId(1)],
            ][usize::from(b) % 5]
                .to_vec(),
        }),
        10 => Content::Role(RoleDef {
            role: RoleId(u32::from(a % 3)),
            name: "r".into(),
            rank: u32::from(b % 4) * 5,
            permissions: Permissions(u64::from(a) << 4 | u64::from(b) >> 4),
            color: None,
            deleted: b.is_multiple_of(7),
        }),
        11 => Content::Timeout(Timeout {
            target,
            until_ms: if b.is_multiple_of(3) {
                0
            } else {
                now + u64::from(b) * 1000
            },
            reason: None,
        }),
        12 => Content::Slowmode(Slowmode {
            seconds: u32::from(b % 4),
        }),
        13 => Content::Pins(vec![event]),
        14 => Content::Name(format!("n{b}")),
        15 => Content::JoinRule(
            [JoinRule::Public, JoinRule::Invite, JoinRule::Knock][usize::from(b) % 3],
        ),
        16 => Content::Encryption(Encryption::Mls128X25519),
        17 => Content::SpaceChild(SpaceLink {
            room: RoomId([b; 32]),
            via: vec![],
            present: a.is_multiple_of(2),
        }),
        18 => Content::Member(Member {
            target: users[usize::from(b) % users.len()].clone(),
            membership: Membership::Join,
            reason: None,
        }),
        _ => Content::Message(Message {
            body: String::new(),
            thread: Some(event),
            reply_to: Some(event),
            ..Message::default()
        }),
    }
}
