//! The node key: ed25519. Its public half is the node id and, through
//! libp2p's ed25519 identity, the node's `PeerId`.
//!
//! Signatures are made with aws-lc (its x86-64 and Arm assembly signs in
//! about half the time of ed25519-dalek's portable code, and signing is a
//! quarter of a node's CPU per message sent). Ed25519 signing is
//! deterministic (RFC 8032), so the bytes are exactly dalek's — a test
//! checks it. Verification stays with ed25519-dalek everywhere: which
//! signatures count as valid must not depend on a library's corner cases.

use core::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::Ed25519KeyPair;
use ed25519_dalek::SigningKey;

use crate::ids::NodeId;

/// A node's signing key. Debug never prints the secret.
#[derive(Clone)]
pub struct NodeKey {
    seed: SigningKey,
    signer: Arc<Ed25519KeyPair>,
}

impl NodeKey {
    /// From 32 secret bytes (the seed), as stored in the data directory.
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        let signer =
            Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an ed25519 seed");
        NodeKey {
            seed: SigningKey::from_bytes(&seed),
            signer: Arc::new(signer),
        }
    }

    /// The 32 secret bytes, to store. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.seed.to_bytes()
    }

    pub fn node_id(&self) -> NodeId {
        NodeId(self.seed.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.signer.sign(message).as_ref());
        signature
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

    #[test]
    fn signatures_are_ed25519_dalek_s_and_verify_with_it() {
        use aws_lc_rs::signature::KeyPair;
        use ed25519_dalek::{Signer, Verifier};
        for i in 0u8..32 {
            let seed = [i.wrapping_mul(37).wrapping_add(1); 32];
            let key = NodeKey::from_seed(seed);
            let dalek = SigningKey::from_bytes(&seed);
            assert_eq!(
                key.signer.public_key().as_ref(),
                dalek.verifying_key().as_bytes()
            );
            let message: Vec<u8> = (0..i as usize * 3).map(|j| j as u8 ^ i).collect();
            let signature = key.sign(&message);
            assert_eq!(signature, dalek.sign(&message).to_bytes(), "seed {i}");
            assert!(
                dalek
                    .verifying_key()
                    .verify(&message, &ed25519_dalek::Signature::from_bytes(&signature))
                    .is_ok()
            );
        }
    }
}
