//! Search (`GET /api/v1/search`): a user finds exactly the messages they
//! could read through the room API, on this node's rooms and federated
//! ones; the index follows edits and redactions; a restart or a SIGKILL
//! loses no message and indexes none twice.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::federation::{Peer, join_via, until_history_has};
use crate::support::{Node, PASSWORD, User, admin, data_dir};

/// Sends and searches lifted: these tests send and poll faster than a person.
const FAST: &[(&str, &str)] = &[
    ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
    ("SPACES__LIMITS__SEND_BURST", "100000"),
    ("SPACES__SEARCH__SEARCHES_PER_SEC", "100000"),
    ("SPACES__SEARCH__SEARCH_BURST", "100000"),
];

/// How long a message may take to become searchable here: the spec's
/// "about a second", with a wide margin for a debug build on a loaded
/// machine running other tests.
const DEADLINE: Duration = Duration::from_secs(20);

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Every hit of `q` (extra parameters in `params`) for `user`, following
/// cursors to the end: (event id, body) in the order given.
async fn search_all(node: &Node, user: &User, q: &str, params: &str) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/v1/search?q={}&limit=50{params}", encode(q));
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = node.get(&path, Some(&user.access)).await.expect(200);
        for hit in page["results"].as_array().unwrap() {
            hits.push((
                hit["event_id"].as_str().unwrap().to_owned(),
                hit["body"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return hits,
        }
    }
    panic!("more than 100 pages of hits for {q:?}");
}

/// The ids of the first page of `user`'s hits for `q`; `None` while the
/// node's search rate limit holds them back (nodes started without `FAST`).
pub(crate) async fn first_page(node: &Node, user: &User, q: &str) -> Option<BTreeSet<String>> {
    let page = node
        .get(
            &format!("/api/v1/search?q={}&limit=50", encode(q)),
            Some(&user.access),
        )
        .await;
    if page.status == 429 {
        return None;
    }
    let page = page.expect(200);
    Some(
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["event_id"].as_str().unwrap().to_owned())
            .collect(),
    )
}

fn ids(hits: &[(String, String)]) -> BTreeSet<String> {
    hits.iter().map(|(id, _)| id.clone()).collect()
}

/// Waits until `user`'s search for `q` finds exactly `want`.
async fn until_found(node: &Node, user: &User, q: &str, want: &[&String]) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let start = Instant::now();
    loop {
        let found = ids(&search_all(node, user, q, "").await);
        if found == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "search {q:?} for {} found {found:?}, want {want:?}",
            user.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The message ids `user` can read in `room` through the messages API;
/// empty if they may not read it at all.
async fn readable(node: &Node, user: &User, room: &str) -> BTreeSet<String> {
    let reply = node
        .get(
            &format!("/api/v1/rooms/{room}/messages?dir=b&limit=200"),
            Some(&user.access),
        )
        .await;
    if reply.status != 200 {
        return BTreeSet::new();
    }
    reply.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn post_ok(node: &Node, user: &User, path: &str, body: Value) {
    node.post(path, Some(&user.access), body).await.expect(200);
}

/// Members, outsiders, leavers, the banned and the invited, in a public, a
/// private and a joined-visibility room: each finds exactly what the
/// messages API shows them — nothing from a room they cannot read, nothing
/// before the point they may read from.
#[tokio::test]
async fn hits_are_exactly_what_the_room_api_lets_each_user_read() {
    let (_dir, node) = crate::support::node(FAST).await;
    let owner = node.register("owner").await;
    let member = node.register("member").await;
    let outsider = node.register("outsider").await;
    let leaver = node.register("leaver").await;
    let banned = node.register("banned").await;
    let invited = node.register("invited").await;
    let late = node.register("late").await;
    let everyone = [
        &owner, &member, &outsider, &leaver, &banned, &invited, &late,
    ];

    let public = node
        .create_room(&owner, json!({ "name": "pub", "visibility": "public" }))
        .await;
    let private = node
        .create_room(
            &owner,
            json!({ "name": "priv", "history_visibility": "shared" }),
        )
        .await;
    let joined_only = node
        .create_room(
            &owner,
            json!({ "name": "joined", "visibility": "public", "history_visibility": "joined" }),
        )
        .await;
    for room in [&public, &joined_only] {
        for user in [&member, &leaver, &banned] {
            node.join(user, room).await;
        }
    }
    for user in [&member, &leaver, &banned] {
        node.invite(&owner, &private, user).await;
        node.join(user, &private).await;
    }
    node.invite(&owner, &private, &invited).await;

    let mut sent = Vec::new();
    for room in [&public, &private, &joined_only] {
        sent.push(node.send(&owner, room, "the walrus sings early").await);
    }
    // `late` joins the joined-visibility room after the first message.
    node.join(&late, &joined_only).await;
    sent.push(
        node.send(&owner, &joined_only, "the walrus sings late")
            .await,
    );
    for room in [&public, &private, &joined_only] {
        post_ok(
            &node,
            &leaver,
            &format!("/api/v1/rooms/{room}/leave"),
            json!({}),
        )
        .await;
        post_ok(
            &node,
            &owner,
            &format!("/api/v1/rooms/{room}/ban"),
            json!({ "user_id": banned.id }),
        )
        .await;
    }
    // Indexed: the owner reads everything.
    until_found(&node, &owner, "walrus", &sent.iter().collect::<Vec<_>>()).await;

    for user in everyone {
        let mut can_read = BTreeSet::new();
        for room in [&public, &private, &joined_only] {
            can_read.extend(readable(&node, user, room).await);
        }
        let found = ids(&search_all(&node, user, "walrus", "").await);
        assert_eq!(found, can_read, "{} finds what they can read", user.id);
        // Naming each room gives the same answer, or the room API's error.
        for room in [&public, &private, &joined_only] {
            let reply = node
                .get(
                    &format!("/api/v1/search?q=walrus&room={room}"),
                    Some(&user.access),
                )
                .await;
            let in_room = readable(&node, user, room).await;
            if reply.status == 200 {
                let hits: BTreeSet<String> = reply.body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["event_id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(hits, in_room, "{} in one room", user.id);
            } else {
                assert!(in_room.is_empty(), "{} refused a room they read", user.id);
                assert!(
                    matches!(reply.code(), Some("not_member" | "unknown_room")),
                    "{reply:?}"
                );
            }
        }
    }
    // The matrix in plain words, so a change in the room API's rules
    // cannot quietly empty it.
    let n = |user: &User| {
        let node = &node;
        let user = user.clone();
        async move { search_all(node, &user, "walrus", "").await.len() }
    };
    assert_eq!(n(&owner).await, 4);
    assert_eq!(n(&member).await, 4);
    assert_eq!(n(&outsider).await, 0, "not in any room");
    assert_eq!(n(&leaver).await, 0, "left every room");
    assert_eq!(n(&banned).await, 0, "banned from every room");
    assert_eq!(n(&invited).await, 1, "invited to the shared private room");
    assert_eq!(n(&late).await, 1, "only what came after their join");
    // The outsider learns nothing of the private room by naming it.
    node.get(
        &format!("/api/v1/search?q=walrus&room={private}"),
        Some(&outsider.access),
    )
    .await
    .error(404, "unknown_room");
}

/// A room held on two nodes: each side finds the other's messages, and a
/// user of the second node who is not in it finds nothing.
#[tokio::test]
async fn messages_of_another_nodes_room_are_found_by_its_members_only() {
    let a = Peer::start_with(&[], &FAST[2..]).await;
    let b = Peer::start_with(std::slice::from_ref(&a.addr), &FAST[2..]).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = b.node.register("carol").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    let from_a = a
        .node
        .send(&alice, &room, "platypus from the first node")
        .await;
    let from_b = b
        .node
        .send(&bob, &room, "platypus from the second node")
        .await;
    until_history_has(&b, &bob, &room, &[from_a.clone(), from_b.clone()]).await;
    until_found(&b.node, &bob, "platypus", &[&from_a, &from_b]).await;
    until_found(&a.node, &alice, "platypus", &[&from_a, &from_b]).await;
    assert!(search_all(&b.node, &carol, "platypus", "").await.is_empty());
    // Filters work on federated messages too.
    let by_alice = search_all(
        &b.node,
        &bob,
        "platypus",
        &format!("&sender={}", encode(&alice.id)),
    )
    .await;
    assert_eq!(ids(&by_alice), BTreeSet::from([from_a.clone()]));
}

/// An edit replaces the indexed text; a redaction removes the message.
#[tokio::test]
async fn edits_replace_and_redactions_remove() {
    let (_dir, node) = crate::support::node(FAST).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "r" })).await;
    let id = node.send(&alice, &room, "meet at the lighthouse").await;
    let other = node.send(&alice, &room, "the lighthouse keeper").await;
    until_found(&node, &alice, "lighthouse", &[&id, &other]).await;
    node.patch(
        &format!("/api/v1/rooms/{room}/messages/{id}"),
        Some(&alice.access),
        json!({ "body": "meet at the harbour" }),
    )
    .await
    .expect(200);
    until_found(&node, &alice, "harbour", &[&id]).await;
    until_found(&node, &alice, "lighthouse", &[&other]).await;
    let hits = search_all(&node, &alice, "harbour", "").await;
    assert_eq!(
        hits[0].1, "meet at the harbour",
        "the hit shows the edited text"
    );
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{id}"),
        Some(&alice.access),
    )
    .await
    .expect(204);
    until_found(&node, &alice, "harbour", &[]).await;
    // Highlights name the matched words, in code points.
    let page = node
        .get("/api/v1/search?q=KEEPER", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(page["results"][0]["highlights"], json!([[15, 21]]));
    // `mentions:me` finds what mentions the caller by id.
    let bob = node.register("bob").await;
    node.invite(&alice, &room, &bob).await;
    node.join(&bob, &room).await;
    let ping = node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            json!({ "body": "standup soon", "mentions": { "users": [bob.id] } }),
        )
        .await
        .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    until_found(&node, &bob, "mentions:me", &[&ping]).await;
    until_found(&node, &alice, "mentions:me", &[]).await;
}

#[tokio::test]
async fn bad_queries_get_clear_errors() {
    let (_dir, node) = crate::support::node(FAST).await;
    let alice = node.register("alice").await;
    let long = "a".repeat(513);
    for (path, code) in [
        ("/api/v1/search".to_owned(), "bad_query"),
        ("/api/v1/search?q=%21%21".to_owned(), "bad_query"),
        (format!("/api/v1/search?q={long}"), "bad_query"),
        (
            "/api/v1/search?q=a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q".to_owned(),
            "bad_query",
        ),
        ("/api/v1/search?q=has%3Anothing".to_owned(), "bad_query"),
        (
            "/api/v1/search?q=before%3A2024-13-01".to_owned(),
            "bad_query",
        ),
        ("/api/v1/search?q=x&nope=1".to_owned(), "bad_query"),
        ("/api/v1/search?q=x&cursor=zz".to_owned(), "bad_cursor"),
        ("/api/v1/search?q=x&limit=0".to_owned(), "bad_value"),
        ("/api/v1/search?q=x&limit=51".to_owned(), "bad_value"),
        ("/api/v1/search?q=x&order=best".to_owned(), "bad_value"),
        ("/api/v1/search?q=x&has=pdf".to_owned(), "bad_value"),
        ("/api/v1/search?q=x&room=nope".to_owned(), "bad_room_id"),
        ("/api/v1/search?q=x&sender=nope".to_owned(), "bad_user_id"),
    ] {
        node.get(&path, Some(&alice.access)).await.error(400, code);
    }
    node.get("/api/v1/search?q=x", None)
        .await
        .error(401, "missing_token");
    // Each user has a search budget (default 5/s, burst 20).
    let (_dir, limited) = crate::support::node(&[]).await;
    let carol = limited.register("carol").await;
    let mut limited_at = None;
    for i in 0..40 {
        let reply = limited.get("/api/v1/search?q=x", Some(&carol.access)).await;
        if reply.status == 429 {
            limited_at = Some(i);
            reply.error(429, "rate_limited");
            break;
        }
        reply.expect(200);
    }
    assert!(
        limited_at.is_some_and(|i| i >= 20),
        "limited after the burst: {limited_at:?}"
    );
    // Search off: refused, not silently empty.
    let (_dir, off) = crate::support::node(&[("SPACES__SEARCH__ENABLED", "false")]).await;
    let bob = off.register("bob").await;
    off.get("/api/v1/search?q=x", Some(&bob.access))
        .await
        .error(503, "search_off");
}

/// Concurrent senders to two rooms; returns what was acknowledged
/// (event id, body) when the node was SIGKILLed mid-load.
async fn load_then_kill(
    node: &mut Node,
    user: &User,
    rooms: &[String],
    tag: &str,
) -> Vec<(String, String)> {
    const N_TASKS: usize = 4;
    const MAX_SENDS_PER_TASK: usize = 100;
    const KILL_AFTER_ACKS: usize = 120;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..N_TASKS {
        let (acked, count_tx, http) = (acked.clone(), count_tx.clone(), http.clone());
        let (base, access, rooms, tag) = (
            node.base.clone(),
            user.access.clone(),
            rooms.to_vec(),
            tag.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..MAX_SENDS_PER_TASK {
                let room = &rooms[i % rooms.len()];
                let body = format!("{tag} task{task} n{i}");
                let Ok(response) = http
                    .post(format!("{base}/api/v1/rooms/{room}/messages"))
                    .bearer_auth(&access)
                    .json(&json!({ "body": body }))
                    .send()
                    .await
                else {
                    return;
                };
                if response.status() != 201 {
                    return;
                }
                let Ok(event) = response.json::<Value>().await else {
                    return;
                };
                let id = event["event_id"].as_str().unwrap().to_owned();
                acked.lock().unwrap().push((id, body));
                count_tx.send_modify(|n| *n += 1);
            }
        }));
    }
    tokio::time::timeout(
        Duration::from_secs(120),
        count_rx.wait_for(|n| *n >= KILL_AFTER_ACKS),
    )
    .await
    .expect("the load did not reach its acknowledgement target in time")
    .unwrap();
    node.kill();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a sender hung after the kill")
            .unwrap();
    }
    acked.lock().unwrap().clone()
}

/// Every acknowledged message is found after a clean restart and after a
/// SIGKILL in the middle of a send load, each exactly once.
#[tokio::test]
async fn restarts_and_sigkill_lose_nothing_and_index_nothing_twice() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), FAST).await;
    let alice = node.register("alice").await;
    let rooms = vec![
        node.create_room(&alice, json!({ "name": "one" })).await,
        node.create_room(&alice, json!({ "name": "two" })).await,
    ];
    let mut before = Vec::new();
    for i in 0..20 {
        before.push(
            node.send(&alice, &rooms[i % 2], &format!("gecko calm {i}"))
                .await,
        );
    }
    until_found(&node, &alice, "gecko", &before.iter().collect::<Vec<_>>()).await;

    // A clean stop and start: the same hits, once each.
    assert!(node.terminate().await.success());
    node = Node::start(dir.path(), FAST).await;
    let alice = node.login("alice", PASSWORD).await;
    let hits = search_all(&node, &alice, "gecko", "").await;
    assert_eq!(hits.len(), before.len(), "no hit twice: {hits:?}");
    assert_eq!(ids(&hits), before.iter().cloned().collect());

    // SIGKILL mid-load, twice; after each restart every acknowledged
    // message is found exactly once, the earlier ones too.
    let mut acked = Vec::new();
    for round in 0..2 {
        let tag = format!("iguana{round}");
        let this_round = load_then_kill(&mut node, &alice, &rooms, &tag).await;
        node = Node::start(dir.path(), FAST).await;
        let alice = node.login("alice", PASSWORD).await;
        acked.extend(this_round.iter().cloned());
        let start = Instant::now();
        loop {
            let hits = search_all(&node, &alice, &tag, "").await;
            let unique: HashSet<&String> = hits.iter().map(|(id, _)| id).collect();
            assert_eq!(unique.len(), hits.len(), "a message indexed twice");
            let missing: Vec<_> = this_round
                .iter()
                .filter(|(id, _)| !unique.contains(id))
                .collect();
            if missing.is_empty() {
                // Stored but unacknowledged sends may be found too; every
                // hit carries its own body.
                for (_, body) in &hits {
                    assert!(body.starts_with(&tag), "{body:?}");
                }
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} of {} acknowledged messages not found after the restart, e.g. {:?}",
                missing.len(),
                this_round.len(),
                missing[0]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let hits = search_all(&node, &alice, "gecko", "").await;
        assert_eq!(hits.len(), before.len(), "earlier messages once each");
    }
    assert!(!acked.is_empty());

    // `spaces admin reindex` rebuilds the index from the store before the
    // node starts again: every message is there at once, each once.
    assert!(node.terminate().await.success());
    std::fs::remove_dir_all(dir.path().join("search")).unwrap();
    let said = admin(dir.path(), &["reindex"], "").await;
    let indexed: usize = said
        .trim()
        .strip_prefix("search index rebuilt from the store: ")
        .and_then(|rest| rest.strip_suffix(" messages"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    // Stored but unacknowledged sends count too.
    assert!(indexed >= before.len() + acked.len(), "{said}");
    node = Node::start(dir.path(), FAST).await;
    let alice = node.login("alice", PASSWORD).await;
    let hits = search_all(&node, &alice, "gecko", "").await;
    assert_eq!(ids(&hits), before.iter().cloned().collect());
    assert_eq!(hits.len(), before.len(), "no hit twice");
    let mut found = 0;
    for round in 0..2 {
        let hits = search_all(&node, &alice, &format!("iguana{round}"), "").await;
        assert_eq!(ids(&hits).len(), hits.len(), "a message indexed twice");
        found += hits
            .iter()
            .filter(|(id, _)| acked.iter().any(|(a, _)| a == id))
            .count();
    }
    assert_eq!(found, acked.len(), "every acknowledged message, at once");
}

/// `GET /directory?q=` matches words of public rooms' names and topics,
/// case and accents folded, by prefix.
#[tokio::test]
async fn the_directory_filters_public_rooms_by_name_and_topic() {
    let (_dir, node) = crate::support::node(FAST).await;
    let alice = node.register("alice").await;
    let gardens = node
        .create_room(
            &alice,
            json!({ "name": "Community Gardens", "topic": "Tomatoes and beans", "visibility": "public" }),
        )
        .await;
    let cafe = node
        .create_room(
            &alice,
            json!({ "name": "Café Central", "visibility": "public" }),
        )
        .await;
    node.create_room(&alice, json!({ "name": "Secret gardens" }))
        .await;
    let listed = |q: &str| {
        let node = &node;
        let alice = alice.clone();
        let q = encode(q);
        async move {
            let rooms = node
                .get(&format!("/api/v1/directory?q={q}"), Some(&alice.access))
                .await
                .expect(200);
            rooms
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["room_id"].as_str().unwrap().to_owned())
                .collect::<BTreeSet<String>>()
        }
    };
    assert_eq!(
        listed("gard").await,
        BTreeSet::from([gardens.clone()]),
        "private rooms are not listed"
    );
    assert_eq!(listed("TOMATO").await, BTreeSet::from([gardens.clone()]));
    assert_eq!(listed("cafe").await, BTreeSet::from([cafe.clone()]));
    assert_eq!(listed("").await, BTreeSet::from([gardens, cafe]));
    assert!(
        listed("gardens central").await.is_empty(),
        "every word must match"
    );
    node.get(
        &format!("/api/v1/directory?q={}", "a".repeat(101)),
        Some(&alice.access),
    )
    .await
    .error(400, "bad_value");
}
