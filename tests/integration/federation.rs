//! Federation: real nodes on loopback, joined by libp2p, sharing rooms.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::operator::{backup_online, restore};
use crate::search::first_page;
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
        Peer::start_with(bootstrap, &[]).await
    }

    /// [`Peer::start`] with more settings.
    pub async fn start_with(bootstrap: &[String], env: &[(&str, &str)]) -> Peer {
        let dir = data_dir();
        let node = start_node(dir.path(), bootstrap, env).await;
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
        self.node = start_node(self.dir.path(), bootstrap, &[]).await;
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

async fn start_node(dir: &std::path::Path, bootstrap: &[String], more: &[(&str, &str)]) -> Node {
    let bootstrap = env_list(bootstrap);
    let mut env = vec![
        ("SPACES__P2P__LISTEN", "[\"/ip4/127.0.0.1/tcp/0\"]"),
        ("SPACES__P2P__BOOTSTRAP", bootstrap.as_str()),
        ("SPACES__P2P__SYNC_INTERVAL_SECS", "2"),
        // A closed client is offline at once.
        ("SPACES__PRESENCE__GRACE_SECS", "0"),
        // Load tests send faster than a person may.
        ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
        ("SPACES__LIMITS__SEND_BURST", "100000"),
    ];
    env.extend_from_slice(more);
    Node::start(dir, &env).await
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

/// Sets up A and B (bootstrapped from A) with a public room owned by alice
/// on A that bob on B joined.
async fn two_in_a_room() -> ([Peer; 2], [User; 2], String) {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    ([a, b], [alice, bob], room)
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
    // C's join must have reached A before C goes down: C answers the join
    // once it is stored there, and sends it on after. Stopped before that,
    // C would hold an event A learns of only after C's return — after the
    // timeline compared below was read.
    until("A holds carol's join", || async {
        members(&a, &alice, &room)
            .await
            .iter()
            .any(|(user, membership, _)| *user == carol.id && membership == "join")
            .then_some(())
    })
    .await;
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

    // Alice on A and bob on B watch over WebSockets.
    let (mut ws_alice, _) = Ws::auth(&a.node, &alice.access, 0).await;
    let (mut ws_bob, _) = Ws::auth(&b.node, &bob.access, 0).await;

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
    // Dave speaks on B, not knowing A banned him: once the sides meet, the
    // ban refuses what it raced.
    let daves = b.node.send(&dave, &room, "dave during the split").await;
    sent.push(c.node.send(&carol, &room, "carol too").await);
    let cut_b = until_history_has(&b, &bob, &room, &sent[1..]).await;
    assert!(!cut_b.contains(&sent[0]), "the partition held");
    // B's search index has dave's message while B accepts it.
    until("B's search finds dave's message", || async {
        let found = first_page(&b.node, &bob, "during the split").await?;
        found.contains(&daves).then_some(())
    })
    .await;

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
    assert!(
        !timeline.contains(&daves),
        "dave's message is refused everywhere"
    );
    // The refusal reaches B's search index: the flip takes it out, while
    // bob's message of the same split stays found.
    until("B's search forgets dave's message", || async {
        let found = first_page(&b.node, &bob, "during the split").await?;
        let others = first_page(&b.node, &bob, "other side").await?;
        (!found.contains(&daves) && others.contains(&sent[1])).then_some(())
    })
    .await;
    // Bob saw it live; his client is told it is refused.
    let seen = ws_bob.until_refused(&daves).await;
    let daves_seq = seen
        .iter()
        .find(|f| f["type"] == "event" && f["event"]["event_id"] == daves)
        .expect("bob saw dave's message before the ban arrived")["seq"]
        .as_u64()
        .unwrap();
    // A client of bob's that was away since then hears it on resuming.
    let (mut resumed, _) = Ws::auth(&b.node, &bob.access, daves_seq).await;
    let replayed = resumed.until_refused(&daves).await;
    assert!(
        !replayed.iter().any(|f| f["event"]["event_id"] == daves),
        "the backlog leaves out what is refused now"
    );
    // Alice's node had the ban first: her client never sees it.
    let marker = a.node.send(&alice, &room, "after the merge").await;
    let frames = ws_alice.events_until(&marker).await;
    assert!(
        !frames.iter().any(|f| f["event"]["event_id"] == daves),
        "a refused event reaches no client"
    );
}

/// A node restored from a backup serves what the backup held, then
/// catches up from the node it shares a room with what was sent after the
/// backup — its own users' messages (which its peer holds) and the
/// peer's — and federates again both ways.
#[tokio::test]
async fn a_restored_node_catches_up_its_rooms_from_peers() {
    let ([a, b], [alice, bob], room) = two_in_a_room().await;
    let mut sent = vec![
        a.node.send(&alice, &room, "alice before the backup").await,
        b.node.send(&bob, &room, "bob before the backup").await,
    ];
    until_history_has(&a, &alice, &room, &sent).await;
    let work = data_dir();
    let archive = work.path().join("a.spaces");
    let output = backup_online(&a.node, &a.admin.access, &archive).await;
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // After the backup: both sides send, and B holds it all.
    sent.push(a.node.send(&alice, &room, "alice after the backup").await);
    sent.push(b.node.send(&bob, &room, "bob after the backup").await);
    until_history_has(&b, &bob, &room, &sent).await;

    // A's disk dies; its backup is restored into a new directory.
    let mut a = a;
    let identity = a.id().to_owned();
    assert!(a.node.terminate().await.success());
    let restored_dir = data_dir();
    let restored = restore(&archive, restored_dir.path()).await;
    assert!(
        restored.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    a.dir = restored_dir;
    a.restart(std::slice::from_ref(&b.addr)).await;
    assert_eq!(a.id(), identity, "the same identity");
    let alice = a.node.login("alice", crate::support::PASSWORD).await;
    // Everything: the backup's, and what it missed, from B.
    until_history_has(&a, &alice, &room, &sent).await;
    // And both ways again.
    let from_a = a.node.send(&alice, &room, "alice is back").await;
    until_history_has(&b, &bob, &room, std::slice::from_ref(&from_a)).await;
    let from_b = b.node.send(&bob, &room, "welcome back").await;
    until_history_has(&a, &alice, &room, &[from_a, from_b]).await;
}

/// A libp2p peer in the test process that speaks the federation protocol:
/// an outsider or an attacker. It records every event anything sends it.
pub(crate) struct Raw {
    handle: spaces_federation::Handle,
    key: spaces_protocol::NodeKey,
    received: std::sync::Arc<Recorder>,
}

#[derive(Debug, Default)]
struct Recorder {
    events: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl spaces_federation::Host for Recorder {
    async fn offer(
        &self,
        _from: spaces_protocol::NodeId,
        events: Vec<Vec<u8>>,
    ) -> Vec<spaces_federation::Offer> {
        let n = events.len();
        self.events.lock().unwrap().extend(events);
        // Never forwarded: the recorder only listens.
        vec![spaces_federation::Offer::Duplicate; n]
    }

    async fn answer(
        &self,
        _from: spaces_protocol::NodeId,
        _request: spaces_federation::wire::Request,
    ) -> spaces_federation::wire::Response {
        spaces_federation::wire::Response::refused("unknown_room", "nothing here")
    }

    async fn heads(&self, _room: spaces_protocol::RoomId) -> Vec<spaces_protocol::EventId> {
        Vec::new()
    }
}

impl Raw {
    pub(crate) async fn start(bootstrap: &str) -> Raw {
        let key = spaces_protocol::NodeKey::from_seed(rand::random());
        let received = std::sync::Arc::new(Recorder::default());
        let config = spaces_federation::Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![bootstrap.parse().unwrap()],
            mdns: false,
            sync_interval: Duration::from_secs(3600),
            blocked: Vec::new(),
            max_inbound: spaces_federation::DEFAULT_MAX_INBOUND,
        };
        let (handle, _task) = spaces_federation::start(config, &key, received.clone()).unwrap();
        Raw {
            handle,
            key,
            received,
        }
    }

    fn node_id(&self) -> spaces_protocol::NodeId {
        self.key.node_id()
    }

    /// Subscribes to a room's gossip topic, as a member node would.
    async fn subscribe(&self, room: spaces_protocol::RoomId) {
        let route = spaces_federation::Route {
            public: true,
            nodes: Vec::new(),
        };
        self.handle.set_room(room, Some(route)).await.unwrap();
    }

    pub(crate) async fn ask(
        &self,
        node: &str,
        request: spaces_federation::wire::Request,
    ) -> spaces_federation::wire::Response {
        self.handle
            .request(node.parse().unwrap(), request)
            .await
            .expect("the node answers")
    }
}

#[tokio::test]
async fn private_rooms_reach_member_nodes_only_and_invites_cross_nodes() {
    use spaces_federation::wire::{Request, Response};

    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "secret", "visibility": "private" }))
        .await;
    let room_id: spaces_protocol::RoomId = room.parse().unwrap();
    // An outsider node that knows the room id listens on its topic.
    let spy = Raw::start(&a.addr).await;
    spy.subscribe(room_id).await;

    // Alice on A invites bob on B: the invite arrives on B.
    a.node.invite(&alice, &room, &bob).await;
    until("bob sees the invite on his node", || async {
        let rooms = b
            .node
            .get("/api/v1/rooms", Some(&bob.access))
            .await
            .expect(200);
        rooms
            .as_array()?
            .iter()
            .any(|r| r["room_id"] == room.as_str() && r["membership"] == "invite")
            .then_some(())
    })
    .await;
    b.node.join(&bob, &room).await;
    let sent = vec![
        a.node.send(&alice, &room, "for bob only").await,
        b.node.send(&bob, &room, "and back").await,
    ];
    until_history_has(&a, &alice, &room, &sent).await;
    until_history_has(&b, &bob, &room, &sent).await;

    // The outsider asks A for the room and for events by id: refused as if
    // the room did not exist.
    let backfill = Request::Backfill {
        room: room_id,
        known: Vec::new(),
        limit: 100,
    };
    let by_id = Request::Events {
        room: room_id,
        ids: sent.iter().map(|id| id.parse().unwrap()).collect(),
    };
    for request in [backfill, by_id] {
        match spy.ask(a.id(), request).await {
            Response::Refused { code, .. } => assert_eq!(code, "unknown_room"),
            other => panic!("an outsider was answered: {other:?}"),
        }
    }
    // Nor does it get in by asking to join without an invite.
    let join = Request::Join {
        room: room_id,
        user: format!("@eve:{}", spy.node_id()),
        code: None,
    };
    assert!(matches!(
        spy.ask(a.id(), join).await,
        Response::Refused { .. }
    ));
    // A user on a third node fails the same way over HTTP.
    let c = Peer::start(std::slice::from_ref(&a.addr)).await;
    let carol = c.node.register("carol").await;
    c.node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&carol.access),
            json!({ "via": [a.id()] }),
        )
        .await
        .error(404, "unknown_room");
    // After all that traffic, nothing of the room reached the outsider.
    b.node.send(&bob, &room, "one more").await;
    let last = a.node.send(&alice, &room, "and the last").await;
    until_history_has(&b, &bob, &room, &[last]).await;
    assert!(
        spy.received.events.lock().unwrap().is_empty(),
        "a private room's event reached a node with no member in it"
    );
}

#[tokio::test]
async fn invite_links_minted_on_one_node_admit_users_of_another() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "club", "visibility": "private" }))
        .await;
    let first = a.node.send(&alice, &room, "before bob").await;
    let link = a
        .node
        .post(
            &format!("/api/v1/rooms/{room}/invite-links"),
            Some(&alice.access),
            json!({ "uses": 1 }),
        )
        .await
        .expect(201);
    let code = link["code"].as_str().unwrap();
    // Without the code, the room stays closed to B.
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&bob.access),
            json!({ "via": [a.id()] }),
        )
        .await
        .error(404, "unknown_room");
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&bob.access),
            json!({ "via": [a.id()], "code": code }),
        )
        .await
        .expect(200);
    // Bob sees the history (shared visibility) and is seen joined on A.
    until_history_has(&b, &bob, &room, std::slice::from_ref(&first)).await;
    until("A sees bob joined", || async {
        members(&a, &alice, &room)
            .await
            .iter()
            .any(|m| m.0 == bob.id && m.1 == "join")
            .then_some(())
    })
    .await;
    // The link had one use.
    let dan = b.node.register("dan").await;
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&dan.access),
            json!({ "via": [a.id()], "code": code }),
        )
        .await
        .error(404, "unknown_invite_link");
}

#[tokio::test]
async fn a_hostile_peer_gets_nothing_accepted_or_forwarded_and_is_banned() {
    use spaces_federation::wire::{MAX_PUSH_EVENTS, Request};
    use spaces_protocol::content::Content;

    let ([a, b], [alice, bob], room) = two_in_a_room().await;
    let room_id: spaces_protocol::RoomId = room.parse().unwrap();

    let mallory = Raw::start(&a.addr).await;
    mallory.subscribe(room_id).await;
    // A public room: mallory may read it, and builds a replica to forge on.
    let events = match mallory
        .ask(
            a.id(),
            Request::Backfill {
                room: room_id,
                known: Vec::new(),
                limit: 1000,
            },
        )
        .await
    {
        spaces_federation::wire::Response::Events { events, .. } => events,
        other => panic!("backfill of a public room: {other:?}"),
    };
    let decoded: Vec<spaces_protocol::Event> = events
        .iter()
        .map(|e| spaces_protocol::Event::decode(e).unwrap())
        .collect();
    let mut replica = spaces_protocol::Room::new(decoded[0].clone()).unwrap();
    for event in &decoded[1..] {
        replica.insert(event.clone()).unwrap();
    }
    let a_node: spaces_protocol::NodeId = a.id().parse().unwrap();
    let to_a = spaces_federation::Route {
        public: true,
        nodes: vec![a_node],
    };
    let publish = |bytes: Vec<u8>| {
        let route = to_a.clone();
        let handle = mallory.handle.clone();
        async move { handle.publish(room_id, bytes, route).await.unwrap() }
    };

    // A forged signature on a real event of alice's.
    let mut forged = events.last().unwrap().clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    publish(forged).await;
    // A well-signed event by someone who never joined.
    let rename = replica
        .draft(
            mallory.node_id(),
            "mallory",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            Content::Name("pwned".into()),
        )
        .sign(&mallory.key)
        .unwrap();
    publish(rename.bytes().to_vec()).await;
    // Garbage, an oversized event, and a push beyond the request limits.
    publish(vec![0x01, 0xff, 0x00, 0x13, 0x37]).await;
    let oversized = Request::Push {
        events: vec![vec![0x01; 70_000]],
    };
    mallory.handle.request(a_node, oversized).await.unwrap();
    let too_many = Request::Push {
        events: vec![vec![0x01; 8]; MAX_PUSH_EVENTS + 1],
    };
    mallory.handle.request(a_node, too_many).await.unwrap();
    // Then a flood of junk, bounded: by gossip, and by push (which gossip
    // scoring cannot silence first).
    for i in 0..2_000u32 {
        let mut junk = vec![0x01; 64];
        junk[1..5].copy_from_slice(&i.to_be_bytes());
        publish(junk).await;
    }
    for i in 0..20u32 {
        let mut junk = vec![0x01; 64];
        junk[1..5].copy_from_slice(&i.to_be_bytes());
        let push = Request::Push { events: vec![junk] };
        // Once banned, mallory's requests fail: that is the point.
        let _ = mallory.handle.request(a_node, push).await;
    }

    // A scores mallory down to a ban.
    until("A bans mallory", || async {
        let status = a.status().await;
        let peers = status["peers"].as_array()?.clone();
        let row = peers
            .iter()
            .find(|p| p["node_id"] == mallory.node_id().to_string().as_str())?;
        (row["banned"] == true && row["rejected"].as_u64()? >= 5).then_some(())
    })
    .await;
    // A stays responsive and keeps serving its members.
    a.node.get("/healthz", None).await.expect(200);
    let after = a.node.send(&alice, &room, "still here").await;
    until_history_has(&b, &bob, &room, std::slice::from_ref(&after)).await;
    // Nothing mallory sent was accepted, and nothing was forwarded to B.
    for (peer, user) in [(&a, &alice), (&b, &bob)] {
        let info = peer
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&user.access))
            .await
            .expect(200);
        assert_eq!(info["name"], "lobby");
        let history = peer.node.history(user, &room, 200).await;
        assert!(
            history.iter().all(|e| !e["sender"]
                .as_str()
                .unwrap_or("")
                .contains(&mallory.node_id().to_string())),
            "an event of mallory's was stored"
        );
    }
    // (Mallory also reached B directly, and B scored it down on its own.)
    let b_status = b.status().await;
    for row in b_status["peers"].as_array().unwrap() {
        if row["node_id"] == a.id() {
            assert_eq!(row["rejected"], 0, "A forwarded something invalid: {row}");
        }
    }
}

/// The next frame of `kind` on a WebSocket, skipping others.
async fn next_of_kind(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = ws.next_json().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test]
async fn typing_and_read_receipts_cross_nodes_without_being_stored() {
    let ([a, b], [alice, bob], public) = two_in_a_room().await;
    let private = a
        .node
        .create_room(&alice, json!({ "name": "pair", "visibility": "private" }))
        .await;
    a.node.invite(&alice, &private, &bob).await;
    until("the invite reaches B", || async {
        b.node
            .post(
                &format!("/api/v1/rooms/{private}/join"),
                Some(&bob.access),
                json!({}),
            )
            .await
            .code()
            .is_none()
            .then_some(())
    })
    .await;
    let (mut ws_a, _) = Ws::auth(&a.node, &alice.access, 0).await;
    let (mut ws_b, _) = Ws::auth(&b.node, &bob.access, 0).await;

    // By gossip (public) and by push (private), both ways.
    for room in [&public, &private] {
        let n_events = |peer: &Peer, user: &User| {
            let path = format!("/api/v1/rooms/{room}");
            let get = peer.node.get(&path, Some(&user.access));
            async move { get.await.expect(200)["n_events"].as_u64().unwrap() }
        };
        let before = n_events(&a, &alice).await;
        a.node
            .post(
                &format!("/api/v1/rooms/{room}/typing"),
                Some(&alice.access),
                json!({ "typing": true }),
            )
            .await
            .expect(204);
        let typing = next_of_kind(&mut ws_b, "typing").await;
        assert_eq!(typing["room_id"], room.as_str());
        assert_eq!(typing["user_id"], alice.id.as_str());
        assert_eq!(typing["typing"], true);

        let message = a.node.send(&alice, room, "read me").await;
        until_history_has(&b, &bob, room, std::slice::from_ref(&message)).await;
        b.node
            .post(
                &format!("/api/v1/rooms/{room}/read"),
                Some(&bob.access),
                json!({ "event_id": message }),
            )
            .await
            .expect(204);
        let receipt = next_of_kind(&mut ws_a, "receipt").await;
        assert_eq!(receipt["room_id"], room.as_str());
        assert_eq!(receipt["user_id"], bob.id.as_str());
        assert_eq!(receipt["event_id"], message.as_str());
        // Only the message became an event: notices are not stored.
        assert_eq!(n_events(&a, &alice).await, before + 1);
    }
    // An outsider may not type into a room.
    let carol = a.node.register("carol").await;
    a.node
        .post(
            &format!("/api/v1/rooms/{public}/typing"),
            Some(&carol.access),
            json!({ "typing": true }),
        )
        .await
        .error(403, "not_member");
}

#[tokio::test]
async fn presence_crosses_nodes_both_ways() {
    let ([a, b], [alice, bob], room) = two_in_a_room().await;
    let (mut alice_ws, _) = Ws::auth(&a.node, &alice.access, 0).await;
    let (mut bob_ws, _) = Ws::auth(&b.node, &bob.access, 0).await;
    // Each hears of the other, whichever connected first: alice's online
    // reached B before bob connected, and B shows it to him on connecting.
    alice_ws.presence_of(&bob.id, "online").await;
    bob_ws.presence_of(&alice.id, "online").await;
    // A took bob's presence, so it holds his join: the room is complete.
    let n_events = || {
        let get = a
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&alice.access));
        async move { get.await.expect(200)["n_events"].as_u64().unwrap() }
    };
    let before = n_events().await;
    assert_eq!(a.node.presence_in(&alice, &room, &bob).await, "online");

    bob_ws
        .send_text(r#"{"type":"presence","state":"away"}"#)
        .await;
    alice_ws.presence_of(&bob.id, "away").await;
    assert_eq!(a.node.presence_in(&alice, &room, &bob).await, "away");
    // B says so when bob's last client leaves (its announcements hold for
    // three minutes: only the explicit offline can end this one now).
    bob_ws.close().await;
    alice_ws.presence_of(&bob.id, "offline").await;
    assert_eq!(a.node.presence_in(&alice, &room, &bob).await, "offline");
    // None of it was stored.
    assert_eq!(n_events().await, before);
}

#[tokio::test]
async fn presence_lapses_with_a_node_that_vanished() {
    let a = Peer::start(&[]).await;
    // B repeats every 2 s, so its announcements hold for 6 s.
    let b = Peer::start_with(
        std::slice::from_ref(&a.addr),
        &[("SPACES__PRESENCE__REFRESH_SECS", "2")],
    )
    .await;
    let mut b = b;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    let (mut alice_ws, _) = Ws::auth(&a.node, &alice.access, 0).await;
    let (_bob_ws, _) = Ws::auth(&b.node, &bob.access, 0).await;
    alice_ws.presence_of(&bob.id, "online").await;
    // A node that dies says nothing: its users lapse to offline when their
    // presence is not repeated.
    b.node.kill();
    alice_ws.presence_of(&bob.id, "offline").await;
    assert_eq!(a.node.presence_in(&alice, &room, &bob).await, "offline");
}
