//! The handle the rest of the node talks to federation through (cheap to
//! clone), the commands it sends the task, and why a request fails.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use libp2p::gossipsub::MessageId;
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::{Multiaddr, PeerId};
use spaces_protocol::{NodeId, RoomId};
use tokio::sync::{mpsc, oneshot};

use super::{Offer, Route, Status};
use crate::gate::{Gate, InboundStats, Slot};
use crate::traffic::{Traffic, TrafficStats};
use crate::wire::{Request, Response};

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
    /// The node does not speak the protocol version the request needs
    /// (nothing was sent): ask it the old way.
    #[error("the node does not speak this request's protocol: {0}")]
    Unsupported(String),
}

pub(super) enum Command {
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
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) node: NodeId,
    pub(super) syncing: Arc<Mutex<HashSet<(RoomId, NodeId)>>>,
    pub(super) gate: Arc<Gate>,
    pub(crate) traffic: Arc<Traffic>,
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

    /// What has crossed federation since start: gossip, pushes, requests,
    /// syncs, and the peers connected now.
    pub fn traffic_stats(&self) -> TrafficStats {
        let running = self.syncing.lock().map_or(0, |s| s.len());
        self.traffic.stats(running)
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
