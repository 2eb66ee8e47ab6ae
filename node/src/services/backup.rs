//! Online backups: one at a time per node, written on a blocking thread
//! and streamed to the HTTP response through a bounded channel. What a
//! backup holds, its format and restoring it: [`crate::archive`].

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use spaces_store::Store;

use crate::archive::{self, Info};

/// One backup at a time per node: a snapshot holds the store's small trees
/// in memory while it streams. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Backups {
    data_dir: PathBuf,
    store: Store,
    node_id: String,
    running: Arc<tokio::sync::Semaphore>,
}

/// Why a backup could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup of this node is already running")]
    Busy,
    #[error("taking a snapshot of the store")]
    Store(#[from] spaces_store::Error),
    #[error("the backup thread stopped before its snapshot")]
    Stopped,
}

/// A backup being streamed: its first bytes are ready, the rest comes
/// through `chunks` as it is written; an error ends the stream early (and
/// the archive then lacks its end frame, so a restore refuses it).
#[derive(Debug)]
pub struct Stream {
    pub info: Info,
    /// Upper estimate of the archive's size, for progress bars.
    pub size_estimate: u64,
    pub chunks: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
}

/// Chunks in flight between the writing thread and the HTTP response: 16 of
/// 64 KiB, so a slow client slows the backup instead of filling memory.
const STREAM_CHUNKS: usize = 16;
const STREAM_CHUNK_BYTES: usize = 64 * 1024;

impl Backups {
    pub fn new(data_dir: PathBuf, store: Store, node_id: String) -> Backups {
        Backups {
            data_dir,
            store,
            node_id,
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Starts a backup on a thread of the blocking pool and streams it.
    pub async fn start(&self) -> Result<Stream, BackupError> {
        let permit = self
            .running
            .clone()
            .try_acquire_owned()
            .map_err(|_| BackupError::Busy)?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHUNKS);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let snapshot = match this.store.snapshot() {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let info = this.info(snapshot.last_seq());
            let estimate = snapshot.size_estimate() + archive::files_size(&this.data_dir);
            let _ = ready_tx.send(Ok((info.clone(), estimate)));
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(STREAM_CHUNK_BYTES),
            };
            let result =
                archive::write_archive(&this.data_dir, &info, snapshot, &mut out, &mut |_| {})
                    .and_then(|()| out.flush().context("sending the backup"));
            if let Err(e) = result {
                tracing::warn!(error = %format!("{e:#}"), "backup failed");
                let _ = tx.blocking_send(Err(io::Error::other("backup failed")));
            }
        });
        match ready_rx.await {
            Ok(Ok((info, size_estimate))) => Ok(Stream {
                info,
                size_estimate,
                chunks: rx,
            }),
            Ok(Err(e)) => Err(BackupError::Store(e)),
            // The thread panicked before the snapshot.
            Err(_) => Err(BackupError::Stopped),
        }
    }

    fn info(&self, last_seq: u64) -> Info {
        Info {
            format: archive::FORMAT,
            node_id: self.node_id.clone(),
            last_seq,
            created_at_ms: crate::engine::now_ms(),
            binary: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Hands the archive's bytes to the HTTP response in chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    /// Takes at most what fills the current chunk (`write_all` calls
    /// again for the rest), so no chunk exceeds [`STREAM_CHUNK_BYTES`] and
    /// the channel holds at most [`STREAM_CHUNKS`] of them, however large
    /// the writes: a 50 MiB media file is not one 50 MiB chunk.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len().min(STREAM_CHUNK_BYTES - self.buf.len());
        self.buf.extend_from_slice(&bytes[..taken]);
        if self.buf.len() >= STREAM_CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

impl ChannelWriter {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK_BYTES));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One backup at a time: a second is refused while the first streams;
    /// a client that goes away ends its backup and frees the slot.
    #[tokio::test]
    async fn one_backup_at_a_time_and_a_dropped_client_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        // Larger than the channel holds (16 × 64 KiB): the first backup
        // blocks on its unread stream.
        std::fs::write(dir.path().join("big"), vec![7u8; 4 * 1024 * 1024]).unwrap();
        let store = Store::open(&dir.path().join("store"), &Default::default()).unwrap();
        let backups = Backups::new(dir.path().to_owned(), store, "~node".into());
        let first = backups.start().await.unwrap();
        assert!(matches!(backups.start().await, Err(BackupError::Busy)));
        drop(first);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut second = loop {
            match backups.start().await {
                Ok(stream) => break stream,
                Err(BackupError::Busy) if tokio::time::Instant::now() < deadline => {
                    // Waiting on the first backup's thread to see the closed channel.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let mut n_bytes = 0;
        while let Some(chunk) = second.chunks.recv().await {
            n_bytes += chunk.unwrap().len();
        }
        assert!(n_bytes > 4 * 1024 * 1024, "the whole archive streamed");
    }
}
