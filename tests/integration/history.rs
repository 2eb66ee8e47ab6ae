//! History read from the node: pages, `around` windows, threads, edits,
//! reactions and redactions, the same after a clean restart and after a
//! SIGKILL as before.

use serde_json::{Value, json};

use crate::federation::{Peer, join_via, until_history_has};
use crate::support::{FAST_SENDS, Node, User, data_dir, ids, node};

/// `around` for `event_id` with `limit`.
async fn around(node: &Node, user: &User, room: &str, event_id: &str, limit: usize) -> Value {
    node.get(
        &format!("/api/v1/rooms/{room}/messages?around={event_id}&limit={limit}"),
        Some(&user.access),
    )
    .await
    .expect(200)
}

#[tokio::test]
async fn around_returns_a_window_centred_on_an_event() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let room = node
        .create_room(&alice, json!({ "name": "Window", "visibility": "private" }))
        .await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(node.send(&alice, &room, &format!("m{i}")).await);
    }

    // An odd limit: as many before as after.
    let page = around(&node, &alice, &room, &sent[10], 5).await;
    assert_eq!(ids(page["events"].as_array().unwrap()), sent[8..13]);
    assert_eq!(page["has_more_before"], true);
    assert_eq!(page["has_more_after"], true);
    // An even limit: one more after.
    let page = around(&node, &alice, &room, &sent[10], 4).await;
    assert_eq!(ids(page["events"].as_array().unwrap()), sent[9..13]);
    // At the newest message the window ends there.
    let page = around(&node, &alice, &room, &sent[19], 5).await;
    assert_eq!(ids(page["events"].as_array().unwrap()), sent[17..20]);
    assert_eq!(page["has_more_after"], false);
    assert_eq!(page["has_more_before"], true);
    // At the oldest message the state events before it fill the window.
    let page = around(&node, &alice, &room, &sent[0], 3).await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(ids(events)[1..], sent[0..2]);
    assert_ne!(events[0]["type"], "message");
    // A limit of one is the event itself.
    let page = around(&node, &alice, &room, &sent[7], 1).await;
    assert_eq!(ids(page["events"].as_array().unwrap()), sent[7..8]);

    // Around an event that is not in the timeline (a thread reply): the
    // window is centred on its place, without it.
    let reply = node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            json!({ "body": "in thread", "thread": sent[19] }),
        )
        .await
        .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = around(&node, &alice, &room, &reply, 3).await;
    assert_eq!(ids(page["events"].as_array().unwrap()), [sent[19].clone()]);
    assert_eq!(page["has_more_after"], false);

    // Bad requests.
    let base = format!("/api/v1/rooms/{room}/messages");
    node.get(
        &format!("{base}?around={}&from={}", sent[1], sent[2]),
        Some(&alice.access),
    )
    .await
    .error(400, "bad_value");
    node.get(
        &format!("{base}?around={}&dir=f", sent[1]),
        Some(&alice.access),
    )
    .await
    .error(400, "bad_value");
    node.get(&format!("{base}?around=nonsense"), Some(&alice.access))
        .await
        .error(400, "bad_event_id");
    node.get(
        &format!("{base}?around={}&limit=0", sent[1]),
        Some(&alice.access),
    )
    .await
    .error(400, "bad_value");
    // An event of another room is unknown here.
    let other = node
        .create_room(&alice, json!({ "name": "Other", "visibility": "private" }))
        .await;
    let elsewhere = node.send(&alice, &other, "elsewhere").await;
    node.get(&format!("{base}?around={elsewhere}"), Some(&alice.access))
        .await
        .error(404, "unknown_event");
    // To an outsider a private room does not exist.
    let mallory = node.register("mallory").await;
    node.get(&format!("{base}?around={}", sent[1]), Some(&mallory.access))
        .await
        .error(404, "unknown_room");
}

#[tokio::test]
async fn around_does_not_reach_below_the_callers_floor() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(
            &alice,
            json!({ "name": "Joined only", "visibility": "private", "history_visibility": "joined" }),
        )
        .await;
    let before = node.send(&alice, &room, "before bob").await;
    node.invite(&alice, &room, &bob).await;
    node.join(&bob, &room).await;
    let after = node.send(&alice, &room, "after bob").await;
    node.get(
        &format!("/api/v1/rooms/{room}/messages?around={before}"),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_event");
    let page = around(&node, &bob, &room, &after, 10).await;
    let events = page["events"].as_array().unwrap();
    assert!(!ids(events).contains(&before));
    assert_eq!(page["has_more_before"], false);
}

/// Everything a reader sees of a room with threads, edits, reactions and
/// redactions: every history page, the thread view, and `around` windows.
async fn snapshot(node: &Node, user: &User, room: &str, root: &str, pick: &[String]) -> Value {
    let history = node.history(user, room, 3).await;
    let thread = node
        .get(
            &format!("/api/v1/rooms/{room}/threads/{root}"),
            Some(&user.access),
        )
        .await
        .expect(200);
    let mut windows = Vec::new();
    for event_id in pick {
        windows.push(around(node, user, room, event_id, 5).await);
    }
    json!({ "history": history, "thread": thread, "around": windows })
}

#[tokio::test]
async fn history_threads_and_aggregates_read_the_same_after_restart_and_sigkill() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "Kept", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    let mut sent = Vec::new();
    for i in 0..12 {
        let user = if i % 2 == 0 { &alice } else { &bob };
        sent.push(node.send(user, &room, &format!("message {i}")).await);
    }
    let root = sent[3].clone();
    for i in 0..4 {
        node.post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.access),
            json!({ "body": format!("reply {i}"), "thread": root }),
        )
        .await
        .expect(201);
    }
    let messages = format!("/api/v1/rooms/{room}/messages");
    node.patch(
        &format!("{messages}/{}", sent[2]),
        Some(&alice.access),
        json!({ "body": "message 2, edited" }),
    )
    .await
    .expect(200);
    for (user, key) in [(&alice, "🌱"), (&bob, "🌱"), (&bob, "👍")] {
        node.post(
            &format!("{messages}/{}/reactions", sent[5]),
            Some(&user.access),
            json!({ "key": key }),
        )
        .await
        .expect(201);
    }
    node.delete(&format!("{messages}/{}", sent[6]), Some(&alice.access))
        .await
        .expect(204);

    let pick = [
        sent[2].clone(),
        sent[5].clone(),
        sent[6].clone(),
        sent[11].clone(),
    ];
    let before = snapshot(&node, &alice, &room, &root, &pick).await;
    // The snapshot holds what it should, so comparing it later means something.
    let history = before["history"].as_array().unwrap();
    let find = |id: &str| history.iter().find(|e| e["event_id"] == id).unwrap();
    assert_eq!(find(&sent[2])["edited"]["body"], "message 2, edited");
    assert_eq!(find(&sent[3])["thread_count"], 4);
    assert_eq!(find(&sent[5])["reactions"][0]["count"], 2);
    assert_eq!(find(&sent[6])["redacted"], true);
    assert_eq!(before["thread"]["replies"].as_array().unwrap().len(), 4);

    let status = node.terminate().await;
    assert!(status.success(), "{status:?}");
    let mut node = Node::start(dir.path(), FAST_SENDS).await;
    assert_eq!(
        snapshot(&node, &alice, &room, &root, &pick).await,
        before,
        "after a clean restart"
    );

    node.kill();
    let node = Node::start(dir.path(), FAST_SENDS).await;
    assert_eq!(
        snapshot(&node, &alice, &room, &root, &pick).await,
        before,
        "after SIGKILL"
    );
    // And the room still takes messages, after everything it held.
    let next = node.send(&bob, &room, "after the crash").await;
    let history = node.history(&alice, &room, 50).await;
    assert_eq!(ids(&history).last(), Some(&next));
}

/// A node restarted on its data directory holds its rooms' events without
/// their signed bytes; a node that joins afterwards gets the whole history
/// by backfill, read from the host's store.
#[tokio::test]
async fn a_joiner_backfills_history_from_a_node_that_keeps_it_on_disk() {
    let mut a = Peer::start(&[]).await;
    let alice = a.node.register("alice").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "Archive", "visibility": "public" }))
        .await;
    let mut sent = Vec::new();
    for i in 0..300 {
        sent.push(a.node.send(&alice, &room, &format!("archived {i}")).await);
    }
    let status = a.node.terminate().await;
    assert!(status.success(), "{status:?}");
    a.restart(&[]).await;
    let alice = a.node.login("alice", crate::support::PASSWORD).await;

    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let bob = b.node.register("bob").await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    let on_b = until_history_has(&b, &bob, &room, &sent).await;
    let on_a = until_history_has(&a, &alice, &room, &sent).await;
    assert_eq!(on_b, on_a, "same timeline, same order");
    // What B got verifies and renders: a message reads the same on both.
    let read = |node: &Node, user: &User| {
        let path = format!("/api/v1/rooms/{room}/messages?around={}&limit=1", sent[150]);
        let request = node.get(&path, Some(&user.access));
        async move { request.await.expect(200)["events"][0]["content"]["body"].clone() }
    };
    assert_eq!(read(&b.node, &bob).await, "archived 150");
    assert_eq!(read(&a.node, &alice).await, "archived 150");
}
