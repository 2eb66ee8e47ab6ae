//! Federation: real nodes on loopback, joined by libp2p, sharing rooms.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Node, User, Ws, data_dir, ids};

/// How long a cross-node condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// One node of a test federation, with its first user (a node admin).
pub struct Peer {
    pub dir: tempfile::TempDir,
    pub node: Node,
    pub admin: User,
    /// Its federation address, `/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>`.
    pub addr: String,
}

fn env_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(","))
}

impl Peer {
    /// Starts a node listening for federation on an ephemeral loopback
    /// port, bootstrapped from `bootstrap`.
    pub async fn start(bootstrap: &[String]) -> Peer {
        let dir = data_dir();
        let node = start_node(&dir, bootstrap).await;
        let admin = node.register("admin").await;
        let addr = federation_addr(&node, &admin).await;
        Peer {
            dir,
            node,
            admin,
            addr,
        }
    }

    /// Starts the node again (after it was stopped) on the same data
    /// directory, bootstrapped from `bootstrap`.
    pub async fn restart(&mut self, bootstrap: &[String]) {
        self.node = start_node(&self.dir, bootstrap).await;
        self.admin = self.node.login("admin", crate::support::PASSWORD).await;
        self.addr = federation_addr(&self.node, &self.admin).await;
    }

    pub fn id(&self) -> &str {
        &self.node.node_id
    }

    pub async fn status(&self) -> Value {
        self.node
            .get("/api/v1/admin/federation", Some(&self.admin.access))
            .await
            .expect(200)
    }
}

async fn start_node(dir: &tempfile::TempDir, bootstrap: &[String]) -> Node {
    let bootstrap = env_list(bootstrap);
    Node::start(
        dir.path(),
        &[
            ("SPACES__P2P__LISTEN", "[\"/ip4/127.0.0.1/tcp/0\"]"),
            ("SPACES__P2P__BOOTSTRAP", &bootstrap),
            ("SPACES__P2P__SYNC_INTERVAL_SECS", "2"),
            // Load tests send faster than a person may.
            ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
            ("SPACES__LIMITS__SEND_BURST", "100000"),
        ],
    )
    .await
}

async fn federation_addr(node: &Node, admin: &User) -> String {
    until("the node listens for federation", || async {
        let status = node
            .get("/api/v1/admin/federation", Some(&admin.access))
            .await
            .expect(200);
        let addr = status["addresses"][0].as_str()?.to_owned();
        Some(addr)
    })
    .await
}

/// Polls `check` until it returns `Some`, or fails the test at the deadline.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Joins a room held elsewhere, naming nodes in it (none: ask the DHT).
pub async fn join_via(peer: &Peer, user: &User, room: &str, via: &[&str]) -> Value {
    peer.node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&user.access),
            json!({ "via": via }),
        )
        .await
        .expect(200)
}

/// Waits until `peer` holds every one of `events` in `room`'s history, and
/// returns the history's event ids.
pub async fn until_history_has(
    peer: &Peer,
    user: &User,
    room: &str,
    events: &[String],
) -> Vec<String> {
    until("history holds every event", || async {
        let history = ids(&peer.node.history(user, room, 200).await);
        let held: HashSet<&String> = history.iter().collect();
        events.iter().all(|e| held.contains(e)).then_some(history)
    })
    .await
}

#[tokio::test]
async fn three_nodes_chat_in_one_room_and_agree_on_its_order() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let c = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = c.node.register("carol").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    // Bob names the node; Carol names none and finds the room in the DHT.
    join_via(&b, &bob, &room, &[a.id()]).await;
    join_via(&c, &carol, &room, &[]).await;

    let (mut ws_a, _) = Ws::auth(&a.node, &alice.access, 0).await;
    let (mut ws_b, _) = Ws::auth(&b.node, &bob.access, 0).await;
    let (mut ws_c, _) = Ws::auth(&c.node, &carol.access, 0).await;

    let mut sent = Vec::new();
    for round in 0..3 {
        sent.push(a.node.send(&alice, &room, &format!("alice {round}")).await);
        sent.push(b.node.send(&bob, &room, &format!("bob {round}")).await);
        sent.push(c.node.send(&carol, &room, &format!("carol {round}")).await);
    }
    // Every message reaches every member's WebSocket on every node.
    for ws in [&mut ws_a, &mut ws_b, &mut ws_c] {
        let mut missing: HashSet<&String> = sent.iter().collect();
        while !missing.is_empty() {
            let frame = ws.next_event().await;
            if let Some(id) = frame["event"]["event_id"].as_str() {
                missing.retain(|m| m.as_str() != id);
            }
        }
    }
    // And every node holds the same timeline in the same order.
    let on_a = until_history_has(&a, &alice, &room, &sent).await;
    let on_b = until_history_has(&b, &bob, &room, &sent).await;
    let on_c = until_history_has(&c, &carol, &room, &sent).await;
    assert_eq!(on_a, on_b);
    assert_eq!(on_a, on_c);
}

/// A node's view of a room's members: (user id, membership, roles).
async fn members(peer: &Peer, user: &User, room: &str) -> Vec<(String, String, Value)> {
    let members = peer
        .node
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&user.access))
        .await
        .expect(200);
    let mut rows: Vec<(String, String, Value)> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap_or_default().to_owned(),
                m["membership"].as_str().unwrap_or_default().to_owned(),
                m["roles"].clone(),
            )
        })
        .collect();
    rows.sort_by(|x, y| x.0.cmp(&y.0));
    rows
}

/// Sets up A, B and C (C bootstrapped from both) with a public room owned
/// by alice on A that bob (B) and carol (C) joined.
async fn three_in_a_room() -> ([Peer; 3], [User; 3], String) {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let c = Peer::start(&[a.addr.clone(), b.addr.clone()]).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = c.node.register("carol").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    join_via(&c, &carol, &room, &[a.id()]).await;
    ([a, b, c], [alice, bob, carol], room)
}

#[tokio::test]
async fn a_node_that_was_away_catches_up_on_everything_it_missed() {
    let ([a, b, mut c], [alice, bob, carol], room) = three_in_a_room().await;
    c.node.terminate().await;
    // 1,000 messages from both remaining nodes while C is down.
    let mut sent = Vec::new();
    for i in 0..500 {
        sent.push(a.node.send(&alice, &room, &format!("a{i}")).await);
        sent.push(b.node.send(&bob, &room, &format!("b{i}")).await);
    }
    let on_a = until_history_has(&a, &alice, &room, &sent).await;
    let on_b = until_history_has(&b, &bob, &room, &sent).await;
    assert_eq!(on_a, on_b);

    c.restart(std::slice::from_ref(&a.addr)).await;
    let carol = c.node.login(&carol.name, crate::support::PASSWORD).await;
    let on_c = until_history_has(&c, &carol, &room, &sent).await;
    assert_eq!(on_c, on_a, "same timeline, same order");
    assert_eq!(
        members(&c, &carol, &room).await,
        members(&a, &alice, &room).await,
        "same state"
    );
}

#[tokio::test]
async fn partitioned_nodes_that_both_changed_state_converge_when_healed() {
    let ([a, b, c], [alice, bob, carol], room) = three_in_a_room().await;
    let dave = b.node.register("dave").await;
    join_via(&b, &dave, &room, &[]).await;
    // Bob becomes a moderator who may manage roles, below alice.
    a.node
        .put(
            &format!("/api/v1/rooms/{room}/roles/1"),
            Some(&alice.access),
            json!({ "name": "mod", "rank": 50, "permissions": ["manage_roles", "ban", "kick"] }),
        )
        .await
        .expect(200);
    a.node
        .put(
            &format!("/api/v1/rooms/{room}/roles/2"),
            Some(&alice.access),
            json!({ "name": "helper", "rank": 10, "permissions": ["kick"] }),
        )
        .await
        .expect(200);
    a.node
        .put(
            &format!("/api/v1/rooms/{room}/members/{}/roles", bob.id),
            Some(&alice.access),
            json!({ "roles": [1] }),
        )
        .await
        .expect(200);
    let before = members(&a, &alice, &room).await;
    until("B and C see bob's role and dave", || async {
        (members(&b, &bob, &room).await == before && members(&c, &carol, &room).await == before)
            .then_some(())
    })
    .await;

    // Cut A from B and C: A refuses both, so neither side hears the other.
    for other in [&b, &c] {
        a.node
            .put(
                &format!("/api/v1/admin/federation/blocks/{}", other.id()),
                Some(&a.admin.access),
                json!({}),
            )
            .await
            .expect(204);
    }
    until("A has no connections", || async {
        let status = a.status().await;
        let connected = status["peers"]
            .as_array()?
            .iter()
            .any(|p| p["connected"] == true);
        (!connected).then_some(())
    })
    .await;

    // Each side sends and changes state: A bans dave, B promotes him.
    let mut sent = vec![a.node.send(&alice, &room, "alice alone").await];
    a.node
        .post(
            &format!("/api/v1/rooms/{room}/ban"),
            Some(&alice.access),
            json!({ "user_id": dave.id }),
        )
        .await
        .expect(200);
    b.node
        .put(
            &format!("/api/v1/rooms/{room}/members/{}/roles", dave.id),
            Some(&bob.access),
            json!({ "roles": [2] }),
        )
        .await
        .expect(200);
    sent.push(b.node.send(&bob, &room, "bob on the other side").await);
    sent.push(c.node.send(&carol, &room, "carol too").await);
    let cut_b = until_history_has(&b, &bob, &room, &sent[1..]).await;
    assert!(!cut_b.contains(&sent[0]), "the partition held");

    // Heal: every node converges on one state and one timeline.
    for other in [&b, &c] {
        a.node
            .delete(
                &format!("/api/v1/admin/federation/blocks/{}", other.id()),
                Some(&a.admin.access),
            )
            .await
            .expect(204);
    }
    let on_a = until_history_has(&a, &alice, &room, &sent).await;
    until_history_has(&b, &bob, &room, &sent).await;
    until_history_has(&c, &carol, &room, &sent).await;
    let state = until("all three agree on the state", || async {
        let on_a = members(&a, &alice, &room).await;
        (members(&b, &bob, &room).await == on_a && members(&c, &carol, &room).await == on_a)
            .then_some(on_a)
    })
    .await;
    let dave_row = state.iter().find(|m| m.0 == dave.id).expect("dave");
    assert_eq!(
        dave_row.1, "ban",
        "the owner's ban holds over a moderator's promotion"
    );
    let timeline = until("all three agree on the timeline", || async {
        let on_a = ids(&a.node.history(&alice, &room, 200).await);
        (ids(&b.node.history(&bob, &room, 200).await) == on_a
            && ids(&c.node.history(&carol, &room, 200).await) == on_a)
            .then_some(on_a)
    })
    .await;
    assert!(timeline.len() >= on_a.len());
}
