//! What crosses federation, counted for the node's metrics: the swarm task
//! and syncs add, the node reads a snapshot ([`TrafficStats`]) at scrape
//! time through [`crate::Handle::traffic_stats`].

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) peers_connected: AtomicU64,
    pub(crate) gossip_published: AtomicU64,
    pub(crate) gossip_publish_failed: AtomicU64,
    pub(crate) gossip_accepted: AtomicU64,
    pub(crate) gossip_rejected: AtomicU64,
    pub(crate) gossip_ignored: AtomicU64,
    pub(crate) pushes_sent: AtomicU64,
    pub(crate) requests_sent: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) sync_events: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A snapshot of the counters (since start) and gauges (now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrafficStats {
    /// Peers with at least one open connection now.
    pub peers_connected: u64,
    /// This node's events published on room topics, and publishes that
    /// failed (no subscribed peer yet: the event went by push instead).
    pub gossip_published: u64,
    pub gossip_publish_failed: u64,
    /// Gossip messages received, by how validation judged them: accepted
    /// (new, forwarded), rejected (invalid: the source is charged), ignored
    /// (duplicates, early, unknown rooms, too many at once).
    pub gossip_accepted: u64,
    pub gossip_rejected: u64,
    pub gossip_ignored: u64,
    /// Events pushed directly to nodes gossip does not reach.
    pub pushes_sent: u64,
    /// Request-response requests sent and received (pushes, backfill,
    /// events by id, joins, invites…).
    pub requests_sent: u64,
    pub requests_received: u64,
    /// Syncs (backfill from one node) run, syncs running now, and the
    /// events they brought that this node lacked: how far behind gossip
    /// and push left it.
    pub syncs: u64,
    pub syncs_running: u64,
    pub sync_events: u64,
}

impl Traffic {
    pub(crate) fn stats(&self, syncs_running: usize) -> TrafficStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TrafficStats {
            peers_connected: get(&self.peers_connected),
            gossip_published: get(&self.gossip_published),
            gossip_publish_failed: get(&self.gossip_publish_failed),
            gossip_accepted: get(&self.gossip_accepted),
            gossip_rejected: get(&self.gossip_rejected),
            gossip_ignored: get(&self.gossip_ignored),
            pushes_sent: get(&self.pushes_sent),
            requests_sent: get(&self.requests_sent),
            requests_received: get(&self.requests_received),
            syncs: get(&self.syncs),
            syncs_running: syncs_running as u64,
            sync_events: get(&self.sync_events),
        }
    }
}
