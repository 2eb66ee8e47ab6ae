//! The node key: ed25519. Its public half is the node id and, through
//! libp2p's ed25519 identity, the node's `PeerId`.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey};

use crate::ids::NodeId;

/// A node's signing key. Debug never prints the secret.
#[derive(Clone)]
pub struct NodeKey(SigningKey);

impl NodeKey {
    /// From 32 secret bytes (the seed), as stored in the data directory.
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey(SigningKey::from_bytes(&seed))
    }

    /// The 32 secret bytes, to store. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.0.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NodeKey").field(&self.node_id()).finish()
    }
}
