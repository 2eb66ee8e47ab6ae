//! Peers: connection limits, blocks (the operator's and bans for what a
//! peer sent), scores, the address book (identify, kademlia, mDNS), dials,
//! and the status report.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use libp2p::kad;
use libp2p::{Multiaddr, PeerId, identify, mdns};
use spaces_protocol::{NodeId, RoomId};
use tokio::sync::oneshot;

use super::{FedError, Host, Task};
use crate::peer::{node_id, peer_id};
use crate::score::Outcome;
use crate::wire;

/// Connections with one peer: an honest one needs one, two when both
/// dialed at once, and may add QUIC beside TCP.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Connections being set up from outside (the noise handshake costs CPU).
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Established connections from outside, and in all: each holds buffers
/// and up to 64 streams, so their number bounds memory.
pub const MAX_INCOMING: u32 = 512;
pub const MAX_CONNECTIONS: u32 = 1024;

/// One peer as the status report shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerStatus {
    pub node: Option<NodeId>,
    pub peer: String,
    pub connected: bool,
    /// Open connections with the peer (at most [`MAX_CONNECTIONS_PER_PEER`]).
    pub connections: u32,
    /// Gossipsub's score, when scoring has seen the peer.
    pub gossip_score: Option<f64>,
    /// Our penalty for what it sent that we refused (decaying).
    pub penalty: f64,
    pub rejected: u64,
    pub banned: bool,
    pub blocked: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Status {
    pub node: NodeId,
    pub peer: String,
    pub listen: Vec<String>,
    pub rooms: usize,
    pub topics: usize,
    pub peers: Vec<PeerStatus>,
}

pub(super) fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

impl<H: Host> Task<H> {
    pub(super) fn dial(&mut self, addr: Multiaddr, reply: oneshot::Sender<Result<(), FedError>>) {
        if let Some(peer) = peer_of_addr(&addr) {
            if self.is_blocked(&peer) {
                let _ = reply.send(Err(FedError::Failed("peer is blocked".into())));
                return;
            }
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
        }
        let result = self
            .swarm
            .dial(addr)
            .map_err(|e| FedError::Failed(e.to_string()));
        let _ = reply.send(result);
    }

    pub(super) fn find_providers(&mut self, room: RoomId, reply: oneshot::Sender<Vec<NodeId>>) {
        let key = kad::RecordKey::new(&room.0);
        let id = self.swarm.behaviour_mut().kad.get_providers(key);
        self.providers.insert(id, (HashSet::new(), reply));
    }

    pub(super) fn block(&mut self, node: NodeId, blocked: bool) {
        let Some(peer) = peer_id(&node) else { return };
        if blocked {
            self.operator_blocks.insert(peer);
            self.swarm.behaviour_mut().blocks.block_peer(peer);
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        } else {
            self.operator_blocks.remove(&peer);
            if !self
                .ledger
                .get(&peer)
                .is_some_and(|r| r.is_banned(Instant::now()))
            {
                self.unblock(peer);
            }
        }
    }

    pub(super) fn is_blocked(&self, peer: &PeerId) -> bool {
        self.operator_blocks.contains(peer)
            || self
                .ledger
                .get(peer)
                .is_some_and(|r| r.is_banned(Instant::now()))
    }

    pub(super) fn unblock(&mut self, peer: PeerId) {
        self.swarm.behaviour_mut().blocks.unblock_peer(peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .remove_blacklisted_peer(&peer);
    }

    pub(super) fn charge(&mut self, peer: PeerId, code: &'static str) {
        let outcome = self.ledger.charge(peer, code, Instant::now());
        tracing::debug!(%peer, code, ?outcome, "peer charged");
        match outcome {
            Outcome::Scored(penalty) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, -penalty);
            }
            Outcome::Banned => {
                tracing::warn!(%peer, code, "peer banned for sending invalid data");
                self.swarm.behaviour_mut().blocks.block_peer(peer);
                self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            }
        }
    }

    pub(super) fn connection_established(&mut self, peer_id: PeerId, num_established: u32) {
        tracing::debug!(peer = %peer_id, "connected");
        self.connections.insert(peer_id, num_established);
        self.count_peers();
        if num_established == 1
            && let Some(node) = node_id(&peer_id)
        {
            if self.rooms.values().any(|r| r.nodes.contains(&node)) {
                let rooms: Vec<RoomId> = self
                    .rooms
                    .iter()
                    .filter(|(_, r)| r.nodes.contains(&node))
                    .map(|(room, _)| *room)
                    .collect();
                for room in rooms {
                    self.sync(room, node);
                }
            }
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    pub(super) fn connection_closed(&mut self, peer_id: PeerId, num_established: u32) {
        tracing::debug!(peer = %peer_id, "disconnected");
        if num_established == 0 {
            self.connections.remove(&peer_id);
        } else {
            self.connections.insert(peer_id, num_established);
        }
        self.count_peers();
    }

    fn count_peers(&self) {
        self.handle
            .traffic
            .peers_connected
            .store(self.connections.len() as u64, Ordering::Relaxed);
    }

    pub(super) fn identify_event(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != wire::IDENTIFY_PROTOCOL {
            return;
        }
        for addr in info.listen_addrs {
            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
        }
    }

    /// Gathers the providers a `find_providers` lookup finds, and answers
    /// when the query ends.
    pub(super) fn kad_event(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id,
            result: kad::QueryResult::GetProviders(result),
            step,
            ..
        } = event
        else {
            return;
        };
        if let Some((found, _)) = self.providers.get_mut(&id)
            && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &result
        {
            found.extend(providers.iter().filter_map(node_id));
        }
        let finished = step.last
            || matches!(
                result,
                Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. })
            );
        if finished && let Some((found, reply)) = self.providers.remove(&id) {
            let mut found: Vec<NodeId> = found.into_iter().collect();
            found.retain(|n| *n != self.handle.node);
            let _ = reply.send(found);
            if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                query.finish();
            }
        }
    }

    pub(super) fn mdns_event(&mut self, event: mdns::Event) {
        let mdns::Event::Discovered(found) = event else {
            return;
        };
        for (peer, addr) in found {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, addr.clone());
            let _ = self.swarm.dial(addr);
        }
    }

    pub(super) fn status(&self) -> Status {
        let now = Instant::now();
        let mut peers: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        peers.extend(self.operator_blocks.iter().copied());
        // Peers we hold something against, connected or not.
        peers.extend(self.ledger.peers());
        let mut list: Vec<PeerStatus> = peers
            .into_iter()
            .map(|peer| self.peer_status(peer, now))
            .collect();
        list.sort_by(|a, b| a.peer.cmp(&b.peer));
        Status {
            node: self.handle.node,
            peer: self.local_peer.to_string(),
            listen: self.swarm.listeners().map(|a| a.to_string()).collect(),
            rooms: self.rooms.len(),
            topics: self.swarm.behaviour().gossipsub.topics().count(),
            peers: list,
        }
    }

    fn peer_status(&self, peer: PeerId, now: Instant) -> PeerStatus {
        let record = self.ledger.get(&peer);
        PeerStatus {
            node: node_id(&peer),
            peer: peer.to_string(),
            connected: self.swarm.is_connected(&peer),
            connections: self.connections.get(&peer).copied().unwrap_or(0),
            gossip_score: self.swarm.behaviour().gossipsub.peer_score(&peer),
            penalty: record.map_or(0.0, |r| r.penalty(now)),
            rejected: record.map_or(0, |r| r.rejected),
            banned: record.is_some_and(|r| r.is_banned(now)),
            blocked: self.operator_blocks.contains(&peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use futures_util::StreamExt;
    use libp2p::swarm::SwarmEvent;
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use libp2p::swarm::dummy;
    use libp2p::{Multiaddr, noise, tcp, yamux};
    use spaces_protocol::NodeKey;

    use super::super::testing::{Empty, config};
    use super::super::{DEFAULT_MAX_INBOUND, start};
    use super::MAX_CONNECTIONS_PER_PEER;
    use crate::peer::peer_id;

    #[tokio::test]
    async fn one_peer_gets_only_so_many_connections() {
        let key = NodeKey::from_seed([3; 32]);
        let (handle, _task) = start(config(DEFAULT_MAX_INBOUND), &key, Arc::new(Empty)).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let addr: Multiaddr = loop {
            if let Some(addr) = handle.status().await.unwrap().listen.first() {
                break addr.parse().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node never listened"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };

        // A peer that opens ten connections at once and keeps them.
        let mut dialer = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| dummy::Behaviour)
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let me = *dialer.local_peer_id();
        let node = peer_id(&key.node_id()).unwrap();
        for _ in 0..10 {
            let dial = DialOpts::peer_id(node)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::Always)
                .build();
            dialer.dial(dial).unwrap();
        }
        let (open, ended) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (open_in, ended_in) = (open.clone(), ended.clone());
        let driver = tokio::spawn(async move {
            loop {
                match dialer.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { .. } => {
                        open_in.fetch_add(1, Ordering::SeqCst);
                    }
                    SwarmEvent::ConnectionClosed { .. } => {
                        open_in.fetch_sub(1, Ordering::SeqCst);
                        ended_in.fetch_add(1, Ordering::SeqCst);
                    }
                    SwarmEvent::OutgoingConnectionError { .. } => {
                        ended_in.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        // The node turns away all but its limit; the rest stay open.
        let extra = 10 - MAX_CONNECTIONS_PER_PEER;
        while ended.load(Ordering::SeqCst) < extra
            || open.load(Ordering::SeqCst) != MAX_CONNECTIONS_PER_PEER
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} open, {} ended: the node kept more than its limit",
                open.load(Ordering::SeqCst),
                ended.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = handle.status().await.unwrap();
        let peer = status
            .peers
            .iter()
            .find(|p| p.peer == me.to_string())
            .expect("the node lists the peer");
        assert_eq!(peer.connections, MAX_CONNECTIONS_PER_PEER);
        driver.abort();
    }
}
