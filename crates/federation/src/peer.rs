//! A node id is an ed25519 public key, and so is a libp2p `PeerId` made
//! from it: the two name the same node (docs/spec/identities.md).

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey, ed25519};
use spaces_protocol::{NodeId, NodeKey};

/// The libp2p identity of a node key.
pub fn keypair(key: &NodeKey) -> Keypair {
    Keypair::ed25519_from_bytes(key.seed()).expect("32 bytes are a valid ed25519 seed")
}

/// The `PeerId` of a node.
pub fn peer_id(node: &NodeId) -> Option<PeerId> {
    let key = ed25519::PublicKey::try_from_bytes(&node.0).ok()?;
    Some(PublicKey::from(key).to_peer_id())
}

/// The node a `PeerId` names, when it is an ed25519 peer (every Spaces
/// node is; other peers have no node id and are not served).
pub fn node_id(peer: &PeerId) -> Option<NodeId> {
    let multihash = peer.as_ref();
    // Ed25519 peer ids inline the key (identity multihash, code 0).
    if multihash.code() != 0 {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    Some(NodeId(key.try_into_ed25519().ok()?.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_and_peer_ids_name_the_same_key() {
        let key = NodeKey::from_seed([7; 32]);
        let peer = keypair(&key).public().to_peer_id();
        assert_eq!(peer_id(&key.node_id()), Some(peer));
        assert_eq!(node_id(&peer), Some(key.node_id()));
        // A secp256k1-style or random peer id has no node id.
        assert_eq!(node_id(&PeerId::random()), None);
    }
}
