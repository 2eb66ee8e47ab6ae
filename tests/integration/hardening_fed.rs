//! Inbound federation under a flood: ten thousand concurrent requests from
//! test peers (real libp2p swarms in this process, built with
//! `spaces_federation::start`) against one node. The node's bound on
//! inbound work (`p2p.max_inbound_requests`, docs/spec/federation.md#busy)
//! must answer what it cannot take `Busy` at once, keep serving HTTP, keep
//! its memory bounded, and free every slot once the flood is over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use spaces_federation::wire::{Request, Response};
use spaces_federation::{FedError, Handle, Host, Offer};
use spaces_protocol::{EventId, NodeId, NodeKey, RoomId};

use crate::federation::{Peer, until};

/// Requests in the flood, all sent at once.
const REQUESTS: usize = 10_000;
/// Test peers sending them. A peer opens one connection, and a connection
/// carries at most 64 streams at once (both sides' libp2p limit), so it
/// takes 157 peers for ten thousand requests to be in flight together.
const FLOODERS: usize = 160;
/// The node's memory may grow by at most this much over the flood (VmRSS).
/// What the bound allows: 64 slots, each holding one backfill response of
/// the room below (~110 KiB), about 7 MiB, plus the flooders' 160
/// connections (yamux and noise buffers, a few hundred KiB each at most)
/// and the allocator's slack. Without the bound, ten thousand responses of
/// 110 KiB would be about 1 GiB.
const MAX_RSS_GROWTH_KIB: u64 = 256 * 1024;
/// A flood is over in well under this on any machine; it bounds the test.
const FLOOD_DEADLINE: Duration = Duration::from_secs(180);
/// "Responsive" during the flood: an HTTP request answered within this.
/// Generous on purpose (a loaded 2-core CI box); a node whose HTTP waits
/// behind federation work would take the flood's whole length.
const PROMPT: Duration = Duration::from_secs(10);

/// A test peer's node: holds nothing, answers nothing.
struct Nothing;

impl Host for Nothing {
    async fn offer(&self, _from: NodeId, events: Vec<Vec<u8>>) -> Vec<Offer> {
        vec![Offer::Duplicate; events.len()]
    }
    async fn answer(&self, _from: NodeId, _request: Request) -> Response {
        Response::refused("unknown_room", "nothing here")
    }
    async fn heads(&self, _room: RoomId) -> Vec<EventId> {
        Vec::new()
    }
}

/// A test peer connected to `addr`: it listens nowhere and dials only it.
async fn flooder(addr: &str, node: NodeId, room: RoomId) -> Handle {
    let key = NodeKey::from_seed(rand::random());
    let config = spaces_federation::Config {
        listen: Vec::new(),
        bootstrap: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(3600),
        blocked: Vec::new(),
        max_inbound: spaces_federation::DEFAULT_MAX_INBOUND,
    };
    let (handle, _task) = spaces_federation::start(config, &key, Arc::new(Nothing)).unwrap();
    handle.dial(addr.parse().unwrap()).await.unwrap();
    // One small request first: the connection is up when it is answered.
    let warm = Request::Events {
        room,
        ids: Vec::new(),
    };
    let answer = handle.request(node, warm).await;
    assert!(
        matches!(answer, Ok(Response::Events { .. })),
        "warm-up: {answer:?}"
    );
    handle
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    busy: usize,
    /// Timed out, or the connection closed (a flooder charged to a ban).
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_inbound_requests_leave_the_node_responsive_and_bounded() {
    let peer = Peer::start(&[]).await;
    let alice = peer.node.register("alice").await;
    let room = peer
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    // Backfill answers worth holding: 50 messages of 2 KiB, ~110 KiB.
    let text = "x".repeat(2_000);
    for _ in 0..50 {
        peer.node.send(&alice, &room, &text).await;
    }
    let room_id: RoomId = room.parse().unwrap();
    let node_id: NodeId = peer.id().parse().unwrap();

    // The flooders connect a batch at a time: the node sets up at most 64
    // connections from outside at once.
    let mut flooders = Vec::with_capacity(FLOODERS);
    for _ in 0..FLOODERS / 20 {
        let batch = (0..20).map(|_| flooder(&peer.addr, node_id, room_id));
        flooders.extend(futures_util::future::join_all(batch).await);
    }
    let rss_before = vm_rss_kib(peer.node.pid());

    // Every request at once: each flooder its share, all spawned together.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let handle = flooders[i % FLOODERS].clone();
        tasks.spawn(async move {
            let request = Request::Backfill {
                room: room_id,
                known: Vec::new(),
                limit: 1000,
            };
            tokio::time::timeout(FLOOD_DEADLINE, handle.request(node_id, request)).await
        });
    }

    // Meanwhile the node answers HTTP: health checks, and a message sent
    // (and so stored) while the flood runs.
    let mut checks = 0;
    let mut sent_during = None;
    let mut tally = Tally::default();
    let mut peak_rss = rss_before;
    while !tasks.is_empty() {
        assert!(started.elapsed() < FLOOD_DEADLINE, "the flood never ended");
        let asked = Instant::now();
        let health = tokio::time::timeout(PROMPT, peer.node.get("/healthz", None)).await;
        let health = health.expect("/healthz answers promptly during the flood");
        health.expect(200);
        checks += 1;
        if sent_during.is_none() {
            let send = tokio::time::timeout(PROMPT, peer.node.send(&alice, &room, "still here"));
            sent_during = Some(
                send.await
                    .expect("a send answers promptly during the flood"),
            );
        }
        peak_rss = peak_rss.max(vm_rss_kib(peer.node.pid()));
        // Gather what finished, for at most 200 ms before the next check.
        let gather = asked + Duration::from_millis(200);
        while let Ok(Some(done)) = tokio::time::timeout_at(gather.into(), tasks.join_next()).await {
            match done.unwrap() {
                Ok(Ok(Response::Events { events, .. })) => {
                    assert!(events.len() > 50, "the room and its 50 messages");
                    tally.answered += 1;
                }
                Ok(Ok(other)) => panic!("unexpected answer: {other:?}"),
                Ok(Err(FedError::Busy { .. })) => tally.busy += 1,
                Ok(Err(_)) | Err(_) => tally.failed += 1,
            }
        }
    }
    eprintln!(
        "flood of {REQUESTS} from {FLOODERS} peers: {tally:?} in {:?}, {checks} health checks; \
         VmRSS {rss_before} KiB before, peak {peak_rss} KiB",
        started.elapsed()
    );
    assert_eq!(tally.answered + tally.busy + tally.failed, REQUESTS);
    assert!(tally.busy > 0, "the bound was never reached: {tally:?}");
    assert!(tally.answered > 0, "nothing was served: {tally:?}");
    let grown = peak_rss.saturating_sub(rss_before);
    assert!(
        grown < MAX_RSS_GROWTH_KIB,
        "the node grew by {grown} KiB under the flood (bound {MAX_RSS_GROWTH_KIB} KiB)"
    );

    // The node counted its refusals, and every slot comes back.
    assert!(peer.node.metric("spaces_federation_busy_total").await >= tally.busy as u64);
    assert_eq!(
        peer.node.metric("spaces_federation_inbound_capacity").await,
        spaces_federation::DEFAULT_MAX_INBOUND as u64
    );
    until("every inbound slot is free again", || async {
        (peer
            .node
            .metric("spaces_federation_inbound_in_flight")
            .await
            == 0)
            .then_some(())
    })
    .await;
    // And it still works: the message sent during the flood is there, and
    // a flooder that was only ever answered busy is served once it is calm.
    let history = crate::support::ids(&peer.node.history(&alice, &room, 100).await);
    assert!(history.contains(&sent_during.unwrap()));
    let calm = Request::Events {
        room: room_id,
        ids: Vec::new(),
    };
    let mut served = false;
    for handle in &flooders {
        if let Ok(Response::Events { .. }) = handle.request(node_id, calm.clone()).await {
            served = true;
            break;
        }
    }
    assert!(served, "no flooder is served after the flood");
}

#[tokio::test]
async fn events_by_id_stop_at_the_batch_size_whatever_ids_are_named() {
    use spaces_federation::wire::{MAX_BATCH_BYTES, MAX_IDS};

    let peer = Peer::start(&[]).await;
    let alice = peer.node.register("alice").await;
    let room = peer
        .node
        .create_room(&alice, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    // The largest message body, named 256 times: just over 4 MiB of events.
    let body = "x".repeat(spaces_protocol::limits::MAX_BODY_BYTES);
    let big = peer.node.send(&alice, &room, &body).await;
    let room_id: RoomId = room.parse().unwrap();
    let node_id: NodeId = peer.id().parse().unwrap();
    let asker = flooder(&peer.addr, node_id, room_id).await;
    let request = Request::Events {
        room: room_id,
        ids: vec![big.parse().unwrap(); MAX_IDS],
    };
    match asker.request(node_id, request).await {
        Ok(Response::Events { events, more }) => {
            let sizes = (events.len(), events.first().map(Vec::len));
            assert!(more, "some were left out: {sizes:?}");
            assert!(events.len() < MAX_IDS, "{} events", events.len());
            let bytes: usize = events.iter().map(Vec::len).sum();
            let largest = events.iter().map(Vec::len).max().unwrap();
            assert!(
                bytes >= MAX_BATCH_BYTES && bytes < MAX_BATCH_BYTES + largest,
                "{bytes} bytes"
            );
        }
        other => panic!("events by id: {other:?}"),
    }
}
