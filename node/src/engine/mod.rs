//! The engine: the node's room service.
//!
//! It owns one [`RoomView`] per room behind an async mutex, the writer
//! (group commit) and the node-wide live stream. Both paths of an event meet
//! here: a local send is drafted on the room's heads, signed, checked by the
//! protocol's rules and inserted under the room lock, then queued to the
//! writer *before* the lock is released — so a child is never queued before
//! its parent — and acknowledged only once durable. A received event
//! ([`Engine::ingest`], the federation seam) takes the same road after its
//! signature is checked.
//!
//! What the engine does not know: HTTP, tokens, sockets. The API talks to it
//! in user ids and protocol content.

mod ephemeral;
mod index;
mod ingest;
mod presence;
mod read;
mod rules;
mod send;
#[cfg(test)]
mod tests;
mod view;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use spaces_protocol::content::*;
use spaces_protocol::text::TextError;
use spaces_protocol::{
    AuthError, Event, EventId, InsertError, Inserted, NodeId, NodeKey, Rejection, Room, RoomId,
    UserId,
};
use spaces_store::Store;
use tokio::sync::{Mutex, OwnedMutexGuard, broadcast};

pub use ephemeral::{EphemeralItem, Notice};
pub use index::Reach;
pub use ingest::{Ingested, MAX_CLOCK_AHEAD_MS};
pub use presence::{ClientPresence, PresenceOptions};
pub use read::{Notes, Page, PageAt, Shown, StoredItem, stream_page};
pub use rules::MessageNow;
pub use send::NewRoom;
pub use view::{Aggregates, Arrivals, LastMessage, Reactions, RoomView};
use writer::Writer;
pub use writer::{Fresh, StreamItem, WriteFailed};

use crate::metrics::Metrics;

/// Why the engine refused a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown room")]
    UnknownRoom,
    #[error("unknown event")]
    UnknownEvent,
    #[error("you already reacted with that")]
    AlreadyReacted,
    #[error("you have not reacted with that")]
    NotReacted,
    #[error(transparent)]
    Forbidden(#[from] AuthError),
    #[error("invalid event: {0}")]
    Invalid(Rejection),
    /// A local user's text holds a character this node does not send
    /// (`spaces_protocol::text`); peers' events are never refused for it.
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Unavailable(#[from] WriteFailed),
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

pub type RoomSlot = Arc<Mutex<RoomView>>;

/// Cheap-to-clone handle to the engine.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    key: NodeKey,
    node_id: NodeId,
    store: Store,
    rooms: RwLock<HashMap<RoomId, RoomSlot>>,
    /// Local user → rooms where they are joined, invited or knocking, and which.
    memberships: RwLock<HashMap<UserId, HashMap<RoomId, Membership>>>,
    /// Local user → rooms where they are joined, and since when (as this
    /// node saw it; the node's start for joins before it): ephemeral items
    /// made before a join do not reach the joiner through that room.
    joined_at: RwLock<HashMap<UserId, HashMap<RoomId, std::time::Instant>>>,
    /// Where each room's events go, kept with `memberships` from the same
    /// state changes, so that publishing an event needs neither the room
    /// lock nor a walk over its members.
    reaches: RwLock<HashMap<RoomId, Reach>>,
    /// Rooms of kind `Direct`, kept by `index_room`: a DM lookup locks only these.
    directs: RwLock<std::collections::HashSet<RoomId>>,
    /// Rooms whose moderation policy has a rule that blocks, with it, kept
    /// by `index_room`: a local send is vetted without the room lock.
    policies: RwLock<HashMap<RoomId, Arc<ModerationPolicy>>>,
    /// Rooms with AutoMod rules, with them (the state's own `Arc`, so a
    /// compiled version is told by pointer), kept by `index_room`.
    automods: RwLock<HashMap<RoomId, Arc<AutoMod>>>,
    /// Held across a direct room's lookup and creation (`rules.rs`).
    dm_locks: [Mutex<()>; rules::DM_LOCK_SHARDS],
    writer: Writer,
    stream: broadcast::Sender<Arc<StreamItem>>,
    /// Typing notices, receipts and presence for local clients: lossy,
    /// never stored.
    ephemeral: broadcast::Sender<Arc<EphemeralItem>>,
    presence: presence::State,
    metrics: Arc<Metrics>,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Engine {
    /// Loads every room from the store and starts the writer. `stream_capacity`
    /// bounds how far a live subscriber may lag before it is told so.
    pub fn open(
        store: Store,
        key: NodeKey,
        metrics: Arc<Metrics>,
        stream_capacity: usize,
        presence: PresenceOptions,
    ) -> anyhow::Result<(Engine, std::thread::JoinHandle<()>)> {
        let node_id = key.node_id();
        let rooms = load_rooms(&store)?;
        let (stream, _) = broadcast::channel(stream_capacity);
        let (ephemeral, _) = broadcast::channel(1024);
        let (writer, handle) = Writer::spawn(store.clone(), stream.clone(), metrics.clone());
        let engine = Engine {
            inner: Arc::new(Inner {
                key,
                node_id,
                store,
                rooms: RwLock::new(HashMap::new()),
                memberships: RwLock::new(HashMap::new()),
                joined_at: RwLock::default(),
                reaches: RwLock::new(HashMap::new()),
                directs: RwLock::default(),
                policies: RwLock::default(),
                automods: RwLock::default(),
                dm_locks: Default::default(),
                writer,
                stream,
                ephemeral,
                presence: presence::State::new(presence),
                metrics,
            }),
        };
        for (room_id, view) in rooms {
            engine.index_room(&view);
            engine
                .write_rooms()
                .insert(room_id, Arc::new(Mutex::new(view)));
        }
        tracing::info!(n_rooms = engine.n_rooms(), "engine ready");
        Ok((engine, handle))
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn writer_queue_depth(&self) -> usize {
        self.inner.writer.queue_depth()
    }

    pub fn n_rooms(&self) -> usize {
        self.inner
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The `limit` rooms holding the most events: (room, events held,
    /// other nodes it reaches), largest first. Takes each room's lock in
    /// turn, briefly (metrics, at scrape time).
    pub async fn largest_rooms(&self, limit: usize) -> Vec<(RoomId, usize, usize)> {
        let slots: Vec<(RoomId, RoomSlot)> = self
            .inner
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, slot)| (*id, slot.clone()))
            .collect();
        let mut sizes = Vec::with_capacity(slots.len());
        for (id, slot) in slots {
            let events = slot.lock().await.room.len();
            sizes.push((id, events));
        }
        sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sizes.truncate(limit);
        let reaches = self.inner.reaches.read().unwrap_or_else(|p| p.into_inner());
        sizes
            .into_iter()
            .map(|(id, events)| {
                let nodes = reaches.get(&id).map_or(0, |r| r.nodes.len());
                (id, events, nodes)
            })
            .collect()
    }

    /// The live stream of stored events, in seq order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamItem>> {
        self.inner.stream.subscribe()
    }

    pub fn is_local(&self, user: &UserId) -> bool {
        user.node() == self.inner.node_id
    }

    pub fn room(&self, room_id: &RoomId) -> Result<RoomSlot, EngineError> {
        self.inner
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
            .ok_or(EngineError::UnknownRoom)
    }

    pub fn room_ids(&self) -> Vec<RoomId> {
        self.inner
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Inserts into the replica and updates the read model and indexes.
    /// `Ok(None)`: already held.
    fn insert(&self, view: &mut RoomView, event: Event) -> Result<Option<Fresh>, InsertError> {
        // The replica keeps no signed bytes (see `RoomView`): the writer
        // stores them from `Fresh::event`, and peers are answered from the store.
        match view.room.insert(event.skeleton())? {
            Inserted::Duplicate => Ok(None),
            Inserted::New {
                accepted, changed, ..
            } => {
                if !changed.is_empty() {
                    view.rebuild();
                    self.index_room(view);
                } else if accepted {
                    view.agg.add(&event);
                    if matches!(
                        event.content(),
                        Content::Member(_)
                            | Content::Create(_)
                            | Content::JoinRule(_)
                            | Content::ModerationPolicy(_)
                            | Content::AutoMod(_)
                    ) {
                        self.index_room(view);
                    }
                }
                Ok(Some(Fresh {
                    event,
                    accepted,
                    flips: changed,
                }))
            }
        }
    }

    /// Queues events for the writer while still holding the room (so order
    /// is parent before child), then waits for durability; the writer
    /// records the seqs in the room's arrivals before it replies.
    ///
    /// The events are in the replica already and later events build on
    /// them, so they must reach the queue even if the caller gives up (a
    /// client that disconnects drops its request's future): otherwise what
    /// is acknowledged after them would be skipped at the next start for
    /// want of its parents. Hence no await between insert and queueing.
    async fn persist(
        &self,
        view: OwnedMutexGuard<RoomView>,
        events: Vec<Fresh>,
    ) -> Result<(), EngineError> {
        // Queued with no await in between when there is room (nearly
        // always); the writer records the seqs in the room's arrivals.
        // Every event is in the replica (inserted just before).
        let indexes = events
            .iter()
            .map(|f| view.room.index_of(&f.event.id()).unwrap_or(u32::MAX))
            .collect();
        let arrivals = Some((view.arrivals.clone(), indexes));
        let done = match self.inner.writer.try_enqueue(events, arrivals)? {
            Ok(done) => {
                drop(view);
                done
            }
            Err((request, done)) => {
                // A full queue: wait for room in a task of its own, still
                // holding the room, so that a caller that gives up cannot
                // leave the events out of the store.
                let engine = self.clone();
                let queued = tokio::spawn(async move {
                    let queued = engine.inner.writer.enqueue_waiting(request).await;
                    drop(view);
                    queued
                });
                queued.await.map_err(|_| WriteFailed)??;
                done
            }
        };
        done.await.map_err(|_| WriteFailed)??;
        Ok(())
    }

    fn write_rooms(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<RoomId, RoomSlot>> {
        self.inner.rooms.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A room while the store is read at start-up.
#[derive(Default)]
struct Loading {
    room: Option<Room>,
    arrivals: Arrivals,
    /// Events not taken in stream order (parents missing then, or stored
    /// before their room's create event), with their seqs: tried again,
    /// parents first, once every event has been read.
    later: Vec<(u64, Event)>,
}

/// Reads every stored event once, in stream order, inserting each into its
/// room's replica as it comes: events were stored after their parents, so
/// nearly every insertion finds them, and for a room written by this node
/// alone it appends. Nothing but the replicas and their arrivals is held:
/// no list of every event (whose memory the allocator would keep after
/// start-up). The replica keeps no signed bytes: the store has them.
fn load_rooms(store: &Store) -> anyhow::Result<HashMap<RoomId, RoomView>> {
    let mut loading: HashMap<RoomId, Loading> = HashMap::new();
    for stored in store.events() {
        let stored = stored?;
        // The log keeps each event's id beside it: no hash per event.
        let event = match Event::decode_skeleton_with_id(&stored.bytes, EventId(stored.event_id)) {
            Ok(event) => event,
            Err(rejection) => {
                tracing::error!(%rejection, seq = stored.seq, "stored event does not decode; skipped");
                continue;
            }
        };
        let room_id = RoomId(stored.room_id);
        let at = loading.entry(room_id).or_default();
        match &mut at.room {
            None if event.id() == room_id.create_event() => match Room::new(event) {
                Ok(room) => {
                    at.arrivals.record(0, stored.seq, None);
                    at.room = Some(room);
                }
                Err(r) => anyhow::bail!("room {room_id}: {r}"),
            },
            Some(room) => {
                let id = event.id();
                match room.insert(event.clone()) {
                    Ok(_) => {
                        if let Some(index) = room.index_of(&id) {
                            at.arrivals
                                .record(index, stored.seq, view::message_by(room, &id));
                        }
                    }
                    Err(_) => at.later.push((stored.seq, event)),
                }
            }
            None => at.later.push((stored.seq, event)),
        }
    }
    let mut rooms = HashMap::new();
    for (room_id, at) in loading {
        let _span = tracing::info_span!("load_room", room = %room_id).entered();
        let Loading {
            room,
            mut arrivals,
            mut later,
        } = at;
        let Some(mut room) = room else {
            tracing::error!("room has no create event in the store; skipped");
            continue;
        };
        // Parents first, as `Room::load` does; what still does not go in
        // is left out of the replica but known to be stored.
        later.sort_by_key(|(_, e)| (e.depth(), e.class(), e.id()));
        let mut unheld = HashMap::new();
        for (seq, event) in later {
            let id = event.id();
            match room.insert(event) {
                Ok(_) => {
                    if let Some(index) = room.index_of(&id) {
                        arrivals.record(index, seq, view::message_by(&room, &id));
                    }
                }
                Err(_) => {
                    unheld.insert(id, seq);
                }
            }
        }
        if !unheld.is_empty() {
            tracing::warn!(
                n_skipped = unheld.len(),
                "stored events without their parents were skipped"
            );
        }
        rooms.insert(room_id, RoomView::loaded(room, arrivals, unheld));
    }
    Ok(rooms)
}

/// The error for an auth refusal. Invariant 4: to someone never in it, a
/// private room does not exist, for writes as for reads.
fn forbidden(view: &RoomView, sender: &UserId, error: AuthError) -> EngineError {
    let state = view.room.state();
    if error == AuthError::NotMember
        && state.membership(sender).is_none()
        && state.join_rule() != JoinRule::Public
    {
        return EngineError::UnknownRoom;
    }
    EngineError::Forbidden(error)
}
