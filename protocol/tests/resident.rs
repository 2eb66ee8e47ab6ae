//! What a replica costs in memory per event, counted by the allocator (its
//! own test binary: the count is process-wide, so nothing may run beside
//! it). A room of skeleton messages is what a node keeps resident
//! (ARCHITECTURE.md, "What is resident"; docs/spec/state-resolution.md
//! §What a replica holds).

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

use spaces_protocol::content::*;
use spaces_protocol::{EventBody, NodeKey, Room, UserId};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The budget is 150 resident bytes per stored message for the
/// whole node. The replica takes this much of it, counted on the heap:
/// ids (32 bytes), records (48), the order, acceptance and parents (11),
/// the id table (6–10), the checkpoints kept, and the vectors' spare
/// capacity (up to half again; pages never written are not resident, so
/// this counts more than a process's resident memory grows). The node's
/// read model adds its seqs and unread list (24, `node/src/engine/view.rs`).
const REPLICA_BUDGET: f64 = 140.0;
const SENDERS: usize = 100;

fn message(i: usize) -> Content {
    // Bodies of every size cost the same: the replica keeps none.
    Content::Message(Message {
        body: format!("message {i} {}", "x".repeat(i % 500)),
        ..Message::default()
    })
}

/// Live heap bytes and allocations per event of a replica of `n` skeleton
/// messages appended by one sender, as a node holds a room.
fn per_event(n: usize, content: impl Fn(usize) -> Content) -> (f64, f64) {
    let key = NodeKey::from_seed([1; 32]);
    let create = EventBody::create(
        key.node_id(),
        "owner",
        1,
        RoomKind::Room,
        JoinRule::Public,
        HistoryVisibility::Shared,
        [0; 16],
    )
    .sign(&key)
    .unwrap();
    let mut room = Room::new(create.skeleton()).unwrap();
    // A hundred members take turns, as in `spaces-bench history`.
    let senders: Vec<String> = (0..SENDERS).map(|i| format!("user{i}")).collect();
    for (i, sender) in senders.iter().enumerate() {
        let join = Content::Member(Member {
            target: UserId::new(sender, key.node_id()).unwrap(),
            membership: Membership::Join,
            reason: None,
        });
        let event = room
            .draft(key.node_id(), sender, 2 + i as u64, join)
            .sign(&key)
            .unwrap();
        room.insert(event.skeleton()).unwrap();
    }
    // Counted from the room with its members: what the n messages add.
    let region = Region::new(GLOBAL);
    for i in 0..n {
        let sender = &senders[i % SENDERS];
        let event = room
            .draft(key.node_id(), sender, 1_000 + i as u64, content(i))
            .sign(&key)
            .unwrap();
        room.insert(event.skeleton()).unwrap();
    }
    let change = region.change();
    assert_eq!(room.len(), 1 + SENDERS + n);
    // A reallocation is counted in both (its growth or shrinkage).
    let bytes = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    let blocks = change.allocations as f64 - change.deallocations as f64;
    (bytes / n as f64, blocks / n as f64)
}

#[test]
fn a_skeleton_message_costs_the_replica_few_bytes() {
    // 28,000: a nearly full id table (32,768 buckets hold 28,672), so the
    // figure is not flattered by one that has just grown; the vectors have
    // 15% spare capacity (the heap counts it, resident memory would not).
    let (bytes, blocks) = per_event(28_000, message);
    eprintln!(
        "replica of skeleton messages: {bytes:.1} heap bytes, {blocks:.3} allocations per event"
    );
    assert!(bytes <= REPLICA_BUDGET, "{bytes:.1} bytes an event");
    // Records, not objects: the allocations left are the checkpoints'.
    assert!(blocks < 0.05, "{blocks:.3} allocations an event");
}
