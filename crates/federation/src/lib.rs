//! Federation: the libp2p side of a Spaces node.
//!
//! One task owns the swarm (TCP + noise + yamux, and QUIC; identify,
//! kademlia, gossipsub, and the request-response protocol of
//! [`wire::SYNC_PROTOCOL`]); the rest of the node talks to it through a
//! [`Handle`] and answers it through the [`Host`] trait. Federation moves
//! bytes and keeps score; the node verifies, authorizes and stores. Nothing
//! is forwarded by gossip before the node has accepted it (gossipsub's
//! validation mode), and a private room's events never travel by gossip,
//! only by push and sync to nodes with a member in the room.
//!
//! The protocol is specified in docs/spec/federation.md.

mod gate;
mod peer;
pub mod score;
mod swarm;
mod sync;
mod traffic;
pub mod wire;

pub use gate::InboundStats;
pub use libp2p::{Multiaddr, PeerId};
pub use peer::{keypair, node_id, peer_id};
pub use swarm::{
    Config, DEFAULT_MAX_INBOUND, FedError, Handle, Host, Offer, PeerStatus, Route, StartError,
    Status, start,
};
pub use sync::{SyncReport, sync_room};
pub use traffic::TrafficStats;
