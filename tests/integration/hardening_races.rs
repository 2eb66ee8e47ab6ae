//! Check-then-act races: rules that one lock or one atomic store operation
//! decides, each driven by concurrent requests against a real node.
//!
//! - the first account is the only admin (the store, in one transaction);
//! - one direct room per pair (the engine, under the pair's lock);
//! - one reaction per user, event and key (the engine, under the room lock);
//! - an invite link's uses are never exceeded, and a failed admission gives
//!   its use back (the store's compare-and-swap, no mutex).

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Node, PASSWORD, User, node};

/// How many requests race in each test: far more than the node has worker
/// threads, so they truly overlap.
const N_RACERS: usize = 16;

/// Rooms the DM racer is in besides: more than tokio's cooperative budget
/// (128), so a lookup that locked every one of them would yield midway.
const N_OTHER_ROOMS: usize = 160;

/// Open registration with room for 50 sign-ups at once, and fast sends.
const MANY_SIGN_UPS: &[(&str, &str)] = &[
    ("SPACES__LIMITS__REGISTRATIONS_PER_SEC", "1000"),
    ("SPACES__LIMITS__REGISTRATION_BURST", "1000"),
    // Every sign-up comes from 127.0.0.1: lift the per-address limit too.
    ("SPACES__LIMITS__REGISTRATIONS_PER_IP_PER_HOUR", "100000"),
    ("SPACES__LIMITS__REGISTRATION_IP_BURST", "1000"),
    ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
    ("SPACES__LIMITS__SEND_BURST", "100000"),
];

#[tokio::test]
async fn fifty_concurrent_first_registrations_make_exactly_one_admin() {
    let (_dir, node) = node(MANY_SIGN_UPS).await;
    warm_up(&node, 50).await;
    let replies = join_all((0..50).map(|i| {
        node.post(
            "/api/v1/auth/register",
            None,
            json!({ "username": format!("user{i}"), "password": PASSWORD }),
        )
    }))
    .await;
    let mut users = Vec::new();
    let mut n_admins = 0;
    for (i, reply) in replies.into_iter().enumerate() {
        let tokens = reply.expect(201);
        if tokens["is_admin"] == true {
            n_admins += 1;
        }
        users.push(User::from_tokens(&format!("user{i}"), &tokens));
    }
    assert_eq!(n_admins, 1, "exactly one of 50 first sign-ups is admin");

    // What is stored agrees: exactly one of them may do an admin's work,
    // also after logging in again (the flag comes from the account).
    let mut n_minted = 0;
    for user in &users {
        let again = node.login(&user.name, PASSWORD).await;
        let reply = node
            .post(
                "/api/v1/admin/invite-tokens",
                Some(&again.access),
                json!({ "uses": 1 }),
            )
            .await;
        match reply.status {
            201 => n_minted += 1,
            _ => reply.error(403, "not_admin"),
        }
    }
    assert_eq!(n_minted, 1);
    // Nor does anyone who comes later become admin.
    let late = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "username": "late", "password": PASSWORD }),
        )
        .await
        .expect(201);
    assert_eq!(late["is_admin"], false);
}

#[tokio::test]
async fn concurrent_direct_message_creations_between_a_pair_yield_one_room() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    // Alice is in many rooms, as a real user is: the lookup must not lock
    // them all (only direct rooms), and a check that yields between rooms
    // must still not let two creations through.
    for batch in 0..N_OTHER_ROOMS / N_RACERS {
        join_all((0..N_RACERS).map(|i| {
            let name = format!("room {}", batch * N_RACERS + i);
            node.create_room(&alice, json!({ "name": name }))
        }))
        .await;
    }
    warm_up(&node, N_RACERS).await;
    let replies = join_all((0..N_RACERS).map(|_| {
        node.post(
            "/api/v1/dms",
            Some(&alice.access),
            json!({ "user_id": bob.id }),
        )
    }))
    .await;
    let mut n_created = 0;
    let mut rooms = std::collections::BTreeSet::new();
    for reply in replies {
        let status = reply.status;
        let room = match status {
            201 => {
                n_created += 1;
                reply.expect(201)
            }
            _ => reply.expect(200),
        };
        rooms.insert(room["room_id"].as_str().expect("room_id").to_owned());
    }
    assert_eq!(n_created, 1, "one creation, the rest found it");
    assert_eq!(rooms.len(), 1, "one room: {rooms:?}");
    let listed = node
        .get("/api/v1/rooms", Some(&alice.access))
        .await
        .expect(200);
    let n_direct = listed
        .as_array()
        .expect("rooms")
        .iter()
        .filter(|room| room["kind"] == "direct")
        .count();
    assert_eq!(n_direct, 1, "alice is in one direct room: {listed}");
}

#[tokio::test]
async fn concurrent_identical_reactions_yield_one_reaction_event() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "r" })).await;
    let message = node.send(&alice, &room, "react to me").await;
    let path = format!("/api/v1/rooms/{room}/messages/{message}/reactions");
    warm_up(&node, 2 * N_RACERS).await;
    // Messages sent at the same time keep the room's lock busy, so the
    // reactions queue for it in between them.
    let messages = format!("/api/v1/rooms/{room}/messages");
    let busy = join_all((0..N_RACERS).map(|i| {
        node.post(
            &messages,
            Some(&alice.access),
            json!({ "body": format!("m{i}") }),
        )
    }));
    let racing = join_all(
        (0..N_RACERS).map(|_| node.post(&path, Some(&alice.access), json!({ "key": "🎉" }))),
    );
    let (sent, replies) = tokio::join!(busy, racing);
    for reply in sent {
        reply.expect(201);
    }
    let mut n_reacted = 0;
    for reply in replies {
        if reply.status == 201 {
            assert_eq!(reply.expect(201)["type"], "reaction");
            n_reacted += 1;
        } else {
            reply.error(409, "already_reacted");
        }
    }
    assert_eq!(n_reacted, 1, "one reaction event, the rest refused");
    let shown = message_in(&node, &alice, &room, &message).await;
    assert_eq!(shown["reactions"][0]["count"], 1, "{shown}");

    // Taking it back races the same way: one redaction, the rest find none.
    let replies =
        join_all((0..N_RACERS).map(|_| node.delete(&format!("{path}/🎉"), Some(&alice.access))))
            .await;
    let mut n_removed = 0;
    for reply in replies {
        if reply.status == 204 {
            n_removed += 1;
        } else {
            reply.error(404, "unknown_reaction");
        }
    }
    assert_eq!(n_removed, 1);
}

#[tokio::test]
async fn concurrent_redemptions_never_exceed_an_invite_links_uses() {
    let (_dir, node) = node(MANY_SIGN_UPS).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "private" })).await;
    let link = node
        .post(
            &format!("/api/v1/rooms/{room}/invite-links"),
            Some(&alice.access),
            json!({ "uses": 3 }),
        )
        .await
        .expect(201);
    let code = link["code"].as_str().expect("code").to_owned();
    let mut redeemers = Vec::new();
    for i in 0..N_RACERS {
        redeemers.push(node.register(&format!("guest{i}")).await);
    }
    let join = format!("/api/v1/invite-links/{code}/join");
    warm_up(&node, N_RACERS).await;
    let replies = join_all(
        redeemers
            .iter()
            .map(|user| node.post(&join, Some(&user.access), json!({}))),
    )
    .await;
    let mut n_joined = 0;
    for reply in replies {
        if reply.status == 200 {
            n_joined += 1;
        } else {
            reply.error(404, "unknown_invite_link");
        }
    }
    assert_eq!(n_joined, 3, "a link for 3 admits 3");
    let members = node
        .get(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&alice.access),
        )
        .await
        .expect(200);
    let n_in = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["membership"] == "join")
        .count();
    assert_eq!(n_in, 4, "alice and three guests: {members}");
    node.get(&format!("/api/v1/invite-links/{code}"), Some(&alice.access))
        .await
        .error(404, "unknown_invite_link");
}

#[tokio::test]
async fn a_refused_admission_gives_the_links_use_back() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let mallory = node.register("mallory").await;
    let bob = node.register("bob").await;
    let room = node.create_room(&alice, json!({ "name": "private" })).await;
    node.post(
        &format!("/api/v1/rooms/{room}/ban"),
        Some(&alice.access),
        json!({ "user_id": mallory.id }),
    )
    .await
    .expect(200);
    let link = node
        .post(
            &format!("/api/v1/rooms/{room}/invite-links"),
            Some(&alice.access),
            json!({ "uses": 1 }),
        )
        .await
        .expect(201);
    let code = link["code"].as_str().expect("code");
    let join = format!("/api/v1/invite-links/{code}/join");
    // The auth rules refuse to invite a banned user: the use comes back.
    node.post(&join, Some(&mallory.access), json!({}))
        .await
        .error(403, "banned");
    let preview = node
        .get(&format!("/api/v1/invite-links/{code}"), Some(&bob.access))
        .await
        .expect(200);
    assert_eq!(preview["uses_left"], 1, "{preview}");
    node.post(&join, Some(&bob.access), json!({}))
        .await
        .expect(200);
    node.post(&join, Some(&mallory.access), json!({}))
        .await
        .error(404, "unknown_invite_link");
}

/// Opens `n` pooled connections to the node, so that `n` racing requests
/// go out at once instead of one TCP handshake after another.
async fn warm_up(node: &Node, n: usize) {
    for reply in join_all((0..n).map(|_| node.get("/healthz", None))).await {
        reply.expect(200);
    }
}

/// A message as the room's history shows it.
async fn message_in(node: &Node, user: &User, room: &str, event_id: &str) -> Value {
    node.history(user, room, 50)
        .await
        .into_iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not in the history"))
}
