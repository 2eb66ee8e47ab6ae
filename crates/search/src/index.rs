//! Opening the index, and the reader side every search goes through.
//!
//! The index lives in one directory (the node puts it at `<data>/search/`).
//! Its last commit's payload says which schema wrote it and the last stream
//! seq whose effects it holds (`v1 seq=N`); the writer advances that seq only
//! inside a commit, so after a crash the index is exactly what it was at its
//! last commit, and replaying the stream after its seq brings it up to date.
//! An index that does not open, or was written under another schema, is
//! wiped and starts over at seq 0: it can always be rebuilt from the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::Error;
use crate::schema::{self, Fields, SCHEMA_VERSION};
use crate::tokenizer::{ANALYZER, analyzer};
use crate::writer::Writer;

/// How the index is opened and written.
#[derive(Clone, Debug)]
pub struct Options {
    pub dir: PathBuf,
    /// Commit once this many changes are pending, even before
    /// `commit_interval`: bounds the work a crash redoes (the store replays
    /// it) and the size of a fresh segment. Large, so that under load the
    /// timer, not the count, paces commits: each commit builds a segment's
    /// term dictionary and feeds merges, and at 1000 a busy room's ten
    /// commits a second cost the send path as much as the sends themselves.
    pub commit_docs: usize,
    /// Commit at most this long after the first pending change: a message
    /// is searchable within about this, plus the reader's reload. 500 ms
    /// keeps "searchable within a second" with at most two commits a second
    /// under a steady trickle (per-message commits would make thousands of
    /// tiny segments: tantivy #2932).
    pub commit_interval: Duration,
    /// The writer's indexing memory. tantivy needs at least 15 MB per
    /// indexing thread; one thread with 32 MB flushes a segment every few
    /// tens of thousands of messages.
    pub writer_memory: usize,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            commit_docs: 20_000,
            commit_interval: Duration::from_millis(500),
            writer_memory: 32 << 20,
        }
    }
}

/// The read side: cheap to clone, shared by every search.
#[derive(Clone)]
pub struct SearchIndex {
    pub(crate) index: Index,
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) options: Arc<Options>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.options.dir)
            .finish_non_exhaustive()
    }
}

/// The payload of a commit: schema version and last stream seq held.
pub(crate) fn payload(seq: u64) -> String {
    format!("v{SCHEMA_VERSION} seq={seq}")
}

/// The seq of a commit written by this schema; `None` for any other payload.
fn parse_payload(payload: &str) -> Option<u64> {
    let rest = payload.strip_prefix(&format!("v{SCHEMA_VERSION} seq="))?;
    rest.parse().ok()
}

impl SearchIndex {
    /// Opens (or creates) the index in `options.dir`, with its writer and the
    /// last stream seq it holds: the caller replays the stream after it.
    pub fn open(options: Options) -> Result<(SearchIndex, Writer, u64), Error> {
        match Self::try_open(&options) {
            Ok(Some(opened)) => return Ok(opened),
            Ok(None) => tracing::warn!(
                dir = %options.dir.display(),
                "search index was written by another schema version; rebuilding it from the store"
            ),
            Err(error) => tracing::warn!(
                dir = %options.dir.display(),
                %error,
                "search index does not open; rebuilding it from the store"
            ),
        }
        wipe(&options.dir)?;
        Self::try_open(&options)?.ok_or_else(|| {
            Error::Index(tantivy::TantivyError::InternalError(
                "a fresh index has no payload".into(),
            ))
        })
    }

    fn try_open(options: &Options) -> Result<Option<(SearchIndex, Writer, u64)>, Error> {
        std::fs::create_dir_all(&options.dir)?;
        let (schema, fields) = schema::build();
        let directory = MmapDirectory::open(&options.dir).map_err(tantivy::TantivyError::from)?;
        let fresh = !Index::exists(&directory).map_err(tantivy::TantivyError::from)?;
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(ANALYZER, analyzer());
        let seq = if fresh {
            0
        } else {
            let metas = index.load_metas()?;
            match metas.payload.as_deref().map(parse_payload) {
                Some(Some(seq)) => seq,
                // Created but never committed: nothing held yet.
                None if metas.opstamp == 0 => 0,
                _ => return Ok(None),
            }
        };
        // Reloaded by the writer after each commit, not by a file watcher.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let search = SearchIndex {
            index,
            reader,
            fields,
            options: Arc::new(options.clone()),
        };
        let writer = Writer::new(&search, seq)?;
        Ok(Some((search, writer, seq)))
    }

    /// Messages in the index (a statistic for operators and tests).
    pub fn n_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn dir(&self) -> &Path {
        &self.options.dir
    }
}

/// Removes the index's files (only those: the directory is ours alone, but a
/// stray file of an operator's is no reason to fail).
fn wipe(dir: &Path) -> Result<(), Error> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_other_versions() {
        assert_eq!(parse_payload(&payload(42)), Some(42));
        assert_eq!(parse_payload("v0 seq=42"), None);
        assert_eq!(parse_payload("v1 seq=x"), None);
    }
}
