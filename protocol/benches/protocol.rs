//! Protocol benchmarks: a std-only bench binary (no criterion, to keep the
//! dependency tree lean). `cargo bench -p spaces-protocol` runs it in the
//! release profile and prints a markdown table of medians.
//!
//! Every measurement runs once to warm up, then `ITERATIONS` times; the
//! median is reported. Throughput figures are for one thread.

use std::hint::black_box;
use std::time::{Duration, Instant};

use spaces_protocol::content::{
    HistoryVisibility, JoinRule, Member, Membership, Message, RoomKind,
};
use spaces_protocol::{Content, Event, EventBody, NodeKey, Room, UserId};

/// Odd, so the median is one measurement.
const ITERATIONS: usize = 7;
/// The room size the issue asks about: a busy room's year.
const ROOM_EVENTS: usize = 100_000;
/// Events per sign/verify measurement: enough to dwarf timer resolution.
const CRYPTO_EVENTS: usize = 5_000;
/// How far back the conflicting event forks: "concurrent with the last 1,000 events".
const CONFLICT_DEPTH: usize = 1_000;
const T0: u64 = 1_800_000_000_000;

struct Row {
    what: &'static str,
    n: usize,
    median: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs `setup` then times `run` on its output, once to warm up and then
/// `ITERATIONS` times.
fn measure<S, T>(mut setup: impl FnMut() -> S, mut run: impl FnMut(S) -> T) -> Duration {
    black_box(run(setup()));
    let samples = (0..ITERATIONS)
        .map(|_| {
            let input = setup();
            let start = Instant::now();
            let output = black_box(run(input));
            let elapsed = start.elapsed();
            // Dropping a 100k-event room takes milliseconds: not part of the measurement.
            drop(output);
            elapsed
        })
        .collect();
    median(samples)
}

struct Fixture {
    owner: NodeKey,
    alice: NodeKey,
    create: Event,
    /// alice's join, then messages alternating between the owner and alice,
    /// each on the previous one: a linear room of `ROOM_EVENTS` events.
    events: Vec<Event>,
}

fn message(body: String) -> Content {
    Content::Message(Message {
        body,
        ..Message::default()
    })
}

fn fixture() -> Fixture {
    let owner = NodeKey::from_seed([1; 32]);
    let alice = NodeKey::from_seed([2; 32]);
    let create = EventBody::create(
        owner.node_id(),
        "owner",
        T0,
        RoomKind::Room,
        JoinRule::Public,
        HistoryVisibility::Shared,
        [0; 16],
    )
    .sign(&owner)
    .unwrap();
    let room_id = create.room_id();
    let alice_id = UserId::new("alice", alice.node_id()).unwrap();
    let mut events = Vec::with_capacity(ROOM_EVENTS);
    let mut parent = create.clone();
    for i in 0..ROOM_EVENTS - 1 {
        let (key, sender, content) = match i {
            0 => (
                &alice,
                "alice",
                Content::Member(Member {
                    target: alice_id.clone(),
                    membership: Membership::Join,
                    reason: None,
                }),
            ),
            _ if i % 2 == 0 => (&alice, "alice", message(format!("message {i} from alice"))),
            _ => (
                &owner,
                "owner",
                message(format!("message {i} from the owner")),
            ),
        };
        let event = body_on(key, sender, room_id, &[&parent], T0 + i as u64, content)
            .sign(key)
            .unwrap();
        parent = event.clone();
        events.push(event);
    }
    Fixture {
        owner,
        alice,
        create,
        events,
    }
}

fn body_on(
    key: &NodeKey,
    sender: &str,
    room_id: spaces_protocol::RoomId,
    parents: &[&Event],
    origin_ts: u64,
    content: Content,
) -> EventBody {
    EventBody {
        origin: key.node_id(),
        room: Some(room_id),
        sender: sender.into(),
        parents: parents.iter().map(|p| p.id()).collect(),
        depth: parents.iter().map(|p| p.depth()).max().unwrap() + 1,
        origin_ts,
        content,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: this binary takes no arguments and always runs.
    let started = Instant::now();
    let fixture = fixture();
    let room_id = fixture.create.room_id();
    let mut rows = Vec::new();

    // Encode + sign: a fresh body each time, so nothing is cached.
    let bodies = || -> Vec<EventBody> {
        fixture.events[..CRYPTO_EVENTS]
            .iter()
            .map(|e| e.body().clone())
            .collect()
    };
    let owner_bodies = || -> Vec<(EventBody, &NodeKey)> {
        bodies()
            .into_iter()
            .map(|b| {
                let key = if b.origin == fixture.owner.node_id() {
                    &fixture.owner
                } else {
                    &fixture.alice
                };
                (b, key)
            })
            .collect()
    };
    let median = measure(owner_bodies, |bodies| {
        bodies
            .into_iter()
            .map(|(b, key)| b.sign(key).unwrap())
            .collect::<Vec<_>>()
    });
    rows.push(Row {
        what: "encode + sign",
        n: CRYPTO_EVENTS,
        median,
    });

    // Decode + verify: the path of every event a peer sends.
    let frames: Vec<Vec<u8>> = fixture.events[..CRYPTO_EVENTS]
        .iter()
        .map(|e| e.bytes().to_vec())
        .collect();
    let median = measure(
        || &frames,
        |frames| {
            frames
                .iter()
                .map(|f| Event::decode(f).unwrap())
                .collect::<Vec<_>>()
        },
    );
    rows.push(Row {
        what: "decode + verify",
        n: CRYPTO_EVENTS,
        median,
    });

    // Decode without verifying: the store path `Room::load` callers use.
    let median = measure(
        || &frames,
        |frames| {
            frames
                .iter()
                .map(|f| Event::decode_trusted(f).unwrap())
                .collect::<Vec<_>>()
        },
    );
    rows.push(Row {
        what: "decode (trusted, no signature check)",
        n: CRYPTO_EVENTS,
        median,
    });

    // Append 100k events one by one.
    let median = measure(
        || {
            (
                Room::new(fixture.create.clone()).unwrap(),
                fixture.events.clone(),
            )
        },
        |(mut room, events)| {
            for event in events {
                room.insert(event).unwrap();
            }
            room
        },
    );
    rows.push(Row {
        what: "room insert (append)",
        n: ROOM_EVENTS,
        median,
    });

    // Load a 100k-event room from the store, in reverse order.
    let reversed: Vec<Event> = fixture.events.iter().rev().cloned().collect();
    let median = measure(
        || reversed.clone(),
        |events| {
            let (room, skipped) = Room::load(fixture.create.clone(), events).unwrap();
            assert!(skipped.is_empty());
            room
        },
    );
    rows.push(Row {
        what: "Room::load",
        n: ROOM_EVENTS,
        median,
    });

    // A conflict: one event forking CONFLICT_DEPTH events back, inserted into
    // the loaded 100k room. A message only re-folds; a ban of alice also
    // refuses the half of those events she wrote.
    let fork = &fixture.events[fixture.events.len() - 1 - CONFLICT_DEPTH];
    let loaded = || {
        Room::load(fixture.create.clone(), fixture.events.iter().cloned())
            .unwrap()
            .0
    };
    let concurrent_message = body_on(
        &fixture.owner,
        "owner",
        room_id,
        &[fork],
        T0,
        message("concurrent with the last 1,000 events".into()),
    )
    .sign(&fixture.owner)
    .unwrap();
    let alice_id = UserId::new("alice", fixture.alice.node_id()).unwrap();
    let concurrent_ban = body_on(
        &fixture.owner,
        "owner",
        room_id,
        &[fork],
        T0,
        Content::Member(Member {
            target: alice_id,
            membership: Membership::Ban,
            reason: None,
        }),
    )
    .sign(&fixture.owner)
    .unwrap();
    for (what, event, flips) in [
        (
            "insert concurrent with the last 1,000 (message)",
            &concurrent_message,
            0,
        ),
        (
            "insert concurrent with the last 1,000 (ban)",
            &concurrent_ban,
            CONFLICT_DEPTH / 2,
        ),
    ] {
        let median = measure(loaded, |mut room| {
            let spaces_protocol::Inserted::New { changed, .. } =
                room.insert(event.clone()).unwrap()
            else {
                panic!("new")
            };
            assert_eq!(changed.len(), flips);
            room
        });
        rows.push(Row { what, n: 1, median });
    }
    // The worst case any member can cause: an event forking right after the
    // join (a stale or deliberately old parent) sorts ~100k positions back and
    // re-folds the whole room.
    let backdated = body_on(
        &fixture.alice,
        "alice",
        room_id,
        &[&fixture.events[0]],
        T0,
        message("backdated".into()),
    )
    .sign(&fixture.alice)
    .unwrap();
    let median = measure(loaded, |mut room| {
        assert!(matches!(
            room.insert(backdated.clone()),
            Ok(spaces_protocol::Inserted::New {
                position: 2 | 3,
                ..
            })
        ));
        room
    });
    rows.push(Row {
        what: "insert concurrent with the whole room (backdated)",
        n: 1,
        median,
    });

    // And what it costs to ask before inserting (the node's `check` path).
    let median = measure(loaded, |room| {
        assert_eq!(room.check(&concurrent_ban).unwrap(), None);
        room
    });
    rows.push(Row {
        what: "check concurrent ban (no insert)",
        n: 1,
        median,
    });

    println!("\n| operation | n | median | per event | events/s |");
    println!("|---|---:|---:|---:|---:|");
    for row in &rows {
        let per = row.median / row.n as u32;
        let rate = row.n as f64 / row.median.as_secs_f64();
        println!(
            "| {} | {} | {:.2?} | {:.2?} | {:.0} |",
            row.what, row.n, row.median, per, rate
        );
    }
    println!(
        "\n{ITERATIONS} iterations each after a warm-up; median shown. Total {:.1?}.",
        started.elapsed()
    );
}
