//! The one writer: group commit of events to the store.
//!
//! Senders hand a batch of events to a bounded queue and await a reply. One
//! OS thread takes everything queued (up to [`MAX_BATCH_EVENTS`]), writes it
//! with one store call — one atomic sled transaction and one fsync — and
//! only then replies and publishes the events to the node's live stream. So
//! durability costs one flush per batch, not per message, and nothing is
//! acknowledged or shown before it is on disk. Order is queue order, which
//! the engine makes parent-before-child by enqueueing under the room lock.
//!
//! After a crash, what was flushed is there and what was not was never
//! acknowledged. If a write fails, the writer stops accepting work: a node
//! that cannot write must not pretend to (fail-stop), and every later send
//! gets an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use spaces_protocol::{Event, RoomId};
use spaces_store::{NewEvent, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::metrics::Metrics;

/// Upper bound on events per commit. Large enough that one fsync covers a
/// burst from hundreds of senders; small enough that one batch's encoding
/// and index work stays in the low milliseconds.
pub const MAX_BATCH_EVENTS: usize = 2048;
/// Queued requests before senders wait: backpressure instead of memory growth.
pub const QUEUE_REQUESTS: usize = 4096;

/// One event delivered on the node-wide stream.
#[derive(Clone, Debug)]
pub struct StreamItem {
    pub seq: u64,
    pub room_id: RoomId,
    pub event: Event,
    /// The item as the API sends it, rendered by the first subscriber that
    /// needs it and shared by the rest: one rendering per event, not one per
    /// connected client.
    pub rendered: std::sync::OnceLock<String>,
}

impl StreamItem {
    pub fn new(seq: u64, event: Event) -> StreamItem {
        StreamItem {
            seq,
            room_id: event.room_id(),
            event,
            rendered: std::sync::OnceLock::new(),
        }
    }
}

pub struct WriteRequest {
    pub events: Vec<Event>,
    /// Per event: its new seq, or `None` if it was already stored.
    pub done: oneshot::Sender<Result<Vec<Option<u64>>, WriteFailed>>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("the store refused a write; the node is read-only until restarted")]
pub struct WriteFailed;

#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<WriteRequest>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    pub fn spawn(
        store: Store,
        stream: broadcast::Sender<Arc<StreamItem>>,
        metrics: Arc<Metrics>,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE_REQUESTS);
        let failed = Arc::new(AtomicBool::new(false));
        let thread_failed = failed.clone();
        let handle = std::thread::Builder::new()
            .name("spaces-writer".into())
            .spawn(move || run(store, rx, stream, metrics, thread_failed))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { queue, failed }, handle)
    }

    /// Queues events; resolves once they are durable.
    pub async fn enqueue(
        &self,
        events: Vec<Event>,
    ) -> Result<oneshot::Receiver<Result<Vec<Option<u64>>, WriteFailed>>, WriteFailed> {
        if self.failed.load(Ordering::Acquire) {
            return Err(WriteFailed);
        }
        let (done, rx) = oneshot::channel();
        self.queue
            .send(WriteRequest { events, done })
            .await
            .map_err(|_| WriteFailed)?;
        Ok(rx)
    }

    pub fn queue_depth(&self) -> usize {
        QUEUE_REQUESTS - self.queue.capacity()
    }
}

fn run(
    store: Store,
    mut rx: mpsc::Receiver<WriteRequest>,
    stream: broadcast::Sender<Arc<StreamItem>>,
    metrics: Arc<Metrics>,
    failed: Arc<AtomicBool>,
) {
    let _span = tracing::info_span!("writer").entered();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        let mut n_events = batch[0].events.len();
        while n_events < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(request) => {
                    n_events += request.events.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        let new_events: Vec<NewEvent> = batch
            .iter()
            .flat_map(|r| &r.events)
            .map(|e| NewEvent {
                room_id: e.room_id().0,
                event_id: e.id().0,
                bytes: e.bytes().to_vec(),
            })
            .collect();
        match store.append_events(&new_events) {
            Ok(seqs) => {
                metrics
                    .events_stored
                    .add(seqs.iter().flatten().count() as u64);
                metrics.commits.add(1);
                let mut seqs = seqs.into_iter();
                for request in batch {
                    let mine: Vec<Option<u64>> = seqs.by_ref().take(request.events.len()).collect();
                    for (event, seq) in request.events.iter().zip(&mine) {
                        if let Some(seq) = seq {
                            // No receivers is fine: nobody is listening.
                            let _ = stream.send(Arc::new(StreamItem::new(*seq, event.clone())));
                        }
                    }
                    let _ = request.done.send(Ok(mine));
                }
            }
            Err(error) => {
                tracing::error!(%error, n_events, "store write failed; refusing further writes");
                failed.store(true, Ordering::Release);
                for request in batch {
                    let _ = request.done.send(Err(WriteFailed));
                }
                rx.close();
            }
        }
    }
}
