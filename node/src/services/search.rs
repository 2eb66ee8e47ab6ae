//! Search: the node's seam to `spaces-search`.
//!
//! One task ([`run_indexer`]) owns the index's writer. It subscribes to the
//! engine's live stream, then catches up from the store after the seq the
//! index's last commit holds, then follows the stream: local and received
//! events alike, after they are durable. For every event it works out which
//! message it touches (a message itself, an edit's or a redaction's target,
//! each event whose acceptance it flipped) and asks the room what that
//! message reads like now ([`Engine::messages_now`]): shown, with its
//! latest edit, or hidden. Shown messages are (re)indexed with their text
//! read from the stream item or the store (never the replica), hidden ones
//! removed; every change is keyed by event id, so replaying after a crash
//! leaves each message once. Tantivy work (adding, committing) runs on the
//! index's own thread, at a lower CPU priority than the node's
//! ([`INDEX_NICE`]); commits are batched by count and time
//! ([`spaces_search::Options`]) and carry the last seq applied.
//!
//! After a crash the index is what its last commit held; the task replays
//! the store's stream after that seq at the next start. A lagging
//! subscription is the same: catch up from the store after the last seq
//! applied. The index can always be rebuilt from the store: delete
//! `<data>/search/` and restart.
//!
//! Queries ([`Search::search`]) run on the blocking pool, at most
//! [`MAX_CONCURRENT_SEARCHES`] at a time, within the rooms the user is
//! joined to or invited to (or the one room asked for); every hit then
//! passes [`Engine::readable_events`], the room API's own readability.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spaces_protocol::content::Content;
use spaces_protocol::{Event, EventId, RoomId, UserId};
use spaces_search::{Doc, Has, Order, Request, SearchIndex, Writer};
use spaces_store::Store;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, watch};

use crate::engine::{Engine, EngineError, MessageNow, StreamItem};

/// Searches running at once; more wait for a slot. Each holds a blocking
/// thread for a few milliseconds.
pub const MAX_CONCURRENT_SEARCHES: usize = 4;
/// How long a search may wait for a slot and run before it is given up.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Index candidates looked at per page at most: hits the caller may not
/// read are skipped, but not without end.
const MAX_SCANNED: usize = 500;
/// Stream events applied in one batch (one round of room locks and one
/// blocking call): large enough to keep up with a busy writer, small
/// enough that a batch takes milliseconds.
const BATCH_EVENTS: usize = 512;

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is not one we run; a client error.
    #[error(transparent)]
    Query(#[from] spaces_search::QueryError),
    /// The room asked for is not one the user may read.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Search is turned off in this node's configuration.
    #[error("search is turned off on this node")]
    Off,
    /// Too many searches waiting, or this one ran too long.
    #[error("search is busy; try again")]
    Busy,
    /// The index failed: logged, a 500 for the client.
    #[error("search index: {0}")]
    Index(spaces_search::Error),
}

impl From<spaces_search::Error> for SearchError {
    fn from(error: spaces_search::Error) -> SearchError {
        match error {
            spaces_search::Error::Query(query) => SearchError::Query(query),
            other => SearchError::Index(other),
        }
    }
}

/// A search as the API asks it.
#[derive(Debug, Default)]
pub struct Query {
    pub text: String,
    pub room: Option<RoomId>,
    pub sender: Option<UserId>,
    pub after_ms: Option<u64>,
    pub before_ms: Option<u64>,
    pub has: Vec<Has>,
    pub order: Order,
    pub limit: usize,
    /// Index candidates already looked at (from the previous page's cursor).
    pub offset: usize,
}

/// One page of hits the user may read.
#[derive(Debug)]
pub struct Found {
    pub hits: Vec<spaces_search::Hit>,
    /// Where the next page starts, if there may be one.
    pub next_offset: Option<usize>,
    /// Matching messages in the searched rooms, scaled by the share of the
    /// candidates looked at that the user may read.
    pub estimated_total: usize,
}

/// The search service: cheap to clone. `None` inside when search is off.
#[derive(Clone, Debug)]
pub struct Search {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    index: SearchIndex,
    engine: Engine,
    slots: Semaphore,
}

impl Search {
    /// Search turned off: every query answers [`SearchError::Off`].
    pub fn off() -> Search {
        Search { inner: None }
    }

    /// Opens the index in `options.dir` (rebuilding one that does not open)
    /// on the index's own thread ([`IndexThread`]) and starts its indexer,
    /// which stops when `stopped` turns true.
    pub async fn start(
        engine: Engine,
        options: spaces_search::Options,
        stopped: watch::Receiver<bool>,
    ) -> anyhow::Result<(Search, tokio::task::JoinHandle<()>)> {
        let thread = IndexThread::spawn()?;
        let (index, writer, seq) = thread.run(move || SearchIndex::open(options)).await??;
        tracing::info!(seq, n_docs = index.n_docs(), "search index open");
        let writer = IndexWriter {
            thread,
            writer: Arc::new(Mutex::new(writer)),
        };
        let task = tokio::spawn(run_indexer(engine.clone(), writer, stopped));
        let search = Search {
            inner: Some(Arc::new(Inner {
                index,
                engine,
                slots: Semaphore::new(MAX_CONCURRENT_SEARCHES),
            })),
        };
        Ok((search, task))
    }

    /// Builds the index in `options.dir` afresh from the store, for a node
    /// that is not running (`spaces admin reindex`): wipes what is there,
    /// applies the whole stream as the live indexer would, commits, and
    /// answers the messages indexed. `progress` hears the stream seq
    /// reached after each page.
    pub async fn rebuild(
        engine: &Engine,
        options: spaces_search::Options,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> anyhow::Result<u64> {
        let dir = options.dir.clone();
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let thread = IndexThread::spawn()?;
        let (index, writer, _) = thread.run(move || SearchIndex::open(options)).await??;
        let writer = IndexWriter {
            thread,
            writer: Arc::new(Mutex::new(writer)),
        };
        let mut done = 0;
        catch_up(engine, &writer, &mut done, progress).await?;
        writer.run(|w| w.commit()).await?;
        Ok(index.n_docs())
    }

    /// The page of `query`'s hits that `user` may read.
    pub async fn search(&self, user: &UserId, query: Query) -> Result<Found, SearchError> {
        let inner = self.inner.as_ref().ok_or(SearchError::Off)?;
        let mut request = Request::parse(&query.text)?;
        if let Some(sender) = &query.sender {
            request.from = Some(sender.to_string());
        }
        for mentioned in &mut request.mentions {
            if mentioned == "me" {
                *mentioned = user.to_string();
            }
        }
        request.after_ms = query.after_ms.max(request.after_ms);
        request.before_ms = match (query.before_ms, request.before_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for has in &query.has {
            if !request.has.contains(has) {
                request.has.push(*has);
            }
        }
        let scope: Vec<String> = match query.room {
            Some(room_id) => {
                // The room API's answer for a room the user cannot read.
                let slot = inner.engine.room(&room_id)?;
                slot.lock().await.readable(user)?;
                if request.rooms.is_empty() {
                    // A filter of its own: `room` alone is a query.
                    request.rooms.push(room_id.to_string());
                }
                vec![room_id.to_string()]
            }
            None => inner
                .engine
                .rooms_of(user)
                .iter()
                .map(RoomId::to_string)
                .collect(),
        };
        request.check()?;
        let limit = query.limit.clamp(1, spaces_search::MAX_LIMIT);
        let deadline = Instant::now() + SEARCH_TIMEOUT;
        let mut offset = query.offset;
        let mut hits = Vec::new();
        let (mut n_scanned, mut n_readable, mut total) = (0usize, 0usize, 0usize);
        // Whether the index may hold candidates past `offset`.
        let mut more = true;
        while more && hits.len() < limit && n_scanned < MAX_SCANNED {
            // Ask for a few more than missing (some may be unreadable), no
            // more than the index gives in one page.
            let want = ((limit - hits.len()) * 2).min(spaces_search::MAX_LIMIT);
            let page = self
                .index_page(inner, &request, &scope, query.order, offset, want, deadline)
                .await?;
            total = page.total;
            let n_page = page.hits.len();
            let candidates: Vec<(RoomId, EventId)> = page
                .hits
                .iter()
                .map(|hit| {
                    // The index holds only ids this node wrote.
                    let room_id = hit.room_id.parse().unwrap_or(RoomId([0; 32]));
                    (room_id, hit.event_id.parse().unwrap_or(EventId([0; 32])))
                })
                .collect();
            let verdicts = inner.engine.readable_events(user, &candidates).await;
            let mut n_taken = 0;
            for (hit, readable) in page.hits.into_iter().zip(verdicts) {
                if hits.len() == limit {
                    break;
                }
                n_taken += 1;
                if readable {
                    n_readable += 1;
                    hits.push(hit);
                }
            }
            offset += n_taken;
            n_scanned += n_taken;
            more = n_taken < n_page || n_page == want;
            if offset >= spaces_search::MAX_OFFSET {
                more = false;
            }
        }
        let estimated_total = if n_scanned == 0 {
            hits.len()
        } else {
            (total * n_readable).div_ceil(n_scanned).max(hits.len())
        };
        Ok(Found {
            hits,
            next_offset: (more && offset < total).then_some(offset),
            estimated_total,
        })
    }

    /// One page of index candidates, on the blocking pool within a slot.
    #[allow(clippy::too_many_arguments)]
    async fn index_page(
        &self,
        inner: &Arc<Inner>,
        request: &Request,
        scope: &[String],
        order: Order,
        offset: usize,
        limit: usize,
        deadline: Instant,
    ) -> Result<spaces_search::Page, SearchError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let permit = tokio::time::timeout(left, inner.slots.acquire())
            .await
            .map_err(|_| SearchError::Busy)?
            .map_err(|_| SearchError::Busy)?;
        let (index, request, scope) = (inner.index.clone(), request.clone(), scope.to_vec());
        let work = tokio::task::spawn_blocking(move || {
            index.search(&request, &scope, order, offset, limit)
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let page = tokio::time::timeout(left, work)
            .await
            .map_err(|_| SearchError::Busy)?
            .map_err(|e| {
                SearchError::Index(spaces_search::Error::Io(std::io::Error::other(e)))
            })??;
        drop(permit);
        Ok(page)
    }
}

/// An event to apply: from the live stream, or read back from the store.
struct Applied {
    seq: u64,
    room_id: RoomId,
    event: Event,
    flipped: Vec<EventId>,
}

/// The indexer: see the module docs. Stops (after a last commit) when
/// `stopped` turns true or the stream closes; an index failure is logged
/// and stops indexing, never the node (search can be rebuilt).
async fn run_indexer(engine: Engine, writer: IndexWriter, mut stopped: watch::Receiver<bool>) {
    // Subscribe before catching up, so nothing falls between the two.
    let mut stream = engine.subscribe();
    let mut done = writer.lock().applied_seq();
    if let Err(error) = catch_up(&engine, &writer, &mut done, &mut |_| {}).await {
        tracing::error!(%error, "search indexing stopped");
        return;
    }
    loop {
        if *stopped.borrow() {
            break;
        }
        let deadline = writer.lock().deadline();
        let commit_at = deadline.map(tokio::time::Instant::from_std);
        tokio::select! {
            changed = stopped.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = async { tokio::time::sleep_until(commit_at.unwrap_or_else(tokio::time::Instant::now)).await },
                if commit_at.is_some() => {
                if let Err(error) = writer.run(|w| w.commit()).await {
                    tracing::error!(%error, "search commit failed; indexing stopped");
                    return;
                }
            }
            received = stream.recv() => {
                let result = match received {
                    Ok(first) => {
                        let mut batch = vec![first];
                        while batch.len() < BATCH_EVENTS {
                            match stream.try_recv() {
                                Ok(item) => batch.push(item),
                                Err(_) => break,
                            }
                        }
                        let last = batch.iter().map(|item| item.seq).max().unwrap_or(0);
                        let items = batch
                            .iter()
                            .filter(|item| item.seq > done)
                            .map(|item| from_stream(item))
                            .collect();
                        apply(&engine, &writer, items, last, &mut done).await
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "search indexer lagged; catching up from the store");
                        catch_up(&engine, &writer, &mut done, &mut |_| {}).await
                    }
                    Err(RecvError::Closed) => break,
                };
                if let Err(error) = result {
                    tracing::error!(%error, "search indexing stopped");
                    return;
                }
            }
        }
    }
    if let Err(error) = writer.run(|w| w.commit()).await {
        tracing::warn!(%error, "last search commit failed; the next start catches up");
    }
}

/// How much lower than the node's own threads the index's threads run
/// (a nice value, 0–19). Indexing is catch-up work: on a busy small box the
/// send path gets the cores first, and the index takes what is left (it
/// falls behind under a burst and catches up after, from the stream or the
/// store). At 10 the kernel gives a contended index thread about a tenth of
/// a core's share.
pub const INDEX_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The index's own OS thread, at [`INDEX_NICE`]. The index is opened and
/// committed on it, so the threads tantivy starts from there (its indexing
/// worker at open and after each commit, its merge and segment-updater
/// pools) inherit its priority; only the tokenizing, segment building and
/// merging of those threads is heavy. Jobs queue without bound, but there
/// is one indexer task and it waits for each job, so at most one is queued.
#[derive(Clone, Debug)]
struct IndexThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl IndexThread {
    fn spawn() -> std::io::Result<IndexThread> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("search-index".into())
            .spawn(move || {
                lower_priority(INDEX_NICE);
                // Ends when the last sender (the indexer) is gone.
                for job in queue {
                    job();
                }
            })?;
        Ok(IndexThread { jobs })
    }

    /// Runs `work` on the index thread and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("the search index thread is gone"))?;
        // A panic inside `work` drops `reply`.
        result
            .await
            .map_err(|_| anyhow::anyhow!("the search index thread failed"))
    }
}

/// Lowers the calling thread's CPU priority (on Linux a nice value is a
/// thread's, and threads it starts inherit it). Best effort: a failure
/// leaves the index at normal priority, which only costs speed.
fn lower_priority(nice: i32) {
    let tid = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(%error, "could not lower the search index's priority");
    }
}

/// The writer, used only from the index thread.
struct IndexWriter {
    thread: IndexThread,
    writer: Arc<Mutex<Writer>>,
}

impl IndexWriter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        lock(&self.writer)
    }

    /// Runs `work` on the writer, on the index thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Writer) -> Result<T, spaces_search::Error> + Send + 'static,
    ) -> anyhow::Result<T> {
        let writer = self.writer.clone();
        Ok(self.thread.run(move || work(&mut lock(&writer))).await??)
    }
}

fn lock(writer: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    // A panic inside a tantivy call leaves at worst uncommitted changes,
    // which the next commit or restart redoes from the stream.
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

fn from_stream(item: &StreamItem) -> Applied {
    Applied {
        seq: item.seq,
        room_id: item.room_id,
        event: item.event.clone(),
        flipped: item.flips.iter().map(|(id, _)| *id).collect(),
    }
}

/// Applies the store's stream after `done` up to its end, page by page.
/// `progress` hears the seq reached after each page.
async fn catch_up(
    engine: &Engine,
    writer: &IndexWriter,
    done: &mut u64,
    progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let from = *done;
    loop {
        let store = engine.store().clone();
        let after = *done;
        let (items, last) =
            tokio::task::spawn_blocking(move || read_stream(&store, after)).await??;
        if last == after {
            break;
        }
        apply(engine, writer, items, last, done).await?;
        progress(*done);
    }
    if *done > from {
        tracing::info!(
            from,
            to = *done,
            ms = started.elapsed().as_millis() as u64,
            "search index caught up from the store"
        );
    }
    Ok(())
}

/// A page of the store's stream after `after`, as the indexer applies it.
fn read_stream(store: &Store, after: u64) -> Result<(Vec<Applied>, u64), spaces_store::Error> {
    let (items, last) = crate::engine::stream_page(store, after, BATCH_EVENTS)?;
    let items = items
        .into_iter()
        .map(|item| Applied {
            seq: item.seq,
            room_id: item.room_id,
            event: item.event,
            flipped: item.flips.into_iter().map(|(id, _)| id).collect(),
        })
        .collect();
    Ok((items, last))
}

/// Applies a batch of events in seq order: what the room says of every
/// message they touch now, into the index; then `last`, the batch's last seq.
async fn apply(
    engine: &Engine,
    writer: &IndexWriter,
    items: Vec<Applied>,
    last: u64,
    done: &mut u64,
) -> anyhow::Result<()> {
    if last <= *done {
        return Ok(());
    }
    let mut touched: HashMap<RoomId, Vec<EventId>> = HashMap::new();
    // Bodies at hand: messages and edits of this batch, with their seqs.
    let mut known: HashMap<EventId, (u64, Event)> = HashMap::new();
    for item in items {
        let ids = touched.entry(item.room_id).or_default();
        match item.event.content() {
            Content::Message(_) | Content::Edit(_) | Content::Redaction(_) => {
                ids.push(item.event.id());
            }
            _ => {}
        }
        ids.extend(item.flipped);
        if matches!(item.event.content(), Content::Message(_) | Content::Edit(_)) {
            known.insert(item.event.id(), (item.seq, item.event));
        }
    }
    let mut states: Vec<(RoomId, EventId, MessageNow)> = Vec::new();
    for (room_id, mut ids) in touched {
        ids.sort_unstable();
        ids.dedup();
        for (message_id, now) in engine.messages_now(&room_id, &ids).await {
            states.push((room_id, message_id, now));
        }
    }
    let store = engine.store().clone();
    writer
        .run(move |writer| {
            for (room_id, message_id, now) in states {
                let MessageNow::Shown { latest_edit } = now else {
                    writer.remove(&message_id.to_string());
                    continue;
                };
                match doc(&store, &known, room_id, message_id, latest_edit) {
                    Ok(Some(doc)) => writer.put(doc)?,
                    // Not durable yet (a received event in the replica a moment
                    // before the writer stores it): its own stream item comes.
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(%error, "reading a message for the search index failed");
                        return Err(spaces_search::Error::Io(std::io::Error::other(error)));
                    }
                }
            }
            writer.applied(last);
            if writer.due(Instant::now()) {
                writer.commit()?;
            }
            Ok(())
        })
        .await?;
    *done = last;
    Ok(())
}

/// The document of a shown message, its text from its latest edit.
fn doc(
    store: &Store,
    known: &HashMap<EventId, (u64, Event)>,
    room_id: RoomId,
    message_id: EventId,
    latest_edit: Option<EventId>,
) -> Result<Option<Doc>, spaces_store::Error> {
    let read = |id: EventId| -> Result<Option<(u64, Event)>, spaces_store::Error> {
        if let Some(found) = known.get(&id) {
            return Ok(Some(found.clone()));
        }
        let Some(stored) = store.event_by_id(&id.0)? else {
            return Ok(None);
        };
        Ok(Event::decode_trusted(&stored.bytes)
            .ok()
            .map(|event| (stored.seq, event)))
    };
    let Some((seq, message)) = read(message_id)? else {
        return Ok(None);
    };
    let Content::Message(content) = message.content() else {
        return Ok(None);
    };
    // The text and mentions as the room shows them: the latest edit's.
    let edit = latest_edit.map(read).transpose()?.flatten();
    let (body, mentions) = match edit.as_ref().map(|(_, e)| e.content()) {
        Some(Content::Edit(edit)) => (edit.body.clone(), &edit.mentions),
        _ => (content.body.clone(), &content.mentions),
    };
    let mentions = mentions.users.iter().map(ToString::to_string).collect();
    let mut has = Vec::new();
    if !content.attachments.is_empty() {
        has.push(Has::File);
    }
    if content
        .attachments
        .iter()
        .any(|a| a.mime.starts_with("image/"))
    {
        has.push(Has::Image);
    }
    if body.contains("http://") || body.contains("https://") {
        has.push(Has::Link);
    }
    if content.reply_to.is_some() {
        has.push(Has::Reply);
    }
    if content.thread.is_some() {
        has.push(Has::Thread);
    }
    Ok(Some(Doc {
        event_id: message_id.to_string(),
        room_id: room_id.to_string(),
        sender: message.sender().to_string(),
        origin_ts: message.origin_ts(),
        seq,
        body,
        has,
        mentions,
    }))
}
