//! Messages: send, replies, threads, reactions, edits, deletion, history
//! paging, unread counts and read markers, and who may read what.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Node, User, ids, node};

/// The history's rendering of one event.
async fn find(node: &Node, user: &User, room: &str, event_id: &str) -> Value {
    node.history(user, room, 200)
        .await
        .into_iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not in the timeline"))
}

/// `GET /rooms` as `user`: room id → `unread`.
async fn unread(node: &Node, user: &User, room: &str) -> u64 {
    let rooms = node
        .get("/api/v1/rooms", Some(&user.access))
        .await
        .expect(200);
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room)
        .and_then(|r| r["unread"].as_u64())
        .unwrap_or_else(|| panic!("{room} not listed with an unread count: {rooms}"))
}

#[tokio::test]
async fn send_reply_thread_react_edit_and_delete() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(&alice, json!({ "name": "Talk", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    node.join(&carol, &room).await;
    let messages = format!("/api/v1/rooms/{room}/messages");
    let post = |user: &User, body: Value| node.post(&messages, Some(&user.access), body);

    let sent = post(&alice, json!({ "body": "hello" })).await.expect(201);
    assert_eq!(sent["type"], "message");
    assert_eq!(sent["sender"], alice.id.as_str());
    assert_eq!(sent["room_id"], room.as_str());
    assert_eq!(sent["content"]["body"], "hello");
    let root = sent["event_id"].as_str().unwrap().to_owned();

    // Reply and thread.
    let reply = post(&bob, json!({ "body": "hi!", "reply_to": root }))
        .await
        .expect(201);
    assert_eq!(reply["content"]["reply_to"], root.as_str());
    let reply = reply["event_id"].as_str().unwrap().to_owned();
    let in_thread = post(&carol, json!({ "body": "in a thread", "thread": root }))
        .await
        .expect(201);
    let in_thread = in_thread["event_id"].as_str().unwrap().to_owned();
    post(&bob, json!({ "body": "nested", "thread": in_thread }))
        .await
        .error(403, "bad_target");
    let thread = node
        .get(
            &format!("/api/v1/rooms/{room}/threads/{root}"),
            Some(&bob.access),
        )
        .await
        .expect(200);
    assert_eq!(thread["root"]["event_id"], root.as_str());
    assert_eq!(thread["root"]["thread_count"], 1);
    assert_eq!(
        ids(thread["replies"].as_array().unwrap()),
        vec![in_thread.clone()]
    );
    let timeline = ids(&node.history(&bob, &room, 50).await);
    assert!(timeline.contains(&root) && timeline.contains(&reply));
    assert!(
        !timeline.contains(&in_thread),
        "thread replies live in the thread view"
    );
    node.get(
        &format!("/api/v1/rooms/{room}/threads/{reply}x"),
        Some(&bob.access),
    )
    .await
    .error(400, "bad_event_id");
    node.get(
        &format!("/api/v1/rooms/{room}/threads/${}", "a".repeat(52)),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_event");

    // Reactions: one per user and key.
    let reactions = format!("/api/v1/rooms/{room}/messages/{root}/reactions");
    let reacted = node
        .post(&reactions, Some(&bob.access), json!({ "key": "👍" }))
        .await
        .expect(201);
    assert_eq!(reacted["type"], "reaction");
    node.post(&reactions, Some(&bob.access), json!({ "key": "👍" }))
        .await
        .error(409, "already_reacted");
    node.post(&reactions, Some(&alice.access), json!({ "key": "👍" }))
        .await
        .expect(201);
    let seen = find(&node, &bob, &room, &root).await;
    assert_eq!(seen["reactions"][0]["key"], "👍");
    assert_eq!(seen["reactions"][0]["count"], 2);
    assert_eq!(seen["reactions"][0]["me"], true);
    // The key travels in the path, percent-encoded.
    node.delete(&format!("{reactions}/👍"), Some(&bob.access))
        .await
        .expect(204);
    node.delete(&format!("{reactions}/👍"), Some(&bob.access))
        .await
        .error(404, "unknown_reaction");
    let seen = find(&node, &bob, &room, &root).await;
    assert_eq!(seen["reactions"][0]["count"], 1);
    assert_eq!(seen["reactions"][0]["me"], false);

    // Edits: one's own only.
    let edit_path = format!("/api/v1/rooms/{room}/messages/{root}");
    let edit = node
        .patch(
            &edit_path,
            Some(&alice.access),
            json!({ "body": "hello, edited" }),
        )
        .await
        .expect(200);
    assert_eq!(edit["type"], "edit");
    assert_eq!(
        find(&node, &bob, &room, &root).await["edited"]["body"],
        "hello, edited"
    );
    node.patch(&edit_path, Some(&bob.access), json!({ "body": "hijacked" }))
        .await
        .error(403, "bad_target");
    node.patch(&edit_path, Some(&alice.access), json!({ "body": "  " }))
        .await
        .error(400, "empty_message");
    assert_eq!(
        find(&node, &bob, &room, &root).await["edited"]["body"],
        "hello, edited"
    );

    // Deletion: one's own, or another's with manage_messages.
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{reply}"),
        Some(&bob.access),
    )
    .await
    .expect(204);
    let gone = find(&node, &alice, &room, &reply).await;
    assert_eq!(gone["redacted"], true);
    assert_eq!(gone["content"]["body"], "");
    let bobs = node.send(&bob, &room, "bob's second").await;
    node.delete(&edit_path, Some(&carol.access))
        .await
        .error(403, "missing_permission");
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{bobs}"),
        Some(&carol.access),
    )
    .await
    .error(403, "missing_permission");
    assert_eq!(find(&node, &alice, &room, &bobs).await["redacted"], false);
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{bobs}"),
        Some(&alice.access),
    )
    .await
    .expect(204);
    assert_eq!(find(&node, &alice, &room, &bobs).await["redacted"], true);
    // A redacted message keeps no edit.
    node.delete(&edit_path, Some(&alice.access))
        .await
        .expect(204);
    assert_eq!(find(&node, &bob, &room, &root).await["edited"], Value::Null);

    // Shape checks.
    post(&alice, json!({ "body": "   " }))
        .await
        .error(400, "empty_message");
    post(&alice, json!({ "body": "x", "reply_to": "nonsense" }))
        .await
        .error(400, "bad_event_id");
    let unknown = format!("${}", "a".repeat(52));
    post(&alice, json!({ "body": "x", "reply_to": unknown }))
        .await
        .error(400, "unknown_reference");
}

#[tokio::test]
async fn history_pages_both_ways_and_returns_every_message_once_in_order() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "Log" })).await;
    let n_messages = 120;
    let mut sent = Vec::new();
    for i in 0..n_messages {
        sent.push(node.send(&alice, &room, &format!("m{i:03}")).await);
    }
    let page = |query: String| {
        let path = format!("/api/v1/rooms/{room}/messages?{query}");
        let token = alice.access.clone();
        let node = &node;
        async move { node.get(&path, Some(&token)).await.expect(200) }
    };

    // Backwards from the newest.
    let mut backwards: Vec<Vec<Value>> = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let query = match &from {
            Some(id) => format!("dir=b&limit=50&from={id}"),
            None => "limit=50".to_owned(),
        };
        let body = page(query).await;
        let events = body["events"].as_array().unwrap().clone();
        let has_more = body["has_more"].as_bool().unwrap();
        assert!(events.len() == 50 || !has_more, "full pages until the last");
        from = events
            .first()
            .map(|e| e["event_id"].as_str().unwrap().to_owned());
        backwards.push(events);
        if !has_more {
            break;
        }
        assert!(backwards.len() < 10, "paging backwards does not end");
    }
    // Forwards from the oldest.
    let mut forwards: Vec<Value> = Vec::new();
    let mut from: Option<String> = None;
    let mut n_pages = 0;
    loop {
        let query = match &from {
            Some(id) => format!("dir=f&limit=50&from={id}"),
            None => "dir=f&limit=50".to_owned(),
        };
        let body = page(query).await;
        let events = body["events"].as_array().unwrap().clone();
        let has_more = body["has_more"].as_bool().unwrap();
        assert!(events.len() == 50 || !has_more, "full pages until the last");
        from = events
            .last()
            .map(|e| e["event_id"].as_str().unwrap().to_owned());
        forwards.extend(events);
        n_pages += 1;
        if !has_more {
            break;
        }
        assert!(n_pages < 10, "paging forwards does not end");
    }
    // 120 messages plus the room's opening events (create, name): 3 pages.
    assert_eq!(backwards.len(), 3);
    assert_eq!(n_pages, 3);
    let backwards: Vec<Value> = backwards.into_iter().rev().flatten().collect();
    assert_eq!(ids(&backwards), ids(&forwards), "both directions agree");
    let unique: HashSet<String> = ids(&forwards).into_iter().collect();
    assert_eq!(unique.len(), forwards.len(), "no event twice");
    let messages: Vec<&Value> = forwards.iter().filter(|e| e["type"] == "message").collect();
    let bodies: Vec<&str> = messages
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..n_messages).map(|i| format!("m{i:03}")).collect();
    assert_eq!(bodies, expected, "every message, once, in order");
    let message_ids: Vec<String> = messages
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(message_ids, sent);
    assert_eq!(forwards[0]["type"], "create");
    assert_eq!(
        ids(&node.history(&alice, &room, 7).await),
        ids(&forwards),
        "page size does not change the result"
    );

    // `from` is exclusive in both directions.
    let middle = &sent[59];
    let after = page(format!("dir=f&limit=10&from={middle}")).await;
    let bodies: Vec<&str> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        (60..70).map(|i| format!("m{i:03}")).collect::<Vec<_>>()
    );
    assert_eq!(after["has_more"], true);
    let before = page(format!("dir=b&limit=10&from={middle}")).await;
    let bodies: Vec<&str> = before["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        (49..59).map(|i| format!("m{i:03}")).collect::<Vec<_>>()
    );
    let newest = page(format!("dir=f&from={}", sent[n_messages - 1])).await;
    assert_eq!(newest, json!({ "events": [], "has_more": false }));

    // Bad paging parameters.
    let bad = |query: &str| {
        let path = format!("/api/v1/rooms/{room}/messages?{query}");
        let token = alice.access.clone();
        let node = &node;
        async move { node.get(&path, Some(&token)).await }
    };
    bad("limit=0").await.error(400, "bad_value");
    bad("limit=201").await.error(400, "bad_value");
    bad("dir=sideways").await.error(400, "bad_value");
    bad("from=garbage").await.error(400, "bad_event_id");
    bad(&format!("from=${}", "a".repeat(52)))
        .await
        .error(404, "unknown_event");
}

#[tokio::test]
async fn unread_counts_follow_read_markers() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(&alice, json!({ "name": "Busy", "visibility": "public" }))
        .await;
    let quiet = node
        .create_room(&alice, json!({ "name": "Quiet", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    node.join(&bob, &quiet).await;
    assert_eq!(unread(&node, &bob, &room).await, 0);

    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(node.send(&alice, &room, &format!("news {i}")).await);
    }
    assert_eq!(unread(&node, &bob, &room).await, 3);
    assert_eq!(
        unread(&node, &alice, &room).await,
        0,
        "one's own messages are read"
    );
    // The room with the newest message comes first.
    let rooms = node
        .get("/api/v1/rooms", Some(&bob.access))
        .await
        .expect(200);
    assert_eq!(rooms[0]["room_id"], room.as_str());
    assert!(rooms[0]["last_seq"].as_u64().unwrap() > 0);

    let read = |user: &User, event_id: &str| {
        node.post(
            &format!("/api/v1/rooms/{room}/read"),
            Some(&user.access),
            json!({ "event_id": event_id }),
        )
    };
    read(&bob, &sent[2]).await.expect(204);
    assert_eq!(unread(&node, &bob, &room).await, 0);
    let more = [
        node.send(&alice, &room, "later 1").await,
        node.send(&alice, &room, "later 2").await,
    ];
    assert_eq!(unread(&node, &bob, &room).await, 2);
    read(&bob, &more[0]).await.expect(204);
    assert_eq!(unread(&node, &bob, &room).await, 1);
    // Markers are per room.
    node.send(&alice, &quiet, "psst").await;
    assert_eq!(unread(&node, &bob, &quiet).await, 1);
    assert_eq!(unread(&node, &bob, &room).await, 1);

    read(&bob, &format!("${}", "a".repeat(52)))
        .await
        .error(404, "unknown_event");
    read(&carol, &more[1]).await.error(403, "not_member");
}

#[tokio::test]
async fn outsiders_and_former_members_cannot_read_a_private_room() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let eve = node.register("eve").await;
    let room = node.create_room(&alice, json!({ "name": "Private" })).await;
    node.invite(&alice, &room, &bob).await;
    node.join(&bob, &room).await;
    let secret = node.send(&alice, &room, "the secret").await;

    // `read_error`: what reads and writes get. Someone never in the room is
    // told it does not exist; a former member that they are no longer in it.
    let outsider_cannot = |user: User, read_error: (u16, &'static str)| {
        let node = &node;
        let room = room.clone();
        let secret = secret.clone();
        let (status, code) = read_error;
        async move {
            let token = Some(user.access.as_str());
            node.get(&format!("/api/v1/rooms/{room}"), token)
                .await
                .error(404, "unknown_room");
            node.get(&format!("/api/v1/rooms/{room}/messages"), token)
                .await
                .error(status, code);
            node.get(&format!("/api/v1/rooms/{room}/members"), token)
                .await
                .error(status, code);
            node.get(&format!("/api/v1/rooms/{room}/threads/{secret}"), token)
                .await
                .error(status, code);
            // Writes answer as reads do: no hint the room exists.
            node.post(
                &format!("/api/v1/rooms/{room}/messages"),
                token,
                json!({ "body": "let me in" }),
            )
            .await
            .error(status, code);
            node.post(
                &format!("/api/v1/rooms/{room}/messages/{secret}/reactions"),
                token,
                json!({ "key": "👀" }),
            )
            .await
            .error(status, code);
            node.post(
                &format!("/api/v1/rooms/{room}/read"),
                token,
                json!({ "event_id": secret }),
            )
            .await
            .error(status, code);
            let rooms = node.get("/api/v1/rooms", token).await.expect(200);
            assert!(
                !rooms.to_string().contains(&room),
                "not in the room list: {rooms}"
            );
        }
    };
    outsider_cannot(eve.clone(), (404, "unknown_room")).await;
    // Bob could read it while in; once kicked, he is an outsider again.
    assert!(ids(&node.history(&bob, &room, 50).await).contains(&secret));
    node.post(
        &format!("/api/v1/rooms/{room}/kick"),
        Some(&alice.access),
        json!({ "user_id": bob.id }),
    )
    .await
    .expect(200);
    outsider_cannot(bob.clone(), (403, "not_member")).await;
}

/// A send with a `txn_id` happens once per session: a resend answers the
/// first event (200) instead of making another, also after a restart; the
/// same id from another session, or a new id, makes a new event; the id
/// reused in another room is refused; a bad id is refused and sends nothing.
#[tokio::test]
async fn txn_id_sends_once_per_session_across_restarts() {
    let dir = crate::support::data_dir();
    let mut node = Node::start(dir.path(), FAST_SENDS).await;
    let alice = node.register("alice").await;
    let room = node
        .create_room(&alice, json!({ "name": "Once", "visibility": "public" }))
        .await;
    let other = node
        .create_room(&alice, json!({ "name": "Other", "visibility": "public" }))
        .await;
    let messages = format!("/api/v1/rooms/{room}/messages");
    let body = json!({ "body": "only once", "txn_id": "m-1" });

    let first = node
        .post(&messages, Some(&alice.access), body.clone())
        .await
        .expect(201);
    let again = node
        .post(&messages, Some(&alice.access), body.clone())
        .await
        .expect(200);
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(again["content"]["body"], "only once");

    // Concurrent resends make no second event either.
    let racing = futures_util::future::join_all((0..4).map(|_| {
        node.post(
            &messages,
            Some(&alice.access),
            json!({ "body": "x", "txn_id": "m-2" }),
        )
    }))
    .await;
    let raced: HashSet<String> = racing
        .into_iter()
        .map(|r| {
            assert!(matches!(r.status, 200 | 201), "{}", r.text);
            r.body["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        raced.len(),
        1,
        "one event for four concurrent sends: {raced:?}"
    );

    // Another room with the same id: refused, nothing sent there.
    node.post(
        &format!("/api/v1/rooms/{other}/messages"),
        Some(&alice.access),
        json!({ "body": "elsewhere", "txn_id": "m-1" }),
    )
    .await
    .error(409, "txn_id_reused");
    // A bad id: refused, nothing sent.
    for bad in [json!(""), json!("a b"), json!("x".repeat(65)), json!(7)] {
        let status = node
            .post(
                &messages,
                Some(&alice.access),
                json!({ "body": "bad", "txn_id": bad }),
            )
            .await;
        assert_eq!(status.status, 400, "{bad}: {}", status.text);
    }

    // Another session of the same user: its own ids.
    let second_session = node.login("alice", crate::support::PASSWORD).await;
    let fresh = node
        .post(&messages, Some(&second_session.access), body.clone())
        .await
        .expect(201);
    assert_ne!(fresh["event_id"], first["event_id"]);

    // Durable: after a restart the resend is still answered with the first event.
    let status = node.terminate().await;
    assert!(status.success());
    let node = Node::start(dir.path(), FAST_SENDS).await;
    let after = node
        .post(&messages, Some(&alice.access), body.clone())
        .await
        .expect(200);
    assert_eq!(after["event_id"], first["event_id"]);

    let bodies: Vec<String> = node
        .history(&alice, &room, 50)
        .await
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies, ["only once", "x", "only once"]);
    let other_bodies = node.history(&alice, &other, 50).await;
    assert!(other_bodies.iter().all(|e| e["type"] != "message"));
}

/// `GET /rooms` as `user`: the entry of `room`.
async fn listed(node: &Node, user: &User, room: &str) -> Value {
    let rooms = node
        .get("/api/v1/rooms", Some(&user.access))
        .await
        .expect(200);
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room)
        .cloned()
        .unwrap_or_else(|| panic!("{room} not listed: {rooms}"))
}

/// The room list names the first unread timeline message after the read
/// marker (not the reader's own, not a thread reply) and previews the last
/// message as last edited, on one line, cut, and hidden once deleted.
#[tokio::test]
async fn room_list_has_first_unread_and_last_message() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "Flow", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["first_unread"], Value::Null);
    assert_eq!(entry["last_message"], Value::Null);

    let first = node.send(&alice, &room, "one").await;
    let second = node.send(&alice, &room, "two\n\n  lines").await;
    node.send(&bob, &room, "bob's own").await;
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["unread"], 2);
    assert_eq!(entry["first_unread"], first.as_str());
    assert_eq!(entry["last_message"]["body"], "bob's own");
    assert_eq!(entry["last_message"]["sender"], bob.id.as_str());
    // For alice, bob's message is the first unread; her own never are.
    assert_eq!(listed(&node, &alice, &room).await["unread"], 1);

    node.post(
        &format!("/api/v1/rooms/{room}/read"),
        Some(&bob.access),
        json!({ "event_id": first }),
    )
    .await
    .expect(204);
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["first_unread"], second.as_str());

    // A thread reply is neither the landing point nor the preview.
    let messages = format!("/api/v1/rooms/{room}/messages");
    node.post(
        &messages,
        Some(&alice.access),
        json!({ "body": "in a thread", "thread": second }),
    )
    .await
    .expect(201);
    let long = format!("{}\n{}", "word ".repeat(40), "tail");
    let last = node.send(&alice, &room, &long).await;
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["first_unread"], second.as_str());
    let preview = entry["last_message"]["body"].as_str().unwrap();
    assert_eq!(entry["last_message"]["event_id"], last.as_str());
    assert_eq!(preview.chars().count(), 141, "{preview}");
    assert!(
        preview.ends_with('…') && !preview.contains('\n'),
        "{preview}"
    );

    node.patch(
        &format!("{messages}/{last}"),
        Some(&alice.access),
        json!({ "body": "edited  short" }),
    )
    .await
    .expect(200);
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["last_message"]["body"], "edited short");
    node.delete(&format!("{messages}/{last}"), Some(&alice.access))
        .await
        .expect(204);
    let entry = listed(&node, &bob, &room).await;
    assert_eq!(entry["last_message"]["event_id"], last.as_str());
    assert_eq!(entry["last_message"]["body"], Value::Null);
    // All read: nothing to land on.
    node.post(
        &format!("/api/v1/rooms/{room}/read"),
        Some(&bob.access),
        json!({ "event_id": last }),
    )
    .await
    .expect(204);
    assert_eq!(
        listed(&node, &bob, &room).await["first_unread"],
        Value::Null
    );
}
