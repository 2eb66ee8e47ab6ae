//! Building federation: the configuration, the swarm's transports (TCP +
//! noise + yamux, and QUIC) and behaviours, and starting the task.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, MessageId};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, allow_block_list, connection_limits, identify, mdns, noise, tcp, yamux};
use spaces_protocol::{NodeId, NodeKey};
use tokio::sync::mpsc;

use super::peers::{
    MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, MAX_INCOMING, MAX_PENDING_INCOMING, peer_of_addr,
};
use super::rpc::REQUEST_TIMEOUT;
use super::{Handle, Host, Task};
use crate::gate::Gate;
use crate::peer::{keypair, peer_id};
use crate::score::Ledger;
use crate::wire::{self, Codec};

/// Where federation listens and whom it talks to.
#[derive(Clone, Debug)]
pub struct Config {
    /// Multiaddrs to listen on (TCP and/or QUIC).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start; with `/p2p/<peer id>` they also seed kademlia.
    pub bootstrap: Vec<Multiaddr>,
    /// Multicast DNS discovery on the LAN. Never on by default.
    pub mdns: bool,
    /// How often each room is reconciled with one of its other nodes.
    pub sync_interval: Duration,
    /// Nodes refused at start, as an operator's block list.
    pub blocked: Vec<NodeId>,
    /// Inbound requests (pushes, backfills, event fetches, joins) worked on
    /// and being answered at once, from all peers together; more are
    /// answered `Busy` ([`DEFAULT_MAX_INBOUND`] is a reasoned default).
    pub max_inbound: usize,
}

/// The default bound on inbound requests in flight. A slot holds one
/// request and then its response: at most a 1 MiB push, or a backfill
/// batch of about 4 MiB, so 64 slots bound that memory to about 260 MiB in
/// the worst case (every slot a full batch) and a few MiB in practice
/// (pushes carry one event). 64 is also what one honest peer can have in
/// flight on one connection (its streams per connection), so a node that
/// pushes a burst of events alone is not turned away; and work beyond a
/// few dozen requests only queues on the engine's locks and the writer.
pub const DEFAULT_MAX_INBOUND: usize = 64;

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) blocks: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(super) limits: connection_limits::Behaviour,
    pub(super) identify: identify::Behaviour,
    pub(super) kad: kad::Behaviour<MemoryStore>,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) sync: request_response::Behaviour<Codec>,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Starts federation: builds the swarm, listens, dials the bootstrap peers
/// and runs until every handle is dropped.
pub fn start<H: Host>(
    config: Config,
    key: &NodeKey,
    host: Arc<H>,
) -> Result<(Handle, tokio::task::JoinHandle<()>), StartError> {
    let identity = keypair(key);
    let local_peer = identity.public().to_peer_id();
    let mdns_on = config.mdns;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| StartError(format!("tcp transport: {e}")))?
        .with_quic()
        .with_behaviour(|key| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .validate_messages()
                .max_transmit_size(wire::MAX_GOSSIP_BYTES)
                .heartbeat_interval(Duration::from_millis(700))
                .message_id_fn(|message: &gossipsub::Message| {
                    MessageId::from(&blake3::hash(&message.data).as_bytes()[..20])
                })
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossipsub =
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)?;
            let params = gossipsub::PeerScoreParams {
                app_specific_weight: 1.0,
                ..Default::default()
            };
            gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
            let peer = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(wire::KAD_PROTOCOL);
            // Refreshed by the task instead, only when there is someone to
            // ask: kademlia's own timer warns on a node with no peers yet.
            kad_config.set_periodic_bootstrap_interval(None);
            let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), kad_config);
            // Answer queries even without a confirmed public address:
            // loopback and LAN nodes are servers too.
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?)
            } else {
                None
            };
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Behaviour {
                blocks: Default::default(),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                        .with_max_established_incoming(Some(MAX_INCOMING))
                        .with_max_established(Some(MAX_CONNECTIONS)),
                ),
                identify: identify::Behaviour::new(identify::Config::new(
                    wire::IDENTIFY_PROTOCOL.into(),
                    key.public(),
                )),
                kad,
                gossipsub,
                sync: request_response::Behaviour::with_codec(
                    Codec,
                    [
                        (wire::SYNC_PROTOCOL_3, ProtocolSupport::Full),
                        (wire::SYNC_PROTOCOL_2, ProtocolSupport::Full),
                        (wire::SYNC_PROTOCOL, ProtocolSupport::Full),
                    ],
                    request_response::Config::default()
                        .with_request_timeout(REQUEST_TIMEOUT)
                        .with_max_concurrent_streams(64),
                ),
                mdns: mdns.into(),
            })
        })
        .map_err(|e| StartError(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();

    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| StartError(format!("listen on {addr}: {e}")))?;
    }
    let mut operator_blocks = HashSet::new();
    for node in &config.blocked {
        if let Some(peer) = peer_id(node) {
            swarm.behaviour_mut().blocks.block_peer(peer);
            operator_blocks.insert(peer);
        }
    }
    for addr in &config.bootstrap {
        if let Some(peer) = peer_of_addr(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "bootstrap dial failed");
        }
    }

    let (tx, rx) = mpsc::channel(1024);
    let handle = Handle {
        tx: tx.clone(),
        node: key.node_id(),
        syncing: Arc::default(),
        gate: Arc::new(Gate::new(config.max_inbound)),
        traffic: Arc::default(),
    };
    let task = Task {
        swarm,
        host,
        handle: handle.clone(),
        tx: tx.downgrade(),
        rooms: HashMap::new(),
        topics: HashMap::new(),
        pending: HashMap::new(),
        providers: HashMap::new(),
        ledger: Ledger::default(),
        operator_blocks,
        connections: HashMap::new(),
        deferred: BinaryHeap::new(),
        validating: 0,
        answering: HashMap::new(),
        sync_interval: config.sync_interval,
        local_peer,
    };
    let join = tokio::spawn(task.run(rx));
    Ok((handle, join))
}

/// Why federation could not start.
#[derive(Debug, thiserror::Error)]
#[error("federation: {0}")]
pub struct StartError(String);
