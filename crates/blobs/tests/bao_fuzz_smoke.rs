//! The `bao` fuzz target's checks (`fuzz/src/bao_checks.rs`) on stable:
//! honest encodings of every range of each blob, and deterministic
//! mutations of them (bit flips, overwrites, truncations, insertions,
//! splices of another range's encoding) and random bytes.

#[path = "../../../fuzz/src/bao_checks.rs"]
mod bao_checks;

use bao_checks::{SIZES, blob, check_bao};
use spaces_blobs::bao::{self, MAX_GROUPS};

/// A small deterministic generator (xorshift): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `pick, first, groups` then the encoding: a fuzz input.
fn input(pick: usize, first: u64, groups: u32, encoded: &[u8]) -> Vec<u8> {
    let mut data = vec![pick as u8, first as u8, groups as u8];
    data.extend_from_slice(encoded);
    data
}

#[test]
fn honest_and_mutated_encodings_verify_exactly_or_are_refused() {
    let mut rng = Rng(0xba0_5eed_0bad_cafe);
    let mut honest = Vec::new();
    for (pick, &size) in SIZES.iter().enumerate() {
        let data = blob(size);
        let total = bao::groups_of(size as u64);
        for (first, groups) in [
            (0, MAX_GROUPS),
            (0, 1),
            (1, 2),
            (total - 1, 1),
            (total / 2, 3),
        ] {
            if first >= total {
                continue;
            }
            let (_, encoded) = bao::encode(&data, first, groups);
            let case = input(pick, first, groups, &encoded);
            // An honest encoding verifies (the check asserts its bytes).
            check_bao(&case);
            assert!(
                bao::verify(
                    &spaces_blobs::Hash::new(&data),
                    size as u64,
                    first,
                    groups,
                    &encoded
                )
                .is_ok()
            );
            honest.push(case);
        }
    }
    for _ in 0..3_000 {
        let mut case = honest[rng.below(honest.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let at = 3 + rng.below(case.len() - 3);
            match rng.below(5) {
                0 => case[at] ^= 1 << rng.below(8),
                1 => case[at] = rng.next() as u8,
                2 => case.truncate(at),
                3 => case.insert(at, rng.next() as u8),
                _ => {
                    let other = &honest[rng.below(honest.len())];
                    let from = 3 + rng.below(other.len() - 3);
                    case.truncate(at);
                    case.extend_from_slice(&other[from..]);
                }
            }
            if case.len() <= 3 {
                break;
            }
        }
        check_bao(&case);
    }
    for _ in 0..500 {
        let len = rng.below(2_000);
        let case: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_bao(&case);
    }
}
