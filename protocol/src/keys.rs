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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_round_trips_and_debug_hides_it() {
        let key = NodeKey::from_seed([0x42; 32]);
        assert_eq!(key.seed(), [0x42; 32]);
        assert_eq!(NodeKey::from_seed(key.seed()).node_id(), key.node_id());
        let debug = format!("{key:?}");
        assert!(debug.starts_with("NodeKey(~"), "{debug}");
        // Neither the seed's bytes nor its base32 form appear.
        assert!(!debug.contains(&crate::base32::encode(&key.seed())[..10]));
        assert!(!debug.contains("42, 42"));
        // Deterministic ed25519 (RFC 8032): same key, same message, same signature.
        assert_eq!(key.sign(b"m"), key.sign(b"m"));
        assert_ne!(key.sign(b"m"), key.sign(b"n"));
    }
}
