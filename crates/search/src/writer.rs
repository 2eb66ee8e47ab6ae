//! The one writer: changes batched into commits that carry the stream seq.
//!
//! Whoever owns the [`Writer`] (the node's indexing task) applies the
//! effects of stream events in order with [`Writer::put`] and
//! [`Writer::remove`], marks the seq they came from with
//! [`Writer::applied`], and commits when [`Writer::due`] says so. Every
//! change is keyed by event id (delete, then add), so replaying events
//! after a crash leaves each message once.

use std::time::Instant;

use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::TantivyDocument;
use tantivy::{IndexWriter, Term};

use crate::Error;
use crate::index::{SearchIndex, payload};
use crate::schema::{Doc, Fields};

pub struct Writer {
    writer: IndexWriter<TantivyDocument>,
    search: SearchIndex,
    fields: Fields,
    /// Changes since the last commit.
    pending: usize,
    /// Since when something (a change, or only a newer seq) waits for a commit.
    dirty_since: Option<Instant>,
    applied_seq: u64,
    committed_seq: u64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pending", &self.pending)
            .field("applied_seq", &self.applied_seq)
            .field("committed_seq", &self.committed_seq)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(search: &SearchIndex, seq: u64) -> Result<Writer, Error> {
        // One indexing thread and one merge thread (tantivy's default is
        // four): the node has few cores and the send path comes first.
        let options = IndexWriterOptions::builder()
            .num_worker_threads(1)
            .num_merge_threads(1)
            .memory_budget_per_thread(search.options.writer_memory)
            .build();
        let writer = search.index.writer_with_options(options)?;
        Ok(Writer {
            writer,
            search: search.clone(),
            fields: search.fields,
            pending: 0,
            dirty_since: None,
            applied_seq: seq,
            committed_seq: seq,
        })
    }

    fn touch(&mut self) {
        self.dirty_since.get_or_insert_with(Instant::now);
    }

    /// Indexes `doc`, replacing any earlier version of the same message.
    pub fn put(&mut self, doc: Doc) -> Result<(), Error> {
        let f = self.fields;
        self.writer
            .delete_term(Term::from_field_text(f.event_id, &doc.event_id));
        let mut document = TantivyDocument::new();
        document.add_text(f.event_id, &doc.event_id);
        document.add_text(f.room_id, &doc.room_id);
        document.add_text(f.sender, &doc.sender);
        document.add_u64(f.origin_ts, doc.origin_ts);
        document.add_u64(f.seq, doc.seq);
        for has in &doc.has {
            document.add_text(f.has, has.as_str());
        }
        for user in &doc.mentions {
            document.add_text(f.mentions, user);
        }
        document.add_text(f.body, &doc.body);
        self.writer.add_document(document)?;
        self.pending += 1;
        self.touch();
        Ok(())
    }

    /// Takes a message out of the index (redacted, refused, or no longer a message).
    pub fn remove(&mut self, event_id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.event_id, event_id));
        self.pending += 1;
        self.touch();
    }

    /// Every stream event up to `seq` has had its effect: the next commit
    /// records it, and a restart resumes after it.
    pub fn applied(&mut self, seq: u64) {
        if seq > self.applied_seq {
            self.applied_seq = seq;
            self.touch();
        }
    }

    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// When the next commit is due; `None` when nothing waits.
    pub fn deadline(&self) -> Option<Instant> {
        let since = self.dirty_since?;
        if self.pending >= self.search.options.commit_docs {
            return Some(since);
        }
        Some(since + self.search.options.commit_interval)
    }

    /// Whether a commit is due now.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| deadline <= now)
    }

    /// Makes every change so far durable and searchable, with the applied
    /// seq in the commit's payload. Blocking (an fsync): not on an async
    /// thread.
    pub fn commit(&mut self) -> Result<(), Error> {
        if self.dirty_since.is_none() {
            return Ok(());
        }
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload(self.applied_seq));
        prepared.commit()?;
        self.search.reader.reload()?;
        self.committed_seq = self.applied_seq;
        self.pending = 0;
        self.dirty_since = None;
        Ok(())
    }

    /// Waits for the merges under way to end, and closes the writer
    /// (benchmarks: the index's size once it has settled).
    pub fn wait_for_merges(self) -> Result<(), Error> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}
