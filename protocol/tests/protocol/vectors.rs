//! Test vectors: `protocol/vectors/events.json` (linked from docs/spec).
//!
//! The file is the generator's output, checked in. Run with
//! `SPACES_WRITE_VECTORS=1` to rewrite it (and the annotated breakdown in
//! `protocol/vectors/README.md`) after a deliberate wire change; otherwise the
//! tests only read and compare. The rebuild test does not use the generator:
//! it takes each vector's seed and JSON fields, signs, and requires the exact
//! bytes, id and signature in the file.

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use spaces_protocol::content::*;
use spaces_protocol::event::{ID_CONTEXT, SIGN_CONTEXT};
use spaces_protocol::{Event, EventBody, NodeKey, Permissions, RoleId, Room, RoomId, UserId};

use super::json::{body_from_json, body_to_json};
use super::support::*;

const WRITE_ENV: &str = "SPACES_WRITE_VECTORS";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn read_vectors() -> Value {
    let text = std::fs::read_to_string(vectors_dir().join("events.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn seed_of(n: u8) -> [u8; 32] {
    [n; 32]
}

struct Valid {
    name: &'static str,
    description: &'static str,
    seed: [u8; 32],
    body: EventBody,
}

/// The valid vectors: one room, in order, each accepted.
fn valid_vectors() -> Vec<(Valid, Event)> {
    let alice = NodeKey::from_seed(seed_of(1));
    let bob = NodeKey::from_seed(seed_of(2));
    let alice_id = UserId::new("alice", alice.node_id()).unwrap();
    let bob_id = UserId::new("bob", bob.node_id()).unwrap();
    let t0 = 1_800_000_000_000u64;
    let mut out: Vec<(Valid, Event)> = Vec::new();
    let push =
        |name, description, seed: [u8; 32], body: EventBody, out: &mut Vec<(Valid, Event)>| {
            let event = body.clone().sign(&NodeKey::from_seed(seed)).unwrap();
            out.push((
                Valid {
                    name,
                    description,
                    seed,
                    body,
                },
                event,
            ));
        };
    let create = EventBody {
        origin: alice.node_id(),
        room: None,
        sender: "alice".into(),
        parents: vec![],
        depth: 0,
        origin_ts: t0,
        content: Content::Create(Create {
            room_version: 1,
            kind: RoomKind::Room,
            join_rule: JoinRule::Public,
            history_visibility: HistoryVisibility::Shared,
            nonce: core::array::from_fn(|i| i as u8),
        }),
    };
    push(
        "create",
        "alice creates a public room; its id is the room id",
        seed_of(1),
        create,
        &mut out,
    );
    let room = RoomId(out[0].1.id().0);
    let on = |out: &Vec<(Valid, Event)>,
              parents: &[usize],
              key: &NodeKey,
              sender: &str,
              ts: u64,
              content| {
        let mut ids: Vec<_> = parents.iter().map(|&i| out[i].1.id()).collect();
        ids.sort();
        EventBody {
            origin: key.node_id(),
            room: Some(room),
            sender: sender.into(),
            parents: ids,
            depth: parents.iter().map(|&i| out[i].1.depth()).max().unwrap() + 1,
            origin_ts: ts,
            content,
        }
    };
    let body = on(
        &out,
        &[0],
        &bob,
        "bob",
        t0 + 1000,
        member(&bob_id, Membership::Join),
    );
    push(
        "join",
        "bob, on another node, joins the public room",
        seed_of(2),
        body,
        &mut out,
    );
    let body = on(
        &out,
        &[1],
        &alice,
        "alice",
        t0 + 2000,
        text("Hello **world**"),
    );
    push(
        "message",
        "a plain text message",
        seed_of(1),
        body,
        &mut out,
    );
    let hello = out[2].1.id();
    let body = on(
        &out,
        &[2],
        &bob,
        "bob",
        t0 + 3000,
        Content::Message(Message {
            body: "@alice hi!".into(),
            mentions: Mentions {
                users: vec![alice_id.clone()],
                roles: vec![],
                room: false,
            },
            reply_to: Some(hello),
            thread: None,
            attachments: vec![],
        }),
    );
    push(
        "reply_with_mention",
        "bob replies to alice's message and mentions her",
        seed_of(2),
        body,
        &mut out,
    );
    let body = on(
        &out,
        &[3],
        &alice,
        "alice",
        t0 + 4000,
        Content::Role(RoleDef {
            role: RoleId(1),
            name: "moderator".into(),
            rank: 10,
            permissions: Permissions::KICK | Permissions::BAN | Permissions::MANAGE_MESSAGES,
            color: Some(0x3498db),
            deleted: false,
        }),
    );
    push(
        "role",
        "alice defines role 1, `moderator`, rank 10",
        seed_of(1),
        body,
        &mut out,
    );
    let body = on(&out, &[4], &alice, "alice", t0 + 5000, roles(&bob_id, &[1]));
    push(
        "member_roles",
        "alice makes bob a moderator",
        seed_of(1),
        body,
        &mut out,
    );
    let body = on(&out, &[5], &bob, "bob", t0 + 6000, react(hello, "👍"));
    push(
        "reaction",
        "bob reacts to alice's message",
        seed_of(2),
        body,
        &mut out,
    );
    let body = on(
        &out,
        &[6],
        &alice,
        "alice",
        t0 + 7000,
        edit(hello, "Hello, **world**!"),
    );
    push(
        "edit",
        "alice edits her own message",
        seed_of(1),
        body,
        &mut out,
    );
    let reaction = out[6].1.id();
    let body = on(&out, &[7], &bob, "bob", t0 + 8000, redact(reaction));
    push(
        "redaction",
        "bob redacts his own reaction",
        seed_of(2),
        body,
        &mut out,
    );
    let body = on(
        &out,
        &[8],
        &alice,
        "alice",
        t0 + 9000,
        Content::Message(Message {
            body: "a picture".into(),
            mentions: Mentions::default(),
            reply_to: None,
            thread: Some(hello),
            attachments: vec![attachment(&alice)],
        }),
    );
    push(
        "thread_attachment",
        "alice posts a picture in the thread rooted at her first message",
        seed_of(1),
        body,
        &mut out,
    );
    let body = on(
        &out,
        &[9],
        &alice,
        "alice",
        t0 + 10_000,
        timeout(&bob_id, t0 + 70_000),
    );
    push(
        "timeout",
        "alice times bob out for a minute",
        seed_of(1),
        body,
        &mut out,
    );
    out
}

/// 32 bytes that are not an ed25519 point: the first `y = i` (little-endian)
/// with no matching `x`.
fn not_a_point() -> [u8; 32] {
    (2u8..)
        .map(|i| {
            let mut bytes = [0u8; 32];
            bytes[0] = i;
            bytes
        })
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .unwrap()
}

/// Overlong LEB128: `value` (< 128) as two bytes.
fn overlong(value: u8) -> [u8; 2] {
    assert!(value < 0x80);
    [value | 0x80, 0x00]
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap()
}

struct Invalid {
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    /// Zero bytes appended when the frame is used (keeps the file small).
    zero_padded_to: Option<usize>,
    after: Vec<&'static str>,
    code: &'static str,
}

fn invalid_vectors(valid: &[(Valid, Event)]) -> Vec<Invalid> {
    let wire = |name: &str| {
        valid
            .iter()
            .find(|(v, _)| v.name == name)
            .unwrap()
            .1
            .bytes()
            .to_vec()
    };
    let event = |name: &str| {
        valid
            .iter()
            .find(|(v, _)| v.name == name)
            .unwrap()
            .1
            .clone()
    };
    let alice = NodeKey::from_seed(seed_of(1));
    let bob = NodeKey::from_seed(seed_of(2));
    let carol = NodeKey::from_seed(seed_of(3));
    let (create, join, message) = (event("create"), event("join"), event("message"));
    let room = create.room_id();
    let bob_on = |parents: &[&Event], ts: u64, content: Content| {
        let mut ids: Vec<_> = parents.iter().map(|e| e.id()).collect();
        ids.sort();
        EventBody {
            origin: bob.node_id(),
            room: Some(room),
            sender: "bob".into(),
            parents: ids,
            depth: parents.iter().map(|e| e.depth()).max().unwrap() + 1,
            origin_ts: ts,
            content,
        }
    };
    let t = 1_800_000_100_000u64;
    let mut out = Vec::new();
    let mut add = |name, description, bytes, after: &[&'static str], code| {
        out.push(Invalid {
            name,
            description,
            bytes,
            zero_padded_to: None,
            after: after.to_vec(),
            code,
        });
    };

    add(
        "truncated",
        "the create vector cut to 96 bytes: shorter than version + key + signature",
        wire("create")[..96].to_vec(),
        &[],
        "truncated",
    );
    let mut bytes = wire("create");
    bytes[0] = 2;
    add(
        "unsupported_version",
        "the create vector with version byte 2",
        bytes,
        &[],
        "unsupported_version",
    );
    let mut bytes = wire("create");
    bytes[1..33].copy_from_slice(&not_a_point());
    add(
        "bad_key",
        "the create vector with an origin that is not a curve point",
        bytes,
        &[],
        "bad_key",
    );
    let mut bytes = wire("create");
    *bytes.last_mut().unwrap() ^= 1;
    add(
        "bad_signature",
        "the create vector with one signature bit flipped",
        bytes,
        &[],
        "bad_signature",
    );
    let mut bytes = wire("join");
    bytes[40] ^= 0x10;
    add(
        "tampered_body",
        "the join vector with one bit of the room id flipped",
        bytes,
        &[],
        "bad_signature",
    );
    // Identity point as key, R = identity, s = 0: [s]B = R + [k]A holds for
    // every message, so a lenient verifier accepts it. Strict verification
    // refuses small-order keys.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut small = bob_on(&[&create], t, text("forged"));
    small.origin = ed25519_dalek::VerifyingKey::from_bytes(&identity)
        .map(|k| spaces_protocol::NodeId(k.to_bytes()))
        .unwrap();
    let mut bytes = signed_part(&small);
    bytes.extend_from_slice(&identity);
    bytes.extend_from_slice(&[0u8; 32]);
    add(
        "small_order_key",
        "origin is the identity point and the signature (R = identity, s = 0) fits any message",
        bytes,
        &[],
        "bad_signature",
    );
    let mut signed = signed_part(&bob_on(
        &[&create],
        t,
        member(
            &UserId::new("bob", bob.node_id()).unwrap(),
            Membership::Join,
        ),
    ));
    signed.push(0);
    add(
        "trailing_bytes",
        "a correctly signed join with one extra byte after the body",
        frame(&bob, &signed),
        &[],
        "malformed",
    );
    let mut signed = signed_part(&bob_on(&[&create], t, text("x")));
    // The content's variant index is the first byte after origin_ts: make it 99.
    let body = bob_on(&[&create], t, text("x"));
    let offset = 1
        + encode(&body.origin).len()
        + encode(&body.room).len()
        + encode(&body.sender).len()
        + encode(&body.parents).len()
        + encode(&body.depth).len()
        + encode(&body.origin_ts).len();
    assert_eq!(signed[offset], 15, "Message is variant 15");
    signed[offset] = 99;
    add(
        "unknown_variant",
        "a correctly signed body whose content variant is 99",
        frame(&bob, &signed),
        &[],
        "malformed",
    );
    // Depth 1 written as two LEB128 bytes: decodes, but is not the encoding.
    let mut signed = vec![1u8];
    signed.extend(encode(&body.origin));
    signed.extend(encode(&body.room));
    signed.extend(encode(&body.sender));
    signed.extend(encode(&body.parents));
    signed.extend(overlong(1));
    signed.extend(encode(&body.origin_ts));
    signed.extend(encode(&body.content));
    add(
        "non_canonical",
        "depth 1 encoded in two bytes (0x81 0x00)",
        frame(&bob, &signed),
        &[],
        "non_canonical",
    );
    let body = bob_on(&[&message], t, react(message.id(), &"x".repeat(65)));
    add(
        "limit",
        "a 65-byte reaction key (the limit is 64)",
        raw_event(&bob, &body),
        &[],
        "limit",
    );
    let mut body = bob_on(&[&join, &message], t, text("x"));
    body.parents.reverse();
    add(
        "unsorted_parents",
        "two parents in descending order",
        raw_event(&bob, &body),
        &[],
        "shape",
    );
    let mut body = bob_on(&[&create], t, text("x"));
    body.sender = "Bob".into();
    add(
        "bad_sender",
        "an uppercase localpart",
        raw_event(&bob, &body),
        &[],
        "shape",
    );
    let mut body = bob_on(&[&create], t, text("x"));
    body.room = Some(RoomId([7; 32]));
    add(
        "wrong_room",
        "bob's message names another room",
        raw_event(&bob, &body),
        &[],
        "wrong_room",
    );
    let mut body = bob_on(&[&create], t, text("x"));
    body.depth = 7;
    add(
        "bad_depth",
        "depth 7 on the create event (must be 1)",
        raw_event(&bob, &body),
        &[],
        "bad_depth",
    );
    let other = event("thread_attachment");
    let body = bob_on(&[&join], t, react(other.id(), "👍"));
    add(
        "unknown_reference",
        "a reaction to an event that is not among its ancestors",
        raw_event(&bob, &body),
        &[
            "join",
            "message",
            "reply_with_mention",
            "role",
            "member_roles",
            "reaction",
            "edit",
            "redaction",
            "thread_attachment",
        ],
        "unknown_reference",
    );
    let mut body = bob_on(&[&create], t, text("who am I?"));
    body.origin = carol.node_id();
    body.sender = "carol".into();
    add(
        "not_member",
        "carol, never joined, sends a message",
        raw_event(&carol, &body),
        &[],
        "not_member",
    );
    let body = bob_on(&[&join], t, Content::Topic("mine now".into()));
    add(
        "missing_permission",
        "bob sets the topic without MANAGE_ROOM",
        raw_event(&bob, &body),
        &["join"],
        "missing_permission",
    );
    let alice_id = UserId::new("alice", alice.node_id()).unwrap();
    let body = bob_on(
        &[&event("member_roles")],
        t,
        member(&alice_id, Membership::Ban),
    );
    add(
        "rank",
        "bob, a rank-10 moderator, bans alice, the owner",
        raw_event(&bob, &body),
        &[
            "join",
            "message",
            "reply_with_mention",
            "role",
            "member_roles",
        ],
        "rank",
    );
    out.push(Invalid {
        name: "too_large",
        description: "65,537 bytes: a version byte and zeros",
        bytes: vec![1],
        zero_padded_to: Some(65_537),
        after: vec![],
        code: "too_large",
    });
    out
}

fn generate() -> Value {
    let valid = valid_vectors();
    let invalid = invalid_vectors(&valid);
    json!({
        "about": "Spaces event test vectors; see protocol/vectors/README.md and docs/spec/encoding.md",
        "id_context": ID_CONTEXT,
        "sign_context_hex": hex(SIGN_CONTEXT),
        "valid": valid.iter().map(|(v, event)| json!({
            "name": v.name,
            "description": v.description,
            "seed": hex(&v.seed),
            "node": event.origin().to_string(),
            "sender": event.sender().to_string(),
            "body": body_to_json(&v.body),
            "wire": hex(event.bytes()),
            "id": event.id().to_string(),
            "signature": hex(&event.bytes()[event.bytes().len() - 64..]),
        })).collect::<Vec<_>>(),
        "invalid": invalid.iter().map(|v| json!({
            "name": v.name,
            "description": v.description,
            "hex": hex(&v.bytes),
            "zero_padded_to": v.zero_padded_to,
            "after": v.after,
            "code": v.code,
        })).collect::<Vec<_>>(),
    })
}

/// The annotated breakdown of the `join` vector, for the README.
fn breakdown() -> String {
    let valid = valid_vectors();
    let (v, event) = valid.iter().find(|(v, _)| v.name == "join").unwrap();
    let body = &v.body;
    let Content::Member(m) = &body.content else {
        unreachable!()
    };
    let mut rows: Vec<(String, Vec<u8>)> = vec![("version".into(), vec![1])];
    rows.push(("origin: node key (32 bytes)".into(), encode(&body.origin)));
    rows.push(("room: Some".into(), vec![1]));
    rows.push(("room id (32 bytes)".into(), encode(&body.room.unwrap())));
    rows.push((
        format!("sender: length {}", body.sender.len()),
        encode(&(body.sender.len() as u32)),
    ));
    rows.push((
        format!("sender: {:?}", body.sender),
        body.sender.as_bytes().to_vec(),
    ));
    rows.push((
        format!("parents: count {}", body.parents.len()),
        encode(&(body.parents.len() as u32)),
    ));
    rows.push((
        "parents[0]: the create event".into(),
        encode(&body.parents[0]),
    ));
    rows.push((
        format!("depth: {} (varint)", body.depth),
        encode(&body.depth),
    ));
    rows.push((
        format!("origin_ts: {} (varint)", body.origin_ts),
        encode(&body.origin_ts),
    ));
    rows.push(("content: variant 1 = Member".into(), vec![1]));
    rows.push((
        format!("target.localpart: length {}", m.target.localpart().len()),
        vec![m.target.localpart().len() as u8],
    ));
    rows.push((
        format!("target.localpart: {:?}", m.target.localpart()),
        m.target.localpart().as_bytes().to_vec(),
    ));
    rows.push(("target.node (32 bytes)".into(), encode(&m.target.node())));
    rows.push(("membership: variant 0 = Join".into(), vec![0]));
    rows.push(("reason: None".into(), vec![0]));
    rows.push((
        "signature: ed25519 over SIGN_CONTEXT ‖ id".into(),
        event.bytes()[event.bytes().len() - 64..].to_vec(),
    ));
    let total: Vec<u8> = rows.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(
        total,
        event.bytes(),
        "the breakdown must cover the frame exactly"
    );
    let mut out = String::from(
        "```text\noffset  len  bytes                                                             field\n",
    );
    let mut offset = 0;
    for (field, bytes) in rows {
        for (i, chunk) in bytes.chunks(32).enumerate() {
            let label = if i == 0 { field.as_str() } else { "  …" };
            let len = if i == 0 {
                bytes.len().to_string()
            } else {
                String::new()
            };
            out.push_str(
                &format!(
                    "{:<7} {:<4} {:<65} {}\n",
                    offset + i * 32,
                    len,
                    hex(chunk),
                    label
                )
                .replace(" \n", "\n"),
            );
        }
        offset += bytes.len();
    }
    out.push_str(&format!("{offset:<7} (end)\n\nid = {}\n```\n", event.id()));
    out
}

const BREAKDOWN_START: &str = "<!-- breakdown:start (generated by tests/protocol/vectors.rs) -->\n";
const BREAKDOWN_END: &str = "<!-- breakdown:end -->";

#[test]
fn vectors_file_matches_the_generator() {
    let generated = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    let readme_path = vectors_dir().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find(BREAKDOWN_START)
        .expect("README has the breakdown markers")
        + BREAKDOWN_START.len();
    let end = readme.find(BREAKDOWN_END).unwrap();
    let fresh_readme = format!("{}{}{}", &readme[..start], breakdown(), &readme[end..]);
    if std::env::var_os(WRITE_ENV).is_some() {
        std::fs::write(vectors_dir().join("events.json"), &generated).unwrap();
        std::fs::write(&readme_path, &fresh_readme).unwrap();
    }
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let on_disk = std::fs::read_to_string(vectors_dir().join("events.json")).unwrap();
    assert!(
        on_disk == generated,
        "protocol/vectors/events.json is stale: the wire format changed. If deliberate, rerun with {WRITE_ENV}=1 and update docs/spec"
    );
    assert!(
        readme == fresh_readme,
        "protocol/vectors/README.md breakdown is stale; rerun with {WRITE_ENV}=1"
    );
}

#[test]
fn valid_vectors_rebuild_from_their_fields() {
    let vectors = read_vectors();
    assert_eq!(vectors["id_context"], ID_CONTEXT);
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 5);
    for v in valid {
        let name = v["name"].as_str().unwrap();
        let seed: [u8; 32] = unhex(v["seed"].as_str().unwrap()).try_into().unwrap();
        let key = NodeKey::from_seed(seed);
        assert_eq!(key.node_id().to_string(), v["node"], "{name}: node id text");
        let body = body_from_json(&v["body"]);
        // The JSON form is lossless.
        assert_eq!(body_to_json(&body), v["body"], "{name}: JSON round trip");
        let event = body.clone().sign(&key).unwrap();
        let wire = v["wire"].as_str().unwrap();
        assert_eq!(hex(event.bytes()), wire, "{name}: wire bytes");
        assert_eq!(event.id().to_string(), v["id"], "{name}: event id");
        assert_eq!(
            hex(&event.bytes()[event.bytes().len() - 64..]),
            v["signature"],
            "{name}: signature"
        );
        assert_eq!(event.sender().to_string(), v["sender"], "{name}: sender");
        // The id and signature follow from the spec's definitions alone.
        let bytes = unhex(wire);
        let signed = &bytes[..bytes.len() - 64];
        assert_eq!(
            id_of(signed),
            event.id(),
            "{name}: id = BLAKE3-derive-key(ID_CONTEXT, signed)"
        );
        assert_eq!(
            hex(&signature_of(&key, signed)),
            v["signature"],
            "{name}: ed25519(SIGN_CONTEXT ‖ id)"
        );
        // Decoding gives back the fields.
        let decoded = Event::decode(&bytes).unwrap();
        assert_eq!(decoded.body(), &body, "{name}: decoded body");
        assert_eq!(decoded.id(), event.id());
        assert_eq!(Event::decode_trusted(&bytes).unwrap().id(), event.id());
    }
}

#[test]
fn valid_vectors_form_one_accepted_room() {
    let vectors = read_vectors();
    let valid = vectors["valid"].as_array().unwrap();
    let events: Vec<Event> = valid
        .iter()
        .map(|v| Event::decode(&unhex(v["wire"].as_str().unwrap())).unwrap())
        .collect();
    assert!(matches!(events[0].content(), Content::Create(_)));
    let mut room = Room::new(events[0].clone()).unwrap();
    assert_eq!(
        room.room_id().to_string()[1..],
        events[0].id().to_string()[1..],
        "room id = create id"
    );
    for (event, v) in events.iter().zip(valid).skip(1) {
        let result = room.insert(event.clone());
        assert_eq!(insert_code(&result), "accepted", "{}", v["name"]);
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.content().type_name()).collect();
    for needed in ["create", "member", "message", "role", "member_roles"] {
        assert!(kinds.contains(&needed), "vectors lack a {needed} event");
    }
    let Content::Message(reply) = events[3].content() else {
        panic!("vector 3 is the reply")
    };
    assert!(
        reply.reply_to.is_some() && !reply.mentions.users.is_empty(),
        "the reply vector has a reply and a mention"
    );
}

#[test]
fn invalid_vectors_fail_with_their_code() {
    let vectors = read_vectors();
    let valid: Vec<(String, Event)> = vectors["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                Event::decode(&unhex(v["wire"].as_str().unwrap())).unwrap(),
            )
        })
        .collect();
    let invalid = vectors["invalid"].as_array().unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for v in invalid {
        let name = v["name"].as_str().unwrap();
        let mut bytes = unhex(v["hex"].as_str().unwrap());
        if let Some(len) = v["zero_padded_to"].as_u64() {
            bytes.resize(len as usize, 0);
        }
        let code = v["code"].as_str().unwrap();
        codes.insert(code);
        let got = match Event::decode(&bytes) {
            Err(rejection) => rejection.code(),
            Ok(event) => {
                let mut room = Room::new(valid[0].1.clone()).unwrap();
                for after in v["after"].as_array().unwrap() {
                    let (_, e) = valid
                        .iter()
                        .find(|(n, _)| n == after.as_str().unwrap())
                        .unwrap();
                    assert_eq!(
                        insert_code(&room.insert(e.clone())),
                        "accepted",
                        "{name}: context {after}"
                    );
                }
                insert_code(&room.insert(event))
            }
        };
        assert_eq!(got, code, "{name}: {}", v["description"]);
    }
    // One vector per rejection kind `Event::decode` and `Room::insert` can give.
    for kind in [
        "too_large",
        "truncated",
        "unsupported_version",
        "bad_key",
        "bad_signature",
        "malformed",
        "non_canonical",
        "limit",
        "shape",
        "wrong_room",
        "bad_depth",
        "unknown_reference",
        "not_member",
        "missing_permission",
        "rank",
    ] {
        assert!(codes.contains(kind), "no invalid vector for {kind}");
    }
}

#[test]
fn small_order_vector_fools_a_lenient_verifier() {
    // Shows why decoding must verify strictly: this frame passes plain
    // RFC 8032 verification.
    let vectors = read_vectors();
    let v = vectors["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "small_order_key")
        .unwrap();
    let bytes = unhex(v["hex"].as_str().unwrap());
    let (signed, signature) = bytes.split_at(bytes.len() - 64);
    let key = VerifyingKey::from_bytes(signed[1..33].try_into().unwrap()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(signature).unwrap();
    let mut message = SIGN_CONTEXT.to_vec();
    message.extend_from_slice(&id_of(signed).0);
    use ed25519_dalek::Verifier;
    assert!(
        key.verify(&message, &signature).is_ok(),
        "lenient verification accepts the forgery"
    );
    assert!(key.verify_strict(&message, &signature).is_err());
    assert_eq!(Event::decode(&bytes).unwrap_err().code(), "bad_signature");
}

#[test]
fn content_variant_indices_are_frozen() {
    // The variant index is on the wire: appending is fine, reordering is not.
    let node = NodeKey::from_seed(seed_of(1));
    let user = UserId::new("a", node.node_id()).unwrap();
    let e = spaces_protocol::EventId([0; 32]);
    let link = SpaceLink {
        room: RoomId([0; 32]),
        via: vec![],
        present: true,
    };
    let create = Create {
        room_version: 1,
        kind: RoomKind::Room,
        join_rule: JoinRule::Public,
        history_visibility: HistoryVisibility::Shared,
        nonce: [0; 16],
    };
    let cases: Vec<(Content, u8)> = vec![
        (Content::Create(create), 0),
        (member(&user, Membership::Join), 1),
        (role(1, 1, Permissions::NONE), 2),
        (roles(&user, &[]), 3),
        (timeout(&user, 0), 4),
        (Content::Name(String::new()), 5),
        (Content::Topic(String::new()), 6),
        (Content::Avatar(None), 7),
        (Content::JoinRule(JoinRule::Public), 8),
        (Content::HistoryVisibility(HistoryVisibility::Shared), 9),
        (Content::Slowmode(Slowmode { seconds: 0 }), 10),
        (Content::Encryption(Encryption::Mls128X25519), 11),
        (Content::Pins(vec![]), 12),
        (Content::SpaceChild(link.clone()), 13),
        (Content::SpaceParent(link), 14),
        (text(""), 15),
        (react(e, "x"), 16),
        (edit(e, ""), 17),
        (redact(e), 18),
        (Content::ModerationPolicy(ModerationPolicy::default()), 19),
        (
            Content::BanEntry(BanEntry {
                target: BanTarget::Node(node.node_id()),
                recommendation: Recommendation::Ban,
                reason: String::new(),
                present: true,
            }),
            20,
        ),
        (Content::BanLists(BanLists::default()), 21),
        (Content::AutoMod(AutoMod::default()), 22),
    ];
    for (content, index) in cases {
        assert_eq!(encode(&content)[0], index, "{}", content.type_name());
    }
    // A policy's bytes: one rule, label "threat", 800, Hide.
    let policy = Content::ModerationPolicy(ModerationPolicy {
        rules: vec![PolicyRule {
            label: "threat".into(),
            threshold_milli: 800,
            action: PolicyAction::Hide,
        }],
    });
    assert_eq!(
        encode(&policy),
        [&[19, 1, 6][..], b"threat", &[0xa0, 0x06, 2]].concat(),
        "moderation_policy: variant, rule count, label, threshold varint, action"
    );
    assert_eq!(
        encode(&[
            PolicyAction::Allow,
            PolicyAction::Flag,
            PolicyAction::Hide,
            PolicyAction::Block
        ]),
        [0, 1, 2, 3]
    );
    // A ban entry's bytes: a pattern "@s*", recommendation Ban, reason
    // "x", present.
    let entry = Content::BanEntry(BanEntry {
        target: BanTarget::Pattern("@s*".into()),
        recommendation: Recommendation::Ban,
        reason: "x".into(),
        present: true,
    });
    assert_eq!(
        encode(&entry),
        [&[20, 2, 3][..], b"@s*", &[0, 1], b"x", &[1]].concat(),
        "ban_entry: variant, target variant, pattern, recommendation, reason, present"
    );
    assert_eq!(
        encode(&Content::BanLists(BanLists {
            lists: vec![RoomId([7; 32])]
        })),
        [&[21, 1][..], &[7; 32]].concat(),
        "ban_lists: variant, count, room ids"
    );
    assert_eq!(
        encode(&Content::AutoMod(AutoMod {
            keywords: vec!["x".into()],
            regexes: vec![],
            max_links: 2,
            max_mentions: 300,
        })),
        [&[22, 1, 1][..], b"x", &[0, 2, 0xac, 0x02]].concat(),
        "automod: variant, keywords, regexes, max_links, max_mentions (varints)"
    );
    let enums: [(Vec<u8>, &[u8]); 4] = [
        (
            encode(&[RoomKind::Room, RoomKind::Space, RoomKind::Direct]),
            &[0, 1, 2],
        ),
        (
            encode(&[JoinRule::Public, JoinRule::Invite, JoinRule::Knock]),
            &[0, 1, 2],
        ),
        (
            encode(&[
                HistoryVisibility::WorldReadable,
                HistoryVisibility::Shared,
                HistoryVisibility::Invited,
                HistoryVisibility::Joined,
            ]),
            &[0, 1, 2, 3],
        ),
        (
            encode(&[
                Membership::Join,
                Membership::Invite,
                Membership::Leave,
                Membership::Knock,
                Membership::Ban,
            ]),
            &[0, 1, 2, 3, 4],
        ),
    ];
    for (got, want) in enums {
        assert_eq!(got, want);
    }
    // Permission bits are on the wire too.
    let bits: Vec<(&str, u64)> = Permissions::ALL
        .names()
        .map(|n| (n, Permissions::from_name(n).unwrap().0))
        .collect();
    let want: Vec<(&str, u64)> = [
        "send_messages",
        "add_reactions",
        "attach_files",
        "mention_room",
        "invite",
        "kick",
        "ban",
        "timeout",
        "manage_messages",
        "manage_room",
        "manage_roles",
        "bypass_slowmode",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| (*n, 1u64 << i))
    .collect();
    assert_eq!(bits, want);
}

#[test]
fn id_text_vectors() {
    // Text forms of ids for fixed keys: prefix + 52 lowercase base32 characters.
    let key = NodeKey::from_seed([0; 32]);
    // RFC 8032 test 1's secret key is 9d61…; the all-zero seed's public key is
    // 3b6a27bc…, the value every ed25519 implementation agrees on.
    assert_eq!(
        hex(&key.node_id().0),
        "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
    );
    assert_eq!(
        key.node_id().to_string(),
        "~hnvcppgow2sc2yvdvdicu3ynonsteflxdxrehjr2ybekdc2z3iuq"
    );
    let user = UserId::new("alice", key.node_id()).unwrap();
    assert_eq!(
        user.to_string(),
        "@alice:~hnvcppgow2sc2yvdvdicu3ynonsteflxdxrehjr2ybekdc2z3iuq"
    );
    assert_eq!(
        spaces_protocol::EventId([0xff; 32]).to_string(),
        format!("${}", "7".repeat(51) + "q")
    );
    assert_eq!(RoomId([0; 32]).to_string(), format!("!{}", "a".repeat(52)));
}

#[test]
fn spec_examples_match() {
    // docs/spec/identities.md#node-key-and-node-id and encoding.md#example:
    // if one of these fails, the spec and the code disagree.
    let key = NodeKey::from_seed([1; 32]);
    assert_eq!(
        hex(&key.node_id().0),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(
        key.node_id().to_string(),
        "~rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa"
    );
    let create = EventBody {
        origin: key.node_id(),
        room: None,
        sender: "alice".into(),
        parents: vec![],
        depth: 0,
        origin_ts: 1_700_000_000_000,
        content: Content::Create(Create {
            room_version: 1,
            kind: RoomKind::Room,
            join_rule: JoinRule::Invite,
            history_visibility: HistoryVisibility::Shared,
            nonce: [0xab; 16],
        }),
    }
    .sign(&key)
    .unwrap();
    assert_eq!(create.bytes().len(), 133);
    assert_eq!(
        hex(create.bytes()),
        concat!(
            "01",
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
            "00",
            "05616c696365",
            "00",
            "00",
            "80d095ffbc31",
            "00",
            "01000101",
            "abababababababababababababababab",
            "c9b77534473f7e032ff84470e238a96488e3180fad108a9bbb9f27fc5ac44b4f",
            "d911d1e333ac46021ea8860e480de1280b7de672e583e058815cfb50d279d301",
        )
    );
    assert_eq!(
        create.id().to_string(),
        "$2snwwzivwkfsj5phggmn3puvagtbcf2zfksqzvlhkf5fbqoyo3dq"
    );
    assert_eq!(
        create.room_id().to_string(),
        "!2snwwzivwkfsj5phggmn3puvagtbcf2zfksqzvlhkf5fbqoyo3dq"
    );
    let user = UserId::new("alice", key.node_id()).unwrap();
    assert_eq!(
        user.to_string(),
        "@alice:~rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa"
    );
    // identities.md#base32: the 52nd character of a 32-byte id is `a` or `q`.
    let text = create.id().to_string();
    for c in "abcdefghijklmnopqrstuvwxyz234567".chars() {
        let candidate = format!("{}{c}", &text[..52]);
        assert_eq!(
            candidate.parse::<spaces_protocol::EventId>().is_ok(),
            c == 'a' || c == 'q',
            "{candidate}"
        );
    }
}
