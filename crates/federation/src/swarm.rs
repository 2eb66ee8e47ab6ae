//! The one task that owns the libp2p swarm, and the handle the rest of the
//! node talks to it through.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageAuthenticity, MessageId, TopicHash};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::request_response::{
    self, InboundRequestId, OutboundRequestId, ProtocolSupport, ResponseChannel,
};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, connection_limits, identify, mdns, noise, tcp,
    yamux,
};
use spaces_protocol::{EventId, NodeId, NodeKey, RoomId};
use tokio::sync::{mpsc, oneshot};

use crate::gate::{Gate, InboundStats, Slot};
use crate::peer::{keypair, node_id, peer_id};
use crate::score::{Ledger, Outcome};
use crate::sync::spawn_sync;
use crate::wire::{self, Codec, Request, Response};

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

/// How a room's events travel from this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Public rooms are gossipsub topics; others travel only by push and
    /// sync to `nodes`.
    pub public: bool,
    /// The other nodes with a member (joined or invited) in the room.
    pub nodes: Vec<NodeId>,
}

/// What the node answers when handed events (gossip, push or sync).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Stored here now.
    New,
    /// Already held.
    Duplicate,
    /// Its parents are not here: sync the room from whoever sent it.
    MissingParents { room: RoomId },
    /// A room this node does not hold. `fetch`: it concerns a local user
    /// (an invite), so fetch the room from the sender.
    UnknownRoom { room: RoomId, fetch: bool },
    /// Its clock is ahead: offer it again at `until_ms`.
    Deferred { until_ms: u64 },
    /// Invalid: the rejection code. Charged to the sender.
    Rejected(&'static str),
    /// The node cannot take events now (its store failed).
    Unavailable,
}

/// The node, as federation sees it.
pub trait Host: Send + Sync + 'static {
    /// Verifies and stores events from `from`, in order, one verdict each.
    fn offer(&self, from: NodeId, events: Vec<Vec<u8>>) -> impl Future<Output = Vec<Offer>> + Send;
    /// Answers a sync or join request from `from` (never a push: pushes
    /// are offered).
    fn answer(&self, from: NodeId, request: Request) -> impl Future<Output = Response> + Send;
    /// This node's heads in a room; empty when it does not hold the room.
    fn heads(&self, room: RoomId) -> impl Future<Output = Vec<EventId>> + Send;
}

/// Why a request to another node failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FedError {
    #[error("federation is not running")]
    Stopped,
    #[error("node {0} is blocked")]
    Blocked(NodeId),
    #[error("not a node id")]
    BadNode,
    #[error("request failed: {0}")]
    Failed(String),
    #[error("refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// The node answered `Busy`: ask again later, or another node. Not a
    /// fault of either side.
    #[error("the node is busy; retry after {retry_after_ms} ms")]
    Busy { retry_after_ms: u32 },
    #[error("unexpected response")]
    Unexpected,
}

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

enum Command {
    Publish {
        room: RoomId,
        bytes: Vec<u8>,
        route: Route,
    },
    SetRoom {
        room: RoomId,
        route: Option<Route>,
    },
    Request {
        node: NodeId,
        request: Request,
        reply: oneshot::Sender<Result<Response, FedError>>,
    },
    Dial(Multiaddr, oneshot::Sender<Result<(), FedError>>),
    FindProviders {
        room: RoomId,
        reply: oneshot::Sender<Vec<NodeId>>,
    },
    Block {
        node: NodeId,
        blocked: bool,
    },
    Status(oneshot::Sender<Status>),
    Charge {
        node: NodeId,
        code: &'static str,
    },
    Sync {
        room: RoomId,
        node: NodeId,
    },
    // From the tasks the loop spawns.
    Validated {
        id: MessageId,
        source: PeerId,
        bytes: Vec<u8>,
        offer: Offer,
    },
    Answered {
        request_id: InboundRequestId,
        channel: ResponseChannel<Response>,
        response: Response,
        slot: Slot,
    },
}

/// The handle to the federation task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    node: NodeId,
    syncing: Arc<Mutex<HashSet<(RoomId, NodeId)>>>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Handle {
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// The bound on inbound requests: its size, what is in flight, and the
    /// busy answers sent and received.
    pub fn inbound_stats(&self) -> InboundStats {
        self.gate.stats()
    }

    async fn send(&self, command: Command) -> Result<(), FedError> {
        self.tx.send(command).await.map_err(|_| FedError::Stopped)
    }

    /// Sends one of this node's stored events on its way: gossip for a
    /// public room (and a push to member nodes not yet in the mesh), a
    /// push to each of `route`'s nodes for any other room.
    pub async fn publish(
        &self,
        room: RoomId,
        bytes: Vec<u8>,
        route: Route,
    ) -> Result<(), FedError> {
        self.send(Command::Publish { room, bytes, route }).await
    }

    /// Tells federation how a room travels now, or (`None`) that no local
    /// user is in it any more.
    pub async fn set_room(&self, room: RoomId, route: Option<Route>) -> Result<(), FedError> {
        self.send(Command::SetRoom { room, route }).await
    }

    /// Asks `node` and waits for its answer (dialing it when needed).
    pub async fn request(&self, node: NodeId, request: Request) -> Result<Response, FedError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            node,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| FedError::Stopped)?
    }

    /// Dials an address (with `/p2p/<peer>` it also seeds kademlia).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), FedError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial(addr, reply)).await?;
        rx.await.map_err(|_| FedError::Stopped)?
    }

    /// Nodes that announced (kademlia provider records) they hold a room.
    pub async fn find_providers(&self, room: RoomId) -> Result<Vec<NodeId>, FedError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::FindProviders { room, reply }).await?;
        rx.await.map_err(|_| FedError::Stopped)
    }

    /// Refuses (or again allows) a node: no connection either way.
    pub async fn block(&self, node: NodeId, blocked: bool) -> Result<(), FedError> {
        self.send(Command::Block { node, blocked }).await
    }

    pub async fn status(&self) -> Result<Status, FedError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status(reply)).await?;
        rx.await.map_err(|_| FedError::Stopped)
    }

    /// Charges `node` for something it sent that was refused.
    pub async fn charge(&self, node: NodeId, code: &'static str) {
        let _ = self.send(Command::Charge { node, code }).await;
    }

    /// Starts a background sync of `room` from `node`, unless one is
    /// already running.
    pub async fn sync_soon(&self, room: RoomId, node: NodeId) {
        let _ = self.send(Command::Sync { room, node }).await;
    }

    /// Marks a background sync as running; false when one already is.
    pub(crate) fn begin_sync(&self, room: RoomId, node: NodeId) -> bool {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((room, node))
    }

    pub(crate) fn end_sync(&self, room: RoomId, node: NodeId) {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(room, node));
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocks: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<Codec>,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Most gossip messages being validated at once; more are dropped
/// (ignored, not forwarded), which bounds memory under a flood.
const MAX_VALIDATING: usize = 512;
/// Most events waiting for their clock to come.
const MAX_DEFERRED: usize = 1024;
/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// An answered request's slot is freed after this long even without
/// libp2p's report: every inbound stream ends within the request timeout,
/// so a slot still held later is bookkeeping gone wrong, not a slow peer.
const ANSWER_LAPSE: Duration = Duration::from_secs(30);
/// How often the Kademlia routing table is refreshed (a bootstrap query),
/// besides on each new connection.
const KAD_REFRESH: Duration = Duration::from_secs(300);
/// Connections with one peer: an honest one needs one, two when both
/// dialed at once, and may add QUIC beside TCP.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Connections being set up from outside (the noise handshake costs CPU).
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Established connections from outside, and in all: each holds buffers
/// and up to 64 streams, so their number bounds memory.
pub const MAX_INCOMING: u32 = 512;
pub const MAX_CONNECTIONS: u32 = 1024;

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
                    [(wire::SYNC_PROTOCOL, ProtocolSupport::Full)],
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

fn peer_of_addr(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

struct Task<H> {
    swarm: Swarm<Behaviour>,
    host: Arc<H>,
    handle: Handle,
    /// For the tasks this loop spawns; weak so the loop ends with the
    /// last outside handle.
    tx: mpsc::WeakSender<Command>,
    rooms: HashMap<RoomId, Route>,
    topics: HashMap<TopicHash, RoomId>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, FedError>>>,
    providers: HashMap<kad::QueryId, (HashSet<NodeId>, oneshot::Sender<Vec<NodeId>>)>,
    ledger: Ledger,
    operator_blocks: HashSet<PeerId>,
    /// Open connections per connected peer.
    connections: HashMap<PeerId, u32>,
    deferred: BinaryHeap<Reverse<(u64, NodeId, Vec<u8>)>>,
    validating: usize,
    /// Slots of inbound requests whose response is being written, until
    /// libp2p reports it sent or failed (each also lapses after
    /// [`ANSWER_LAPSE`], should a report never come).
    answering: HashMap<InboundRequestId, (Slot, Instant)>,
    sync_interval: Duration,
    local_peer: PeerId,
}

impl<H: Host> Task<H> {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut anti_entropy = tokio::time::interval(self.sync_interval);
        anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut kad_refresh = tokio::time::interval(KAD_REFRESH);
        kad_refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = anti_entropy.tick() => self.reconcile(),
                _ = second.tick() => self.every_second(),
                _ = kad_refresh.tick() => {
                    if self.swarm.connected_peers().next().is_some() {
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                }
            }
        }
        tracing::info!("federation stopped");
    }

    fn spawn_back(&self, work: impl Future<Output = Command> + Send + 'static) {
        let Some(tx) = self.tx.upgrade() else { return };
        tokio::spawn(async move {
            let command = work.await;
            let _ = tx.send(command).await;
        });
    }

    fn sync(&self, room: RoomId, node: NodeId) {
        if node == self.handle.node {
            return;
        }
        spawn_sync(self.handle.clone(), self.host.clone(), room, node);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish { room, bytes, route } => self.publish(room, bytes, route),
            Command::SetRoom { room, route } => self.set_room(room, route),
            Command::Request {
                node,
                request,
                reply,
            } => {
                let Some(peer) = peer_id(&node) else {
                    let _ = reply.send(Err(FedError::BadNode));
                    return;
                };
                if self.is_blocked(&peer) {
                    let _ = reply.send(Err(FedError::Blocked(node)));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Dial(addr, reply) => {
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
            Command::FindProviders { room, reply } => {
                let key = kad::RecordKey::new(&room.0);
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.providers.insert(id, (HashSet::new(), reply));
            }
            Command::Block { node, blocked } => {
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
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Charge { node, code } => {
                if let Some(peer) = peer_id(&node) {
                    self.charge(peer, code);
                }
            }
            Command::Sync { room, node } => self.sync(room, node),
            Command::Validated {
                id,
                source,
                bytes,
                offer,
            } => {
                self.validating = self.validating.saturating_sub(1);
                self.validated(id, source, bytes, offer);
            }
            Command::Answered {
                request_id,
                channel,
                response,
                slot,
            } => {
                // Fails only if the stream has gone (the peer left, or the
                // request timed out): the slot is freed at once then.
                // Otherwise it is held until the response is written.
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_ok()
                {
                    self.answering.insert(request_id, (slot, Instant::now()));
                }
            }
        }
    }

    fn is_blocked(&self, peer: &PeerId) -> bool {
        self.operator_blocks.contains(peer)
            || self
                .ledger
                .get(peer)
                .is_some_and(|r| r.is_banned(Instant::now()))
    }

    fn unblock(&mut self, peer: PeerId) {
        self.swarm.behaviour_mut().blocks.unblock_peer(peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .remove_blacklisted_peer(&peer);
    }

    fn charge(&mut self, peer: PeerId, code: &'static str) {
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

    fn publish(&mut self, room: RoomId, bytes: Vec<u8>, route: Route) {
        let mut push_to: Vec<NodeId> = route.nodes.clone();
        if route.public {
            let topic = wire::room_topic(&room);
            let hash = topic.hash();
            // Nodes already subscribed get it by gossip.
            let subscribed: HashSet<NodeId> = self
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .filter(|(_, topics)| topics.contains(&&hash))
                .filter_map(|(peer, _)| node_id(peer))
                .collect();
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, bytes.clone())
            {
                Ok(_) => push_to.retain(|n| !subscribed.contains(n)),
                Err(e) => tracing::debug!(%room, error = %e, "gossip publish failed; pushing"),
            }
        }
        for node in push_to {
            if node == self.handle.node {
                continue;
            }
            let Some(peer) = peer_id(&node) else { continue };
            if self.is_blocked(&peer) {
                continue;
            }
            let request = Request::Push {
                events: vec![bytes.clone()],
            };
            // Fire and forget: a node that misses it catches up by sync.
            self.swarm.behaviour_mut().sync.send_request(&peer, request);
        }
    }

    fn set_room(&mut self, room: RoomId, route: Option<Route>) {
        let topic = wire::room_topic(&room);
        let key = kad::RecordKey::new(&room.0);
        let behaviour = self.swarm.behaviour_mut();
        match &route {
            Some(r) if r.public => {
                if let Err(e) = behaviour.gossipsub.subscribe(&topic) {
                    tracing::warn!(%room, error = %e, "subscribe failed");
                }
                self.topics.insert(topic.hash(), room);
                if !self.rooms.get(&room).is_some_and(|r| r.public) {
                    // Announce it so nodes joining later can find us.
                    let _ = behaviour.kad.start_providing(key);
                }
            }
            _ => {
                behaviour.gossipsub.unsubscribe(&topic);
                self.topics.remove(&topic.hash());
                behaviour.kad.stop_providing(&key);
            }
        }
        match route {
            Some(route) => {
                let new_nodes: Vec<NodeId> = match self.rooms.get(&room) {
                    Some(old) => route
                        .nodes
                        .iter()
                        .filter(|n| !old.nodes.contains(n))
                        .copied()
                        .collect(),
                    None => route.nodes.clone(),
                };
                self.rooms.insert(room, route);
                // Catch up with nodes newly in the room that we can reach.
                for node in new_nodes {
                    if peer_id(&node).is_some_and(|p| self.swarm.is_connected(&p)) {
                        self.sync(room, node);
                    }
                }
            }
            None => {
                self.rooms.remove(&room);
            }
        }
    }

    fn validated(&mut self, id: MessageId, source: PeerId, bytes: Vec<u8>, offer: Offer) {
        let from = node_id(&source);
        let acceptance = match offer {
            Offer::New => MessageAcceptance::Accept,
            Offer::Rejected(code) => {
                self.charge(source, code);
                MessageAcceptance::Reject
            }
            Offer::MissingParents { room } | Offer::UnknownRoom { room, fetch: true } => {
                if let Some(from) = from {
                    self.sync(room, from);
                }
                MessageAcceptance::Ignore
            }
            Offer::Deferred { until_ms } => {
                if let Some(from) = from
                    && self.deferred.len() < MAX_DEFERRED
                {
                    self.deferred.push(Reverse((until_ms, from, bytes)));
                }
                MessageAcceptance::Ignore
            }
            Offer::Duplicate | Offer::UnknownRoom { .. } | Offer::Unavailable => {
                MessageAcceptance::Ignore
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    fn reconcile(&mut self) {
        let connected: HashSet<NodeId> = self.swarm.connected_peers().filter_map(node_id).collect();
        let picks: Vec<(RoomId, NodeId)> = self
            .rooms
            .iter()
            .filter_map(|(room, route)| {
                let reachable: Vec<&NodeId> = route
                    .nodes
                    .iter()
                    .filter(|n| connected.contains(n))
                    .collect();
                if reachable.is_empty() {
                    return None;
                }
                let pick = reachable[rand_index(reachable.len())];
                Some((*room, *pick))
            })
            .collect();
        for (room, node) in picks {
            self.sync(room, node);
        }
        // Reconnect to the rooms' nodes we lost (a restart, a partition):
        // kademlia remembers where they were.
        let lost: HashSet<PeerId> = self
            .rooms
            .values()
            .flat_map(|r| r.nodes.iter())
            .filter(|n| !connected.contains(n))
            .filter_map(peer_id)
            .filter(|p| !self.is_blocked(p))
            .collect();
        for peer in lost {
            let _ = self.swarm.dial(peer);
        }
    }

    fn every_second(&mut self) {
        let now = Instant::now();
        self.answering
            .retain(|_, (_, since)| now.duration_since(*since) < ANSWER_LAPSE);
        // Gossipsub's view follows the decaying penalty, so an honest peer
        // charged now and then climbs back above the gossip threshold.
        let scores: Vec<(PeerId, f64)> = self
            .ledger
            .peers()
            .filter_map(|p| Some((p, self.ledger.get(&p)?.penalty(now))))
            .collect();
        for (peer, penalty) in scores {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, -penalty);
        }
        for peer in self.ledger.expired_bans(now) {
            if !self.operator_blocks.contains(&peer) {
                tracing::info!(%peer, "ban lifted");
                self.unblock(peer);
            }
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        while let Some(Reverse((until, _, _))) = self.deferred.peek() {
            if *until > now_ms {
                break;
            }
            let Some(Reverse((_, from, bytes))) = self.deferred.pop() else {
                break;
            };
            let host = self.host.clone();
            tokio::spawn(async move {
                host.offer(from, vec![bytes]).await;
            });
        }
    }

    fn status(&self) -> Status {
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

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "federation listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "connected");
                self.connections.insert(peer_id, num_established.get());
                if num_established.get() == 1
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
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                if num_established == 0 {
                    self.connections.remove(&peer_id);
                } else {
                    self.connections.insert(peer_id, num_established);
                }
            }
            _ => {}
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let Some(from) = node_id(&propagation_source) else {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
                    return;
                };
                if !self.topics.contains_key(&message.topic) || self.validating >= MAX_VALIDATING {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                }
                self.validating += 1;
                let host = self.host.clone();
                self.spawn_back(async move {
                    let bytes = message.data;
                    let offer = host
                        .offer(from, vec![bytes.clone()])
                        .await
                        .pop()
                        .unwrap_or(Offer::Unavailable);
                    Command::Validated {
                        id: message_id,
                        source: propagation_source,
                        bytes,
                        offer,
                    }
                });
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                // A node newly on a room's topic may hold what we lack.
                if let (Some(room), Some(node)) = (self.topics.get(&topic), node_id(&peer_id)) {
                    self.sync(*room, node);
                }
            }
            BehaviourEvent::Gossipsub(_) => {}
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                self.sync_message(peer, message)
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                tracing::debug!(%peer, %error, "request failed");
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(FedError::Failed(error.to_string())));
                }
                if matches!(error, request_response::OutboundFailure::DialFailure) {
                    // Ask the DHT where it is, for next time.
                    self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                }
            }
            BehaviourEvent::Sync(request_response::Event::ResponseSent { request_id, .. }) => {
                self.answering.remove(&request_id);
            }
            BehaviourEvent::Sync(request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                self.answering.remove(&request_id);
                tracing::debug!(%peer, %error, "inbound request failed");
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    self.charge(peer, "bad_frame");
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != wire::IDENTIFY_PROTOCOL {
                    return;
                }
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => {
                if let kad::QueryResult::GetProviders(result) = result {
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
            }
            BehaviourEvent::Kad(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    let _ = self.swarm.dial(addr);
                }
            }
            BehaviourEvent::Mdns(_) => {}
            BehaviourEvent::Blocks(never) => match never {},
        }
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn sync_message(
        &mut self,
        peer: PeerId,
        message: request_response::Message<Request, Response>,
    ) {
        match message {
            request_response::Message::Request {
                request_id,
                request,
                channel,
            } => {
                let Some(from) = node_id(&peer) else {
                    let response = Response::refused("not_a_node", "only Spaces nodes are served");
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                    return;
                };
                if let Err(why) = request.check() {
                    self.charge(peer, "bad_request");
                    let response = Response::refused("bad_request", why);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                    return;
                }
                let slot = match self.handle.gate.enter(peer) {
                    Ok(slot) => slot,
                    Err(full) => {
                        // Answered at once, with no work done: the request
                        // is dropped here, its memory with it.
                        if full.over_share {
                            self.charge(peer, "busy");
                        }
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, Response::busy());
                        return;
                    }
                };
                let host = self.host.clone();
                let handle = self.handle.clone();
                self.spawn_back(async move {
                    let response = match request {
                        Request::Push { events } => push(&*host, &handle, from, events).await,
                        other => host.answer(from, other).await,
                    };
                    Command::Answered {
                        request_id,
                        channel,
                        response,
                        slot,
                    }
                });
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                let result = match response {
                    Response::Busy { retry_after_ms } => {
                        // A push's busy answer too: the receiver's own sync
                        // brings the event later (pushes are not retried).
                        self.handle.gate.busy_received();
                        Err(FedError::Busy { retry_after_ms })
                    }
                    response => Ok(response),
                };
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Takes a push: offers its events, charges what was invalid, and fetches
/// what the events need.
async fn push<H: Host>(host: &H, handle: &Handle, from: NodeId, events: Vec<Vec<u8>>) -> Response {
    let offers = host.offer(from, events).await;
    let mut new = 0;
    for offer in offers {
        match offer {
            Offer::New => new += 1,
            Offer::Rejected(code) => handle.charge(from, code).await,
            Offer::MissingParents { room } | Offer::UnknownRoom { room, fetch: true } => {
                handle.sync_soon(room, from).await
            }
            _ => {}
        }
    }
    Response::Pushed { new }
}

fn rand_index(n: usize) -> usize {
    rand::random_range(0..n.max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use libp2p::swarm::dummy;

    use super::*;

    /// A node that holds nothing.
    struct Empty;

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

    /// A node whose answers wait until the test lets them go.
    struct Slow {
        started: AtomicU32,
        go: tokio::sync::Semaphore,
    }

    impl Host for Slow {
        async fn offer(&self, _from: NodeId, events: Vec<Vec<u8>>) -> Vec<Offer> {
            vec![Offer::Duplicate; events.len()]
        }
        async fn answer(&self, _from: NodeId, _request: Request) -> Response {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _ = self.go.acquire().await;
            Response::refused("unknown_room", "nothing here")
        }
        async fn heads(&self, _room: RoomId) -> Vec<EventId> {
            Vec::new()
        }
    }

    fn config(max_inbound: usize) -> Config {
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
    async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn listen_addr(handle: &Handle) -> Multiaddr {
        let mut addr = None;
        until("the node listens", async || {
            addr = handle.status().await.unwrap().listen.first().cloned();
            addr.is_some()
        })
        .await;
        addr.unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn inbound_requests_beyond_the_bound_are_answered_busy_at_once() {
        let slow = Arc::new(Slow {
            started: AtomicU32::new(0),
            go: tokio::sync::Semaphore::new(0),
        });
        let key = NodeKey::from_seed([4; 32]);
        let (node, _task) = start(config(2), &key, slow.clone()).unwrap();
        let mut addr = listen_addr(&node).await;
        addr.push(libp2p::multiaddr::Protocol::P2p(
            peer_id(&key.node_id()).unwrap(),
        ));
        let asker_key = NodeKey::from_seed([5; 32]);
        let (asker, _asker_task) = start(config(2), &asker_key, Arc::new(Empty)).unwrap();
        asker.dial(addr).await.unwrap();
        let target = key.node_id();
        let ask = || {
            let asker = asker.clone();
            let request = Request::Events {
                room: RoomId([1; 32]),
                ids: Vec::new(),
            };
            async move { asker.request(target, request).await }
        };

        // Two requests take both slots and wait in the host.
        let first = tokio::spawn(ask());
        let second = tokio::spawn(ask());
        until("both are being answered", async || {
            slow.started.load(Ordering::SeqCst) == 2
        })
        .await;
        // A third is answered busy without reaching the host.
        assert_eq!(
            ask().await,
            Err(FedError::Busy {
                retry_after_ms: 500
            })
        );
        assert_eq!(slow.started.load(Ordering::SeqCst), 2);
        let stats = node.inbound_stats();
        assert_eq!((stats.capacity, stats.in_flight), (2, 2));
        assert_eq!((stats.busy_sent, stats.busy_charged), (1, 1));
        assert_eq!(asker.inbound_stats().busy_received, 1);
        // The asker held every slot, so the refusal cost it a little.
        let me = peer_id(&asker_key.node_id()).unwrap().to_string();
        let penalty = node
            .status()
            .await
            .unwrap()
            .peers
            .into_iter()
            .find(|p| p.peer == me)
            .unwrap()
            .penalty;
        assert!(penalty > 0.5 && penalty <= 1.0, "{penalty}");

        // Once the answers are written, the slots are free again.
        slow.go.add_permits(100);
        for answer in [first.await.unwrap(), second.await.unwrap()] {
            assert!(matches!(answer, Ok(Response::Refused { .. })), "{answer:?}");
        }
        until("the slots are freed", async || {
            node.inbound_stats().in_flight == 0
        })
        .await;
        assert!(matches!(ask().await, Ok(Response::Refused { .. })));
    }

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
