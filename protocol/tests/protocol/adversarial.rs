//! Hostile input: every kind of bad event is refused with its own reason,
//! and nothing panics (STYLE.md: a panic on remote input is a bug).

use serde_json::json;
use spaces_protocol::content::*;
use spaces_protocol::limits::*;
use spaces_protocol::room::{InsertError, Inserted};
use spaces_protocol::{
    AuthError, Event, EventBody, EventId, NodeId, Permissions, Rejection, RoleId, Room, RoomId,
    UserId,
};

use super::support::*;

fn owner() -> Author {
    Author::new(1, "owner")
}
fn alice() -> Author {
    Author::new(2, "alice")
}
fn mallory() -> Author {
    Author::new(66, "mallory")
}

/// A public room with alice joined; returns the chain and a message of hers.
fn room_with_alice() -> (Chain, Author, Author, Event) {
    let (owner, alice) = (owner(), alice());
    let mut chain = Chain::new(&owner, RoomKind::Room, JoinRule::Public);
    chain.join(&owner, &alice);
    let hello = chain.push(&alice, text("hello"));
    (chain, owner, alice, hello)
}

#[test]
fn forged_signatures_are_refused() {
    let (chain, _, alice, hello) = room_with_alice();
    let bytes = hello.bytes().to_vec();
    let n = bytes.len();
    // Every single-bit flip anywhere in the frame.
    for i in 0..n {
        for bit in 0..8 {
            let mut forged = bytes.clone();
            forged[i] ^= 1 << bit;
            let code = Event::decode(&forged).unwrap_err().code();
            let want: &[&str] = match i {
                0 => &["unsupported_version"],
                1..=32 => &["bad_key", "bad_signature"],
                _ => &["bad_signature"],
            };
            assert!(want.contains(&code), "bit {bit} of byte {i}: {code}");
        }
    }
    // Mallory re-signs alice's body with her own key, origin unchanged.
    let mallory = mallory();
    let signed = &bytes[..n - 64];
    assert_eq!(
        Event::decode(&frame(&mallory.key, signed)).unwrap_err(),
        Rejection::BadSignature
    );
    // Or swaps in her own origin: then it is no longer alice speaking, but
    // `alice` on mallory's node, a stranger to the room.
    let mut body = hello.body().clone();
    body.origin = mallory.key.node_id();
    let impostor = Event::decode(&raw_event(&mallory.key, &body)).unwrap();
    assert_ne!(impostor.sender(), &alice.user());
    assert_eq!(
        impostor.sender().to_string(),
        format!("@alice:{}", mallory.key.node_id())
    );
    let mut room = chain.room;
    assert_eq!(
        room.insert(impostor).unwrap_err(),
        InsertError::Rejected(Rejection::Unauthorized(AuthError::NotMember))
    );
    // A signature over the id without the context prefix is not an event signature.
    let signing_key = ed25519_dalek::SigningKey::from_bytes(&alice.key.seed());
    let bare = ed25519_dalek::Signer::sign(&signing_key, &id_of(signed).0).to_bytes();
    let mut forged = signed.to_vec();
    forged.extend_from_slice(&bare);
    assert_eq!(Event::decode(&forged).unwrap_err(), Rejection::BadSignature);
    // Malleability: S + L is the same signature to a lenient verifier; strict refuses it.
    let mut malleable = bytes.clone();
    add_group_order(&mut malleable[n - 32..]);
    assert_ne!(malleable, bytes);
    assert_eq!(
        Event::decode(&malleable).unwrap_err(),
        Rejection::BadSignature
    );
    // The crate refuses to sign for another node.
    let mut body = hello.body().clone();
    body.sender = "mallory".into();
    assert_eq!(
        body.sign(&mallory.key).unwrap_err(),
        Rejection::Shape("origin is not the signing node")
    );
}

/// Adds the ed25519 group order L to a little-endian scalar in place.
fn add_group_order(scalar: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s, l) in scalar.iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
}

#[test]
fn envelope_checks_in_spec_order() {
    let (_, _, _, hello) = room_with_alice();
    let bytes = hello.bytes().to_vec();
    // D1 before D2–D3: a huge frame with a bad version is too large first.
    let mut huge = vec![9u8; MAX_EVENT_BYTES + 1];
    assert_eq!(
        Event::decode(&huge).unwrap_err(),
        Rejection::TooLarge(MAX_EVENT_BYTES + 1)
    );
    huge.truncate(MAX_EVENT_BYTES);
    assert_eq!(
        Event::decode(&huge).unwrap_err(),
        Rejection::UnsupportedVersion(9)
    );
    // D2 before D3.
    assert_eq!(Event::decode(&[9u8; 96]).unwrap_err(), Rejection::Truncated);
    assert_eq!(Event::decode(&[]).unwrap_err(), Rejection::Truncated);
    assert_eq!(
        Event::decode(&[9u8; 97]).unwrap_err(),
        Rejection::UnsupportedVersion(9)
    );
    // D4 before D6.
    let mut bad_key = bytes.clone();
    bad_key[1..33].copy_from_slice(&not_a_point());
    assert_eq!(Event::decode(&bad_key).unwrap_err(), Rejection::BadKey);
    // D6 before D7: garbage body with a bad signature is a bad signature.
    let mut garbage = bytes.clone();
    garbage[40..60].fill(0xff);
    assert_eq!(
        Event::decode(&garbage).unwrap_err(),
        Rejection::BadSignature
    );
    // The shortest frame: version, key, signature and an empty body.
    let mut shortest = vec![1u8];
    shortest.extend_from_slice(&hello.origin().0);
    assert_eq!(shortest.len() + 64, 97);
    let frame = frame(&alice().key, &shortest);
    assert!(matches!(
        Event::decode(&frame).unwrap_err(),
        Rejection::Malformed(_)
    ));
}

fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|i| {
            let mut bytes = [0u8; 32];
            bytes[0] = i;
            bytes
        })
        .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
        .unwrap()
}

#[test]
fn truncated_frames_are_refused() {
    let (_, _, alice, hello) = room_with_alice();
    let bytes = hello.bytes();
    for len in 0..bytes.len() {
        let got = Event::decode(&bytes[..len]).unwrap_err();
        let want = if len < 97 {
            Rejection::Truncated
        } else {
            Rejection::BadSignature
        };
        assert_eq!(got, want, "prefix of {len} bytes");
        // The store path must not panic either.
        let _ = Event::decode_trusted(&bytes[..len]);
    }
    // A body cut short and then signed properly: the signature holds, the body does not decode.
    let signed = &bytes[..bytes.len() - 64];
    for len in 33..signed.len() {
        let got = Event::decode(&frame(&alice.key, &signed[..len])).unwrap_err();
        assert!(
            matches!(got, Rejection::Malformed(_)),
            "body cut at {len}: {got:?}"
        );
    }
}

#[test]
fn malformed_bodies_are_refused() {
    let (chain, _, alice, _) = room_with_alice();
    let body = alice.body(
        chain.room_id(),
        &[&chain.last()],
        chain.clock + 1,
        text("x"),
    );
    let parts = |override_at: usize, with: &[u8]| {
        // The body as its fields' encodings, one replaced.
        let fields: Vec<Vec<u8>> = vec![
            postcard::to_allocvec(&body.origin).unwrap(),
            postcard::to_allocvec(&body.room).unwrap(),
            postcard::to_allocvec(&body.sender).unwrap(),
            postcard::to_allocvec(&body.parents).unwrap(),
            postcard::to_allocvec(&body.depth).unwrap(),
            postcard::to_allocvec(&body.origin_ts).unwrap(),
            postcard::to_allocvec(&body.content).unwrap(),
        ];
        let mut signed = vec![1u8];
        for (i, field) in fields.into_iter().enumerate() {
            signed.extend(if i == override_at {
                with.to_vec()
            } else {
                field
            });
        }
        frame(&alice.key, &signed)
    };
    // Sanity: with nothing replaced this is a valid event.
    assert!(Event::decode(&parts(99, &[])).is_ok());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("room tag 2", parts(1, &[2]), "malformed"),
        ("sender not UTF-8", parts(2, &[2, 0xc3, 0x28]), "malformed"),
        (
            "sender length past the end",
            parts(2, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            "malformed",
        ),
        // A parent count of 2⁶⁴−1: must fail on the missing bytes, not try to allocate.
        (
            "huge parent count",
            parts(
                3,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            "malformed",
        ),
        ("varint longer than u64", parts(4, &[0xff; 11]), "malformed"),
        ("content variant 19", parts(6, &[19]), "malformed"),
        (
            "content variant overlong 15",
            parts(6, &[0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0]),
            "non_canonical",
        ),
        ("depth overlong", parts(4, &[0x81, 0x00]), "non_canonical"),
        (
            "origin_ts overlong",
            parts(5, &{
                let mut ts = postcard::to_allocvec(&body.origin_ts).unwrap();
                *ts.last_mut().unwrap() |= 0x80;
                ts.push(0);
                ts
            }),
            "non_canonical",
        ),
    ];
    for (what, frame, code) in cases {
        assert_eq!(Event::decode(&frame).unwrap_err().code(), code, "{what}");
    }
    // Inside content: a bool of 2, an Option tag of 2, a u16 varint of three full bytes.
    let mentions_room_at = {
        let Content::Message(m) = &body.content else {
            unreachable!()
        };
        // variant + body + users + roles, then the `room` bool.
        1 + postcard::to_allocvec(&m.body).unwrap().len() + 1 + 1
    };
    let mut content = postcard::to_allocvec(&body.content).unwrap();
    content[mentions_room_at] = 2;
    assert_eq!(
        Event::decode(&parts(6, &content)).unwrap_err().code(),
        "malformed",
        "bool 2"
    );
    let mut content = postcard::to_allocvec(&body.content).unwrap();
    content[mentions_room_at + 1] = 2;
    assert_eq!(
        Event::decode(&parts(6, &content)).unwrap_err().code(),
        "malformed",
        "reply_to tag 2"
    );
    // Create { room_version: u16 } with a 3-byte varint > u16::MAX.
    let mut create = vec![0u8, 0xff, 0xff, 0x7f];
    create.extend([0, 0, 0]);
    create.extend([0u8; 16]);
    assert_eq!(
        Event::decode(&parts(6, &create)).unwrap_err().code(),
        "malformed",
        "u16 overflow"
    );
    // Trailing bytes after a complete body (D8).
    let mut signed = signed_part(&body);
    signed.push(0);
    assert_eq!(
        Event::decode(&frame(&alice.key, &signed)).unwrap_err(),
        Rejection::Malformed("1 trailing bytes".into())
    );
}

#[test]
fn nesting_is_bounded_by_the_schema() {
    // No content type is recursive, so depth of nesting is fixed by the
    // schema. What an attacker controls is lengths: a frame full of
    // "Some"/"one more element" bytes must fail fast and cleanly.
    let (chain, _, alice, _) = room_with_alice();
    let body = alice.body(
        chain.room_id(),
        &[&chain.last()],
        chain.clock + 1,
        text("x"),
    );
    let mut signed = signed_part(&body);
    let header = signed.len() - postcard::to_allocvec(&body.content).unwrap().len();
    signed.truncate(header);
    // Message with 64 attachments declared, then every byte 0x01 to the size limit.
    signed.extend([15u8, 0, 0, 0, 0, 0, 0, 64]);
    signed.resize(MAX_EVENT_BYTES - 64, 0x01);
    let got = Event::decode(&frame(&alice.key, &signed)).unwrap_err();
    assert!(
        matches!(got, Rejection::Malformed(_) | Rejection::Limit(_)),
        "{got:?}"
    );
    // The biggest legal event still fits the frame limit.
    let big = biggest_message(&alice);
    let event = alice.on(chain.room_id(), &[&chain.last()], chain.clock + 1, big);
    assert!(
        event.bytes().len() <= MAX_EVENT_BYTES,
        "{} bytes",
        event.bytes().len()
    );
    assert_eq!(Event::decode(event.bytes()).unwrap().id(), event.id());
}

fn biggest_message(author: &Author) -> Content {
    let user = UserId::new(&"u".repeat(MAX_LOCALPART_LEN), author.key.node_id()).unwrap();
    let mut attachment = attachment(&author.key);
    attachment.mime = "m".repeat(MAX_NAME_BYTES);
    attachment.name = "n".repeat(MAX_NAME_BYTES);
    attachment.size = u64::MAX;
    attachment.width = Some(u32::MAX);
    attachment.height = Some(u32::MAX);
    Content::Message(Message {
        body: "b".repeat(MAX_BODY_BYTES),
        mentions: Mentions {
            users: vec![user; MAX_LIST_LEN],
            roles: vec![RoleId(u32::MAX); MAX_LIST_LEN],
            room: true,
        },
        reply_to: Some(EventId([0xff; 32])),
        thread: Some(EventId([0xff; 32])),
        attachments: vec![attachment; MAX_LIST_LEN],
    })
}

/// A user id with a localpart `UserId::new` would refuse, as a decoder could build it.
fn bad_user(localpart: &str, node: NodeId) -> UserId {
    serde_json::from_value(json!({ "localpart": localpart, "node": node.0 })).unwrap()
}

#[test]
fn oversized_content_is_refused_with_the_limit() {
    let (chain, _, alice, _) = room_with_alice();
    let node = alice.key.node_id();
    let good = alice.user();
    let long = |n: usize| "x".repeat(n);
    let message = |f: &dyn Fn(&mut Message)| {
        let mut m = Message {
            body: "hi".into(),
            ..Message::default()
        };
        f(&mut m);
        Content::Message(m)
    };
    let with_attachment = |f: &dyn Fn(&mut Attachment)| {
        let mut a = attachment(&alice.key);
        f(&mut a);
        a
    };
    let link = |n| SpaceLink {
        room: RoomId([1; 32]),
        via: vec![node; n],
        present: true,
    };
    let member_with = |target: UserId, reason: Option<String>| {
        Content::Member(Member {
            target,
            membership: Membership::Invite,
            reason,
        })
    };
    let create = |version| {
        Content::Create(Create {
            room_version: version,
            kind: RoomKind::Room,
            join_rule: JoinRule::Public,
            history_visibility: HistoryVisibility::Shared,
            nonce: [0; 16],
        })
    };
    // (what, content at the limit, content past it, reason)
    let cases: Vec<(&str, Content, Content, &str)> = vec![
        (
            "message body",
            message(&|m| m.body = long(MAX_BODY_BYTES)),
            message(&|m| m.body = long(MAX_BODY_BYTES + 1)),
            "message body too long",
        ),
        (
            "user mentions",
            message(&|m| m.mentions.users = vec![good.clone(); MAX_LIST_LEN]),
            message(&|m| m.mentions.users = vec![good.clone(); MAX_LIST_LEN + 1]),
            "too many user mentions",
        ),
        (
            "role mentions",
            message(&|m| m.mentions.roles = vec![RoleId(1); MAX_LIST_LEN]),
            message(&|m| m.mentions.roles = vec![RoleId(1); MAX_LIST_LEN + 1]),
            "too many role mentions",
        ),
        (
            "mentioned user's localpart",
            message(&|m| m.mentions.users = vec![bad_user(&long(MAX_LOCALPART_LEN), node)]),
            message(&|m| m.mentions.users = vec![bad_user("Mallory", node)]),
            "user id localpart",
        ),
        (
            "attachments",
            message(&|m| m.attachments = vec![attachment(&alice.key); MAX_LIST_LEN]),
            message(&|m| m.attachments = vec![attachment(&alice.key); MAX_LIST_LEN + 1]),
            "too many attachments",
        ),
        (
            "attachment MIME type",
            message(&|m| m.attachments = vec![with_attachment(&|a| a.mime = long(MAX_NAME_BYTES))]),
            message(&|m| {
                m.attachments = vec![with_attachment(&|a| a.mime = long(MAX_NAME_BYTES + 1))]
            }),
            "attachment MIME type too long",
        ),
        (
            "attachment name",
            message(&|m| m.attachments = vec![with_attachment(&|a| a.name = long(MAX_NAME_BYTES))]),
            message(&|m| {
                m.attachments = vec![with_attachment(&|a| a.name = long(MAX_NAME_BYTES + 1))]
            }),
            "attachment name too long",
        ),
        (
            "avatar name",
            Content::Avatar(Some(with_attachment(&|a| a.name = long(MAX_NAME_BYTES)))),
            Content::Avatar(Some(with_attachment(&|a| {
                a.name = long(MAX_NAME_BYTES + 1)
            }))),
            "attachment name too long",
        ),
        (
            "edit body",
            Content::Edit(Edit {
                target: EventId([1; 32]),
                body: long(MAX_BODY_BYTES),
                mentions: Mentions::default(),
            }),
            Content::Edit(Edit {
                target: EventId([1; 32]),
                body: long(MAX_BODY_BYTES + 1),
                mentions: Mentions::default(),
            }),
            "message body too long",
        ),
        (
            "edit mentions",
            Content::Edit(Edit {
                target: EventId([1; 32]),
                body: String::new(),
                mentions: Mentions {
                    users: vec![good.clone(); MAX_LIST_LEN],
                    ..Mentions::default()
                },
            }),
            Content::Edit(Edit {
                target: EventId([1; 32]),
                body: String::new(),
                mentions: Mentions {
                    users: vec![good.clone(); MAX_LIST_LEN + 1],
                    ..Mentions::default()
                },
            }),
            "too many user mentions",
        ),
        (
            "room name",
            Content::Name(long(MAX_NAME_BYTES)),
            Content::Name(long(MAX_NAME_BYTES + 1)),
            "room name too long",
        ),
        (
            "topic",
            Content::Topic(long(MAX_TOPIC_BYTES)),
            Content::Topic(long(MAX_TOPIC_BYTES + 1)),
            "topic too long",
        ),
        (
            "role name",
            Content::Role(RoleDef {
                role: RoleId(1),
                name: long(MAX_NAME_BYTES),
                rank: 1,
                permissions: Permissions::NONE,
                color: None,
                deleted: false,
            }),
            Content::Role(RoleDef {
                role: RoleId(1),
                name: long(MAX_NAME_BYTES + 1),
                rank: 1,
                permissions: Permissions::NONE,
                color: None,
                deleted: false,
            }),
            "role name too long",
        ),
        (
            "member reason",
            member_with(good.clone(), Some(long(MAX_NAME_BYTES))),
            member_with(good.clone(), Some(long(MAX_NAME_BYTES + 1))),
            "reason too long",
        ),
        (
            "member target",
            member_with(good.clone(), None),
            member_with(bad_user("", node), None),
            "user id localpart",
        ),
        (
            "member target too long",
            member_with(bad_user(&long(MAX_LOCALPART_LEN), node), None),
            member_with(bad_user(&long(MAX_LOCALPART_LEN + 1), node), None),
            "user id localpart",
        ),
        (
            "member roles",
            Content::MemberRoles(MemberRoles {
                target: good.clone(),
                roles: vec![RoleId(1); MAX_LIST_LEN],
            }),
            Content::MemberRoles(MemberRoles {
                target: good.clone(),
                roles: vec![RoleId(1); MAX_LIST_LEN + 1],
            }),
            "too many roles",
        ),
        (
            "member roles target",
            Content::MemberRoles(MemberRoles {
                target: good.clone(),
                roles: vec![],
            }),
            Content::MemberRoles(MemberRoles {
                target: bad_user("a b", node),
                roles: vec![],
            }),
            "user id localpart",
        ),
        (
            "timeout reason",
            Content::Timeout(Timeout {
                target: good.clone(),
                until_ms: 0,
                reason: Some(long(MAX_NAME_BYTES)),
            }),
            Content::Timeout(Timeout {
                target: good.clone(),
                until_ms: 0,
                reason: Some(long(MAX_NAME_BYTES + 1)),
            }),
            "reason too long",
        ),
        (
            "timeout target",
            Content::Timeout(Timeout {
                target: good.clone(),
                until_ms: 0,
                reason: None,
            }),
            Content::Timeout(Timeout {
                target: bad_user("ÿ", node),
                until_ms: 0,
                reason: None,
            }),
            "user id localpart",
        ),
        (
            "redaction reason",
            Content::Redaction(Redaction {
                target: EventId([1; 32]),
                reason: Some(long(MAX_NAME_BYTES)),
            }),
            Content::Redaction(Redaction {
                target: EventId([1; 32]),
                reason: Some(long(MAX_NAME_BYTES + 1)),
            }),
            "reason too long",
        ),
        (
            "pins",
            Content::Pins(vec![EventId([1; 32]); MAX_LIST_LEN]),
            Content::Pins(vec![EventId([1; 32]); MAX_LIST_LEN + 1]),
            "too many pins",
        ),
        (
            "space child via",
            Content::SpaceChild(link(MAX_LIST_LEN)),
            Content::SpaceChild(link(MAX_LIST_LEN + 1)),
            "too many via nodes",
        ),
        (
            "space parent via",
            Content::SpaceParent(link(MAX_LIST_LEN)),
            Content::SpaceParent(link(MAX_LIST_LEN + 1)),
            "too many via nodes",
        ),
        (
            "reaction key",
            react(EventId([1; 32]), &long(MAX_REACTION_BYTES)),
            react(EventId([1; 32]), &long(MAX_REACTION_BYTES + 1)),
            "reaction key too long",
        ),
        (
            "empty reaction key",
            react(EventId([1; 32]), "x"),
            react(EventId([1; 32]), ""),
            "empty reaction key",
        ),
        (
            "room version",
            create(1),
            create(2),
            "unsupported room version",
        ),
    ];
    for (what, at_limit, past_limit, reason) in cases {
        let body_for = |content: Content| {
            if matches!(content, Content::Create(_)) {
                alice.create_body(
                    match content {
                        Content::Create(c) => c,
                        _ => unreachable!(),
                    },
                    T0,
                )
            } else {
                alice.body(chain.room_id(), &[&chain.last()], chain.clock + 1, content)
            }
        };
        assert!(
            body_for(at_limit).sign(&alice.key).is_ok(),
            "{what}: at the limit"
        );
        let body = body_for(past_limit);
        // Refused when decoding a peer's frame, and refused when signing.
        assert_eq!(
            Event::decode(&raw_event(&alice.key, &body)).unwrap_err(),
            Rejection::Limit(reason),
            "{what}"
        );
        assert_eq!(
            body.sign(&alice.key).unwrap_err(),
            Rejection::Limit(reason),
            "{what}: sign"
        );
    }
}

#[test]
fn too_many_parents_and_too_large_frames() {
    let (chain, _, alice, _) = room_with_alice();
    let mut body = alice.body(
        chain.room_id(),
        &[&chain.last()],
        chain.clock + 1,
        text("x"),
    );
    body.parents = (0..=MAX_PARENTS as u8).map(|i| EventId([i; 32])).collect();
    assert_eq!(
        Event::decode(&raw_event(&alice.key, &body)).unwrap_err(),
        Rejection::Limit("too many parents")
    );
    assert_eq!(
        body.clone().sign(&alice.key).unwrap_err(),
        Rejection::Limit("too many parents")
    );
    body.parents.pop();
    let event = body.sign(&alice.key).unwrap();
    assert_eq!(event.parents().len(), MAX_PARENTS);
    // A frame over 64 KiB is refused before anything else, signed or not.
    let body = alice.body(
        chain.room_id(),
        &[&chain.last()],
        chain.clock + 1,
        text(&"x".repeat(MAX_EVENT_BYTES)),
    );
    let frame = raw_event(&alice.key, &body);
    assert_eq!(
        Event::decode(&frame).unwrap_err(),
        Rejection::TooLarge(frame.len())
    );
    assert_eq!(
        body.sign(&alice.key).unwrap_err(),
        Rejection::TooLarge(frame.len())
    );
}

#[test]
fn bad_shapes_are_refused_alike_by_decode_and_sign() {
    let (chain, _, alice, hello) = room_with_alice();
    let join = chain.room.at(1).unwrap().0.clone();
    let base = alice.body(chain.room_id(), &[&hello], chain.clock + 1, text("x"));
    let create_body = alice.create_body(
        Create {
            room_version: 1,
            kind: RoomKind::Room,
            join_rule: JoinRule::Public,
            history_visibility: HistoryVisibility::Shared,
            nonce: [0; 16],
        },
        T0,
    );
    let with = |f: &dyn Fn(&mut EventBody)| {
        let mut body = base.clone();
        f(&mut body);
        body
    };
    let create_with = |f: &dyn Fn(&mut EventBody)| {
        let mut body = create_body.clone();
        f(&mut body);
        body
    };
    let cases: Vec<(&str, EventBody, Rejection)> = vec![
        (
            "empty sender",
            with(&|b| b.sender = String::new()),
            Rejection::Shape("sender localpart"),
        ),
        (
            "uppercase sender",
            with(&|b| b.sender = "Alice".into()),
            Rejection::Shape("sender localpart"),
        ),
        (
            "sender with a colon",
            with(&|b| b.sender = "a:b".into()),
            Rejection::Shape("sender localpart"),
        ),
        (
            "33-byte sender",
            with(&|b| b.sender = "a".repeat(33)),
            Rejection::Shape("sender localpart"),
        ),
        (
            "unsorted parents",
            with(&|b| {
                b.parents = vec![hello.id(), join.id()];
                b.parents.sort();
                b.parents.reverse();
            }),
            Rejection::Shape("parents must be sorted and distinct"),
        ),
        (
            "duplicate parents",
            with(&|b| b.parents = vec![hello.id(), hello.id()]),
            Rejection::Shape("parents must be sorted and distinct"),
        ),
        (
            "no parents",
            with(&|b| b.parents.clear()),
            Rejection::Shape("event has no parents"),
        ),
        (
            "no room",
            with(&|b| b.room = None),
            Rejection::Shape("event names no room"),
        ),
        ("depth 0", with(&|b| b.depth = 0), Rejection::BadDepth),
        (
            "create with a room",
            create_with(&|b| b.room = Some(RoomId([1; 32]))),
            Rejection::Shape("create has no room, no parents and depth 0"),
        ),
        (
            "create with parents",
            create_with(&|b| b.parents = vec![hello.id()]),
            Rejection::Shape("create has no room, no parents and depth 0"),
        ),
        (
            "create at depth 1",
            create_with(&|b| b.depth = 1),
            Rejection::Shape("create has no room, no parents and depth 0"),
        ),
    ];
    for (what, body, want) in cases {
        assert_eq!(
            Event::decode(&raw_event(&alice.key, &body)).unwrap_err(),
            want,
            "{what}: decode"
        );
        assert_eq!(body.sign(&alice.key).unwrap_err(), want, "{what}: sign");
    }
}

#[test]
fn admission_refuses_wrong_room_depth_and_references() {
    let (mut chain, owner, alice, hello) = room_with_alice();
    let room_id = chain.room_id();
    let before = chain.room.len();
    // Wrong room: same bytes otherwise, another room id.
    let other = Chain::new(&alice, RoomKind::Room, JoinRule::Public);
    let elsewhere = alice.on(other.room_id(), &[&other.create], T0 + 5, text("x"));
    assert_eq!(
        chain.room.insert(elsewhere).unwrap_err(),
        InsertError::Rejected(Rejection::WrongRoom)
    );
    assert_eq!(
        chain.room.insert(other.create.clone()).unwrap_err(),
        InsertError::Rejected(Rejection::WrongRoom)
    );
    // Depth must be exactly 1 + the deepest parent.
    for depth in [1, hello.depth(), hello.depth() + 2, u64::MAX] {
        let mut body = alice.body(room_id, &[&hello], T0 + 5, text("x"));
        body.depth = depth;
        let event = body.sign(&alice.key).unwrap();
        assert_eq!(
            chain.room.insert(event).unwrap_err(),
            InsertError::Rejected(Rejection::BadDepth),
            "depth {depth}"
        );
    }
    // References must be ancestors: a message on a branch the author did not see...
    let side = owner.on(room_id, &[&hello], T0 + 6, text("side branch"));
    chain.room.insert(side.clone()).unwrap();
    let before_side = chain.room.len();
    for content in [
        reply("re", side.id()),
        in_thread("t", side.id()),
        react(side.id(), "👍"),
        edit(side.id(), "x"),
        redact(side.id()),
        Content::Pins(vec![hello.id(), side.id()]),
    ] {
        let name = content.type_name();
        let event = owner.on(room_id, &[&hello], T0 + 7, content);
        assert_eq!(
            chain.room.insert(event).unwrap_err(),
            InsertError::Rejected(Rejection::UnknownReference(side.id())),
            "{name}"
        );
    }
    // ...or an id that is in no room at all.
    let ghost = EventId([0x42; 32]);
    let event = owner.on(room_id, &[&side], T0 + 8, react(ghost, "👻"));
    assert_eq!(
        chain.room.insert(event).unwrap_err(),
        InsertError::Rejected(Rejection::UnknownReference(ghost))
    );
    assert_eq!(
        Rejection::UnknownReference(ghost).code(),
        "unknown_reference"
    );
    // With the branch as an ancestor the same reaction is fine.
    let event = owner.on(room_id, &[&side], T0 + 9, react(side.id(), "👍"));
    assert!(chain.room.insert(event).is_ok());
    assert_eq!(chain.room.len(), before_side + 1);
    assert_eq!(before_side, before + 1, "refused events are not stored");
}

#[test]
fn unknown_parents_wait_and_are_not_rejections() {
    let (mut chain, owner, _, hello) = room_with_alice();
    let room_id = chain.room_id();
    let a = owner.on(room_id, &[&hello], T0 + 10, text("a"));
    let b = owner.on(room_id, &[&a], T0 + 11, text("b"));
    let len = chain.room.len();
    assert_eq!(chain.room.missing_parents(&b), vec![a.id()]);
    assert_eq!(
        chain.room.insert(b.clone()).unwrap_err(),
        InsertError::MissingParents(vec![a.id()])
    );
    assert_eq!(chain.room.len(), len, "nothing stored");
    // Fabricated parents never arrive: the event waits forever, harmlessly.
    let ghost = EventId([7; 32]);
    let mut body = owner.body(room_id, &[&hello], T0 + 12, text("ghost child"));
    body.parents = {
        let mut parents = vec![ghost, hello.id()];
        parents.sort();
        parents
    };
    let orphan = body.sign(&owner.key).unwrap();
    assert_eq!(
        chain.room.insert(orphan).unwrap_err(),
        InsertError::MissingParents(vec![ghost])
    );
    assert_eq!(
        InsertError::MissingParents(vec![ghost]).to_string(),
        "1 parent(s) not yet known"
    );
    // Once the parent is in, the child goes in.
    assert!(matches!(
        chain.room.insert(a).unwrap(),
        Inserted::New { accepted: true, .. }
    ));
    assert!(matches!(
        chain.room.insert(b.clone()).unwrap(),
        Inserted::New { accepted: true, .. }
    ));
    assert_eq!(chain.room.insert(b).unwrap(), Inserted::Duplicate);
}

#[test]
fn self_promotion_is_refused() {
    let (mut chain, owner, alice, _) = room_with_alice();
    chain.grant(
        &owner,
        &alice,
        1,
        10,
        Permissions::MANAGE_ROLES | Permissions::KICK,
    );
    chain.push(&owner, role(2, 50, Permissions::ALL));
    let cases: Vec<(&str, Content, AuthError)> = vec![
        (
            "give oneself a higher role",
            roles(&alice.user(), &[1, 2]),
            AuthError::Rank,
        ),
        (
            "raise one's own role's rank",
            role(1, 11, Permissions::MANAGE_ROLES | Permissions::KICK),
            AuthError::Rank,
        ),
        (
            "add a bit to one's own role",
            role(1, 10, Permissions::ALL),
            AuthError::Rank,
        ),
        (
            "a new role above oneself",
            role(3, 11, Permissions::NONE),
            AuthError::Rank,
        ),
        (
            "a new role with bits one lacks",
            role(3, 9, Permissions::BAN),
            AuthError::CannotGrant,
        ),
        (
            "give @everyone bits one lacks",
            everyone(Permissions::ALL),
            AuthError::CannotGrant,
        ),
        (
            "lower a role above oneself",
            role(2, 5, Permissions::ALL),
            AuthError::Rank,
        ),
    ];
    for (what, content, want) in cases {
        assert_eq!(chain.attempt(&alice, content), Err(want), "{what}");
    }
    assert_eq!(chain.room.state().rank(&alice.user()), 10);
    assert_eq!(
        chain.room.state().permissions(&alice.user()),
        Permissions::DEFAULT_EVERYONE | Permissions::MANAGE_ROLES | Permissions::KICK
    );
}

#[test]
fn acting_on_a_higher_rank_is_refused() {
    let (mut chain, owner, alice, _) = room_with_alice();
    let boss = Author::new(3, "boss");
    chain.join(&owner, &boss);
    let all_mod = Permissions::KICK
        | Permissions::BAN
        | Permissions::TIMEOUT
        | Permissions::MANAGE_MESSAGES
        | Permissions::MANAGE_ROLES;
    chain.grant(&owner, &alice, 1, 10, all_mod);
    chain.grant(&owner, &boss, 2, 20, all_mod);
    let boss_message = chain.push(&boss, text("I outrank you"));
    for (what, content) in [
        ("kick", member(&boss.user(), Membership::Leave)),
        ("ban", member(&boss.user(), Membership::Ban)),
        ("timeout", timeout(&boss.user(), chain.clock + 60_000)),
        ("strip roles", roles(&boss.user(), &[])),
        ("redact", redact(boss_message.id())),
        ("edit their role", role(2, 5, all_mod)),
        ("delete their role", delete_role(2, 5)),
    ] {
        assert_eq!(
            chain.attempt(&alice, content),
            Err(AuthError::Rank),
            "{what}"
        );
    }
    // The other way round works.
    assert_eq!(
        chain.attempt(&boss, timeout(&alice.user(), chain.clock + 60_000)),
        Ok(())
    );
}

#[test]
fn banned_sender_is_refused_on_every_branch() {
    let (chain, owner, alice, hello) = room_with_alice();
    let room_id = chain.room_id();
    let mut replica = Replica::new(&chain.create);
    for (event, _) in chain.room.iter().skip(1) {
        replica.deliver(event.clone());
    }
    // The owner bans alice; concurrently (same parent) alice posts.
    let ban = owner.on(
        room_id,
        &[&hello],
        T0 + 100_000,
        member(&alice.user(), Membership::Ban),
    );
    let racing = alice.on(room_id, &[&hello], T0 + 100_001, text("racing the ban"));
    let deeper = alice.on(room_id, &[&racing], T0 + 100_002, text("still talking"));
    let end = replica.room.len();
    assert_eq!(
        replica.room.insert(ban.clone()).unwrap(),
        Inserted::New {
            accepted: true,
            refusal: None,
            position: end,
            changed: vec![],
        }
    );
    // Admitted (at their parents alice is a member) but refused by resolution.
    for event in [&racing, &deeper] {
        let Inserted::New {
            accepted, refusal, ..
        } = replica.room.insert(event.clone()).unwrap()
        else {
            panic!()
        };
        assert!(!accepted);
        assert_eq!(refusal, Some(AuthError::NotMember));
    }
    // Built on the ban: rejected outright, with the reason.
    let after = alice.on(
        room_id,
        &[&ban, &deeper],
        T0 + 100_003,
        text("after the ban"),
    );
    assert_eq!(
        replica.room.insert(after).unwrap_err(),
        InsertError::Rejected(Rejection::Unauthorized(AuthError::NotMember))
    );
    let rejoin = alice.on(
        room_id,
        &[&ban, &deeper],
        T0 + 100_004,
        member(&alice.user(), Membership::Join),
    );
    assert_eq!(
        replica.room.insert(rejoin).unwrap_err().to_string(),
        "not authorized: user is banned from the room"
    );
    // Other members' reactions to her refused message are refused with it.
    let reaction = owner.on(room_id, &[&racing], T0 + 100_005, react(racing.id(), "👍"));
    let Inserted::New {
        accepted, refusal, ..
    } = replica.room.insert(reaction).unwrap()
    else {
        panic!()
    };
    assert!(!accepted);
    assert_eq!(refusal, Some(AuthError::Target("unknown or refused event")));
    assert_eq!(
        replica.room.state().membership(&alice.user()),
        Some(Membership::Ban)
    );
}

#[test]
fn duplicates_and_replays_change_nothing() {
    let (mut chain, _, alice, hello) = room_with_alice();
    let timeline: Vec<_> = chain.room.iter().map(|(e, a)| (e.id(), a)).collect();
    let state = chain.room.state().clone();
    assert_eq!(
        chain.room.insert(hello.clone()).unwrap(),
        Inserted::Duplicate
    );
    let decoded = Event::decode(hello.bytes()).unwrap();
    assert_eq!(chain.room.insert(decoded).unwrap(), Inserted::Duplicate);
    assert_eq!(
        chain.room.insert(chain.create.clone()).unwrap(),
        Inserted::Duplicate
    );
    assert_eq!(
        chain
            .room
            .iter()
            .map(|(e, a)| (e.id(), a))
            .collect::<Vec<_>>(),
        timeline
    );
    assert_eq!(chain.room.state(), &state);
    // Same content, new clock: a different event, not a replay.
    let again = chain.next(&alice, text("hello"));
    assert_ne!(again.id(), hello.id());
    assert_eq!(chain.insert(&again), Ok(()));
}

#[test]
fn rejection_codes_are_distinct() {
    let all = [
        Rejection::TooLarge(1),
        Rejection::Truncated,
        Rejection::UnsupportedVersion(2),
        Rejection::BadKey,
        Rejection::BadSignature,
        Rejection::Malformed("x".into()),
        Rejection::NonCanonical,
        Rejection::Limit("x"),
        Rejection::Shape("x"),
        Rejection::WrongRoom,
        Rejection::BadDepth,
        Rejection::UnknownReference(EventId([0; 32])),
    ];
    let mut codes: Vec<&str> = all.iter().map(Rejection::code).collect();
    for auth_code in ["no_create", "not_member", "rank"] {
        assert!(!codes.contains(&auth_code));
    }
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    for rejection in &all {
        assert!(!rejection.to_string().is_empty());
    }
}

#[test]
fn refused_parents_do_not_poison_children() {
    // Others name refused events as parents; that must not make their own
    // events inadmissible.
    let (chain, owner, alice, hello) = room_with_alice();
    let room_id = chain.room_id();
    let mut room = Room::load(
        chain.create.clone(),
        chain.room.iter().map(|(e, _)| e.clone()),
    )
    .unwrap()
    .0;
    let ban = owner.on(
        room_id,
        &[&hello],
        T0 + 1_000_000,
        member(&alice.user(), Membership::Ban),
    );
    let racing = alice.on(room_id, &[&hello], T0 + 1_000_001, text("racing"));
    room.insert(ban.clone()).unwrap();
    room.insert(racing.clone()).unwrap();
    assert!(!room.is_accepted(&racing.id()));
    let merge = owner.on(room_id, &[&ban, &racing], T0 + 1_000_002, text("merging"));
    assert!(matches!(
        room.insert(merge.clone()).unwrap(),
        Inserted::New { accepted: true, .. }
    ));
    assert_eq!(room.heads(), vec![merge.id()]);
}
