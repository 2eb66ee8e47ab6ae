//! The ledger of what each peer sent that we refused.
//!
//! Every rejected event, malformed request or oversized frame, and every
//! request refused busy while the peer held more than its share of the
//! node's inbound slots, costs the peer a penalty by its kind; penalties decay so an honest node that once
//! relayed something stale recovers. The total is the peer's gossipsub
//! application score (negated), so gossipsub stops meshing with it; past
//! [`BAN_PENALTY`] the peer is disconnected and refused for
//! [`BAN_DURATION`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Penalty at which a peer is banned.
pub const BAN_PENALTY: f64 = 100.0;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(600);
/// Penalties halve over this long.
pub const HALF_LIFE: Duration = Duration::from_secs(60);

/// What one refusal costs, by rejection code (docs/spec/encoding.md and
/// auth.md codes, plus the transport's own).
pub fn penalty(code: &str) -> f64 {
    match code {
        // Forgery or garbage: no honest node produces these.
        "bad_signature"
        | "bad_key"
        | "malformed"
        | "non_canonical"
        | "unsupported_version"
        | "truncated"
        | "too_large"
        | "bad_frame"
        | "bad_request"
        // Bytes that do not hash to the blob asked for.
        | "bad_blob" => 20.0,
        // A request refused busy while the peer already held at least its
        // share of the node's inbound slots: one is nothing, but a peer
        // that keeps flooding (a hundred refusals in a minute or so) is
        // banned, while a peer that merely arrived when others had filled
        // the gate is never charged (gate.rs).
        "busy" => 1.0,
        // Valid signature, but not allowed: an honest node may relay one
        // it admitted under a state we have not seen, rarely.
        _ => 5.0,
    }
}

#[derive(Debug, Default, Clone)]
pub struct PeerRecord {
    penalty: f64,
    updated: Option<Instant>,
    pub rejected: u64,
    pub banned_until: Option<Instant>,
}

impl PeerRecord {
    /// The penalty decayed to `now`.
    pub fn penalty(&self, now: Instant) -> f64 {
        match self.updated {
            None => 0.0,
            Some(at) => {
                let halves =
                    now.saturating_duration_since(at).as_secs_f64() / HALF_LIFE.as_secs_f64();
                self.penalty * 0.5f64.powf(halves)
            }
        }
    }

    pub fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    peers: HashMap<PeerId, PeerRecord>,
}

/// What a penalty led to.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Scored(f64),
    Banned,
}

impl Ledger {
    /// Charges `peer` for one refusal with `code`.
    pub fn charge(&mut self, peer: PeerId, code: &str, now: Instant) -> Outcome {
        let record = self.peers.entry(peer).or_default();
        let total = record.penalty(now) + penalty(code);
        record.penalty = total;
        record.updated = Some(now);
        record.rejected += 1;
        if total >= BAN_PENALTY && !record.is_banned(now) {
            record.banned_until = Some(now + BAN_DURATION);
            return Outcome::Banned;
        }
        Outcome::Scored(total)
    }

    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// Bans that have run out, now lifted.
    pub fn expired_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let mut lifted = Vec::new();
        for (peer, record) in &mut self.peers {
            if record.banned_until.is_some_and(|until| until <= now) {
                record.banned_until = None;
                lifted.push(*peer);
            }
        }
        // Forget peers with nothing left against them.
        self.peers
            .retain(|_, r| r.banned_until.is_some() || r.penalty(now) > 0.01);
        lifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgeries_ban_quickly_and_penalties_decay() {
        let mut ledger = Ledger::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(
                ledger.charge(peer, "bad_signature", t0),
                Outcome::Scored(20.0 * (i + 1) as f64)
            );
        }
        assert_eq!(ledger.charge(peer, "bad_signature", t0), Outcome::Banned);
        assert!(ledger.get(&peer).unwrap().is_banned(t0));
        assert_eq!(ledger.get(&peer).unwrap().rejected, 5);

        // An honest relay of a few unauthorized events recovers.
        let honest = PeerId::random();
        ledger.charge(honest, "not_member", t0);
        let later = t0 + HALF_LIFE;
        let left = ledger.get(&honest).unwrap().penalty(later);
        assert!((left - 2.5).abs() < 1e-9, "{left}");

        // The ban lifts after its time.
        let lifted = ledger.expired_bans(t0 + BAN_DURATION);
        assert_eq!(lifted, vec![peer]);
        assert!(!ledger.get(&peer).unwrap().is_banned(t0 + BAN_DURATION));
    }
}
