//! The one writer: group commit of events to the store.
//!
//! Senders hand a batch of events to a bounded queue and await a reply. One
//! OS thread takes everything queued (up to [`MAX_BATCH_EVENTS`]), writes it
//! with one store call — one atomic sled batch and one fsync — and
//! only then replies and publishes the events to the node's live stream. So
//! durability costs one flush per batch, not per message, and nothing is
//! acknowledged or shown before it is on disk. While senders keep it busy
//! (its last commit held more than one request, and it has not sat idle
//! since for [`QUIET`]), the writer waits up to
//! [`GATHER`] for a commit to gather [`GATHER_EVENTS`], stopping early once
//! requests stop coming ([`GATHER_GAP`]) — PostgreSQL's `commit_delay` idea: a flush costs about the same for 10 events as for
//! 30, so under load fewer, larger commits cost less per message; a lone
//! send never waits. Order is queue order, which
//! the engine makes parent-before-child by enqueueing under the room lock.
//!
//! After a crash, what was flushed is there and what was not was never
//! acknowledged. If a write fails, the writer stops accepting work: a node
//! that cannot write must not pretend to (fail-stop), and every later send
//! gets an error.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use spaces_protocol::{Event, EventId, RoomId};
use spaces_store::{NewEvent, Store};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::Arrivals;
use crate::metrics::Metrics;

/// Upper bound on events per commit. Large enough that one fsync covers a
/// burst from hundreds of senders; small enough that one batch's encoding
/// and index work stays in the low milliseconds.
pub const MAX_BATCH_EVENTS: usize = 2048;
/// While senders keep the writer busy, it waits up to this long for a
/// commit to gather [`GATHER_EVENTS`]: one flush then covers more. In the
/// load benchmark (100 senders, runs of two builds alternated) 300 µs / 32
/// events gave ~17 messages per commit and a median of 17.1k acked msg/s;
/// 1 ms / 64 gave ~36 and 19.5k; 2 ms / 128 no better again.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
const GATHER_EVENTS: usize = 64;
/// Gathering also stops once no request has come for this long: under a
/// moderate load waiting longer would only add latency.
const GATHER_GAP: std::time::Duration = std::time::Duration::from_micros(300);
/// Idle this long, the writer no longer counts as busy.
const QUIET: std::time::Duration = std::time::Duration::from_millis(2);
/// Queued requests before senders wait: backpressure instead of memory growth.
pub const QUEUE_REQUESTS: usize = 4096;

/// A new event for the store, with what inserting it did to its room.
#[derive(Clone, Debug)]
pub struct Fresh {
    pub event: Event,
    /// Whether resolution accepted it (a refused event is stored, since
    /// others may build on it, but is in neither state nor timeline).
    pub accepted: bool,
    /// Earlier events whose acceptance it changed, with their new value: a
    /// ban merged late refuses the messages it raced (and a refused ban
    /// gives them back). Stored with it, for clients that resume later.
    pub flips: Vec<(EventId, bool)>,
}

/// One event delivered on the node-wide stream.
#[derive(Clone, Debug)]
pub struct StreamItem {
    pub seq: u64,
    pub room_id: RoomId,
    pub event: Event,
    /// Resolution's verdict when it was stored. Clients are never shown a
    /// refused event.
    pub accepted: bool,
    /// What it changed about earlier events ([`Fresh::flips`]).
    pub flips: Vec<(EventId, bool)>,
    /// The item as the API sends it, rendered by the first subscriber that
    /// needs it and shared by the rest: one rendering per event, not one per
    /// connected client.
    pub rendered: std::sync::OnceLock<String>,
}

impl StreamItem {
    pub fn new(seq: u64, fresh: Fresh) -> StreamItem {
        StreamItem {
            seq,
            room_id: fresh.event.room_id(),
            event: fresh.event,
            accepted: fresh.accepted,
            flips: fresh.flips,
            rendered: std::sync::OnceLock::new(),
        }
    }

    /// An event read back from the store (a WebSocket's backlog), where
    /// acceptance is not recorded: whoever delivers it asks the room
    /// ([`super::Engine::backlog_filter`]).
    pub fn from_store(seq: u64, event: Event) -> StreamItem {
        StreamItem::new(
            seq,
            Fresh {
                event,
                accepted: true,
                flips: Vec::new(),
            },
        )
    }
}

/// The reply to a write: the seqs the events got, once durable.
pub type Done = oneshot::Receiver<Result<Range<u64>, WriteFailed>>;

pub struct WriteRequest {
    pub events: Vec<Fresh>,
    /// The seqs the events were stored with, in order. Every event is new:
    /// the engine queues only what its room replica took as new, and the
    /// replica holds every stored event of its room.
    pub done: oneshot::Sender<Result<Range<u64>, WriteFailed>>,
    /// The room's arrivals, given the seqs before anyone hears of them,
    /// with each event's index in the room's replica.
    pub arrivals: Option<(Arc<std::sync::Mutex<Arrivals>>, Vec<u32>)>,
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
            .spawn(move || {
                run(
                    |events| store.append_events(events),
                    rx,
                    stream,
                    metrics,
                    thread_failed,
                )
            })
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { queue, failed }, handle)
    }

    /// Queues without waiting; a full queue hands the request back (with
    /// its reply) for the caller to wait with.
    pub fn try_enqueue(
        &self,
        events: Vec<Fresh>,
        arrivals: Option<(Arc<std::sync::Mutex<Arrivals>>, Vec<u32>)>,
    ) -> Result<Result<Done, (WriteRequest, Done)>, WriteFailed> {
        if self.failed.load(Ordering::Acquire) {
            return Err(WriteFailed);
        }
        let (done, rx) = oneshot::channel();
        let request = WriteRequest {
            events,
            done,
            arrivals,
        };
        match self.queue.try_send(request) {
            Ok(()) => Ok(Ok(rx)),
            Err(mpsc::error::TrySendError::Full(request)) => Ok(Err((request, rx))),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WriteFailed),
        }
    }

    /// Queues a request handed back by [`Writer::try_enqueue`], waiting
    /// for room.
    pub async fn enqueue_waiting(&self, request: WriteRequest) -> Result<(), WriteFailed> {
        self.queue.send(request).await.map_err(|_| WriteFailed)
    }

    pub fn queue_depth(&self) -> usize {
        QUEUE_REQUESTS - self.queue.capacity()
    }
}

/// The writer loop. `append` is the store's `append_events`; a parameter so
/// the fail-stop path can be tested with a store that fails.
fn run(
    mut append: impl FnMut(&[NewEvent]) -> Result<Range<u64>, spaces_store::Error>,
    mut rx: mpsc::Receiver<WriteRequest>,
    stream: broadcast::Sender<Arc<StreamItem>>,
    metrics: Arc<Metrics>,
    failed: Arc<AtomicBool>,
) {
    let _span = tracing::info_span!("writer").entered();
    let mut busy = false;
    loop {
        // Senders busy a moment ago still are unless the writer then sat
        // idle for a while: after a quiet spell a lone send does not wait.
        let idle_since = std::time::Instant::now();
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        if idle_since.elapsed() > QUIET {
            busy = false;
        }
        let mut batch = vec![first];
        let mut n_events = batch[0].events.len();
        let gather_until = std::time::Instant::now() + GATHER;
        let mut last_arrival = std::time::Instant::now();
        while n_events < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(request) => {
                    n_events += request.events.len();
                    batch.push(request);
                    last_arrival = std::time::Instant::now();
                }
                Err(TryRecvError::Empty)
                    if busy
                        && n_events < GATHER_EVENTS
                        && std::time::Instant::now() < gather_until
                        && last_arrival.elapsed() < GATHER_GAP =>
                {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                Err(_) => break,
            }
        }
        busy = batch.len() > 1;
        let flips: Vec<Vec<([u8; 32], bool)>> = batch
            .iter()
            .flat_map(|r| &r.events)
            .map(|f| f.flips.iter().map(|(id, now)| (id.0, *now)).collect())
            .collect();
        let new_events: Vec<NewEvent> = batch
            .iter()
            .flat_map(|r| &r.events)
            .zip(&flips)
            .map(|(f, flips)| NewEvent {
                room_id: f.event.room_id().0,
                event_id: f.event.id().0,
                bytes: f.event.bytes(),
                flips,
            })
            .collect();
        let committing = std::time::Instant::now();
        match append(&new_events) {
            Ok(seqs) => {
                metrics.commit_seconds.observe(committing.elapsed());
                drop(new_events);
                drop(flips);
                metrics.events_stored.add(seqs.end - seqs.start);
                metrics.commits.add(1);
                let mut next_seq = seqs.start;
                for WriteRequest {
                    events,
                    done,
                    arrivals,
                } in batch
                {
                    let mine = next_seq..next_seq + events.len() as u64;
                    next_seq = mine.end;
                    // Before the sender or any client hears of them, so a
                    // read marker on a delivered event always finds it.
                    if let Some((arrivals, indexes)) = &arrivals {
                        let mut arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
                        for ((fresh, seq), index) in events.iter().zip(mine.clone()).zip(indexes) {
                            arrivals.stored(&fresh.event, *index, seq);
                        }
                    }
                    for (fresh, seq) in events.into_iter().zip(mine.clone()) {
                        // No receivers is fine: nobody is listening.
                        let _ = stream.send(Arc::new(StreamItem::new(seq, fresh)));
                    }
                    let _ = done.send(Ok(mine));
                }
            }
            Err(error) => {
                tracing::error!(%error, n_events, "store write failed; refusing further writes");
                failed.store(true, Ordering::Release);
                for request in batch {
                    let _ = request.done.send(Err(WriteFailed));
                }
                // What is still queued may descend from what just failed:
                // stored without its parents, it would be acknowledged and
                // then skipped at the next start. Fail it all, write nothing.
                rx.close();
                while let Some(request) = rx.blocking_recv() {
                    let _ = request.done.send(Err(WriteFailed));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces_protocol::content::{HistoryVisibility, JoinRule, RoomKind};
    use spaces_protocol::{EventBody, NodeKey};

    fn events(key: &NodeKey, n: usize, first: u64) -> Vec<Fresh> {
        (first..first + n as u64)
            .map(|i| {
                let mut nonce = [0u8; 16];
                nonce[..8].copy_from_slice(&i.to_be_bytes());
                EventBody::create(
                    key.node_id(),
                    "owner",
                    i,
                    RoomKind::Room,
                    JoinRule::Public,
                    HistoryVisibility::Shared,
                    nonce,
                )
                .sign(key)
                .unwrap()
            })
            .map(|event| Fresh {
                event,
                accepted: true,
                flips: Vec::new(),
            })
            .collect()
    }

    /// Fail-stop: once a commit fails, nothing queued behind it is written
    /// (it may descend from what failed), and every waiting sender is told.
    #[test]
    fn after_a_failed_commit_nothing_queued_is_written() {
        let key = NodeKey::from_seed([5; 32]);
        let (queue, rx) = mpsc::channel(8);
        let (done_1, mut reply_1) = oneshot::channel();
        let (done_2, mut reply_2) = oneshot::channel();
        // The first request fills a whole batch, so the second waits in the queue.
        let full = events(&key, MAX_BATCH_EVENTS, 0);
        queue
            .try_send(WriteRequest {
                arrivals: None,
                events: full,
                done: done_1,
            })
            .unwrap();
        queue
            .try_send(WriteRequest {
                arrivals: None,
                events: events(&key, 1, 1_000_000),
                done: done_2,
            })
            .unwrap();
        drop(queue);
        let (stream, mut live) = broadcast::channel(4);
        let failed = Arc::new(AtomicBool::new(false));
        let mut calls = 0;
        run(
            |batch| {
                calls += 1;
                assert_eq!(
                    batch.len(),
                    MAX_BATCH_EVENTS,
                    "only the first batch is tried"
                );
                Err(spaces_store::Error::NotFound)
            },
            rx,
            stream,
            Arc::new(Metrics::default()),
            failed.clone(),
        );
        assert_eq!(calls, 1);
        assert!(failed.load(Ordering::Acquire));
        assert!(matches!(reply_1.try_recv(), Ok(Err(WriteFailed))));
        assert!(matches!(reply_2.try_recv(), Ok(Err(WriteFailed))));
        assert!(live.try_recv().is_err(), "nothing was published");
    }

    /// And on success, every request hears its seqs and the stream carries
    /// each event once, in order.
    #[test]
    fn a_commit_replies_and_publishes_in_order() {
        let key = NodeKey::from_seed([6; 32]);
        let (queue, rx) = mpsc::channel(8);
        let (done, mut reply) = oneshot::channel();
        let batch = events(&key, 3, 0);
        let ids: Vec<_> = batch.iter().map(|f| f.event.id()).collect();
        queue
            .try_send(WriteRequest {
                arrivals: None,
                events: batch,
                done,
            })
            .unwrap();
        drop(queue);
        let (stream, mut live) = broadcast::channel(8);
        run(
            |batch| Ok(1..batch.len() as u64 + 1),
            rx,
            stream,
            Arc::new(Metrics::default()),
            Arc::new(AtomicBool::new(false)),
        );
        assert!(matches!(reply.try_recv(), Ok(Ok(seqs)) if seqs == (1..4)));
        let published: Vec<_> = (0..3)
            .map(|_| live.try_recv().unwrap())
            .map(|item| (item.seq, item.event.id()))
            .collect();
        assert_eq!(published, vec![(1, ids[0]), (2, ids[1]), (3, ids[2])]);
    }
}
