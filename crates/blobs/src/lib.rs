//! Spaces media: files and images in a content-addressed store.
//!
//! [`Blobs`] is the handle: an iroh-blobs file store (BLAKE3, verified
//! streaming) under `<data>/blobs`, our tags on top of it (who uploaded
//! what, which event references what, each blob's metadata and thumbnails),
//! and the garbage collection that ends a blob once no tag holds it.
//! [`sniff`] decides what a file is from its bytes and what its name may be;
//! [`picture`] reads an image's size without decoding it, strips its
//! metadata and makes its thumbnails, bounded in pixels.
//!
//! What this crate does not know: users, rooms, events, HTTP. Owners and
//! references are opaque strings the node chooses; the node decides who may
//! read a blob from the references this crate lists.

pub mod bao;
mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod keys;
pub mod picture;
pub mod sniff;
mod store;

pub use error::BlobError;
pub use iroh_blobs::Hash;
pub use store::{Blobs, Chunks, Meta, Options, Reference, Stats, Thumb, Upload};
