//! Properties of verified streaming (`spaces_blobs::bao::verify`): what
//! another node sends for a range of chunk groups of a blob, checked
//! against the blob's hash before any byte is kept. Included by
//! `crates/blobs/tests/bao_fuzz_smoke.rs` too, so a stable `cargo test`
//! runs the very same checks.

use std::sync::OnceLock;

use spaces_blobs::Hash;
use spaces_blobs::bao::{self, GROUP_BYTES, MAX_GROUPS};

/// The blob sizes inputs pick from: one byte, one whole group, a few
/// groups with a short last one, and more than one request's worth.
pub const SIZES: [usize; 4] = [1, 16_384, 40_000, 1_100_000];

/// The blob of `size` bytes the checks verify against.
pub fn blob(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// The blobs of [`SIZES`] and their hashes, made once.
fn blobs() -> &'static [(Vec<u8>, Hash)] {
    static BLOBS: OnceLock<Vec<(Vec<u8>, Hash)>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        SIZES
            .iter()
            .map(|&size| {
                let blob = blob(size);
                let hash = Hash::new(&blob);
                (blob, hash)
            })
            .collect()
    })
}

/// Bytes 0..3 pick the blob, the first group and how many groups are
/// asked; the rest is the encoding a peer sent. Never panics; whatever
/// verifies is exactly the blob's bytes of those groups (a peer cannot
/// make the asker keep anything else); a refusal names a byte within the
/// range asked.
pub fn check_bao(data: &[u8]) {
    let [pick, first, groups, encoded @ ..] = data else {
        return;
    };
    let (blob, hash) = &blobs()[usize::from(*pick) % SIZES.len()];
    let size = blob.len() as u64;
    // Past the end and too many included: those must be refused too.
    let first = u64::from(*first) % (bao::groups_of(size) + 2);
    let groups = u32::from(*groups) % (MAX_GROUPS + 2);
    let start = first * GROUP_BYTES;
    match bao::verify(hash, size, first, groups, encoded) {
        Ok(leaves) => {
            assert!((1..=MAX_GROUPS).contains(&groups) && start < size);
            let end = ((first + u64::from(groups)) * GROUP_BYTES).min(size);
            let got: Vec<u8> = leaves.iter().flat_map(|l| l.iter().copied()).collect();
            assert_eq!(got, &blob[start as usize..end as usize]);
            assert!(encoded.len() <= bao::max_encoded_len(groups));
        }
        Err(corrupt) => {
            let end = ((first + u64::from(groups)) * GROUP_BYTES).max(start);
            assert!(corrupt.at >= start && corrupt.at <= end, "{corrupt}");
        }
    }
}
