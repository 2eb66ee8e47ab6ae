//! The `wire` fuzz target's checks (`fuzz/src/wire_checks.rs`, included by
//! path) on deterministic mutations of valid sync frames — bit flips, byte
//! overwrites, truncations, extensions, splices, forged length prefixes —
//! and on random bytes. Runs on stable in every `cargo test`; `cargo fuzz`
//! explores further (fuzz/README.md).
//!
//! Bounded allocation: a length prefix beyond the limit is refused after
//! reading the prefix alone (checked per input), and the whole run must
//! leave the peak resident memory of this test process (its own binary,
//! one test) within a few MiB of where it started.

#[path = "../../../fuzz/src/wire_checks.rs"]
mod wire_checks;

use futures_util::io::Cursor;
use spaces_federation::wire::{
    MAX_IDS, MAX_PUSH_EVENTS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response, write_frame,
};
use spaces_protocol::{EventId, RoomId};

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

fn frame<M: serde::Serialize>(message: &M, max: usize) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    wire_checks::now(write_frame(&mut out, message, max)).unwrap();
    out.into_inner()
}

/// Valid frames of every variant, each behind its mode byte (0: request,
/// 1: response).
fn corpus() -> Vec<Vec<u8>> {
    let room = RoomId([7; 32]);
    let requests = [
        Request::Push {
            events: vec![vec![0x01; 40], vec![0x02; 97]],
        },
        Request::Push {
            events: vec![vec![0xaa; 3]; MAX_PUSH_EVENTS + 1],
        },
        Request::Backfill {
            room,
            known: vec![EventId([1; 32]), EventId([2; 32])],
            limit: 1000,
        },
        Request::Events {
            room,
            ids: vec![EventId([9; 32]); 3],
        },
        Request::Events {
            room,
            ids: vec![EventId([0; 32]); MAX_IDS + 1],
        },
        Request::Join {
            room,
            user: "@alice:~node".into(),
            code: Some("abc".into()),
        },
        Request::Join {
            room,
            user: String::new(),
            code: None,
        },
        Request::Blob {
            room,
            event: EventId([3; 32]),
            hash: [4; 32],
            offset: 1 << 20,
            len: 1 << 20,
        },
        Request::BlobBao {
            room,
            event: EventId([3; 32]),
            hash: [4; 32],
            first: 64,
            groups: 64,
        },
        Request::BlobBao {
            room,
            event: EventId([3; 32]),
            hash: [4; 32],
            first: u64::MAX,
            groups: 65,
        },
    ];
    let responses = [
        Response::Pushed { new: 300 },
        Response::Events {
            events: vec![vec![0x01; 200], Vec::new()],
            more: true,
        },
        Response::Joined,
        Response::refused("unknown_room", "no such room here"),
        Response::busy(),
        Response::Busy {
            retry_after_ms: u32::MAX,
        },
        Response::Blob {
            size: 3,
            bytes: vec![1, 2, 3],
        },
        Response::BlobBao {
            size: 40_000,
            encoded: vec![0x5a; 700],
        },
    ];
    let mut corpus = Vec::new();
    for request in &requests {
        let mut bytes = vec![0];
        bytes.extend(frame(request, MAX_REQUEST_BYTES));
        corpus.push(bytes);
    }
    for response in &responses {
        let mut bytes = vec![1];
        bytes.extend(frame(response, MAX_RESPONSE_BYTES));
        corpus.push(bytes);
    }
    corpus
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len().max(1);
        match rng.below(8) {
            0 => {
                let at = rng.below(len);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(len);
                if let Some(b) = bytes.get_mut(at) {
                    *b = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
                }
            }
            2 => bytes.truncate(rng.below(len)),
            3 => bytes.extend((0..1 + rng.below(8)).map(|_| rng.next_u64() as u8)),
            4 => {
                // Splice: a prefix of this input, the suffix of another.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len);
                let from = rng.below(other.len().max(1));
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from.min(other.len())..]);
            }
            5 => {
                // A forged length prefix: around the limits, or anything.
                let claimed: u32 = match rng.below(6) {
                    0 => u32::MAX,
                    1 => MAX_REQUEST_BYTES as u32 + 1,
                    2 => MAX_RESPONSE_BYTES as u32 + 1,
                    3 => MAX_REQUEST_BYTES as u32,
                    4 => rng.below(64) as u32,
                    _ => rng.next_u64() as u32,
                };
                if bytes.len() >= 5 {
                    bytes[1..5].copy_from_slice(&claimed.to_be_bytes());
                }
            }
            6 => {
                // Re-frame: the body as it is, behind its true length, so
                // mutations reach the decoder instead of the length check.
                if bytes.len() >= 5 {
                    let body_len = (bytes.len() - 5) as u32;
                    bytes[1..5].copy_from_slice(&body_len.to_be_bytes());
                }
            }
            _ => {
                // A huge element count inside the message.
                let at = 5 + rng.below(len.saturating_sub(5).max(1));
                let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
                let at = at.min(bytes.len());
                bytes.splice(at..at, huge);
            }
        }
    }
    bytes
}

/// This process's peak resident memory, in KiB (Linux; 0 elsewhere).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn wire_frames_survive_mutation_without_panic_or_unbounded_allocation() {
    let corpus = corpus();
    // Every valid frame decodes, and is the message it was made from.
    for bytes in &corpus {
        let (mode, stream) = bytes.split_first().unwrap();
        if *mode == 0 {
            assert!(wire_checks::check_frame::<Request>(stream, MAX_REQUEST_BYTES).is_some());
        } else {
            assert!(wire_checks::check_frame::<Response>(stream, MAX_RESPONSE_BYTES).is_some());
        }
    }
    let before = peak_rss_kib();
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    let (mut decoded, mut refused) = (0, 0);
    for i in 0..30_000 {
        let input = if i % 10 == 9 {
            // Plain random bytes.
            (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect()
        } else {
            mutate(&mut rng, &corpus)
        };
        let (mode, stream) = match input.split_first() {
            Some(split) => split,
            None => continue,
        };
        let ok = if mode % 2 == 0 {
            wire_checks::check_frame::<Request>(stream, MAX_REQUEST_BYTES).is_some()
        } else {
            wire_checks::check_frame::<Response>(stream, MAX_RESPONSE_BYTES).is_some()
        };
        if ok {
            decoded += 1
        } else {
            refused += 1
        }
        wire_checks::check_wire(&input);
    }
    // Both sides of the decoder were exercised.
    assert!(
        decoded > 1_000 && refused > 1_000,
        "{decoded} decoded, {refused} refused"
    );
    // A prefix claiming 4 GiB, with nothing after it, costs nothing.
    for mode in [0u8, 1] {
        let mut claim = vec![mode];
        claim.extend_from_slice(&u32::MAX.to_be_bytes());
        wire_checks::check_wire(&claim);
    }
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "peak memory grew by {grown} KiB over frames of at most a few KiB"
    );
}
