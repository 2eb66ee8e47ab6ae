//! The WebSocket: authentication, complete in-order delivery across rooms,
//! privacy of rooms one is not in, and resumption from a cursor.

use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Frame, Node, User, Ws, node};

/// Event ids, rooms and seqs of event frames; asserts seqs strictly increase.
fn check_order(frames: &[Value]) -> Vec<(String, String)> {
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs must strictly increase: {seqs:?}"
    );
    frames
        .iter()
        .map(|f| {
            (
                f["event"]["event_id"].as_str().unwrap().to_owned(),
                f["event"]["room_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The message ids among event frames, in order.
fn messages(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["event"]["type"] == "message")
        .map(|f| f["event"]["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_event_of_every_room_arrives_once_and_in_order() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    // Nothing is stored yet: both streams start at the beginning.
    let (mut alice_ws, ready) = Ws::auth(&node, &alice.access, 0).await;
    assert_eq!(ready["user_id"], alice.id.as_str());
    let (mut bob_ws, _) = Ws::auth(&node, &bob.access, 0).await;

    let public = node
        .create_room(&alice, json!({ "name": "A", "visibility": "public" }))
        .await;
    let private = node.create_room(&alice, json!({ "name": "B" })).await;
    let alone = node.create_room(&alice, json!({ "name": "C" })).await;
    node.join(&bob, &public).await;
    node.invite(&alice, &private, &bob).await;
    node.join(&bob, &private).await;

    let mut for_alice = Vec::new();
    let mut for_bob = Vec::new();
    for i in 0..15 {
        let plan: [(&User, &str); 4] = [
            (&alice, &public),
            (&bob, &private),
            (&alice, &alone),
            (&bob, &public),
        ];
        for (sender, room) in plan {
            let id = node
                .send(sender, room, &format!("{i} from {}", sender.name))
                .await;
            for_alice.push(id.clone());
            if room != alone {
                for_bob.push(id);
            }
        }
    }
    let last = node.send(&alice, &public, "done").await;
    for_alice.push(last.clone());
    for_bob.push(last.clone());

    let alice_frames = alice_ws.events_until(&last).await;
    let bob_frames = bob_ws.events_until(&last).await;
    let alice_seen = check_order(&alice_frames);
    let bob_seen = check_order(&bob_frames);
    assert_eq!(
        messages(&alice_frames),
        for_alice,
        "alice gets every message in order"
    );
    assert_eq!(
        messages(&bob_frames),
        for_bob,
        "bob gets his rooms' messages in order"
    );
    assert!(
        bob_seen.iter().all(|(_, room)| room != &alone),
        "nothing of a room bob is not in reaches him"
    );
    let rooms_alice_saw: std::collections::HashSet<&str> =
        alice_seen.iter().map(|(_, room)| room.as_str()).collect();
    assert_eq!(rooms_alice_saw.len(), 3);
    // Room events that are not messages arrive too: bob's join in room A.
    assert!(bob_frames.iter().any(|f| {
        f["event"]["type"] == "member"
            && f["event"]["room_id"] == public.as_str()
            && f["event"]["content"]["target"] == bob.id.as_str()
    }));
    alice_ws.close().await;
    bob_ws.close().await;
}

#[tokio::test]
async fn private_room_events_never_reach_outsiders() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let eve = node.register("eve").await;
    let public = node
        .create_room(&alice, json!({ "name": "Open", "visibility": "public" }))
        .await;
    let private = node.create_room(&alice, json!({ "name": "Closed" })).await;
    node.send(&alice, &private, "before eve connects").await;
    node.send(&alice, &public, "public, before eve joins").await;

    // From the very start of the stream: the backlog holds nothing for eve.
    let (mut ws, ready) = Ws::auth(&node, &eve.access, 0).await;
    assert!(ready["seq"].as_u64().unwrap() >= 6);
    node.send(&alice, &private, "while eve listens").await;
    node.join(&eve, &public).await;
    let first = ws.next_event().await;
    assert_eq!(
        (
            first["event"]["type"].as_str(),
            first["event"]["content"]["target"].as_str()
        ),
        (Some("member"), Some(eve.id.as_str())),
        "eve's first event is her own join: {first}"
    );
    node.send(&alice, &private, "after eve joined elsewhere")
        .await;
    let marker = node.send(&alice, &public, "hello eve").await;
    let next = ws.next_event().await;
    assert_eq!(next["event"]["event_id"], marker.as_str(), "{next}");
}

#[tokio::test]
async fn reconnecting_with_since_resumes_without_gap_or_duplicate() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "Resume", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;

    let (mut ws, _) = Ws::auth(&node, &bob.access, 0).await;
    let mut first_batch = Vec::new();
    for i in 0..5 {
        first_batch.push(node.send(&alice, &room, &format!("live {i}")).await);
    }
    let received = ws.events_until(&first_batch[4]).await;
    check_order(&received);
    assert_eq!(messages(&received), first_batch);
    let cursor = received.last().unwrap()["seq"].as_u64().unwrap();
    ws.close().await;

    let mut missed = Vec::new();
    for i in 0..7 {
        missed.push(node.send(&alice, &room, &format!("missed {i}")).await);
    }
    let (mut ws, ready) = Ws::auth(&node, &bob.access, cursor).await;
    assert!(ready["seq"].as_u64().unwrap() >= cursor + 7);
    let mut resumed = Vec::new();
    for _ in 0..missed.len() {
        resumed.push(ws.next_event().await);
    }
    assert_eq!(check_order(&resumed).len(), 7);
    assert!(resumed[0]["seq"].as_u64().unwrap() > cursor, "no duplicate");
    assert_eq!(messages(&resumed), missed, "exactly the missed events");
    // And the live stream carries on from there, with nothing in between.
    let live = node.send(&alice, &room, "live again").await;
    let next = ws.next_event().await;
    assert_eq!(next["event"]["event_id"], live.as_str());
    assert!(next["seq"].as_u64() > resumed.last().unwrap()["seq"].as_u64());

    // A cursor in the middle replays from there.
    let middle = resumed[2]["seq"].as_u64().unwrap();
    let (mut ws, _) = Ws::auth(&node, &bob.access, middle).await;
    let replay = ws.events_until(&live).await;
    let mut expected: Vec<String> = missed[3..].to_vec();
    expected.push(live);
    assert_eq!(messages(&replay), expected);
    assert_eq!(replay.len(), expected.len());
}

async fn close_code_after(node: &Node, first_message: &str) -> Option<u16> {
    let mut ws = Ws::connect(node).await;
    ws.send_text(first_message).await;
    ws.closed().await
}

#[tokio::test]
async fn bad_first_messages_and_bad_tokens_close_with_their_codes() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;

    for bad in [
        "hello",
        "{}",
        r#"{"type":"ping"}"#,
        r#"{"type":"auth"}"#,
        r#"{"type":"auth","token":7}"#,
    ] {
        assert_eq!(close_code_after(&node, bad).await, Some(4002), "{bad}");
    }
    let auth = |token: &str| json!({ "type": "auth", "token": token, "since": 0 }).to_string();
    assert_eq!(
        close_code_after(&node, &auth("not-a-token")).await,
        Some(4001)
    );

    // Authenticated: pings are answered, unknown messages end the session.
    let (mut ws, _) = Ws::auth(&node, &alice.access, 0).await;
    ws.send_text(r#"{"type":"ping"}"#).await;
    match ws.next_frame().await {
        Frame::Json(pong) => assert_eq!(pong["type"], "pong"),
        Frame::Closed(code) => panic!("closed ({code:?}) instead of pong"),
    }
    ws.send_text(r#"{"type":"dance"}"#).await;
    assert_eq!(ws.closed().await, Some(4002));

    // A token whose session ended is refused.
    node.post("/api/v1/auth/logout", Some(&alice.access), json!({}))
        .await
        .expect(204);
    assert_eq!(
        close_code_after(&node, &auth(&alice.access)).await,
        Some(4001)
    );
}

#[tokio::test]
async fn presence_follows_connections_and_reaches_only_roommates() {
    let (_dir, node) = node(&[("SPACES__PRESENCE__GRACE_SECS", "1")]).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(
            &alice,
            json!({ "name": "A", "visibility": "public", "history_visibility": "world_readable" }),
        )
        .await;
    node.join(&bob, &room).await;

    let (mut alice_ws, _) = Ws::auth(&node, &alice.access, 0).await;
    assert_eq!(node.presence_in(&bob, &room, &alice).await, "online");
    assert_eq!(node.presence_in(&alice, &room, &bob).await, "offline");

    // Bob connects: alice hears it; bob's first frames after catching up
    // say who is already around.
    let (mut bob_ws, _) = Ws::auth(&node, &bob.access, 0).await;
    alice_ws.presence_of(&bob.id, "online").await;
    bob_ws.presence_of(&alice.id, "online").await;

    // Carol shares no room with either: nothing about them comes before
    // her pong (the snapshot is written before anything else), and a
    // world-readable room's member list shows her no presence.
    let (mut carol_ws, _) = Ws::auth(&node, &carol.access, 0).await;
    carol_ws.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(carol_ws.next_json().await["type"], "pong");
    let members = node
        .get(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&carol.access),
        )
        .await
        .expect(200);
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["presence"].is_null()),
        "{members}"
    );

    // Idle on his only client: away. A second client in use: online again.
    bob_ws
        .send_text(r#"{"type":"presence","state":"away"}"#)
        .await;
    alice_ws.presence_of(&bob.id, "away").await;
    assert_eq!(node.presence_in(&alice, &room, &bob).await, "away");
    let (bob_phone, _) = Ws::auth(&node, &bob.access, 0).await;
    alice_ws.presence_of(&bob.id, "online").await;
    bob_phone.close().await;
    alice_ws.presence_of(&bob.id, "away").await;

    // Bob leaves: offline once the grace period is over.
    bob_ws.close().await;
    alice_ws.presence_of(&bob.id, "offline").await;
    assert_eq!(node.presence_in(&alice, &room, &bob).await, "offline");

    // Carol joins: alice hears she is around, and she hears alice is. The
    // ephemeral frames reach carol in the order they were made, so her
    // first one being about alice means none about bob came before it.
    node.join(&carol, &room).await;
    alice_ws.presence_of(&carol.id, "online").await;
    let first = loop {
        let frame = carol_ws.next_json().await;
        if frame["type"] != "event" {
            break frame;
        }
    };
    assert_eq!(
        first,
        json!({ "type": "presence", "user_id": alice.id, "state": "online" })
    );

    // A presence a client cannot claim is a protocol error.
    alice_ws
        .send_text(r#"{"type":"presence","state":"offline"}"#)
        .await;
    assert_eq!(alice_ws.closed().await, Some(4002));
}
