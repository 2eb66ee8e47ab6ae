//! The node's side of federation: verifying and storing what other nodes
//! send ([`NodeHost`], the receive path), answering their sync and join
//! requests, publishing this node's own events as they become durable, and
//! joining rooms held elsewhere.
//!
//! Named apart from the `spaces_federation` crate (the libp2p side, which
//! moves bytes and keeps score) and from `api/federation_admin.rs` (the
//! operator's endpoints).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spaces_blobs::{Blobs, Hash, Reference};
use spaces_federation::wire::{
    MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_BLOB_CHUNK, MAX_BLOB_GROUPS, Request, Response,
};
use spaces_federation::{FedError, Handle, Host, Offer, Route};
use spaces_protocol::content::{Content, Membership};
use spaces_protocol::ephemeral::EPHEMERAL_TAG;
use spaces_protocol::{
    Ephemeral, EphemeralKind, Event, EventId, NodeId, Presence, Rejection, RoomId, UserId,
};
use tokio::sync::broadcast::error::RecvError;

use crate::engine::{Engine, EngineError, Ingested};
use crate::services::banlists::BanLists;
use crate::services::links::{LinkError, Links};
use crate::services::moderation::Moderation;

/// Most rooms this node may be fetching at once for invites.
const MAX_WANTED: usize = 1024;
/// Most of those one node's invites may hold, and one local user's: a node
/// that invites without end (to rooms of its own making, validly signed)
/// fills its share, not the whole set; an invitee whose share is full
/// loses their oldest invite, not the newest, so a flood cannot shut out
/// the next real one.
const MAX_WANTED_PER_INVITER: usize = 16;
const MAX_WANTED_PER_INVITEE: usize = 16;

/// The node as federation sees it.
#[derive(Debug)]
pub struct NodeHost {
    engine: Engine,
    links: Links,
    /// The media store, to serve blobs to nodes in the rooms that
    /// reference them.
    blobs: Blobs,
    moderation: Moderation,
    ban_lists: BanLists,
    /// Rooms not held here that this node asked for (a join) or was
    /// invited to: only these may be created by a sync. Anything else
    /// about an unknown room is ignored, so nobody can make a node store
    /// rooms it never asked for.
    wanted: Mutex<WantedRooms>,
}

/// Rooms not held here that a local user is joining or was invited to.
#[derive(Debug, Default)]
struct WantedRooms {
    rooms: HashMap<RoomId, Wanted>,
}

#[derive(Debug)]
struct Wanted {
    since: Instant,
    /// The inviting node and the invited local user; `None` for a join by
    /// a local user, which is never turned away.
    invite: Option<(NodeId, UserId)>,
}

impl WantedRooms {
    /// Marks `room` as wanted until [`WANTED_FOR`] after `now`; false when
    /// the set, or the inviter's share of it, is full.
    fn want(&mut self, room: RoomId, invite: Option<(NodeId, UserId)>, now: Instant) -> bool {
        self.rooms
            .retain(|_, wanted| now.duration_since(wanted.since) < WANTED_FOR);
        if let Some(wanted) = self.rooms.get_mut(&room) {
            // A local join renews the wait and outranks an invite; a
            // repeated invite changes nothing.
            if invite.is_none() {
                wanted.since = now;
                wanted.invite = None;
            }
            return true;
        }
        if let Some((inviter, invitee)) = &invite {
            let invites = || {
                self.rooms
                    .iter()
                    .filter_map(|(r, w)| Some((r, w.since, w.invite.as_ref()?)))
            };
            if self.rooms.len() >= MAX_WANTED
                || invites()
                    .filter(|(_, _, (node, _))| node == inviter)
                    .count()
                    >= MAX_WANTED_PER_INVITER
            {
                return false;
            }
            let theirs: Vec<(RoomId, Instant)> = invites()
                .filter(|(_, _, (_, user))| user == invitee)
                .map(|(room, since, _)| (*room, since))
                .collect();
            if theirs.len() >= MAX_WANTED_PER_INVITEE
                && let Some((oldest, _)) = theirs.iter().min_by_key(|(_, since)| *since)
            {
                self.rooms.remove(oldest);
            }
        }
        self.rooms.insert(room, Wanted { since: now, invite });
        true
    }

    fn is_wanted(&self, room: &RoomId, now: Instant) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|wanted| now.duration_since(wanted.since) < WANTED_FOR)
    }
}

/// How long a room stays wanted without arriving.
const WANTED_FOR: Duration = Duration::from_secs(600);

impl NodeHost {
    pub fn new(
        engine: Engine,
        links: Links,
        blobs: Blobs,
        moderation: Moderation,
        ban_lists: BanLists,
    ) -> NodeHost {
        NodeHost {
            engine,
            links,
            blobs,
            moderation,
            ban_lists,
            wanted: Mutex::new(WantedRooms::default()),
        }
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, WantedRooms> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_wanted(&self, room: &RoomId) -> bool {
        self.wanted().is_wanted(room, Instant::now())
    }

    /// Screens other nodes' messages and edits against their room's
    /// AutoMod rules (a broken rule hides the event) and moderation policy
    /// before the engine admits them, so a mark to hide
    /// one is durable before the event can reach a subscriber. An edit that
    /// is hidden hides its target too (history shows a message with its
    /// latest edit). A failure to write a mark is logged and the event goes
    /// on: moderation fails open.
    async fn screen(&self, events: &[Event]) {
        let own = self.engine.node_id();
        for event in events {
            let (text, edited, mentions) = match event.content() {
                Content::Message(message) => (&message.body, None, &message.mentions),
                Content::Edit(edit) => (&edit.body, Some(edit.target), &edit.mentions),
                _ => continue,
            };
            if event.origin() == own || text.trim().is_empty() {
                continue;
            }
            let room_id = event.room_id();
            let Ok(slot) = self.engine.room(&room_id) else {
                continue;
            };
            let (policy, automod) = {
                let view = slot.lock().await;
                let state = view.room.state();
                (state.moderation_policy().cloned(), state.automod().cloned())
            };
            let now = crate::engine::now_ms();
            if let Some(rules) = automod
                && let Some(rule) = self.moderation.automod(
                    room_id,
                    &rules,
                    text,
                    crate::services::moderation::n_mentions(mentions),
                )
            {
                tracing::info!(room = %room_id, event = %event.id(), %rule, "received message hidden by the room's AutoMod");
                let ids = std::iter::once(event.id()).chain(edited).collect();
                if let Err(error) = self
                    .moderation
                    .hide_all(room_id, ids, &["automod"], now)
                    .await
                {
                    tracing::error!(%error, "storing a moderation mark failed; the message is shown");
                }
                continue;
            }
            let Some(policy) = policy else { continue };
            match self
                .moderation
                .screen_received(room_id, event.id(), &policy, text, now)
                .await
            {
                Ok(Some(mark)) if mark.hidden => {
                    let Some(target) = edited else { continue };
                    let labels: Vec<&str> = mark.labels.iter().map(String::as_str).collect();
                    if let Err(error) = self
                        .moderation
                        .hide_all(room_id, vec![target], &labels, now)
                        .await
                    {
                        tracing::error!(%error, "storing a moderation mark failed; the edited message is shown");
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "storing a moderation mark failed; the message is shown")
                }
            }
        }
    }

    fn unwant(&self, room: &RoomId) {
        self.wanted().rooms.remove(room);
    }

    /// An invite of one of our users makes the room worth fetching, within
    /// the inviter's and the invitee's shares.
    fn want_invited(&self, event: &Event) -> bool {
        let Content::Member(m) = event.content() else {
            return false;
        };
        if m.membership != Membership::Invite || !self.engine.is_local(&m.target) {
            return false;
        }
        let invite = Some((event.origin(), m.target.clone()));
        self.wanted().want(event.room_id(), invite, Instant::now())
    }
}

fn offer_of(result: Result<Ingested, EngineError>, room: RoomId) -> Offer {
    match result {
        Ok(Ingested::New { .. }) => Offer::New,
        Ok(Ingested::Duplicate) => Offer::Duplicate,
        Ok(Ingested::MissingParents(_)) => Offer::MissingParents { room },
        Ok(Ingested::Deferred { until_ms }) => Offer::Deferred { until_ms },
        Err(EngineError::Invalid(rejection)) => Offer::Rejected(rejection.code()),
        Err(EngineError::Forbidden(e)) => Offer::Rejected(e.code()),
        Err(EngineError::UnknownRoom) => Offer::UnknownRoom { room, fetch: false },
        Err(_) => Offer::Unavailable,
    }
}

impl Host for NodeHost {
    async fn offer(&self, _from: NodeId, events: Vec<Vec<u8>>) -> Vec<Offer> {
        let mut offers: Vec<Option<Offer>> = Vec::with_capacity(events.len());
        let mut decoded: Vec<(usize, Event)> = Vec::new();
        for (i, bytes) in events.iter().enumerate() {
            if bytes.first() == Some(&EPHEMERAL_TAG) {
                offers.push(Some(self.take_ephemeral(bytes).await));
                continue;
            }
            match Event::decode(bytes) {
                Ok(event) => {
                    decoded.push((i, event));
                    offers.push(None);
                }
                Err(rejection) => offers.push(Some(Offer::Rejected(rejection.code()))),
            }
        }
        // Events of rooms not held here: only a wanted room may start (with
        // its create event); an invite of a local user makes a room wanted.
        let mut take = Vec::new();
        let mut starting = HashSet::new();
        for (i, event) in decoded {
            let room = event.room_id();
            if !starting.contains(&room) && self.engine.room(&room).is_err() {
                let creates = matches!(event.content(), Content::Create(_));
                if creates && self.is_wanted(&room) {
                    // The rest of the batch may build on it.
                    starting.insert(room);
                } else {
                    let fetch = self.want_invited(&event);
                    offers[i] = Some(Offer::UnknownRoom { room, fetch });
                    continue;
                }
            }
            take.push((i, event));
        }
        let (indexes, events): (Vec<usize>, Vec<Event>) = take.into_iter().unzip();
        self.screen(&events).await;
        self.ban_lists.screen(&events).await;
        let rooms: Vec<RoomId> = events.iter().map(Event::room_id).collect();
        let results = self.engine.ingest_batch(events).await;
        for ((i, result), room) in indexes.into_iter().zip(results).zip(rooms) {
            if self.is_wanted(&room) && self.engine.room(&room).is_ok() {
                self.unwant(&room);
            }
            offers[i] = Some(offer_of(result, room));
        }
        offers
            .into_iter()
            .map(|o| o.unwrap_or(Offer::Unavailable))
            .collect()
    }

    async fn answer(&self, from: NodeId, request: Request) -> Response {
        let refused = |e: EngineError| match e {
            EngineError::UnknownRoom => Response::refused("unknown_room", "no such room here"),
            other => Response::refused("unavailable", other.to_string()),
        };
        match request {
            Request::Backfill { room, known, limit } => {
                let limit = limit.min(MAX_BATCH_EVENTS) as usize;
                match self
                    .engine
                    .backfill(&room, from, &known, limit, MAX_BATCH_BYTES)
                    .await
                {
                    Ok((events, more)) => Response::Events { events, more },
                    Err(e) => refused(e),
                }
            }
            Request::Events { room, ids } => {
                let served = self
                    .engine
                    .events_by_id(&room, from, &ids, MAX_BATCH_BYTES)
                    .await;
                match served {
                    Ok((events, more)) => Response::Events { events, more },
                    Err(e) => refused(e),
                }
            }
            Request::Join { room, user, code } => self.answer_join(from, room, &user, code).await,
            Request::Push { .. } => Response::refused("bad_request", "pushes are offered"),
            Request::Blob {
                room,
                event,
                hash,
                offset,
                len,
            } => {
                self.answer_blob(from, room, event, Hash::from_bytes(hash), offset, len)
                    .await
            }
            Request::BlobBao {
                room,
                event,
                hash,
                first,
                groups,
            } => {
                self.answer_blob_bao(from, room, event, Hash::from_bytes(hash), first, groups)
                    .await
            }
        }
    }

    async fn heads(&self, room: RoomId) -> Vec<EventId> {
        self.engine.heads(&room).await
    }
}

impl NodeHost {
    async fn take_ephemeral(&self, bytes: &[u8]) -> Offer {
        let ephemeral = match Ephemeral::decode(bytes, crate::engine::now_ms()) {
            Ok(ephemeral) => ephemeral,
            // Late (a slow relay or a skewed clock) is not hostile: dropped.
            Err(Rejection::Shape(_)) => return Offer::Duplicate,
            Err(rejection) => return Offer::Rejected(rejection.code()),
        };
        let room = ephemeral.body.room;
        match self.engine.take_ephemeral(ephemeral).await {
            Ok(()) => Offer::New,
            // A sender who just left, or a room not held here: dropped.
            Err(EngineError::Forbidden(_) | EngineError::UnknownRoom) => Offer::Duplicate,
            Err(e) => offer_of(Err(e), room),
        }
    }

    /// The record of a blob that `event` of `room` references, for a node
    /// with a member in the room; `unknown_blob` for anything else, so a
    /// node learns nothing of blobs it may not fetch
    /// (docs/spec/federation.md#f35).
    async fn servable_blob(
        &self,
        from: NodeId,
        room: RoomId,
        event: EventId,
        hash: &Hash,
    ) -> Result<spaces_blobs::Meta, Response> {
        let unknown = || Response::refused("unknown_blob", "no such blob here");
        let reference = Reference {
            scope: room.to_string(),
            item: event.to_string(),
        };
        match self.blobs.references(hash).await {
            Ok(references) if references.contains(&reference) => {}
            Ok(_) => return Err(unknown()),
            Err(e) => return Err(Response::refused("unavailable", e.to_string())),
        }
        if !self.engine.has_member_node(&room, from).await {
            return Err(unknown());
        }
        match self.blobs.meta(hash).await {
            Ok(Some(meta)) => Ok(meta),
            Ok(None) => Err(unknown()),
            Err(e) => Err(Response::refused("unavailable", e.to_string())),
        }
    }

    /// Bytes of a blob (`/spaces/sync/2`'s `Blob`), under
    /// [`NodeHost::servable_blob`].
    async fn answer_blob(
        &self,
        from: NodeId,
        room: RoomId,
        event: EventId,
        hash: Hash,
        offset: u64,
        len: u32,
    ) -> Response {
        let meta = match self.servable_blob(from, room, event, &hash).await {
            Ok(meta) => meta,
            Err(refused) => return refused,
        };
        if offset >= meta.size {
            return Response::refused("bad_request", "offset past the end");
        }
        let end = offset
            .saturating_add(len.min(MAX_BLOB_CHUNK).into())
            .min(meta.size);
        // Checked against the blob's tree as it is read: a copy that
        // rotted here is refused, never sent (F38).
        match self.blobs.read_checked(hash, offset, end).await {
            Ok(bytes) => Response::Blob {
                size: meta.size,
                bytes,
            },
            Err(e) => {
                tracing::warn!(%hash, error = %e, "a blob asked for does not read");
                Response::refused("unavailable", e.to_string())
            }
        }
    }

    /// Chunk groups of a blob with the BLAKE3 tree's parents over them
    /// (`/spaces/sync/3`'s `BlobBao`), under [`NodeHost::servable_blob`].
    /// The store checks its copy against the hash as it reads: a copy
    /// that rotted here is refused `unavailable`, never sent.
    async fn answer_blob_bao(
        &self,
        from: NodeId,
        room: RoomId,
        event: EventId,
        hash: Hash,
        first: u64,
        groups: u32,
    ) -> Response {
        let meta = match self.servable_blob(from, room, event, &hash).await {
            Ok(meta) => meta,
            Err(refused) => return refused,
        };
        if first >= spaces_blobs::bao::groups_of(meta.size) {
            return Response::refused("bad_request", "groups past the end");
        }
        match self
            .blobs
            .encode_groups(hash, first, groups.min(MAX_BLOB_GROUPS))
            .await
        {
            Ok((size, encoded)) => Response::BlobBao { size, encoded },
            Err(e) => {
                tracing::warn!(%hash, error = %e, "a blob asked for does not read");
                Response::refused("unavailable", e.to_string())
            }
        }
    }

    async fn answer_join(
        &self,
        from: NodeId,
        room: RoomId,
        user: &str,
        code: Option<String>,
    ) -> Response {
        let Ok(user) = user.parse::<UserId>() else {
            return Response::refused("bad_request", "not a user id");
        };
        if user.node() != from {
            return Response::refused("forbidden", "a node asks only for its own users");
        }
        let unknown = || Response::refused("unknown_room", "no such room here");
        if let Some(code) = code {
            return match self.links.admit(&code, &user, Some(room)).await {
                Ok(_) => Response::Joined,
                Err(error) => refused_link(error),
            };
        }
        let Ok(slot) = self.engine.room(&room) else {
            return unknown();
        };
        let view = slot.lock().await;
        let state = view.room.state();
        let public = state.join_rule() == spaces_protocol::content::JoinRule::Public;
        if public || state.membership(&user) == Some(Membership::Invite) {
            Response::Joined
        } else {
            unknown()
        }
    }
}

/// A `Join` refused by the links service, in federation's codes.
fn refused_link(error: LinkError) -> Response {
    let message = error.to_string();
    match error {
        LinkError::Unknown => Response::refused("unknown_invite_link", message),
        LinkError::AlreadyJoined => Response::refused("no_change", message),
        LinkError::Engine(EngineError::UnknownRoom) => {
            Response::refused("unknown_room", "no such room here")
        }
        LinkError::Engine(EngineError::Forbidden(auth)) => Response::refused(auth.code(), message),
        LinkError::Engine(EngineError::Invalid(rejection)) => {
            Response::refused(rejection.code(), message)
        }
        LinkError::TooManyUses | LinkError::Engine(_) | LinkError::Store(_) => {
            tracing::warn!(%error, "join by invite link failed");
            Response::refused("unavailable", "try again later")
        }
    }
}

/// The running federation, as the API sees it.
#[derive(Clone, Debug)]
pub struct Federation {
    pub handle: Handle,
    pub host: Arc<NodeHost>,
}

/// Why a room held elsewhere could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("no node that holds the room could be reached")]
    NoPeers,
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    #[error("{0}")]
    Failed(FedError),
}

impl Federation {
    /// A local user's typing notice or receipt: to local clients, and to
    /// the room's other nodes (gossip for a public room, push otherwise).
    pub async fn ephemeral(
        &self,
        user: &UserId,
        room: RoomId,
        kind: EphemeralKind,
    ) -> Result<(), EngineError> {
        let engine = &self.host.engine;
        let bytes = engine.ephemeral(user, &room, kind).await?;
        if let Some(route) = ephemeral_route(engine, &room) {
            // Lossy by nature: a notice that does not get out is not retried.
            let _ = self.handle.publish(room, bytes, route).await;
        }
        Ok(())
    }

    /// Gets `room` onto this node so `user` can join it: asks each of
    /// `via` (or, when empty, the room's providers in the DHT) to let the
    /// user in, then syncs the room from the first that agrees.
    pub async fn fetch_room(
        &self,
        user: &UserId,
        room: RoomId,
        via: Vec<NodeId>,
        code: Option<String>,
    ) -> Result<(), JoinError> {
        let candidates = if via.is_empty() {
            self.handle
                .find_providers(room)
                .await
                .map_err(JoinError::Failed)?
        } else {
            via
        };
        let mut last = JoinError::NoPeers;
        self.host.wanted().want(room, None, Instant::now());
        for node in candidates {
            let request = Request::Join {
                room,
                user: user.to_string(),
                code: code.clone(),
            };
            match self.handle.request(node, request).await {
                Ok(Response::Joined) => {}
                Ok(Response::Refused { code, message }) => {
                    last = JoinError::Refused { code, message };
                    continue;
                }
                Ok(_) => {
                    last = JoinError::Failed(FedError::Unexpected);
                    continue;
                }
                Err(e) => {
                    last = JoinError::Failed(e);
                    continue;
                }
            }
            match spaces_federation::sync_room(&self.handle, &*self.host, room, node).await {
                Ok(_) if self.host.engine.room(&room).is_ok() => return Ok(()),
                Ok(_) => {
                    last = JoinError::Failed(FedError::Failed("the room did not arrive".into()))
                }
                Err(e) => last = JoinError::Failed(e),
            }
        }
        // The room stays wanted a while: an invite may still bring it.
        Err(last)
    }
}

/// Where a room's ephemeral messages go: its other nodes, by gossip for a
/// public room and push otherwise; `None` when no other node is in it.
fn ephemeral_route(engine: &Engine, room: &RoomId) -> Option<Route> {
    let reach = engine.reach(room)?;
    (!reach.nodes.is_empty()).then_some(Route {
        public: reach.public,
        nodes: reach.nodes,
    })
}

/// Announces local users' presence to the other nodes of their rooms: each
/// change, gathered for [`PRESENCE_COALESCE`] and at most one per user per
/// [`PRESENCE_MIN_GAP`] (the latest state wins, so a flapping client costs
/// little), and every `refresh` those who are not offline again, which
/// keeps other nodes from lapsing them. Also lapses other nodes'
/// announcements that were not repeated in time.
pub async fn run_presence(engine: Engine, handle: Handle) {
    let options = engine.presence_options();
    if !options.enabled {
        return;
    }
    let ttl = options.ttl();
    let mut changes = engine.presence_changes();
    let mut refresh = tokio::time::interval(options.refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: HashMap<UserId, Presence> = HashMap::new();
    let mut last: HashMap<UserId, tokio::time::Instant> = HashMap::new();
    let flush = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(flush);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok((user, state)) => {
                    if pending.is_empty() {
                        flush.as_mut().reset(tokio::time::Instant::now() + PRESENCE_COALESCE);
                    }
                    pending.insert(user, state);
                }
                // A missed change lapses into the truth: the next refresh
                // repeats who is around, and a missed offline runs out.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            () = &mut flush, if !pending.is_empty() => {
                let now = tokio::time::Instant::now();
                last.retain(|_, at| now.duration_since(*at) < PRESENCE_MIN_GAP);
                let due: Vec<UserId> = pending
                    .keys()
                    .filter(|user| !last.contains_key(*user))
                    .cloned()
                    .collect();
                for user in due {
                    let state = pending.remove(&user).expect("pending");
                    announce(&engine, &handle, &user, state, ttl).await;
                    last.insert(user, now);
                }
                if let Some(next) = pending.keys().filter_map(|user| last.get(user)).min() {
                    flush.as_mut().reset(*next + PRESENCE_MIN_GAP);
                }
            },
            _ = refresh.tick() => {
                for (user, state) in engine.local_presence() {
                    announce(&engine, &handle, &user, state, ttl).await;
                }
            },
            _ = sweep.tick() => engine.expire_presence(),
        }
    }
}

/// How long presence changes gather before they are announced.
const PRESENCE_COALESCE: Duration = Duration::from_millis(200);
/// Least time between two announced changes of one user's presence.
const PRESENCE_MIN_GAP: Duration = Duration::from_secs(2);

async fn announce(engine: &Engine, handle: &Handle, user: &UserId, state: Presence, ttl: Duration) {
    for room in engine.joined_rooms(user) {
        announce_in(engine, handle, user, room, state, ttl).await;
    }
}

async fn announce_in(
    engine: &Engine,
    handle: &Handle,
    user: &UserId,
    room: RoomId,
    state: Presence,
    ttl: Duration,
) {
    // Signed only when some other node is in the room to hear it.
    let Some(route) = ephemeral_route(engine, &room) else {
        return;
    };
    let kind = EphemeralKind::Presence {
        state,
        ttl_secs: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
    };
    // The user may have left since: then there is nothing to say.
    if let Ok(bytes) = engine.sign_ephemeral(user, &room, kind).await {
        let _ = handle.publish(room, bytes, route).await;
    }
}

/// Publishes this node's events as they become durable, and keeps
/// federation's routes in line with rooms' membership.
pub async fn run_publisher(engine: Engine, handle: Handle) {
    let mut stream = engine.subscribe();
    for room in engine.room_ids() {
        update_route(&engine, &handle, room).await;
    }
    loop {
        let item = match stream.recv().await {
            Ok(item) => item,
            Err(RecvError::Lagged(n)) => {
                // Missed events reach other nodes by their next sync.
                tracing::warn!(missed = n, "publisher lagged; routes rebuilt");
                for room in engine.room_ids() {
                    update_route(&engine, &handle, room).await;
                }
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let event = &item.event;
        // Flips can change memberships too (a role change that refuses a
        // ban gives the member back).
        let changes_route = matches!(
            event.content(),
            Content::Member(_) | Content::JoinRule(_) | Content::Create(_)
        ) || !item.flips.is_empty();
        let ours = event.origin() == engine.node_id();
        if !changes_route && !ours {
            continue;
        }
        let reach = engine.reach(&item.room_id);
        if changes_route {
            set_route(&handle, item.room_id, reach.clone()).await;
        }
        if let Content::Member(m) = event.content()
            && m.membership == Membership::Join
            && engine.is_local(&m.target)
            && let Some(state) = engine.presence_joined(&m.target, item.room_id)
        {
            // Told to the room's other nodes now, not at the next refresh.
            let ttl = engine.presence_options().ttl();
            announce_in(&engine, &handle, &m.target, item.room_id, state, ttl).await;
        }
        let (true, Some(reach)) = (ours, reach) else {
            continue;
        };
        let mut nodes = reach.nodes;
        // Whoever a membership change is about hears of it, even when it
        // takes them out of the room (a kick, a ban, a declined invite).
        if let Content::Member(m) = event.content()
            && !engine.is_local(&m.target)
            && !nodes.contains(&m.target.node())
        {
            nodes.push(m.target.node());
        }
        let route = Route {
            public: reach.public,
            nodes,
        };
        if handle
            .publish(item.room_id, event.bytes().to_vec(), route)
            .await
            .is_err()
        {
            break;
        }
    }
}

async fn update_route(engine: &Engine, handle: &Handle, room: RoomId) {
    set_route(handle, room, engine.reach(&room)).await;
}

/// Federation's route for a room: none when no local user is in it.
async fn set_route(handle: &Handle, room: RoomId, reach: Option<crate::engine::Reach>) {
    let route = reach.and_then(|reach| {
        reach.local.then_some(Route {
            public: reach.public,
            nodes: reach.nodes,
        })
    });
    let _ = handle.set_room(room, route).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn node(n: u8) -> NodeId {
        spaces_protocol::NodeKey::from_seed([n; 32]).node_id()
    }

    fn user(name: &str) -> UserId {
        UserId::new(name, node(0)).unwrap()
    }

    #[test]
    fn an_inviter_or_invitee_fills_only_its_share_of_wanted_rooms() {
        let mut wanted = WantedRooms::default();
        let now = Instant::now();
        let room = |n: u32| {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&n.to_be_bytes());
            RoomId(id)
        };
        let second = Duration::from_secs(1);
        // One node inviting alice to room after room gets its share.
        for n in 0..MAX_WANTED_PER_INVITER as u32 {
            let at = now + second * n;
            assert!(wanted.want(room(n), Some((node(1), user("alice"))), at));
        }
        let now = now + second * 100;
        assert!(!wanted.want(room(100), Some((node(1), user("bob"))), now));
        // Another node's invite of alice gets in, in place of her oldest.
        assert!(wanted.want(room(101), Some((node(2), user("alice"))), now));
        assert!(!wanted.is_wanted(&room(0), now));
        assert!(wanted.is_wanted(&room(1), now));
        // A repeated invite does not renew the wait; a local join does.
        assert!(wanted.want(room(1), Some((node(1), user("alice"))), now));
        assert!(wanted.want(room(2), None, now));
        let later = now + WANTED_FOR - second * 50;
        assert!(!wanted.is_wanted(&room(1), later));
        assert!(wanted.is_wanted(&room(2), later));
        // Shares free up as wanted rooms lapse.
        assert!(wanted.want(room(100), Some((node(1), user("bob"))), later));

        // The whole set: 1024 invites from 64 nodes to 64 users fill it; a
        // further invite is turned away, a local join is not.
        let mut wanted = WantedRooms::default();
        for n in 0..MAX_WANTED as u32 {
            let who = (n / MAX_WANTED_PER_INVITER as u32) as u8;
            let invite = (node(who + 1), user(&format!("u{who}")));
            assert!(wanted.want(room(n), Some(invite), now), "invite {n}");
        }
        assert!(!wanted.want(room(5000), Some((node(200), user("new"))), now));
        assert!(wanted.want(room(5001), None, now));
    }
}
