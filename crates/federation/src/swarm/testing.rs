//! What the unit tests of the swarm share: a host that holds nothing, a
//! configuration on loopback, and waiting on a condition.

use std::time::Duration;

use libp2p::Multiaddr;
use spaces_protocol::{EventId, NodeId, RoomId};

use super::{Config, Handle, Host, Offer};
use crate::wire::{Request, Response};

/// A node that holds nothing.
pub(super) struct Empty;

impl Host for Empty {
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

pub(super) fn config(max_inbound: usize) -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        mdns: false,
        sync_interval: Duration::from_secs(3600),
        blocked: Vec::new(),
        max_inbound,
    }
}

/// Polls `check` every 10 ms until it holds; fails after 20 s.
pub(super) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) async fn listen_addr(handle: &Handle) -> Multiaddr {
    let mut addr = None;
    until("the node listens", async || {
        addr = handle.status().await.unwrap().listen.first().cloned();
        addr.is_some()
    })
    .await;
    addr.unwrap().parse().unwrap()
}
