//! Verified streaming between nodes: BLAKE3 verification per chunk group.
//!
//! A blob's BLAKE3 tree, as iroh-blobs keeps it (its outboard), has leaves
//! of 16 KiB, [`GROUP_BYTES`] (iroh-blobs' `IROH_BLOCK_SIZE`: chunk log 4).
//! A holder answers a range of those groups with their *encoding*: in
//! pre-order, each parent of the tree on the way from the root to the
//! groups as its two 32-byte children's hashes, then each group's bytes
//! (the bao-tree encoding iroh-blobs' own transfer protocol uses, without
//! its 8-byte size prefix). [`verify`] checks it from the root hash down,
//! group by group: a group whose bytes do not hash to what its parents
//! (verified up to the root) say is refused where it is, and nothing after
//! it is read. So a node needs no more than one answer in memory, and a
//! holder that sends one wrong byte is caught at that group, not at the end
//! of the file (docs/spec/federation.md#blobs).
//!
//! The size of the blob shapes the tree: it comes from the signed event's
//! attachment, and a wrong one fails verification by the last group at
//! the latest, which every fetch asks for.

use bao_tree::io::BaoContentItem;
use bao_tree::io::mixed::EncodedItem;
use bao_tree::io::sync::DecodeResponseIter;
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};
use bytes::Bytes;
use futures_util::StreamExt;
use iroh_blobs::Hash;

use crate::{BlobError, Blobs};

/// Bytes in a chunk group, the unit a blob is verified by: 16 KiB.
pub const GROUP_BYTES: u64 = 16 * 1024;
/// 1 KiB BLAKE3 chunks in a group.
const GROUP_CHUNKS: u64 = GROUP_BYTES / 1024;
/// iroh-blobs' block size: 2^4 chunks of 1 KiB.
const BLOCK: BlockSize = BlockSize::from_chunk_log(4);
/// Most groups one request may name: 1 MiB of data.
pub const MAX_GROUPS: u32 = 64;
/// Bytes of one parent in an encoding: two hashes.
const PARENT_BYTES: usize = 64;

/// Groups a blob of `size` bytes has.
pub fn groups_of(size: u64) -> u64 {
    size.div_ceil(GROUP_BYTES)
}

/// The most bytes an honest encoding of `groups` groups can take: their
/// data and every parent above them (fewer than `2 * groups` inside the
/// range, and one per level above it, 64 levels at most).
pub fn max_encoded_len(groups: u32) -> usize {
    let groups = groups as usize;
    groups * GROUP_BYTES as usize + (2 * groups + 64) * PARENT_BYTES
}

/// Where and how an encoding failed to verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{why} (at byte {at})")]
pub struct Corrupt {
    /// The first byte of the blob the failure concerns (the group that did
    /// not verify, or the first one missing).
    pub at: u64,
    pub why: String,
}

/// The chunk range of groups `first .. first + groups`.
fn range(first: u64, groups: u32) -> ChunkRanges {
    let start = ChunkNum(first.saturating_mul(GROUP_CHUNKS));
    let end = ChunkNum(
        first
            .saturating_add(groups.into())
            .saturating_mul(GROUP_CHUNKS),
    );
    ChunkRanges::from(start..end)
}

/// Verifies `encoded`, the encoding of groups `first .. first + groups` of
/// the blob `hash` of `size` bytes (clipped to its end), and returns their
/// bytes in order. Refuses an encoding that breaks off, carries a parent
/// or a group that does not verify, or has bytes left over. Never panics,
/// whatever the input; reads each byte of `encoded` once.
pub fn verify(
    hash: &Hash,
    size: u64,
    first: u64,
    groups: u32,
    encoded: &[u8],
) -> Result<Vec<Bytes>, Corrupt> {
    let start = first.saturating_mul(GROUP_BYTES);
    if groups == 0 || groups > MAX_GROUPS || start >= size {
        return Err(Corrupt {
            at: start,
            why: "no such groups".into(),
        });
    }
    let root = bao_tree::blake3::Hash::from_bytes(*hash.as_bytes());
    let tree = BaoTree::new(size, BLOCK);
    let ranges = range(first, groups);
    let mut reader = encoded;
    let mut out = Vec::with_capacity(groups as usize);
    let mut next = start;
    let end = first
        .saturating_add(groups.into())
        .saturating_mul(GROUP_BYTES)
        .min(size);
    for item in DecodeResponseIter::new(root, tree, &mut reader, &ranges) {
        match item {
            Ok(BaoContentItem::Parent(_)) => {}
            Ok(BaoContentItem::Leaf(leaf)) => {
                // The decoder walks the tree in order: a leaf elsewhere
                // would be its bug, refused all the same.
                if leaf.offset != next || leaf.data.is_empty() {
                    return Err(Corrupt {
                        at: next,
                        why: format!("a group at byte {} out of order", leaf.offset),
                    });
                }
                next += leaf.data.len() as u64;
                out.push(leaf.data);
            }
            Err(e) => {
                use bao_tree::io::DecodeError;
                let why = match &e {
                    DecodeError::LeafHashMismatch(_) => "a group does not match the hash",
                    DecodeError::ParentHashMismatch(_) => "a parent does not match the hash",
                    DecodeError::LeafNotFound(_) | DecodeError::ParentNotFound(_) => {
                        "the encoding ends early"
                    }
                    DecodeError::Io(_) => "the encoding does not read",
                };
                return Err(Corrupt {
                    at: next,
                    why: why.into(),
                });
            }
        }
    }
    if next != end {
        return Err(Corrupt {
            at: next,
            why: format!("the encoding ends at byte {next}, not {end}"),
        });
    }
    if !reader.is_empty() {
        return Err(Corrupt {
            at: next,
            why: format!("{} bytes after the encoding", reader.len()),
        });
    }
    Ok(out)
}

/// The encoding of groups `first .. first + groups` of `data` (whose hash
/// it is computed from): what an honest holder sends. For tests and the
/// fuzz target; a node encodes from its store ([`Blobs::encode_groups`]).
#[cfg(any(test, feature = "fixtures"))]
pub fn encode(data: &[u8], first: u64, groups: u32) -> (Hash, Vec<u8>) {
    use bao_tree::io::outboard::PreOrderMemOutboard;
    let outboard = PreOrderMemOutboard::create(data, BLOCK);
    let mut encoded = Vec::new();
    bao_tree::io::sync::encode_ranges_validated(
        data,
        &outboard,
        &range(first, groups),
        &mut encoded,
    )
    .expect("encoding bytes in memory");
    (Hash::from_bytes(*outboard.root.as_bytes()), encoded)
}

impl Blobs {
    /// The encoding of groups `first .. first + groups` (at most
    /// [`MAX_GROUPS`]) of a blob the store holds, and its size: what a
    /// node answers a peer's `BlobBao` request with. iroh-blobs checks the
    /// bytes against its outboard as it reads them, so a copy that rotted
    /// on disk is an error here, never sent.
    pub async fn encode_groups(
        &self,
        hash: Hash,
        first: u64,
        groups: u32,
    ) -> Result<(u64, Vec<u8>), BlobError> {
        let groups = groups.min(MAX_GROUPS);
        let items = self
            .fs()
            .blobs()
            .export_bao(hash, range(first, groups))
            .stream();
        let mut items = std::pin::pin!(items);
        let mut size = None;
        let mut encoded = Vec::new();
        while let Some(item) = items.next().await {
            match item {
                EncodedItem::Size(s) => {
                    size = Some(s);
                    let data = groups_of(s).saturating_sub(first).min(groups.into()) as u32;
                    encoded.reserve(max_encoded_len(data).min(max_encoded_len(MAX_GROUPS)));
                }
                EncodedItem::Parent(parent) => {
                    encoded.extend_from_slice(parent.pair.0.as_bytes());
                    encoded.extend_from_slice(parent.pair.1.as_bytes());
                }
                EncodedItem::Leaf(leaf) => encoded.extend_from_slice(&leaf.data),
                EncodedItem::Done => break,
                EncodedItem::Error(e) => return Err(BlobError::store(e)),
            }
            if encoded.len() > max_encoded_len(groups) {
                return Err(BlobError::Store("the encoding outgrew its bound".into()));
            }
        }
        let size = size.ok_or_else(|| BlobError::Store("the store gave no size".into()))?;
        Ok((size, encoded))
    }
}

impl Blobs {
    /// Bytes `start..end` of a blob the store holds (at most
    /// [`MAX_GROUPS`] groups' worth), checked against the blob's tree as
    /// they are read, like [`Blobs::encode_groups`]: what a node answers
    /// an older peer's `Blob` request with.
    pub async fn read_checked(
        &self,
        hash: Hash,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let end = end.min(start.saturating_add(u64::from(MAX_GROUPS) * GROUP_BYTES));
        let first = start / GROUP_BYTES;
        let last = end.div_ceil(GROUP_BYTES);
        let groups = (last - first).clamp(1, MAX_GROUPS.into()) as u32;
        let items = self
            .fs()
            .blobs()
            .export_bao(hash, range(first, groups))
            .stream();
        let mut items = std::pin::pin!(items);
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        while let Some(item) = items.next().await {
            match item {
                EncodedItem::Leaf(leaf) => {
                    let from = start.max(leaf.offset);
                    let to = end.min(leaf.offset + leaf.data.len() as u64);
                    if from < to {
                        out.extend_from_slice(
                            &leaf.data[(from - leaf.offset) as usize..(to - leaf.offset) as usize],
                        );
                    }
                }
                EncodedItem::Size(_) | EncodedItem::Parent(_) => {}
                EncodedItem::Done => break,
                EncodedItem::Error(e) => return Err(BlobError::store(e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn an_honest_encoding_verifies_range_by_range_to_the_whole_blob() {
        for size in [1, 1000, 16 * 1024, 16 * 1024 + 1, 1_100_000, 3_000_000] {
            let blob = data(size);
            let mut whole = Vec::new();
            let mut first = 0;
            while first < groups_of(size as u64) {
                let (hash, encoded) = encode(&blob, first, MAX_GROUPS);
                assert_eq!(hash, Hash::new(&blob));
                assert!(encoded.len() <= max_encoded_len(MAX_GROUPS));
                let leaves = verify(&hash, size as u64, first, MAX_GROUPS, &encoded).unwrap();
                for leaf in leaves {
                    whole.extend_from_slice(&leaf);
                }
                first += u64::from(MAX_GROUPS);
            }
            assert_eq!(whole, blob, "size {size}");
        }
    }

    #[test]
    fn a_wrong_byte_is_caught_at_its_group_and_nothing_after_it_is_given() {
        let blob = data(3_000_000);
        let hash = Hash::new(&blob);
        // Groups 64..128 hold bytes 1 MiB .. 2 MiB; corrupt group 70.
        let (_, mut encoded) = encode(&blob, 64, MAX_GROUPS);
        let parents = encoded.len() - MAX_GROUPS as usize * GROUP_BYTES as usize;
        // In pre-order the data of group 70 is preceded by its parents; find
        // it by content instead of by arithmetic.
        let target = &blob[70 * GROUP_BYTES as usize..71 * GROUP_BYTES as usize];
        let at = encoded
            .windows(target.len())
            .position(|w| w == target)
            .unwrap();
        encoded[at + 100] ^= 1;
        let err = verify(&hash, blob.len() as u64, 64, MAX_GROUPS, &encoded).unwrap_err();
        assert_eq!(err.at, 70 * GROUP_BYTES, "{err}");
        assert!(parents > 0);

        // A flipped parent hash is caught before any group under it.
        let (_, mut encoded) = encode(&blob, 64, MAX_GROUPS);
        encoded[5] ^= 1;
        let err = verify(&hash, blob.len() as u64, 64, MAX_GROUPS, &encoded).unwrap_err();
        assert_eq!(err.at, 64 * GROUP_BYTES, "{err}");
    }

    #[test]
    fn short_long_misnamed_or_missized_encodings_are_refused() {
        let blob = data(200_000);
        let (hash, encoded) = encode(&blob, 0, MAX_GROUPS);
        let size = blob.len() as u64;
        assert!(verify(&hash, size, 0, MAX_GROUPS, &encoded[..encoded.len() - 1]).is_err());
        let mut long = encoded.clone();
        long.push(0);
        assert!(verify(&hash, size, 0, MAX_GROUPS, &long).is_err());
        let other = Hash::new(b"another blob");
        assert!(verify(&other, size, 0, MAX_GROUPS, &encoded).is_err());
        assert!(verify(&hash, size + 1, 0, MAX_GROUPS, &encoded).is_err());
        assert!(verify(&hash, size - 1, 0, MAX_GROUPS, &encoded).is_err());
        // Groups past the end, none, or too many are not asked for.
        assert!(verify(&hash, size, 100, 1, &encoded).is_err());
        assert!(verify(&hash, size, 0, 0, &encoded).is_err());
        assert!(verify(&hash, size, 0, MAX_GROUPS + 1, &encoded).is_err());
        // An encoding of other groups of the same blob is not this one.
        let (_, later) = encode(&blob, 4, 4);
        assert!(verify(&hash, size, 0, 4, &later).is_err());
        assert!(verify(&hash, size, 0, MAX_GROUPS, &[]).is_err());
    }

    #[tokio::test]
    async fn a_store_encodes_what_verifies_and_reads_checked_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(crate::Options::new(dir.path().to_owned()))
            .await
            .unwrap();
        let blob = data(1_300_000);
        let body = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(
            blob.clone(),
        ))]);
        let upload = blobs.upload("u", body, 0).await.unwrap();
        assert_eq!(upload.hash, Hash::new(&blob));
        let mut whole = Vec::new();
        for first in [0, 64] {
            let (size, encoded) = blobs
                .encode_groups(upload.hash, first, MAX_GROUPS)
                .await
                .unwrap();
            assert_eq!(size, blob.len() as u64);
            assert_eq!(encoded, encode(&blob, first, MAX_GROUPS).1);
            for leaf in verify(&upload.hash, size, first, MAX_GROUPS, &encoded).unwrap() {
                whole.extend_from_slice(&leaf);
            }
        }
        assert_eq!(whole, blob);
        for (start, end) in [
            (0, 10),
            (16_380, 16_390),
            (1_000_000, 1_300_000),
            (5, 1 << 20),
        ] {
            let got = blobs.read_checked(upload.hash, start, end).await.unwrap();
            assert_eq!(got, &blob[start as usize..end as usize], "{start}..{end}");
        }
        blobs.shutdown().await;
    }
}
