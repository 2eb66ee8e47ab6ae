//! The fuzz targets' checks (`fuzz/src/checks.rs`, included by path) on a
//! few thousand deterministic mutations of valid frames: bit flips, byte
//! overwrites, truncations, extensions, splices of two events. Runs on
//! stable in every `cargo test`; `cargo fuzz` explores further (fuzz/README.md).

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

use std::collections::BTreeMap;

use spaces_protocol::content::*;
use spaces_protocol::{Event, Permissions};

use super::support::*;

/// Valid frames of every content kind, plus the test vectors (valid and invalid).
fn corpus() -> Vec<Vec<u8>> {
    let (owner, alice) = (Author::new(1, "owner"), Author::new(2, "alice"));
    let mut chain = Chain::new(&owner, RoomKind::Space, JoinRule::Public);
    chain.join(&owner, &alice);
    let hello = chain.push(&alice, text("hello"));
    chain.grant(&owner, &alice, 1, 5, Permissions::KICK);
    chain.push(&alice, react(hello.id(), "👍"));
    chain.push(&alice, edit(hello.id(), "hello!"));
    chain.push(&alice, reply("re", hello.id()));
    chain.push(&owner, timeout(&alice.user(), chain.clock + 10));
    chain.push(&owner, Content::Topic("topic".into()));
    chain.push(&owner, Content::Avatar(Some(attachment(&owner.key))));
    chain.push(&owner, Content::Pins(vec![hello.id()]));
    chain.push(
        &owner,
        Content::SpaceChild(SpaceLink {
            room: chain.room_id(),
            via: vec![owner.key.node_id()],
            present: true,
        }),
    );
    chain.push(&owner, Content::Slowmode(Slowmode { seconds: 3 }));
    chain.push(&owner, Content::Encryption(Encryption::Mls128X25519));
    chain.push(
        &owner,
        Content::BanEntry(BanEntry {
            target: BanTarget::Pattern("@a*:*".into()),
            recommendation: Recommendation::Ban,
            reason: "spam".into(),
            present: true,
        }),
    );
    chain.push(&owner, redact(hello.id()));
    let mut corpus: Vec<Vec<u8>> = chain.room.iter().map(|(e, _)| e.bytes().to_vec()).collect();
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/events.json"))
            .unwrap(),
    )
    .unwrap();
    for v in vectors["valid"].as_array().unwrap() {
        corpus.push(unhex(v["wire"].as_str().unwrap()));
    }
    for v in vectors["invalid"].as_array().unwrap() {
        corpus.push(unhex(v["hex"].as_str().unwrap()));
    }
    corpus
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len().max(1);
        match rng.below(7) {
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
                // Splice: a prefix of this frame, the suffix of another.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len);
                let from = rng.below(other.len().max(1));
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from.min(other.len())..]);
            }
            5 => {
                // Delete a run.
                let at = rng.below(len);
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            _ => {
                // Insert a byte: shifts every field after it.
                let at = rng.below(len);
                bytes.insert(at.min(bytes.len()), [0x00, 0x01, 0x80, 0xff][rng.below(4)]);
            }
        }
    }
    bytes
}

#[test]
fn mutated_frames_never_panic_and_round_trip() {
    let corpus = corpus();
    for frame in &corpus[..20] {
        assert!(
            checks::check_decode(frame).is_some(),
            "the corpus starts with valid frames"
        );
    }
    let mut rng = Rng::new(0x5eed);
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for _ in 0..3_000 {
        let bytes = mutate(&mut rng, &corpus);
        match checks::check_decode(&bytes) {
            Some(_) => *codes.entry("ok").or_default() += 1,
            None => {
                *codes
                    .entry(Event::decode(&bytes).unwrap_err().code())
                    .or_default() += 1
            }
        }
    }
    for code in ["bad_signature", "truncated", "unsupported_version"] {
        assert!(codes.contains_key(code), "no {code} among {codes:?}");
    }
}

#[test]
fn mutated_bodies_signed_anew_never_panic_and_round_trip() {
    // Re-signing gets the mutations past the signature to the body decoder.
    let corpus: Vec<Vec<u8>> = corpus()
        .into_iter()
        .filter(|f| f.len() >= 97 && Event::decode(f).is_ok())
        .map(|f| f[33..f.len() - 64].to_vec())
        .collect();
    let mut rng = Rng::new(0xb0d1e5);
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for round in 0..3_000 {
        // The first rounds: the unmutated bodies, which must all decode.
        let body = if round < corpus.len() {
            corpus[round].clone()
        } else {
            mutate(&mut rng, &corpus)
        };
        let decoded = checks::check_signed_body(&body);
        if round < corpus.len() {
            assert!(decoded.is_some(), "body {round} re-signed must decode");
        }
        let code = match decoded {
            Some(_) => "ok",
            None => {
                let key = spaces_protocol::NodeKey::from_seed(checks::FUZZ_SEED);
                let mut signed = vec![1u8];
                signed.extend_from_slice(&key.node_id().0);
                signed.extend_from_slice(&body);
                Event::decode(&checks::sign_frame(&key, signed))
                    .unwrap_err()
                    .code()
            }
        };
        *codes.entry(code).or_default() += 1;
    }
    for code in ["ok", "malformed", "limit", "shape"] {
        assert!(codes.contains_key(code), "no {code} among {codes:?}");
    }
    assert!(!codes.contains_key("bad_signature"), "{codes:?}");
}

#[test]
fn random_room_scripts_keep_the_replica_consistent() {
    let corpus = corpus();
    let mut rng = Rng::new(0x0c0ffee);
    for _ in 0..120 {
        let mut script: Vec<u8> = (0..160).map(|_| rng.next_u64() as u8).collect();
        // Now and then a raw frame: op 0, a length, then a (mutated) frame.
        if rng.below(3) == 0 {
            let frame = if rng.below(2) == 0 {
                corpus[rng.below(corpus.len())].clone()
            } else {
                mutate(&mut rng, &corpus)
            };
            let at = rng.below(script.len());
            let mut raw = vec![0u8];
            raw.extend((frame.len() as u16).to_le_bytes());
            raw.extend(frame);
            script.splice(at..at, raw);
        }
        checks::check_room(&script);
    }
}

#[test]
fn random_globs_match_as_defined() {
    let mut rng = Rng::new(0x610b);
    let alphabet = ['a', 'b', '@', ':', '~', '*', '?', 'é'];
    let word = |rng: &mut Rng, n: usize| -> String {
        (0..rng.below(n))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect()
    };
    for _ in 0..20_000 {
        let pattern = word(&mut rng, 12);
        let text: String = word(&mut rng, 16).replace(['*', '?'], "a");
        checks::check_glob(&pattern, &text);
    }
    // The longest pattern against a long id stays linear in each.
    checks::check_glob(&"*a".repeat(64), &"a".repeat(90));
}
