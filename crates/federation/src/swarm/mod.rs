//! The one task that owns the libp2p swarm, and the handle the rest of the
//! node talks to it through.
//!
//! This file holds what the pieces share: the node's side of the contract
//! ([`Host`], [`Offer`], [`Route`]) and the task itself, its state and its
//! loop, which hands each command, swarm event and timer tick to the piece
//! that owns it:
//!
//! - `handle`: the cheap-to-clone [`Handle`], the commands it sends the
//!   task, and [`FedError`];
//! - `build`: [`Config`], building the swarm (transports, behaviours) and
//!   starting the task;
//! - `gossip`: rooms' topics, publishing, and validating what gossip brings;
//! - `peers`: connection limits, blocks and scores, the address book
//!   (identify, kademlia, mDNS) and the status report;
//! - `rpc`: the request-response protocol, requests out and requests in
//!   (through the inbound gate), and pushes.

mod build;
mod gossip;
mod handle;
mod peers;
mod rpc;
#[cfg(test)]
mod testing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use libp2p::gossipsub::TopicHash;
use libp2p::kad;
use libp2p::request_response::{InboundRequestId, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm};
use spaces_protocol::{EventId, NodeId, RoomId};
use tokio::sync::{mpsc, oneshot};

use crate::gate::Slot;
use crate::peer::{node_id, peer_id};
use crate::score::Ledger;
use crate::sync::spawn_sync;
use crate::wire::{Request, Response};

pub use build::{Config, DEFAULT_MAX_INBOUND, StartError, start};
pub use handle::{FedError, Handle};
pub use peers::{PeerStatus, Status};

use build::{Behaviour, BehaviourEvent};
use handle::Command;
use rpc::ANSWER_LAPSE;

/// How often the Kademlia routing table is refreshed (a bootstrap query),
/// besides on each new connection.
const KAD_REFRESH: Duration = Duration::from_secs(300);

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

/// The task: the swarm and what it keeps track of. Its fields are private
/// to this module, so the pieces below read and write them directly.
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
            } => self.request(node, request, reply),
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::FindProviders { room, reply } => self.find_providers(room, reply),
            Command::Block { node, blocked } => self.block(node, blocked),
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
            } => self.answered(request_id, channel, response, slot),
        }
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
            } => self.connection_established(peer_id, num_established.get()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => self.connection_closed(peer_id, num_established),
            _ => {}
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.gossip_event(event),
            BehaviourEvent::Sync(event) => self.sync_event(event),
            BehaviourEvent::Identify(event) => self.identify_event(event),
            BehaviourEvent::Kad(event) => self.kad_event(event),
            BehaviourEvent::Mdns(event) => self.mdns_event(event),
            BehaviourEvent::Blocks(never) => match never {},
        }
    }
}

fn rand_index(n: usize) -> usize {
    rand::random_range(0..n.max(1))
}
