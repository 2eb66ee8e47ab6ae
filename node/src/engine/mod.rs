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

mod presence;
mod read;
mod rules;
mod view;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use spaces_protocol::content::*;
use spaces_protocol::text::TextError;
use spaces_protocol::{
    AuthError, Ephemeral, EphemeralBody, EphemeralKind, Event, EventBody, EventId, InsertError,
    Inserted, NodeId, NodeKey, Rejection, Room, RoomId, UserId,
};
use spaces_store::Store;
use tokio::sync::{Mutex, OwnedMutexGuard, broadcast};

pub use presence::{ClientPresence, PresenceOptions};
pub use read::{Notes, Page, PageAt, Shown};
pub use view::{Aggregates, Arrivals, Reactions, RoomView};
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

/// The result of handing the engine an event from elsewhere.
#[derive(Debug, PartialEq, Eq)]
pub enum Ingested {
    /// Stored; whether resolution accepted it.
    New {
        accepted: bool,
    },
    Duplicate,
    /// Fetch these parents from the sender, then ingest again.
    MissingParents(Vec<EventId>),
    /// The event's clock is too far ahead of ours: hold it and offer it
    /// again once our clock reaches `until_ms` (docs/spec/auth.md §Effective
    /// time). Not a refusal: every node admits it once its time comes.
    Deferred {
        until_ms: u64,
    },
}

/// How far ahead of this node's clock an event's `origin_ts` may be before
/// the event waits. Effective time only moves forward, so one far-future
/// clock would end every timeout and slowmode in the room; five minutes of
/// tolerated skew bounds that to five minutes early.
pub const MAX_CLOCK_AHEAD_MS: u64 = 5 * 60 * 1000;

/// Where a room's events travel from this node (federation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub public: bool,
    /// Other nodes with a joined or invited member.
    pub nodes: Vec<NodeId>,
    /// Whether a local user is joined or invited.
    pub local: bool,
}

/// Options for a new room.
#[derive(Clone, Debug)]
pub struct NewRoom {
    pub kind: RoomKind,
    pub join_rule: JoinRule,
    pub history_visibility: HistoryVisibility,
    pub name: Option<String>,
    pub topic: Option<String>,
    /// Invited in the same commit as the room's creation.
    pub invite: Vec<UserId>,
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
    /// Where each room's events go, kept with `memberships` from the same
    /// state changes, so that publishing an event needs neither the room
    /// lock nor a walk over its members.
    reaches: RwLock<HashMap<RoomId, Reach>>,
    /// Rooms of kind `Direct`, kept by `index_room`: a DM lookup locks only these.
    directs: RwLock<std::collections::HashSet<RoomId>>,
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

/// A typing notice, read receipt or presence change, as local clients
/// receive it ([`Engine::ephemeral_for`] says whose clients).
#[derive(Debug)]
pub struct EphemeralItem {
    /// Local users joined to any of these rooms get it…
    pub rooms: Vec<RoomId>,
    /// …unless they are joined to one of these (where a lapsed presence
    /// still holds).
    pub unless_in: Vec<RoomId>,
    /// Only this user's clients get it, when set.
    pub to: Option<UserId>,
    /// Whom it is about; they do not get it themselves.
    pub user: UserId,
    /// What it says. `api/render.rs` makes the client's frame of it, once
    /// per item (`rendered`), however many clients get it.
    pub notice: Notice,
    pub rendered: std::sync::OnceLock<String>,
}

/// What an [`EphemeralItem`] says about its `user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Typing { room_id: RoomId, typing: bool },
    Receipt { room_id: RoomId, event_id: EventId },
    Presence(spaces_protocol::Presence),
}

impl EphemeralItem {
    fn new(room_id: RoomId, user: UserId, kind: &EphemeralKind) -> EphemeralItem {
        let notice = match kind {
            EphemeralKind::Presence { state, .. } => {
                return EphemeralItem::presence(user, *state, vec![room_id]);
            }
            EphemeralKind::Typing(typing) => Notice::Typing {
                room_id,
                typing: *typing,
            },
            EphemeralKind::Receipt(event_id) => Notice::Receipt {
                room_id,
                event_id: *event_id,
            },
        };
        EphemeralItem::to_rooms(vec![room_id], user, notice)
    }

    fn presence(
        user: UserId,
        state: spaces_protocol::Presence,
        rooms: Vec<RoomId>,
    ) -> EphemeralItem {
        EphemeralItem::to_rooms(rooms, user, Notice::Presence(state))
    }

    fn to_rooms(rooms: Vec<RoomId>, user: UserId, notice: Notice) -> EphemeralItem {
        EphemeralItem {
            rooms,
            unless_in: Vec::new(),
            to: None,
            user,
            notice,
            rendered: std::sync::OnceLock::new(),
        }
    }
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
        // One pass over the log, in stream order, sorts the events by room;
        // each room's are then in arrival order, parents before children.
        let mut by_room: HashMap<RoomId, (HashMap<EventId, u64>, Vec<Event>)> = HashMap::new();
        for stored in store.events() {
            let stored = stored?;
            // The replica keeps no signed bytes: the store has them.
            match Event::decode_skeleton(&stored.bytes) {
                Ok(event) => {
                    let (seqs, events) = by_room.entry(RoomId(stored.room_id)).or_default();
                    seqs.insert(event.id(), stored.seq);
                    events.push(event);
                }
                Err(rejection) => {
                    tracing::error!(%rejection, seq = stored.seq, "stored event does not decode; skipped")
                }
            }
        }
        let mut rooms = HashMap::new();
        for (room_id, (seqs, events)) in by_room {
            let _span = tracing::info_span!("load_room", room = %room_id).entered();
            let Some(create) = events
                .iter()
                .find(|e| e.id() == room_id.create_event())
                .cloned()
            else {
                tracing::error!("room has no create event in the store; skipped");
                continue;
            };
            let (room, skipped) =
                Room::load(create, events).map_err(|r| anyhow::anyhow!("room {room_id}: {r}"))?;
            if !skipped.is_empty() {
                tracing::warn!(
                    n_skipped = skipped.len(),
                    "stored events without their parents were skipped"
                );
            }
            rooms.insert(room_id, RoomView::new(room, seqs));
        }
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
                reaches: RwLock::new(HashMap::new()),
                directs: RwLock::default(),
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

    /// The live stream of stored events, in seq order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamItem>> {
        self.inner.stream.subscribe()
    }

    /// Live typing notices and receipts (lossy: a lagging subscriber
    /// misses some, which is harmless).
    pub fn subscribe_ephemeral(&self) -> broadcast::Receiver<Arc<EphemeralItem>> {
        self.inner.ephemeral.subscribe()
    }

    /// A local user's typing notice or receipt: shown to local members now,
    /// and returned signed for the room's other nodes.
    pub async fn ephemeral(
        &self,
        user: &UserId,
        room_id: &RoomId,
        kind: EphemeralKind,
    ) -> Result<Vec<u8>, EngineError> {
        let bytes = self.sign_ephemeral(user, room_id, kind.clone()).await?;
        let item = EphemeralItem::new(*room_id, user.clone(), &kind);
        let _ = self.inner.ephemeral.send(Arc::new(item));
        Ok(bytes)
    }

    /// A local user's ephemeral message, signed for other nodes; the user
    /// must be joined (F29).
    pub async fn sign_ephemeral(
        &self,
        user: &UserId,
        room_id: &RoomId,
        kind: EphemeralKind,
    ) -> Result<Vec<u8>, EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock().await;
        if !view.room.state().is_joined(user) {
            return Err(forbidden(&view, user, AuthError::NotMember));
        }
        Ok(EphemeralBody {
            origin: self.inner.node_id,
            room: *room_id,
            sender: user.localpart().to_owned(),
            ts: now_ms(),
            kind,
        }
        .sign(&self.inner.key))
    }

    /// One from another node (verified): its sender must be joined here.
    pub async fn take_ephemeral(&self, ephemeral: Ephemeral) -> Result<(), EngineError> {
        let room_id = ephemeral.body.room;
        let slot = self.room(&room_id)?;
        let view = slot.lock().await;
        if !view.room.state().is_joined(&ephemeral.sender) {
            return Err(EngineError::Forbidden(AuthError::NotMember));
        }
        drop(view);
        if let EphemeralKind::Presence { state, ttl_secs } = ephemeral.body.kind {
            let ttl = std::time::Duration::from_secs(ttl_secs.into());
            self.take_presence(ephemeral.sender, room_id, state, ephemeral.body.ts, ttl);
            return Ok(());
        }
        let item = EphemeralItem::new(room_id, ephemeral.sender, &ephemeral.body.kind);
        let _ = self.inner.ephemeral.send(Arc::new(item));
        Ok(())
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

    /// Rooms where a local user is joined, invited or knocking.
    pub fn rooms_of(&self, user: &UserId) -> Vec<RoomId> {
        let index = self.memberships();
        index
            .get(user)
            .map(|rooms| rooms.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether a live event should reach `user`'s clients: resolution
    /// accepted it, and they are joined or it is about them (their invite,
    /// kick or ban). Invitees and knockers see only their own membership
    /// until they join (invariant 4). A refused event — say a banned
    /// member's message backdated past the ban — is shown to no one.
    pub fn delivers_to(&self, user: &UserId, item: &StreamItem) -> bool {
        if !item.accepted {
            return false;
        }
        is_about(user, item) || self.is_joined_local(user, &item.room_id)
    }

    /// Whether a local user is joined to a room.
    pub fn is_joined_local(&self, user: &UserId, room_id: &RoomId) -> bool {
        let index = self.memberships();
        index.get(user).and_then(|rooms| rooms.get(room_id)) == Some(&Membership::Join)
    }

    /// [`Engine::delivers_to`] for a page of events from the stored backlog,
    /// which may predate the user's join: each must be accepted now, and
    /// within the history they may read (the room's history visibility)
    /// unless it is about them. Each room of the page is locked, and its
    /// floor computed, once.
    pub async fn backlog_filter(&self, user: &UserId, items: &[StreamItem]) -> Vec<bool> {
        let mut verdicts = vec![false; items.len()];
        let mut by_room: HashMap<RoomId, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if self.delivers_to(user, item) {
                by_room.entry(item.room_id).or_default().push(i);
            }
        }
        for (room_id, indexes) in by_room {
            let Ok(slot) = self.room(&room_id) else {
                continue;
            };
            let view = slot.lock().await;
            let floor = view.readable_from(user);
            for i in indexes {
                let id = items[i].event.id();
                verdicts[i] = view.room.is_accepted(&id)
                    && (is_about(user, &items[i])
                        || floor.is_some_and(|floor| {
                            view.room.position(&id).is_some_and(|p| p >= floor)
                        }));
            }
        }
        verdicts
    }

    /// What became of `flipped`, events of a room whose acceptance some
    /// later event changed, as `user`'s clients should hear it now: the ids
    /// refused, and the events accepted that are within the history they
    /// may read. `None` when there is nothing to say or the user is not in
    /// the room.
    pub async fn acceptance_for(
        &self,
        user: &UserId,
        room_id: &RoomId,
        flipped: Vec<EventId>,
    ) -> Option<(Vec<EventId>, Vec<Event>)> {
        if flipped.is_empty() || !self.is_joined_local(user, room_id) {
            return None;
        }
        let slot = self.room(room_id).ok()?;
        let view = slot.lock().await;
        let floor = view.readable_from(user)?;
        let mut refused = Vec::new();
        let mut accepted = Vec::new();
        for id in flipped {
            // Nothing before the floor, not even an id (invariant 4).
            if view.room.position(&id).is_none_or(|p| p < floor) {
                continue;
            }
            if view.room.is_accepted(&id) {
                accepted.push(id);
            } else {
                refused.push(id);
            }
        }
        // The replica holds skeletons: the accepted are read back whole.
        let accepted: Vec<Event> = match self.show(view, &accepted, false).await {
            Ok(shown) => shown.into_iter().map(|s| s.event).collect(),
            Err(error) => {
                tracing::error!(%error, "reading events whose acceptance changed");
                Vec::new()
            }
        };
        (!refused.is_empty() || !accepted.is_empty()).then_some((refused, accepted))
    }

    /// Creates a room owned by `creator` (a local user).
    pub async fn create_room(
        &self,
        creator: &UserId,
        options: NewRoom,
    ) -> Result<RoomId, EngineError> {
        let create = EventBody::create(
            self.inner.node_id,
            creator.localpart(),
            now_ms(),
            options.kind,
            options.join_rule,
            options.history_visibility,
            rand::random(),
        )
        .sign(&self.inner.key)
        .map_err(EngineError::Invalid)?;
        let room_id = create.room_id();
        let room = Room::new(create.skeleton()).map_err(EngineError::Invalid)?;
        let slot = Arc::new(Mutex::new(RoomView::new(room, HashMap::new())));
        let mut view = slot.clone().lock_owned().await;
        let mut events = vec![Fresh {
            event: create,
            accepted: true,
            flips: Vec::new(),
        }];
        let mut contents: Vec<Content> = Vec::new();
        contents.extend(options.name.map(Content::Name));
        contents.extend(options.topic.map(Content::Topic));
        contents.extend(options.invite.into_iter().map(|target| {
            Content::Member(Member {
                target,
                membership: Membership::Invite,
                reason: None,
            })
        }));
        for content in contents {
            events.push(self.draft_insert(&mut view, creator, content)?);
        }
        self.write_rooms().insert(room_id, slot);
        self.index_room(&view);
        self.persist(view, events).await?;
        Ok(room_id)
    }

    /// Sends `content` into a room as `sender` (a local user).
    pub async fn send(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        content: Content,
    ) -> Result<Event, EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock_owned().await;
        self.send_locked(view, sender, content).await
    }

    /// Sends several independent changes (room settings) as one request:
    /// each is checked against the current state first, and none is sent
    /// unless all pass. All go in one commit.
    pub async fn send_all(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        contents: Vec<Content>,
    ) -> Result<Vec<Event>, EngineError> {
        let slot = self.room(room_id)?;
        let mut view = slot.lock_owned().await;
        for content in &contents {
            content.check_text()?;
            let body = view.room.draft(
                self.inner.node_id,
                sender.localpart(),
                now_ms(),
                content.clone(),
            );
            let event = body.sign(&self.inner.key).map_err(EngineError::Invalid)?;
            match view.room.check(&event) {
                Ok(None) => {}
                Ok(Some(e)) | Err(InsertError::Rejected(Rejection::Unauthorized(e))) => {
                    self.inner.metrics.events_refused.add(1);
                    return Err(forbidden(&view, sender, e));
                }
                Err(InsertError::Rejected(rejection)) => {
                    return Err(EngineError::Invalid(rejection));
                }
                Err(InsertError::MissingParents(_)) => {
                    return Err(EngineError::Invalid(Rejection::Shape("heads unknown")));
                }
            }
        }
        let mut fresh = Vec::with_capacity(contents.len());
        for content in contents {
            fresh.push(self.draft_insert(&mut view, sender, content)?);
        }
        let events = fresh.iter().map(|f| f.event.clone()).collect();
        self.persist(view, fresh).await?;
        Ok(events)
    }

    /// Takes an event from another node (federation). Its signature was
    /// checked by [`Event::decode`]; everything else is checked here.
    pub async fn ingest(&self, event: Event) -> Result<Ingested, EngineError> {
        self.ingest_batch(vec![event])
            .await
            .pop()
            .unwrap_or(Err(EngineError::UnknownEvent))
    }

    /// Takes events from another node in order (a sync batch or a push),
    /// each checked as [`Engine::ingest`] does; the new ones of a room are
    /// stored in one commit. One result per event.
    pub async fn ingest_batch(&self, events: Vec<Event>) -> Vec<Result<Ingested, EngineError>> {
        let mut results = Vec::with_capacity(events.len());
        let mut events = events.into_iter().peekable();
        while let Some(first) = events.next() {
            let room_id = first.room_id();
            let mut group = vec![first];
            while let Some(next) = events.next_if(|e| e.room_id() == room_id) {
                group.push(next);
            }
            match self.ingest_room(room_id, group.clone()).await {
                Ok(outcomes) => results.extend(outcomes),
                Err(e) => {
                    tracing::debug!(room = %room_id, error = %e, "batch not taken");
                    results.extend(group.iter().map(|_| {
                        Err(match &e {
                            EngineError::UnknownRoom => EngineError::UnknownRoom,
                            EngineError::Invalid(rejection) => {
                                EngineError::Invalid(rejection.clone())
                            }
                            // The store failed: nothing more is taken.
                            _ => EngineError::Unavailable(WriteFailed),
                        })
                    }));
                }
            }
        }
        results
    }

    /// [`Engine::ingest_batch`] for events of one room.
    async fn ingest_room(
        &self,
        room_id: RoomId,
        events: Vec<Event>,
    ) -> Result<Vec<Result<Ingested, EngineError>>, EngineError> {
        let horizon = now_ms().saturating_add(MAX_CLOCK_AHEAD_MS);
        let slot = match self.room(&room_id) {
            Ok(slot) => slot,
            Err(_) if matches!(events[0].content(), Content::Create(_)) => {
                let room = Room::new(events[0].skeleton()).map_err(EngineError::Invalid)?;
                let slot = Arc::new(Mutex::new(RoomView::new(room, HashMap::new())));
                // Locked before it is visible, so the create is queued first.
                let view = slot.clone().lock_owned().await;
                let slot = {
                    let mut rooms = self.write_rooms();
                    rooms.entry(room_id).or_insert(slot).clone()
                };
                if Arc::ptr_eq(OwnedMutexGuard::mutex(&view), &slot) {
                    self.index_room(&view);
                    let create = Fresh {
                        event: events[0].clone(),
                        accepted: true,
                        flips: Vec::new(),
                    };
                    self.persist(view, vec![create]).await?;
                }
                slot
            }
            Err(e) => return Err(e),
        };
        let mut view = slot.lock_owned().await;
        let mut results = Vec::with_capacity(events.len());
        let mut new = Vec::new();
        for event in events {
            if event.origin_ts() > horizon {
                results.push(Ok(Ingested::Deferred {
                    until_ms: event.origin_ts() - MAX_CLOCK_AHEAD_MS,
                }));
                continue;
            }
            if matches!(event.content(), Content::Create(_)) {
                // The room exists: its create is held (or this is another
                // room's, which the room id rules out).
                results.push(Ok(Ingested::Duplicate));
                continue;
            }
            results.push(match self.insert(&mut view, event.clone()) {
                Ok(Some(fresh)) => {
                    let accepted = fresh.accepted;
                    // New to the replica; maybe not to the store, if it
                    // was left out at load for want of its parents.
                    if let Some(seq) = view.stored_unheld.remove(&event.id()) {
                        view.arrivals().stored(&event, seq);
                    } else {
                        new.push(fresh);
                    }
                    Ok(Ingested::New { accepted })
                }
                Ok(None) => Ok(Ingested::Duplicate),
                Err(InsertError::MissingParents(missing)) => Ok(Ingested::MissingParents(missing)),
                Err(InsertError::Rejected(rejection)) => {
                    self.inner.metrics.events_refused.add(1);
                    Err(EngineError::Invalid(rejection))
                }
            });
        }
        if !new.is_empty() {
            self.persist(view, new).await?;
        }
        Ok(results)
    }

    /// Whether `node` may be sent this room's events: the room is public,
    /// or one of the node's users is joined or invited (invariant: a
    /// private room's events reach only nodes with a member in it).
    fn may_serve(view: &RoomView, node: NodeId) -> bool {
        let state = view.room.state();
        state.join_rule() == JoinRule::Public
            || state.members().iter().any(|(user, membership)| {
                user.node() == node && matches!(membership, Membership::Join | Membership::Invite)
            })
    }

    /// The events of a room that `node` lacks, given its heads `known`:
    /// everything that is neither one of them nor their ancestor, parents
    /// first, at most `limit` events and about `max_bytes`. `true` when
    /// more remain. A room `node` may not see is an unknown room.
    pub async fn backfill(
        &self,
        room_id: &RoomId,
        node: NodeId,
        known: &[EventId],
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock().await;
        if !Self::may_serve(&view, node) {
            return Err(EngineError::UnknownRoom);
        }
        let room = &view.room;
        let known: Vec<EventId> = known
            .iter()
            .filter(|id| room.contains(id))
            .copied()
            .collect();
        let heads = room.heads();
        if heads.iter().all(|h| known.contains(h)) {
            return Ok((Vec::new(), false));
        }
        // What the asker lacks: not its heads nor their ancestors, parents
        // first, found from the last cut below its heads rather than by
        // walking the whole room. Only durable events (those with a seq):
        // one the writer has not stored yet reaches peers once it is.
        let mut seqs = Vec::new();
        let mut more = false;
        {
            let arrivals = view.arrivals();
            for event in room.missing_for(&known) {
                let Some(seq) = arrivals.seq(&event.id()) else {
                    continue;
                };
                if seqs.len() >= limit {
                    more = true;
                    break;
                }
                seqs.push(seq);
            }
        }
        drop(view);
        let mut events = Vec::with_capacity(seqs.len());
        let mut bytes = 0;
        for stored in self.read_events(seqs).await? {
            if bytes >= max_bytes {
                return Ok((events, true));
            }
            bytes += stored.bytes.len();
            events.push(stored.bytes);
        }
        Ok((events, more))
    }

    /// The events of a room with these ids that this node holds, for a node
    /// that may see the room, in the order asked, up to about `max_bytes`
    /// (`true`: some were left out).
    pub async fn events_by_id(
        &self,
        room_id: &RoomId,
        node: NodeId,
        ids: &[EventId],
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock().await;
        if !Self::may_serve(&view, node) {
            return Err(EngineError::UnknownRoom);
        }
        let seqs: Vec<u64> = {
            let arrivals = view.arrivals();
            ids.iter().filter_map(|id| arrivals.seq(id)).collect()
        };
        drop(view);
        // Like a backfill batch: stop once `max_bytes` is reached, so 256
        // ids of large events (or one large event named 256 times) cannot
        // build a response beyond the frame limit. Read a few at a time, so
        // what is read and then left out stays small too.
        let (mut events, mut bytes) = (Vec::new(), 0);
        for chunk in seqs.chunks(16) {
            for stored in self.read_events(chunk.to_vec()).await? {
                if bytes >= max_bytes {
                    return Ok((events, true));
                }
                bytes += stored.bytes.len();
                events.push(stored.bytes);
            }
        }
        Ok((events, false))
    }

    /// Where a room's events go from here, as of its current state.
    pub fn reach(&self, room_id: &RoomId) -> Option<Reach> {
        self.inner
            .reaches
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room_id)
            .cloned()
    }

    /// The room's heads; empty when this node does not hold it.
    pub async fn heads(&self, room_id: &RoomId) -> Vec<EventId> {
        match self.room(room_id) {
            Ok(slot) => slot.lock().await.room.heads(),
            Err(_) => Vec::new(),
        }
    }

    /// Drafts an event on the room's heads, signs it and inserts it.
    fn draft_insert(
        &self,
        view: &mut RoomView,
        sender: &UserId,
        content: Content,
    ) -> Result<Fresh, EngineError> {
        debug_assert!(self.is_local(sender));
        content.check_text()?;
        let body = view
            .room
            .draft(self.inner.node_id, sender.localpart(), now_ms(), content);
        let event = body.sign(&self.inner.key).map_err(EngineError::Invalid)?;
        match self.insert(view, event) {
            Ok(Some(fresh)) => Ok(fresh),
            Ok(None) => Err(EngineError::Invalid(Rejection::Shape("duplicate event"))),
            Err(InsertError::Rejected(Rejection::Unauthorized(e))) => {
                self.inner.metrics.events_refused.add(1);
                Err(forbidden(view, sender, e))
            }
            Err(InsertError::Rejected(rejection)) => Err(EngineError::Invalid(rejection)),
            Err(InsertError::MissingParents(_)) => {
                Err(EngineError::Invalid(Rejection::Shape("heads unknown")))
            }
        }
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
                        Content::Member(_) | Content::Create(_) | Content::JoinRule(_)
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
        let arrivals = Some(view.arrivals.clone());
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

    /// Brings the local-membership index and the room's reach in line with
    /// its state. Called under the room lock after every change that can
    /// move a membership or the join rule: an accepted `create`, `member`
    /// or `join_rule` event, or resolution changing what was accepted.
    fn index_room(&self, view: &RoomView) {
        let room_id = view.room.room_id();
        let state = view.room.state();
        if state.kind() == Some(RoomKind::Direct) {
            self.inner
                .directs
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(room_id);
        }
        let mut reach = Reach {
            public: state.join_rule() == JoinRule::Public,
            nodes: Vec::new(),
            local: false,
        };
        {
            let mut index = self
                .inner
                .memberships
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for (user, membership) in state.members() {
                let in_room = matches!(membership, Membership::Join | Membership::Invite);
                if user.node() != self.inner.node_id {
                    if in_room && !reach.nodes.contains(&user.node()) {
                        reach.nodes.push(user.node());
                    }
                    continue;
                }
                reach.local |= in_room;
                let rooms = index.entry(user).or_default();
                if in_room || membership == Membership::Knock {
                    rooms.insert(room_id, membership);
                } else {
                    rooms.remove(&room_id);
                }
            }
        }
        self.inner
            .reaches
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room_id, reach);
    }

    /// Local users' rooms and memberships.
    fn memberships(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<UserId, HashMap<RoomId, Membership>>> {
        self.inner
            .memberships
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn write_rooms(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<RoomId, RoomSlot>> {
        self.inner.rooms.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the event is a membership change of `user`.
fn is_about(user: &UserId, item: &StreamItem) -> bool {
    matches!(item.event.content(), Content::Member(m) if &m.target == user)
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

#[cfg(test)]
mod tests {
    //! The receive path (`ingest`), which federation will drive: events
    //! signed by another node's key, on a real store.

    use super::*;
    use spaces_protocol::content::{Member, Membership, Message};

    fn open_with_writer(dir: &std::path::Path) -> (Engine, std::thread::JoinHandle<()>) {
        let store = Store::open(dir, &spaces_store::Options::default()).unwrap();
        let key = NodeKey::from_seed([1; 32]);
        Engine::open(
            store,
            key,
            Arc::new(Metrics::default()),
            64,
            PresenceOptions::default(),
        )
        .unwrap()
    }

    fn is_stored(engine: &Engine, event_id: &EventId) -> bool {
        engine
            .store()
            .events()
            .any(|stored| stored.unwrap().event_id == event_id.0)
    }

    fn open(dir: &std::path::Path) -> Engine {
        open_with_writer(dir).0
    }

    async fn public_room(engine: &Engine, owner: &UserId) -> RoomId {
        let options = NewRoom {
            kind: RoomKind::Room,
            join_rule: JoinRule::Public,
            history_visibility: HistoryVisibility::Shared,
            name: Some("lobby".into()),
            topic: None,
            invite: Vec::new(),
        };
        engine.create_room(owner, options).await.unwrap()
    }

    /// An engine on `dir` with a public room created by a local owner, and
    /// a second node's key with its user bob.
    async fn fixture(
        dir: &std::path::Path,
    ) -> (Engine, std::thread::JoinHandle<()>, RoomId, NodeKey, UserId) {
        let (engine, writer) = open_with_writer(dir);
        let owner = UserId::new("owner", engine.node_id()).unwrap();
        let room_id = public_room(&engine, &owner).await;
        let far = NodeKey::from_seed([2; 32]);
        let bob = UserId::new("bob", far.node_id()).unwrap();
        (engine, writer, room_id, far, bob)
    }

    fn join_of(user: &UserId) -> Content {
        member_of(user, Membership::Join)
    }

    fn member_of(user: &UserId, membership: Membership) -> Content {
        Content::Member(Member {
            target: user.clone(),
            membership,
            reason: None,
        })
    }

    fn said(body: &str) -> Content {
        Content::Message(Message {
            body: body.into(),
            ..Default::default()
        })
    }

    /// The owner's ban of `target` on the room's current heads, signed with
    /// this node's key but not inserted: as if it came back from a partition.
    async fn owners_ban(engine: &Engine, room_id: &RoomId, target: &UserId) -> Event {
        let ban = member_of(target, Membership::Ban);
        let key = NodeKey::from_seed([1; 32]);
        remote(engine, room_id, &key, "owner", now_ms(), ban).await
    }

    /// A body by `sender` on the room's current heads, signed by `key`.
    async fn remote(
        engine: &Engine,
        room_id: &RoomId,
        key: &NodeKey,
        sender: &str,
        ts: u64,
        content: Content,
    ) -> Event {
        let slot = engine.room(room_id).unwrap();
        let view = slot.lock().await;
        view.room
            .draft(key.node_id(), sender, ts, content)
            .sign(key)
            .unwrap()
    }

    #[tokio::test]
    async fn remote_events_are_admitted_resolved_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, writer, room_id, far, bob) = fixture(dir.path()).await;
        let join = join_of(&bob);
        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join).await;
        assert_eq!(
            engine.ingest(join.clone()).await.unwrap(),
            Ingested::New { accepted: true }
        );
        assert_eq!(engine.ingest(join).await.unwrap(), Ingested::Duplicate);
        let hello = remote(
            &engine,
            &room_id,
            &far,
            "bob",
            now_ms(),
            said("hi from afar"),
        )
        .await;
        assert_eq!(
            engine.ingest(hello.clone()).await.unwrap(),
            Ingested::New { accepted: true }
        );
        // Stored durably: a reopened engine has both, in the room's state.
        // The writer holds the store until the last engine handle is gone.
        drop(engine);
        writer.join().unwrap();
        let engine = open(dir.path());
        let slot = engine.room(&room_id).unwrap();
        let view = slot.lock().await;
        assert!(view.room.state().is_joined(&bob));
        assert!(view.room.is_accepted(&hello.id()));
    }

    #[tokio::test]
    async fn an_event_left_out_at_load_and_sent_again_is_not_stored_twice() {
        // Node A holds bob's join and message.
        let dir_a = tempfile::tempdir().unwrap();
        let (a, _writer, room_id, far, bob) = fixture(dir_a.path()).await;
        let join = remote(&a, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
        a.ingest(join.clone()).await.unwrap();
        let hello = remote(&a, &room_id, &far, "bob", now_ms(), said("hi")).await;
        a.ingest(hello.clone()).await.unwrap();
        // Node B's store has everything but the join: loading leaves the
        // message out of the replica for want of its parent.
        let dir_b = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir_b.path(), &spaces_store::Options::default()).unwrap();
            let stored: Vec<_> = a
                .store()
                .events()
                .map(Result::unwrap)
                .filter(|e| e.event_id != join.id().0)
                .collect();
            let new: Vec<spaces_store::NewEvent<'_>> = stored
                .iter()
                .map(|e| spaces_store::NewEvent {
                    room_id: e.room_id,
                    event_id: e.event_id,
                    bytes: &e.bytes,
                    flips: &[],
                })
                .collect();
            store.append_events(&new).unwrap();
            store.flush().unwrap();
        }
        let b = open(dir_b.path());
        let copies = |engine: &Engine| {
            engine
                .store()
                .events()
                .filter(|e| e.as_ref().unwrap().event_id == hello.id().0)
                .count()
        };
        assert_eq!(copies(&b), 1);
        {
            let slot = b.room(&room_id).unwrap();
            assert!(!slot.lock().await.room.contains(&hello.id()));
        }
        // A sync brings both: the message joins the replica, with the seq
        // it already had, and is not stored again.
        assert_eq!(
            b.ingest_batch(vec![join, hello.clone()])
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect::<Vec<_>>(),
            [
                Ingested::New { accepted: true },
                Ingested::New { accepted: true }
            ]
        );
        assert_eq!(copies(&b), 1);
        let slot = b.room(&room_id).unwrap();
        let view = slot.lock().await;
        assert!(view.room.is_accepted(&hello.id()));
        assert!(view.arrivals().seq(&hello.id()).is_some());
    }

    /// The reach federation publishes by follows every membership and join
    /// rule change, local or remote, and is rebuilt at start.
    #[tokio::test]
    async fn reach_follows_memberships_and_the_join_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, writer, room_id, far, bob) = fixture(dir.path()).await;
        let reach = |public, nodes: Vec<NodeId>| {
            Some(Reach {
                public,
                nodes,
                local: true,
            })
        };
        assert_eq!(engine.reach(&room_id), reach(true, vec![]));

        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
        engine.ingest(join).await.unwrap();
        assert_eq!(engine.reach(&room_id), reach(true, vec![far.node_id()]));

        let owner = UserId::new("owner", engine.node_id()).unwrap();
        let private = Content::JoinRule(JoinRule::Invite);
        engine.send(&owner, &room_id, private).await.unwrap();
        assert_eq!(engine.reach(&room_id), reach(false, vec![far.node_id()]));

        let leave = Content::Member(Member {
            target: bob.clone(),
            membership: Membership::Leave,
            reason: None,
        });
        let leave = remote(&engine, &room_id, &far, "bob", now_ms(), leave).await;
        engine.ingest(leave).await.unwrap();
        assert_eq!(engine.reach(&room_id), reach(false, vec![]));

        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
        assert!(engine.ingest(join).await.is_err(), "invite only now");
        drop(engine);
        writer.join().unwrap();
        let engine = open(dir.path());
        assert_eq!(engine.reach(&room_id), reach(false, vec![]));
        assert_eq!(engine.reach(&RoomId([9; 32])), None);
    }

    #[tokio::test]
    async fn unknown_parents_are_asked_for_and_unauthorized_events_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
        let join = join_of(&bob);
        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join).await;
        // A child of the (not yet delivered) join: its parent is missing.
        let mut body = remote(
            &engine,
            &room_id,
            &far,
            "bob",
            now_ms(),
            Content::Name("x".into()),
        )
        .await
        .body()
        .clone();
        body.parents = vec![join.id()];
        body.depth = join.depth() + 1;
        body.content = Content::Message(Message {
            body: "early".into(),
            ..Default::default()
        });
        let child = body.sign(&far).unwrap();
        assert_eq!(
            engine.ingest(child.clone()).await.unwrap(),
            Ingested::MissingParents(vec![join.id()])
        );
        // Bob, not a member, renaming the room: refused, not stored.
        let rename = remote(
            &engine,
            &room_id,
            &far,
            "bob",
            now_ms(),
            Content::Name("mine".into()),
        )
        .await;
        match engine.ingest(rename.clone()).await {
            Err(EngineError::Invalid(Rejection::Unauthorized(AuthError::NotMember))) => {}
            other => panic!("expected not_member, got {other:?}"),
        }
        assert!(!is_stored(&engine, &rename.id()));
        // Delivered in order, both are admitted.
        assert_eq!(
            engine.ingest(join).await.unwrap(),
            Ingested::New { accepted: true }
        );
        assert_eq!(
            engine.ingest(child).await.unwrap(),
            Ingested::New { accepted: true }
        );
    }

    /// A ban that raced a message refuses it once both are in (revocation):
    /// a message already shown is taken back through the ban's stream item,
    /// and one arriving after the ban is shown to no one.
    #[tokio::test]
    async fn a_ban_merged_late_refuses_what_it_raced_and_clients_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
        let owner = UserId::new("owner", engine.node_id()).unwrap();
        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
        engine.ingest(join).await.unwrap();
        // Drafted on the same heads: the owner's ban and two messages by bob.
        let ban = owners_ban(&engine, &room_id, &bob).await;
        let first = remote(&engine, &room_id, &far, "bob", now_ms(), said("first")).await;
        let second = remote(&engine, &room_id, &far, "bob", now_ms(), said("second")).await;
        let mut live = engine.subscribe();

        assert_eq!(
            engine.ingest(first.clone()).await.unwrap(),
            Ingested::New { accepted: true }
        );
        let item = live.recv().await.unwrap();
        assert_eq!((item.event.id(), item.accepted), (first.id(), true));
        assert!(engine.delivers_to(&owner, &item));

        assert_eq!(
            engine.ingest(ban.clone()).await.unwrap(),
            Ingested::New { accepted: true }
        );
        let ban_item = live.recv().await.unwrap();
        assert_eq!(ban_item.event.id(), ban.id());
        assert_eq!(ban_item.flips, vec![(first.id(), false)]);
        let flipped = || ban_item.flips.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            engine.acceptance_for(&owner, &room_id, flipped()).await,
            Some((vec![first.id()], Vec::new()))
        );
        // Someone not in the room hears nothing of it.
        let stranger = UserId::new("stranger", engine.node_id()).unwrap();
        assert_eq!(
            engine.acceptance_for(&stranger, &room_id, flipped()).await,
            None
        );
        // And the store has it, for clients that resume from before it.
        let stored = engine.store().flips_after(0, u64::MAX).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].seq, &stored[0].flips),
            (ban_item.seq, &vec![(first.id().0, false)])
        );

        assert_eq!(
            engine.ingest(second.clone()).await.unwrap(),
            Ingested::New { accepted: false }
        );
        let item = live.recv().await.unwrap();
        assert_eq!((item.event.id(), item.accepted), (second.id(), false));
        assert!(!engine.delivers_to(&owner, &item));
        assert!(is_stored(&engine, &second.id()), "stored all the same");

        // A client resuming from before all this gets neither message.
        let backlog: Vec<StreamItem> = [&first, &ban, &second]
            .into_iter()
            .enumerate()
            .map(|(i, e)| StreamItem::from_store(100 + i as u64, e.clone()))
            .collect();
        assert_eq!(
            engine.backlog_filter(&owner, &backlog).await,
            vec![false, true, false]
        );
    }

    /// Someone whose history starts after a flipped event hears nothing of
    /// it, not even its id (invariant 4).
    #[tokio::test]
    async fn acceptance_tells_nothing_from_before_the_users_floor() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _writer) = open_with_writer(dir.path());
        let owner = UserId::new("owner", engine.node_id()).unwrap();
        let options = NewRoom {
            kind: RoomKind::Room,
            join_rule: JoinRule::Public,
            history_visibility: HistoryVisibility::Joined,
            name: None,
            topic: None,
            invite: Vec::new(),
        };
        let room_id = engine.create_room(&owner, options).await.unwrap();
        let far = NodeKey::from_seed([2; 32]);
        let bob = UserId::new("bob", far.node_id()).unwrap();
        let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
        engine.ingest(join).await.unwrap();
        let ban = owners_ban(&engine, &room_id, &bob).await;
        let earlier = said("before you came");
        let earlier = remote(&engine, &room_id, &far, "bob", now_ms(), earlier).await;
        engine.ingest(earlier.clone()).await.unwrap();
        // A local user joins after bob's message, under `joined` visibility.
        let late = UserId::new("late", engine.node_id()).unwrap();
        engine.send(&late, &room_id, join_of(&late)).await.unwrap();
        engine.ingest(ban).await.unwrap();
        let flipped = vec![earlier.id()];
        assert_eq!(
            engine
                .acceptance_for(&owner, &room_id, flipped.clone())
                .await,
            Some((vec![earlier.id()], Vec::new()))
        );
        assert_eq!(engine.acceptance_for(&late, &room_id, flipped).await, None);
    }

    #[tokio::test]
    async fn a_clock_far_ahead_is_deferred_not_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
        let year_3000 = 32_503_680_000_000;
        let join = join_of(&bob);
        let join = remote(&engine, &room_id, &far, "bob", year_3000, join).await;
        assert_eq!(
            engine.ingest(join.clone()).await.unwrap(),
            Ingested::Deferred {
                until_ms: year_3000 - MAX_CLOCK_AHEAD_MS
            }
        );
        assert!(!is_stored(&engine, &join.id()));
        // Within the tolerated skew it is admitted.
        let soon = now_ms() + MAX_CLOCK_AHEAD_MS / 2;
        let far_user = UserId::new("carol", far.node_id()).unwrap();
        let join = join_of(&far_user);
        let join = remote(&engine, &room_id, &far, "carol", soon, join).await;
        assert_eq!(
            engine.ingest(join).await.unwrap(),
            Ingested::New { accepted: true }
        );
    }
}
