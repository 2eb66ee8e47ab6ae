use crate::query::QueryError;

/// Why the search crate failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's query is not one we run: a client error.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The index could not be read or written: a server error (the cause is
    /// logged by the caller, never shown to a client).
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
}
