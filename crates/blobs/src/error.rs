//! What can go wrong with a blob, split by how a caller answers it.

/// An upload or read refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The file is larger than `Options::max_file_bytes`.
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The upload would take the owner past `Options::quota_bytes`.
    #[error("the upload would exceed the quota of {quota} bytes")]
    QuotaExceeded { quota: u64 },
    /// The bytes are of a recognised type that is not on the allow-list.
    #[error("files of type {mime} are not accepted")]
    Unsupported { mime: String },
    /// An image whose pixel count is over `Options::max_image_pixels`.
    #[error("the image is {width}x{height} pixels, more than {limit} in all")]
    ImageTooLarge { width: u32, height: u32, limit: u64 },
    /// Bytes that claim to be an image and do not decode as one.
    #[error("the image cannot be read: {0}")]
    BadImage(String),
    /// The client's body ended with an error (a reset, a timeout).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// Bytes fetched from another node that are not the blob asked for:
    /// another hash, or another size than its holder declared. Nothing of
    /// them is stored.
    #[error("the bytes received are not the blob asked for: {0}")]
    Mismatch(String),
    /// The store or the file system failed: a 500, its cause logged.
    #[error("blob store: {0}")]
    Store(String),
}

impl BlobError {
    pub(crate) fn store(e: impl std::fmt::Display) -> BlobError {
        BlobError::Store(e.to_string())
    }
}
