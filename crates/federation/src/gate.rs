//! The one bound on inbound work: how many requests from other nodes
//! (pushes, backfills, event fetches, joins) this node works on at once.
//!
//! Each inbound request that gets past its checks takes a [`Slot`] before
//! the host sees it, and holds it while the host works and then while the
//! response is written to the asker (a slow reader keeps its slot), so the
//! requests and responses in memory are at most the gate's capacity. When
//! no slot is free the request is answered `Busy` at once, with no work
//! done. The swarm task owns the gate's bookkeeping; a slot may be dropped
//! on any thread (a host task that panics drops its slot as it unwinds).
//!
//! The gate also keeps how many slots each peer holds, so that a refusal
//! can tell a peer that holds more than its share (a flood: charged) from
//! one that merely arrived while others filled the gate (not charged).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bound, its counters, and who holds what. Cheap to share.
#[derive(Debug)]
pub(crate) struct Gate {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    load: Arc<Mutex<HashMap<PeerId, usize>>>,
    /// Inbound requests answered `Busy`.
    busy_sent: AtomicU64,
    /// Of those, refusals charged to a peer that held more than its share.
    busy_charged: AtomicU64,
    /// `Busy` answers this node got from others.
    busy_received: AtomicU64,
}

/// What the gate says to a request that finds it full.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full {
    /// The peer holds at least its share of the slots (the peers holding
    /// any, taken equally), and at least two: when many peers hold one
    /// each, none of them is the flood.
    pub over_share: bool,
}

/// One inbound request's place in the gate. Dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    peer: PeerId,
    load: Arc<Mutex<HashMap<PeerId, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut load = self.load.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = load.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                load.remove(&self.peer);
            }
        }
    }
}

/// The gate's numbers, as metrics show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InboundStats {
    /// Slots: inbound requests worked on or being answered at once.
    pub capacity: usize,
    /// Slots held now.
    pub in_flight: usize,
    /// Inbound requests answered `Busy` since start.
    pub busy_sent: u64,
    /// Of those, refusals charged to the peer (it held more than its share).
    pub busy_charged: u64,
    /// `Busy` answers this node got from other nodes since start.
    pub busy_received: u64,
}

impl Gate {
    /// A gate of `capacity` slots (at least one).
    pub fn new(capacity: usize) -> Gate {
        let capacity = capacity.max(1);
        Gate {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
            load: Arc::default(),
            busy_sent: AtomicU64::new(0),
            busy_charged: AtomicU64::new(0),
            busy_received: AtomicU64::new(0),
        }
    }

    /// A slot for a request from `peer`, or why there is none. Counts the
    /// refusal.
    pub fn enter(&self, peer: PeerId) -> Result<Slot, Full> {
        let mut load = self.load.lock().unwrap_or_else(|p| p.into_inner());
        match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => {
                *load.entry(peer).or_default() += 1;
                Ok(Slot {
                    _permit: permit,
                    peer,
                    load: self.load.clone(),
                })
            }
            Err(_) => {
                let held = load.get(&peer).copied().unwrap_or(0);
                // Holders share the slots equally; a peer with at least its
                // part is among those filling the gate.
                let share = self.capacity.div_ceil(load.len().max(1));
                let over_share = held >= share.max(2);
                self.busy_sent.fetch_add(1, Ordering::Relaxed);
                if over_share {
                    self.busy_charged.fetch_add(1, Ordering::Relaxed);
                }
                Err(Full { over_share })
            }
        }
    }

    pub fn busy_received(&self) {
        self.busy_received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> InboundStats {
        InboundStats {
            capacity: self.capacity,
            in_flight: self.capacity - self.semaphore.available_permits(),
            busy_sent: self.busy_sent.load(Ordering::Relaxed),
            busy_charged: self.busy_charged.load(Ordering::Relaxed),
            busy_received: self.busy_received.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_refuses_and_tells_a_flooder_from_a_bystander() {
        let gate = Gate::new(4);
        let (flooder, bystander) = (PeerId::random(), PeerId::random());
        let mut slots: Vec<Slot> = (0..3).map(|_| gate.enter(flooder).unwrap()).collect();
        slots.push(gate.enter(bystander).unwrap());
        assert_eq!(gate.stats().in_flight, 4);
        // Two holders: a share is two slots. The flooder holds three.
        assert_eq!(gate.enter(flooder).unwrap_err(), Full { over_share: true });
        assert_eq!(
            gate.enter(bystander).unwrap_err(),
            Full { over_share: false }
        );
        // A peer holding nothing is never charged.
        assert_eq!(
            gate.enter(PeerId::random()).unwrap_err(),
            Full { over_share: false }
        );
        let stats = gate.stats();
        assert_eq!((stats.busy_sent, stats.busy_charged), (3, 1));
        // A slot dropped (answered, or its task gone) lets the next one in.
        // (Below: peers holding one slot each are not charged.)
        slots.pop();
        let slot = gate.enter(bystander).unwrap();
        assert_eq!(gate.stats().in_flight, 4);
        drop(slot);
        drop(slots);
        assert_eq!(gate.stats().in_flight, 0);
        assert!(gate.load.lock().unwrap().is_empty(), "no peer left behind");

        let gate = Gate::new(2);
        let (a, b) = (PeerId::random(), PeerId::random());
        let _held = (gate.enter(a).unwrap(), gate.enter(b).unwrap());
        assert_eq!(gate.enter(a).unwrap_err(), Full { over_share: false });
    }
}
