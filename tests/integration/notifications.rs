//! Notifications (`GET /api/v1/notifications`, the `notification` frame):
//! who is notified of what, on real nodes, for events sent on the node and
//! received from another; unread first, marking read, and no duplicate or
//! loss across a restart.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::federation::{Peer, join_via, until, until_history_has};
use crate::support::{Node, User, Ws};

/// Every notification of `user`, following cursors, as the API lists them.
async fn all_notifications(node: &Node, user: &User) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = "/api/v1/notifications?limit=7".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = node.get(&path, Some(&user.access)).await.expect(200);
        out.extend(page["notifications"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
    panic!("more than 100 pages of notifications");
}

/// Waits until `user` has a notification of `event_id`, and returns all.
async fn until_notified(node: &Node, user: &User, event_id: &str) -> Vec<Value> {
    until("the notification is listed", || async {
        let all = all_notifications(node, user).await;
        all.iter().any(|n| n["event_id"] == event_id).then_some(all)
    })
    .await
}

async fn send(node: &Node, user: &User, room: &str, body: Value) -> String {
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&user.access),
        body,
    )
    .await
    .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What is expected of one event, found by its event id or (for an invite,
/// whose event id the API does not return) its room.
enum Key {
    Event(String),
    InviteTo(String),
}

struct Case {
    name: &'static str,
    key: Key,
    /// The reason rita is notified for, or `None`: not notified.
    want: Option<&'static str>,
}

/// The rules, table-driven, over two real nodes: rita on A is the one
/// notified (default level `all`, one room `mentions`, one muted); senders
/// are on A and on B. Mentions of her and of her role, `@room`, a reply,
/// a thread she wrote in, a keyword, a direct message and an invite notify
/// with their reason; a muted room, a mentions-only room's plain message, a
/// room she left and a message resolution refuses (a banned member's,
/// concurrent with the ban) do not.
#[tokio::test]
async fn who_is_notified_of_what() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let owner = &a.admin;
    let rita = a.node.register("rita").await;
    let sam = a.node.register("sam").await;
    let remy = b.node.register("remy").await;
    let dave = b.node.register("dave").await;
    let public = json!({ "name": "lobby", "visibility": "public" });
    let lobby = a.node.create_room(owner, public.clone()).await;
    let quiet = a.node.create_room(owner, public.clone()).await;
    let muted = a.node.create_room(owner, public.clone()).await;
    let gone = a.node.create_room(owner, public.clone()).await;
    let private = a
        .node
        .create_room(owner, json!({ "name": "private" }))
        .await;
    for room in [&lobby, &quiet, &muted, &gone] {
        a.node.join(&rita, room).await;
    }
    a.node.join(&sam, &lobby).await;
    join_via(&b, &remy, &lobby, &[a.id()]).await;
    join_via(&b, &dave, &lobby, &[a.id()]).await;
    a.node
        .post(
            &format!("/api/v1/rooms/{gone}/leave"),
            Some(&rita.access),
            json!({}),
        )
        .await
        .expect(200);
    // Role 1 for rita in the lobby.
    a.node
        .put(
            &format!("/api/v1/rooms/{lobby}/roles/1"),
            Some(&owner.access),
            json!({ "name": "oncall", "rank": 10, "permissions": [] }),
        )
        .await
        .expect(200);
    a.node
        .put(
            &format!("/api/v1/rooms/{lobby}/members/{}/roles", rita.id),
            Some(&owner.access),
            json!({ "roles": [1] }),
        )
        .await
        .expect(200);
    let far = 4_102_444_800_000u64; // 2100
    let settings = json!({
        "level": "all",
        "keywords": ["deploy"],
        "rooms": {
            quiet.clone(): { "level": "mentions" },
            muted.clone(): { "mute_until": far },
        },
    });
    let stored = a
        .node
        .put(
            "/api/v1/notifications/settings",
            Some(&rita.access),
            settings.clone(),
        )
        .await
        .expect(200);
    assert_eq!(stored["level"], "all");
    assert_eq!(
        a.node
            .get("/api/v1/notifications/settings", Some(&rita.access))
            .await
            .expect(200),
        stored
    );

    // What rita wrote, that others answer from B.
    let ritas = a.node.send(&rita, &lobby, "who has the pager?").await;
    let root = a.node.send(&sam, &lobby, "thread: release notes").await;
    send(
        &a.node,
        &rita,
        &lobby,
        json!({ "body": "I'll write them", "thread": root }),
    )
    .await;
    until_history_has(&b, &remy, &lobby, &[ritas.clone(), root.clone()]).await;

    let mention = |user: &User| json!({ "body": "look", "mentions": { "users": [user.id] } });
    let mut cases = vec![
        Case {
            name: "mention from another node",
            key: Key::Event(send(&b.node, &remy, &lobby, mention(&rita)).await),
            want: Some("mention"),
        },
        Case {
            name: "role mention from another node",
            key: Key::Event(
                send(
                    &b.node,
                    &remy,
                    &lobby,
                    json!({ "body": "on call?", "mentions": { "roles": [1] } }),
                )
                .await,
            ),
            want: Some("role_mention"),
        },
        Case {
            name: "reply from another node",
            key: Key::Event(
                send(
                    &b.node,
                    &remy,
                    &lobby,
                    json!({ "body": "me", "reply_to": ritas }),
                )
                .await,
            ),
            want: Some("reply"),
        },
        Case {
            name: "thread she wrote in, from another node",
            key: Key::Event(
                send(
                    &b.node,
                    &remy,
                    &lobby,
                    json!({ "body": "thanks", "thread": root }),
                )
                .await,
            ),
            want: Some("thread"),
        },
        Case {
            name: "@room",
            key: Key::Event(
                send(
                    &a.node,
                    owner,
                    &lobby,
                    json!({ "body": "all hands", "mentions": { "room": true } }),
                )
                .await,
            ),
            want: Some("room"),
        },
        Case {
            name: "keyword",
            key: Key::Event(a.node.send(&sam, &lobby, "Deploy at five").await),
            want: Some("keyword"),
        },
        Case {
            name: "plain message, level all",
            key: Key::Event(a.node.send(&sam, &lobby, "lunch?").await),
            want: Some("message"),
        },
        Case {
            name: "plain message in a mentions-only room",
            key: Key::Event(a.node.send(owner, &quiet, "chatter").await),
            want: None,
        },
        Case {
            name: "mention in a mentions-only room",
            key: Key::Event(send(&a.node, owner, &quiet, mention(&rita)).await),
            want: Some("mention"),
        },
        Case {
            name: "mention in a muted room",
            key: Key::Event(send(&a.node, owner, &muted, mention(&rita)).await),
            want: None,
        },
        Case {
            name: "mention in a room she left",
            key: Key::Event(send(&a.node, owner, &gone, mention(&rita)).await),
            want: None,
        },
        Case {
            name: "her own mention of herself",
            key: Key::Event(send(&a.node, &rita, &lobby, mention(&rita)).await),
            want: None,
        },
    ];
    a.node.invite(owner, &private, &rita).await;
    cases.push(Case {
        name: "invite",
        key: Key::InviteTo(private.clone()),
        want: Some("invite"),
    });
    let dm = a
        .node
        .post(
            "/api/v1/dms",
            Some(&sam.access),
            json!({ "user_id": rita.id }),
        )
        .await
        .expect(201)["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.node.join(&rita, &dm).await;
    cases.push(Case {
        name: "direct message",
        key: Key::Event(a.node.send(&sam, &dm, "psst").await),
        want: Some("direct"),
    });

    // A refused event: A bans dave while cut off from B, where dave,
    // unaware, mentions rita. Once the sides meet, resolution refuses it.
    a.node
        .put(
            &format!("/api/v1/admin/federation/blocks/{}", b.id()),
            Some(&a.admin.access),
            json!({}),
        )
        .await
        .expect(204);
    until("A has no connections", || async {
        let status = a.status().await;
        let connected = status["peers"]
            .as_array()?
            .iter()
            .any(|p| p["connected"] == true);
        (!connected).then_some(())
    })
    .await;
    a.node
        .post(
            &format!("/api/v1/rooms/{lobby}/ban"),
            Some(&owner.access),
            json!({ "user_id": dave.id }),
        )
        .await
        .expect(200);
    let daves = send(&b.node, &dave, &lobby, mention(&rita)).await;
    a.node
        .delete(
            &format!("/api/v1/admin/federation/blocks/{}", b.id()),
            Some(&a.admin.access),
        )
        .await
        .expect(204);
    cases.push(Case {
        name: "refused: a banned member's message concurrent with the ban",
        key: Key::Event(daves.clone()),
        want: None,
    });
    // The last event: B sends it after dave's, on top of it, so A holds
    // (and the notifier has passed) dave's before this one is notified.
    let last = send(&b.node, &remy, &lobby, mention(&rita)).await;
    let listed = until_notified(&a.node, &rita, &last).await;
    let by_event: HashMap<&str, &str> = listed
        .iter()
        .map(|n| {
            (
                n["event_id"].as_str().unwrap(),
                n["reason"].as_str().unwrap(),
            )
        })
        .collect();
    let by_room: HashMap<&str, Vec<&str>> = listed.iter().fold(HashMap::new(), |mut map, n| {
        map.entry(n["room_id"].as_str().unwrap())
            .or_default()
            .push(n["reason"].as_str().unwrap());
        map
    });
    let mut failures = Vec::new();
    for case in &cases {
        let got = match &case.key {
            Key::Event(id) => by_event.get(id.as_str()).copied(),
            Key::InviteTo(room) => by_room
                .get(room.as_str())
                .and_then(|reasons| reasons.iter().find(|r| **r == "invite").copied()),
        };
        if got != case.want {
            failures.push(format!("{}: got {got:?}, want {:?}", case.name, case.want));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Nothing from the rooms she is not notified of at all.
    for room in [&muted, &gone] {
        assert!(!by_room.contains_key(room.as_str()), "notified in {room}");
    }
    // Each notification names the event's sender and room, and an excerpt.
    let first = listed
        .iter()
        .find(|n| n["reason"] == "reply")
        .expect("the reply");
    assert_eq!(first["sender"], remy.id.as_str());
    assert_eq!(first["room_id"], lobby.as_str());
    assert_eq!(first["excerpt"], "me");
    assert_eq!(first["unread"], true);
}

/// The list is unread first, newest first; marking one and all read moves
/// them and the count; a WebSocket hears each new one; a restart neither
/// loses nor repeats any; bad requests change nothing.
#[tokio::test]
async fn unread_first_marking_read_frames_and_restart() {
    let dir = crate::support::data_dir();
    let env = [
        ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
        ("SPACES__LIMITS__SEND_BURST", "100000"),
    ];
    let mut node = Node::start(dir.path(), &env).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "r", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    let (mut ws, _) = Ws::auth(&node, &bob.access, 0).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let body = json!({ "body": format!("bob #{n}"), "mentions": { "users": [bob.id] } });
        sent.push(send(&node, &alice, &room, body).await);
    }
    // The frame of each, in order.
    let mut framed = Vec::new();
    while framed.len() < sent.len() {
        let frame = ws.next_json().await;
        if frame["type"] == "notification" {
            assert_eq!(frame["notification"]["reason"], "mention");
            assert_eq!(frame["notification"]["unread"], true);
            framed.push(
                frame["notification"]["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(framed, sent);
    let listed = until_notified(&node, &bob, &sent[4]).await;
    let ids: Vec<u64> = listed.iter().map(|n| n["id"].as_u64().unwrap()).collect();
    assert_eq!(listed.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let unread = |node: &Node| {
        let fut = node.get("/api/v1/notifications/unread", Some(&bob.access));
        async move { fut.await.expect(200)["unread"].as_u64().unwrap() }
    };
    assert_eq!(unread(&node).await, 5);

    // Mark the newest read: it moves behind the unread ones.
    node.post(
        &format!("/api/v1/notifications/{}/read", ids[0]),
        Some(&bob.access),
        json!({}),
    )
    .await
    .expect(204);
    assert_eq!(unread(&node).await, 4);
    let listed = all_notifications(&node, &bob).await;
    let order: Vec<(u64, bool)> = listed
        .iter()
        .map(|n| (n["id"].as_u64().unwrap(), n["unread"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            (ids[1], true),
            (ids[2], true),
            (ids[3], true),
            (ids[4], true),
            (ids[0], false)
        ]
    );
    // Bad requests: an unknown id, someone else's, a bad cursor.
    node.post(
        "/api/v1/notifications/999999/read",
        Some(&bob.access),
        json!({}),
    )
    .await
    .error(404, "unknown_notification");
    node.post(
        &format!("/api/v1/notifications/{}/read", ids[1]),
        Some(&alice.access),
        json!({}),
    )
    .await
    .error(404, "unknown_notification");
    node.get("/api/v1/notifications?cursor=zz", Some(&bob.access))
        .await
        .error(400, "bad_cursor");
    node.get("/api/v1/notifications?limit=0", Some(&bob.access))
        .await
        .error(400, "bad_value");
    node.put(
        "/api/v1/notifications/settings",
        Some(&bob.access),
        json!({ "level": "loud" }),
    )
    .await
    .error(400, "bad_value");
    node.put(
        "/api/v1/notifications/settings",
        Some(&bob.access),
        json!({ "level": "all", "keywords": vec!["x"; 33] }),
    )
    .await
    .error(400, "bad_value");
    assert_eq!(unread(&node).await, 4);
    assert_eq!(
        node.get("/api/v1/notifications/settings", Some(&bob.access))
            .await
            .expect(200)["level"],
        "mentions",
        "refused settings changed nothing"
    );
    ws.close().await;
    // Carol listens for a keyword: after the restart a message that does
    // not name her still reaches her (the notifier reads everyone's
    // settings at its start).
    let carol = node.register("carol").await;
    node.join(&carol, &room).await;
    node.put(
        "/api/v1/notifications/settings",
        Some(&carol.access),
        json!({ "level": "mentions", "keywords": ["deploy"] }),
    )
    .await
    .expect(200);

    // A restart: nothing lost, nothing notified twice; new events still notify.
    node.terminate().await;
    node = Node::start(dir.path(), &env).await;
    let bob = node.login("bob", crate::support::PASSWORD).await;
    let alice = node.login("alice", crate::support::PASSWORD).await;
    let after = send(
        &node,
        &alice,
        &room,
        json!({ "body": "again", "mentions": { "users": [bob.id] } }),
    )
    .await;
    let listed = until_notified(&node, &bob, &after).await;
    assert_eq!(listed.len(), 6, "{listed:#?}");
    let carol = node.login("carol", crate::support::PASSWORD).await;
    let deploy = send(&node, &alice, &room, json!({ "body": "Deploy at noon" })).await;
    let carols = until_notified(&node, &carol, &deploy).await;
    assert_eq!(carols.len(), 1, "{carols:#?}");
    assert_eq!(carols[0]["reason"], "keyword");
    assert_eq!(unread(&node).await, 5);
    let marked = node
        .post("/api/v1/notifications/read", Some(&bob.access), json!({}))
        .await
        .expect(200);
    assert_eq!(marked["marked"], 5);
    assert_eq!(unread(&node).await, 0);
    assert!(
        all_notifications(&node, &bob)
            .await
            .iter()
            .all(|n| n["unread"] == false)
    );
}
