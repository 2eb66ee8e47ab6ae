//! Media: who may upload, fetch and attach a blob (`spaces_blobs` stores it).
//!
//! The store knows owners and references as opaque strings; this service
//! gives them meaning: an owner is a user id, a reference is (room id,
//! event id) of a message that carries the blob as an attachment. A user
//! may fetch a blob they uploaded (while the upload is kept), or one that
//! a message they can read references (`RoomView::readable` and the
//! message's position, under the room lock, as history reads it).
//! Everyone else gets `NotFound`, the same as for a hash the node lacks.
//!
//! A message's references are tagged after the engine stored it: a crash
//! in between leaves the blob readable to its uploader only (it fails
//! closed) and, past the grace period, collected. A redaction drops the
//! references of the message it redacts (read from the store: the replica
//! keeps no bodies); a crash in between leaves them to a later version's
//! repair.
//!
//! Between nodes: an attachment names the node that holds its blob. The
//! follower [`run_references`] tags the blobs of the events the node
//! stores (another node's before they are here) from a cursor kept among
//! the store's tags, catching up from the event store at start and after
//! lagging, so no event goes untagged; small remote attachments
//! (`media.eager_fetch_bytes`) are queued for an eager fetch. A fetch asks
//! the attachment's node, then the room's other member nodes, over
//! federation's request-response protocol: `Request::BlobBao`, 64 chunk
//! groups (1 MiB) a request, each answer checked group by group against
//! the hash (`spaces_blobs::bao::verify`) before it is written to
//! `incoming/`; from a node that speaks only `/spaces/sync/2`,
//! `Request::Blob`, checked whole. `Blobs::import` keeps the file only if
//! size and BLAKE3 hash match (docs/spec/federation.md#blobs). A holder
//! that sends what does not verify is charged `bad_blob` and the next one
//! asked. Fetches are bounded: one at a time per blob, `media.fetch_jobs`
//! node-wide, all tries within `media.fetch_timeout_secs`, never larger
//! than `media.max_file_bytes`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spaces_blobs::{BlobError, Blobs, Chunks, Hash, Meta, Reference, Upload, bao};
use spaces_federation::wire::{MAX_BLOB_CHUNK, MAX_BLOB_GROUPS, Request, Response};
use spaces_federation::{FedError, Handle};
use spaces_protocol::content::{Attachment, Content, Membership, Redaction};
use spaces_protocol::{Event, EventId, NodeId, RoomId, UserId};
use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;

use crate::engine::{Engine, EngineError};

/// Attachments one message may carry through this API (the protocol
/// allows 64; a chat message with more is a gallery nobody scrolls).
pub const MAX_ATTACHMENTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The store refused or failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Unknown to this node, or not readable by this user.
    #[error("no such media")]
    NotFound,
    /// An avatar that is not an image the user may use.
    #[error("{0}")]
    BadAvatar(String),
    /// An attachment names a blob the sender cannot read.
    #[error("attachment {0} is not a file you can share")]
    UnknownAttachment(String),
    #[error("a message carries at most {MAX_ATTACHMENTS} attachments")]
    TooManyAttachments,
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The blob is held by another node that could not deliver it now
    /// (unreachable, refused, too slow, or sent other bytes).
    #[error("the file is on another node that could not deliver it: {0}")]
    Unavailable(String),
}

/// What a message's sender names of an attachment; the rest comes from
/// the store's record.
#[derive(Debug)]
pub struct AttachmentRequest {
    pub hash: Hash,
    pub name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Media {
    blobs: Blobs,
    engine: Engine,
    fetcher: Option<Fetcher>,
    /// Profile avatar changes, one at a time: each reads the old avatar,
    /// pins the new one, stores the profile and unpins the old one.
    avatars: Arc<tokio::sync::Mutex<()>>,
}

/// The scope of a profile avatar's reference (its item is the user id):
/// readable by every signed-in user, as profiles are.
const PROFILE_SCOPE: &str = "profile";

/// How blobs held elsewhere are fetched.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Fetches running at once, node-wide.
    pub jobs: usize,
    /// The longest one fetch may take, all of its requests together.
    pub timeout: Duration,
    /// Attachments of remote messages this small or smaller are fetched
    /// when the message arrives (0: none, all wait for a reader).
    pub eager_bytes: u64,
    /// Eager fetches at once (each also takes one of `jobs`).
    pub eager_jobs: usize,
}

/// Fetches of blobs held by other nodes (see the module doc).
#[derive(Clone, Debug)]
struct Fetcher {
    handle: Handle,
    jobs: Arc<Semaphore>,
    /// One fetch per blob: later askers wait for it, then find it stored.
    running: Arc<Mutex<HashMap<Hash, Arc<tokio::sync::Mutex<()>>>>>,
    timeout: Duration,
    eager_bytes: u64,
    eager_jobs: usize,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Media {
    /// The media service; with `federation`, blobs other nodes hold are
    /// fetched when first read.
    pub fn new(blobs: Blobs, engine: Engine, federation: Option<(Handle, FetchOptions)>) -> Media {
        let fetcher = federation.map(|(handle, options)| Fetcher {
            handle,
            jobs: Arc::new(Semaphore::new(options.jobs.max(1))),
            running: Arc::default(),
            timeout: options.timeout,
            eager_bytes: options.eager_bytes,
            eager_jobs: options.eager_jobs.max(1),
        });
        Media {
            blobs,
            engine,
            fetcher,
            avatars: Arc::default(),
        }
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Stores `body` as `user`'s upload.
    pub async fn upload<S, E>(&self, user: &UserId, body: S) -> Result<Upload, MediaError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        Ok(self
            .blobs
            .upload(&user.to_string(), body, now_secs())
            .await?)
    }

    /// Whether `user` may fetch the blob.
    pub async fn may_read(&self, user: &UserId, hash: &Hash) -> Result<bool, MediaError> {
        if self.blobs.uploaded_by(&user.to_string(), hash).await? {
            return Ok(true);
        }
        for reference in self.blobs.references(hash).await? {
            if self.reads(user, &reference, hash).await {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `user` can read the message `reference` names, the room
    /// whose avatar `hash` is, or (any user) the profile whose avatar it is.
    async fn reads(&self, user: &UserId, reference: &Reference, hash: &Hash) -> bool {
        if reference.scope == PROFILE_SCOPE {
            return true;
        }
        let (Ok(room_id), Ok(event_id)) = (
            reference.scope.parse::<RoomId>(),
            reference.item.parse::<EventId>(),
        ) else {
            return false;
        };
        let Ok(slot) = self.engine.room(&room_id) else {
            return false;
        };
        let view = slot.lock().await;
        let Ok(floor) = view.readable(user) else {
            return false;
        };
        view.room.position(&event_id).is_some_and(|at| at >= floor)
            || view
                .room
                .state()
                .avatar()
                .is_some_and(|avatar| avatar.hash == *hash.as_bytes())
    }

    /// The record of a blob `user` may fetch; `NotFound` otherwise. A blob
    /// held by another node that a message `user` can read references is
    /// fetched first (see the module doc).
    pub async fn open(&self, user: &UserId, hash: &Hash) -> Result<Meta, MediaError> {
        if let Some(meta) = self.blobs.meta(hash).await? {
            if !self.may_read(user, hash).await? {
                return Err(MediaError::NotFound);
            }
            return Ok(meta);
        }
        for reference in self.blobs.references(hash).await? {
            if !self.reads(user, &reference, hash).await {
                continue;
            }
            if let Some(attachment) = self.attachment(&reference, hash).await? {
                return self.fetch(*hash, &attachment, &reference).await;
            }
        }
        Err(MediaError::NotFound)
    }

    /// The attachment naming `hash` in the event `reference` names.
    async fn attachment(
        &self,
        reference: &Reference,
        hash: &Hash,
    ) -> Result<Option<Attachment>, MediaError> {
        let Ok(event_id) = reference.item.parse::<EventId>() else {
            return Ok(None);
        };
        let store = self.engine.store().clone();
        let stored = tokio::task::spawn_blocking(move || store.event_by_id(&event_id.0))
            .await
            .map_err(|e| BlobError::Store(e.to_string()))?
            .map_err(EngineError::from)?;
        let Some(event) = stored.and_then(|s| Event::decode_trusted(&s.bytes).ok()) else {
            return Ok(None);
        };
        Ok(attachments(event.content())
            .iter()
            .find(|a| a.hash == *hash.as_bytes())
            .cloned())
    }

    /// Fetches a blob from the node `attachment` names, verified, and
    /// stores it as referenced by `reference`.
    async fn fetch(
        &self,
        hash: Hash,
        attachment: &Attachment,
        reference: &Reference,
    ) -> Result<Meta, MediaError> {
        let Some(fetcher) = &self.fetcher else {
            return Err(MediaError::NotFound);
        };
        let holder = attachment.node;
        if holder == self.engine.node_id() {
            // Ours, and gone: nobody else is asked.
            return Err(MediaError::NotFound);
        }
        let limit = self.blobs.options().max_file_bytes;
        if attachment.size > limit {
            return Err(MediaError::Unavailable(format!(
                "it is larger than this node's limit of {limit} bytes"
            )));
        }
        let (Ok(room), Ok(event)) = (
            reference.scope.parse::<RoomId>(),
            reference.item.parse::<EventId>(),
        ) else {
            return Err(MediaError::NotFound);
        };
        // Dropped in reverse order: the blob's lock, this fetch's share of
        // it, then the entry if no other fetch shares it (also when the
        // asker goes away mid-fetch and this future is dropped).
        let _entry = RunningEntry {
            running: fetcher.running.clone(),
            hash,
        };
        let running = fetcher
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hash)
            .or_default()
            .clone();
        let _one = running.lock().await;
        if let Some(meta) = self.blobs.meta(&hash).await? {
            return Ok(meta);
        }
        let _job = fetcher
            .jobs
            .acquire()
            .await
            .map_err(|e| BlobError::Store(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + fetcher.timeout;
        let mut last = String::from("no node of the room holds it");
        for holder in self.holders(&room, holder).await {
            let attempt = self.fetch_from(
                fetcher,
                holder,
                (room, event, hash),
                attachment.size,
                reference,
            );
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(meta)) => return Ok(meta),
                Ok(Err(Attempt::Stop(e))) => return Err(e),
                Ok(Err(Attempt::Next(why))) => {
                    tracing::debug!(%holder, %hash, %why, "a holder did not deliver a blob");
                    last = why;
                }
                Err(_) => {
                    return Err(MediaError::Unavailable(format!(
                        "no answer within {} s",
                        fetcher.timeout.as_secs()
                    )));
                }
            }
        }
        Err(MediaError::Unavailable(last))
    }

    /// The nodes to ask for a blob `named` holds: `named` first, then the
    /// other nodes with a joined member in `room` (any of them may have
    /// fetched it; each serves it only if it holds it, under F35), at most
    /// [`MAX_HOLDERS`] in all, never this node.
    async fn holders(&self, room: &RoomId, named: NodeId) -> Vec<NodeId> {
        let me = self.engine.node_id();
        let mut out = Vec::with_capacity(MAX_HOLDERS);
        if named != me {
            out.push(named);
        }
        let Ok(slot) = self.engine.room(room) else {
            return out;
        };
        let view = slot.lock().await;
        for (user, membership) in view.room.state().members().iter() {
            let node = user.node();
            if out.len() >= MAX_HOLDERS {
                break;
            }
            if *membership == Membership::Join && node != me && !out.contains(&node) {
                out.push(node);
            }
        }
        out
    }

    /// One holder's try: verified streaming (`BlobBao`) if it speaks
    /// `/spaces/sync/3`, else the whole-blob check of `/2` (`Blob`). A
    /// holder that sends what does not verify is charged `bad_blob`.
    async fn fetch_from(
        &self,
        fetcher: &Fetcher,
        holder: NodeId,
        (room, event, hash): (RoomId, EventId, Hash),
        size: u64,
        reference: &Reference,
    ) -> Result<Meta, Attempt> {
        let ids = (room, event, *hash.as_bytes());
        let mut legacy = false;
        loop {
            let faults = Arc::new(Faults::default());
            let body = if legacy {
                chunks(fetcher.handle.clone(), holder, ids, size, faults.clone())
            } else {
                bao_chunks(fetcher.handle.clone(), holder, ids, size, faults.clone())
            };
            let imported = self.blobs.import(hash, size, body, reference).await;
            let corrupt = |why: String| async move {
                tracing::warn!(%holder, %hash, %why, "a node sent bytes that are not the blob");
                fetcher.handle.charge(holder, "bad_blob").await;
                Attempt::Next(format!("its holder sent other bytes: {why}"))
            };
            return match imported {
                Ok(meta) => Ok(meta),
                Err(BlobError::Mismatch(why)) => Err(corrupt(why).await),
                Err(BlobError::Interrupted(why)) if faults.corrupt.load(Ordering::Relaxed) => {
                    Err(corrupt(why).await)
                }
                Err(BlobError::Interrupted(_))
                    if !legacy && faults.unsupported.load(Ordering::Relaxed) =>
                {
                    legacy = true;
                    continue;
                }
                Err(BlobError::Interrupted(why)) => Err(Attempt::Next(why)),
                Err(e @ BlobError::Store(_)) => Err(Attempt::Stop(e.into())),
                // Too large, of a refused type, an image too large to
                // describe: the blob itself, wherever it comes from.
                Err(e) => Err(Attempt::Stop(MediaError::Unavailable(e.to_string()))),
            };
        }
    }

    /// Fetches the attachments of a remote message that are at most
    /// `media.eager_fetch_bytes`, through `queue` (see [`run_references`]).
    fn queue_eager(
        &self,
        queue: &tokio::sync::mpsc::Sender<Eager>,
        reference: &Reference,
        attachments: &[Attachment],
    ) {
        let Some(fetcher) = &self.fetcher else {
            return;
        };
        for attachment in attachments {
            if attachment.size > fetcher.eager_bytes || attachment.node == self.engine.node_id() {
                continue;
            }
            let eager = Eager {
                attachment: attachment.clone(),
                reference: reference.clone(),
            };
            if queue.try_send(eager).is_err() {
                // Full: a reader fetches it when asked, as for a large file.
                tracing::debug!("media: eager fetch queue full; left to the first reader");
            }
        }
    }

    /// Bytes `start..end` of a blob (the caller opened it first).
    pub fn read(&self, hash: Hash, start: u64, end: u64) -> Chunks {
        self.blobs.read(hash, start, end)
    }

    /// Sends a message whose attachments name blobs `sender` may fetch,
    /// filled in from the store's records, then tags them as referenced by
    /// the stored event.
    pub async fn send(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        content: Content,
        requests: Vec<AttachmentRequest>,
    ) -> Result<Event, MediaError> {
        let mut content = content;
        if requests.len() > MAX_ATTACHMENTS {
            return Err(MediaError::TooManyAttachments);
        }
        let mut hashes = Vec::with_capacity(requests.len());
        if let Content::Message(message) = &mut content {
            for request in requests {
                let hex = request.hash.to_hex();
                let meta = match self.open(sender, &request.hash).await {
                    Ok(meta) => meta,
                    Err(MediaError::NotFound) => return Err(MediaError::UnknownAttachment(hex)),
                    Err(e) => return Err(e),
                };
                let name = spaces_blobs::sniff::sanitize_name(
                    request.name.as_deref().unwrap_or(&hex[..16]),
                );
                message.attachments.push(Attachment {
                    hash: *request.hash.as_bytes(),
                    size: meta.size,
                    mime: meta.mime,
                    name,
                    width: meta.width,
                    height: meta.height,
                    node: self.engine.node_id(),
                });
                hashes.push(request.hash);
            }
        }
        let event = self.engine.send(sender, room_id, content).await?;
        let reference = Reference {
            scope: room_id.to_string(),
            item: event.id().to_string(),
        };
        for hash in hashes {
            self.blobs.add_reference(&hash, &reference).await?;
        }
        Ok(event)
    }

    /// An image `user` may use as an avatar: one they may fetch, of an
    /// image type, with thumbnails.
    async fn avatar_image(&self, user: &UserId, hash: &Hash) -> Result<Meta, MediaError> {
        let meta = match self.open(user, hash).await {
            Ok(meta) => meta,
            Err(MediaError::NotFound) => {
                return Err(MediaError::BadAvatar(format!(
                    "{} is not a file you uploaded or can see",
                    hash.to_hex()
                )));
            }
            Err(e) => return Err(e),
        };
        if !meta.mime.starts_with("image/") || meta.thumbs.is_empty() {
            return Err(MediaError::BadAvatar(format!(
                "{} is a {} file, not an image",
                hash.to_hex(),
                meta.mime
            )));
        }
        Ok(meta)
    }

    /// Stores `user`'s profile with `avatar` (a hash checked by
    /// [`Media::avatar_image`], or none): the new avatar is pinned (a
    /// `profile` reference) before the profile names it, the old one
    /// unpinned after. A crash in between keeps an old avatar pinned; it
    /// never leaves the profile naming an unpinned one.
    pub async fn put_profile(
        &self,
        accounts: &crate::services::accounts::Accounts,
        user: &UserId,
        username: String,
        mut profile: spaces_store::Profile,
        avatar: Option<Hash>,
    ) -> Result<(), MediaError> {
        let _one = self.avatars.lock().await;
        let reference = Reference {
            scope: PROFILE_SCOPE.into(),
            item: user.to_string(),
        };
        let store = self.engine.store().clone();
        let name = username.clone();
        let previous = tokio::task::spawn_blocking(move || store.profile(&name))
            .await
            .map_err(|e| BlobError::Store(e.to_string()))?
            .map_err(EngineError::from)?
            .avatar
            .and_then(|text| text.parse::<Hash>().ok());
        if let Some(hash) = &avatar {
            self.avatar_image(user, hash).await?;
            self.blobs.add_reference(hash, &reference).await?;
        }
        profile.avatar = avatar.map(|hash| hash.to_hex().to_string());
        accounts
            .put_profile(username, profile)
            .await
            .map_err(EngineError::from)?;
        if let Some(old) = previous
            && Some(old) != avatar
        {
            self.blobs.remove_reference(&old, &reference).await?;
        }
        Ok(())
    }

    /// The room state change that makes `hash` the room's avatar (or, with
    /// none, clears it): the attachment filled in from the store's record
    /// of an image `sender` may fetch. Tag it with [`Media::pin`] once sent.
    pub async fn room_avatar(
        &self,
        sender: &UserId,
        hash: Option<Hash>,
    ) -> Result<Content, MediaError> {
        let Some(hash) = hash else {
            return Ok(Content::Avatar(None));
        };
        let meta = self.avatar_image(sender, &hash).await?;
        Ok(Content::Avatar(Some(Attachment {
            hash: *hash.as_bytes(),
            size: meta.size,
            mime: meta.mime,
            name: format!("{}.avatar", &hash.to_hex()[..16]),
            width: meta.width,
            height: meta.height,
            node: self.engine.node_id(),
        })))
    }

    /// Tags the blobs a stored event of this node names (a room avatar's)
    /// as referenced by it: pinned while the event is kept.
    pub async fn pin(&self, event: &Event) -> Result<(), MediaError> {
        let reference = Reference {
            scope: event.room_id().to_string(),
            item: event.id().to_string(),
        };
        for attachment in attachments(event.content()) {
            self.blobs
                .add_reference(&Hash::from_bytes(attachment.hash), &reference)
                .await?;
        }
        Ok(())
    }

    /// Redacts a message; its attachments lose the reference, and a blob
    /// nothing else keeps goes at the next sweep.
    pub async fn redact(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: EventId,
    ) -> Result<Event, MediaError> {
        let content = Content::Redaction(Redaction {
            target,
            reason: None,
        });
        let event = self.engine.send(sender, room_id, content).await?;
        let store = self.engine.store().clone();
        let stored = tokio::task::spawn_blocking(move || store.event_by_id(&target.0))
            .await
            .map_err(|e| BlobError::Store(e.to_string()))?
            .map_err(EngineError::from)?;
        if let Some(message) = stored.and_then(|s| Event::decode_trusted(&s.bytes).ok()) {
            self.forget(room_id, &message).await?;
        }
        Ok(event)
    }

    /// Drops the references a redacted message's attachments held.
    async fn forget(&self, room_id: &RoomId, message: &Event) -> Result<(), MediaError> {
        if let Content::Message(m) = message.content() {
            let reference = Reference {
                scope: room_id.to_string(),
                item: message.id().to_string(),
            };
            for attachment in &m.attachments {
                self.blobs
                    .remove_reference(&Hash::from_bytes(attachment.hash), &reference)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Removes a blob's entry from `Fetcher::running` when the last fetch
/// that shares it ends.
struct RunningEntry {
    running: Arc<Mutex<HashMap<Hash, Arc<tokio::sync::Mutex<()>>>>>,
    hash: Hash,
}

impl Drop for RunningEntry {
    fn drop(&mut self) {
        let mut map = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if map
            .get(&self.hash)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.hash);
        }
    }
}

/// The blobs an event's content names.
fn attachments(content: &Content) -> &[Attachment] {
    match content {
        Content::Message(m) => &m.attachments,
        Content::Avatar(Some(avatar)) => std::slice::from_ref(avatar),
        _ => &[],
    }
}

/// Most nodes one fetch asks: the one the attachment names and other
/// member nodes of the room.
const MAX_HOLDERS: usize = 8;
/// Busy answers waited out per holder, each by the pause asked (at most 5 s).
const MAX_BUSY: u32 = 5;
/// Attachments waiting for an eager fetch; more are left to their readers.
const EAGER_QUEUE: usize = 256;
/// The cursor of [`run_references`] among the store's tags.
const CURSOR: &str = "media-references";
/// Events between two saves of the cursor while following the stream.
const CURSOR_EVERY: u32 = 256;
/// Events read from the store per page when catching up.
const CATCH_UP_PAGE: usize = 500;

/// A holder's bytes of a blob, in order, as they arrive.
type Fetched =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, String>> + Send>>;

/// How one holder's try ended, when it did not deliver.
enum Attempt {
    /// Ask the next holder (this one is unreachable, refused, lacks the
    /// blob, or sent what does not verify).
    Next(String),
    /// No holder can help: the store failed, or the blob itself is not
    /// one this node keeps (too large, a refused type).
    Stop(MediaError),
}

/// What a holder did wrong, set by the streams below.
#[derive(Default)]
struct Faults {
    /// It answered what no honest node would: bytes that do not verify,
    /// more than asked, nothing, another size.
    corrupt: AtomicBool,
    /// It does not speak `/spaces/sync/3` (nothing was sent to it).
    unsupported: AtomicBool,
}

/// A remote attachment to fetch on arrival.
struct Eager {
    attachment: Attachment,
    reference: Reference,
}

/// Waits out a busy answer; false when this holder was busy too often.
async fn busy_wait(busy: &mut u32, retry_after_ms: u32) -> bool {
    if *busy >= MAX_BUSY {
        return false;
    }
    *busy += 1;
    let pause = Duration::from_millis(retry_after_ms.clamp(100, 5_000).into());
    tokio::time::sleep(pause).await;
    true
}

/// The bytes of a blob from `holder` by verified streaming: up to
/// [`MAX_BLOB_GROUPS`] chunk groups (1 MiB) a request, each answer checked
/// group by group against the hash (`spaces_blobs::bao::verify`) before
/// any of its bytes are passed on. An answer that does not verify ends
/// the stream at once with `faults.corrupt` set: its bytes and everything
/// after them are never read into the file.
fn bao_chunks(
    handle: Handle,
    holder: NodeId,
    (room, event, hash): (RoomId, EventId, [u8; 32]),
    size: u64,
    faults: Arc<Faults>,
) -> Fetched {
    let total = bao::groups_of(size);
    let state = (0u64, 0u32, VecDeque::<bytes::Bytes>::new());
    Box::pin(futures_util::stream::unfold(Some(state), move |state| {
        let (handle, faults) = (handle.clone(), faults.clone());
        async move {
            let (mut first, mut busy, mut ready) = state?;
            if let Some(bytes) = ready.pop_front() {
                return Some((Ok(bytes), Some((first, busy, ready))));
            }
            if first >= total {
                return None;
            }
            let groups = (total - first).min(u64::from(MAX_BLOB_GROUPS)) as u32;
            let fault = |why: String| {
                faults.corrupt.store(true, Ordering::Relaxed);
                Some((Err(why), None))
            };
            loop {
                let request = Request::BlobBao {
                    room,
                    event,
                    hash,
                    first,
                    groups,
                };
                match handle.request(holder, request).await {
                    Ok(Response::BlobBao {
                        size: told,
                        encoded,
                    }) => {
                        if told != size {
                            return fault(format!("the holder says {told} bytes, not {size}"));
                        }
                        let hash = Hash::from_bytes(hash);
                        match bao::verify(&hash, size, first, groups, &encoded) {
                            Ok(leaves) => ready = leaves.into(),
                            Err(corrupt) => return fault(corrupt.to_string()),
                        }
                        first += u64::from(groups);
                        let bytes = ready.pop_front()?;
                        return Some((Ok(bytes), Some((first, busy, ready))));
                    }
                    Ok(Response::Refused { code, message }) => {
                        return Some((Err(format!("refused: {code}: {message}")), None));
                    }
                    Ok(_) => return fault("an unexpected answer".into()),
                    Err(FedError::Busy { retry_after_ms })
                        if busy_wait(&mut busy, retry_after_ms).await => {}
                    Err(e @ FedError::Unsupported(_)) => {
                        faults.unsupported.store(true, Ordering::Relaxed);
                        return Some((Err(e.to_string()), None));
                    }
                    Err(e) => return Some((Err(e.to_string()), None)),
                }
            }
        }
    }))
}

/// The bytes of a blob from a holder that speaks only `/spaces/sync/2`,
/// [`MAX_BLOB_CHUNK`] a request, in order, checked as a whole when they
/// have all come (`Blobs::import`); `faults.corrupt` is set when the
/// holder answers what no honest node would (more than asked, nothing,
/// another size).
fn chunks(
    handle: Handle,
    holder: NodeId,
    (room, event, hash): (RoomId, EventId, [u8; 32]),
    size: u64,
    faults: Arc<Faults>,
) -> Fetched {
    let state = (0u64, 0u32);
    Box::pin(futures_util::stream::unfold(Some(state), move |state| {
        let (handle, faults) = (handle.clone(), faults.clone());
        async move {
            let (offset, mut busy) = state?;
            if offset >= size {
                return None;
            }
            let len = (size - offset).min(u64::from(MAX_BLOB_CHUNK)) as u32;
            let fault = |why: String| {
                faults.corrupt.store(true, Ordering::Relaxed);
                Some((Err(why), None))
            };
            loop {
                let request = Request::Blob {
                    room,
                    event,
                    hash,
                    offset,
                    len,
                };
                match handle.request(holder, request).await {
                    Ok(Response::Blob { size: told, bytes }) => {
                        if told != size {
                            return fault(format!("the holder says {told} bytes, not {size}"));
                        }
                        if bytes.is_empty() || bytes.len() > len as usize {
                            return fault(format!("{} bytes for {len} asked", bytes.len()));
                        }
                        let next = offset + bytes.len() as u64;
                        return Some((Ok(bytes::Bytes::from(bytes)), Some((next, busy))));
                    }
                    Ok(Response::Refused { code, message }) => {
                        return Some((Err(format!("refused: {code}: {message}")), None));
                    }
                    Ok(_) => return fault("an unexpected answer".into()),
                    Err(FedError::Busy { retry_after_ms })
                        if busy_wait(&mut busy, retry_after_ms).await => {}
                    Err(e) => return Some((Err(e.to_string()), None)),
                }
            }
        }
    }))
}

/// Keeps the references of the events the node stores (see the module
/// doc) until the engine's stream ends: from where it got to last time
/// (its cursor among the store's tags), through what it missed when the
/// stream ran ahead of it, read back from the store, then live. Remote
/// attachments of at most `media.eager_fetch_bytes` are queued for an
/// eager fetch.
pub async fn run_references(media: Media) {
    // Subscribe before catching up, so nothing falls between the two.
    let mut stream = media.engine.subscribe();
    let (queue, waiting) = tokio::sync::mpsc::channel(EAGER_QUEUE);
    let eager = tokio::spawn(run_eager(media.clone(), waiting));
    let mut done = match media.blobs.cursor(CURSOR).await {
        // A cursor past the log (a store restored from an older copy)
        // would skip the events that get those seqs again.
        Ok(cursor) => cursor.min(media.engine.store().last_seq()),
        Err(error) => {
            tracing::error!(%error, "media: reading the cursor failed; starting from the log's start");
            0
        }
    };
    if let Err(error) = media.catch_up(&queue, &mut done).await {
        tracing::error!(%error, "media: catching up from the store failed");
    }
    let (mut unsaved, mut saved) = (0u32, std::time::Instant::now());
    loop {
        match stream.recv().await {
            Ok(item) => {
                if item.seq <= done {
                    continue;
                }
                if item.accepted {
                    media.take(item.room_id, &item.event, &queue).await;
                }
                done = item.seq;
                // The cursor follows every so many events, or a second
                // after the last save once the stream is quiet; a crash
                // replays what came after it (tags set again, which
                // changes nothing).
                unsaved += 1;
                if unsaved >= CURSOR_EVERY
                    || (stream.is_empty() && saved.elapsed() >= Duration::from_secs(1))
                {
                    media.save_cursor(done).await;
                    (unsaved, saved) = (0, std::time::Instant::now());
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(missed, "media: lagged; catching up from the store");
                if let Err(error) = media.catch_up(&queue, &mut done).await {
                    tracing::error!(%error, "media: catching up from the store failed");
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
    media.save_cursor(done).await;
    eager.abort();
}

/// Runs the eager fetches [`Media::queue_eager`] queued,
/// `media.eager_fetch_jobs` at once.
async fn run_eager(media: Media, mut waiting: tokio::sync::mpsc::Receiver<Eager>) {
    let Some(fetcher) = media.fetcher.clone() else {
        return;
    };
    let jobs = Arc::new(Semaphore::new(fetcher.eager_jobs));
    while let Some(eager) = waiting.recv().await {
        let Ok(permit) = jobs.clone().acquire_owned().await else {
            return;
        };
        let media = media.clone();
        tokio::spawn(async move {
            let hash = Hash::from_bytes(eager.attachment.hash);
            if let Err(error) = media.fetch(hash, &eager.attachment, &eager.reference).await {
                tracing::debug!(%hash, %error, "media: eager fetch failed; left to the first reader");
            }
            drop(permit);
        });
    }
}

impl Media {
    /// Tags the blobs of a stored event: another node's (its attachments,
    /// a room avatar, queued for an eager fetch when small), or this
    /// node's own when the send path's tagging was cut short by a crash
    /// (only blobs the store holds); and drops those of a message a
    /// redaction ends.
    async fn take(&self, room_id: RoomId, event: &Event, queue: &tokio::sync::mpsc::Sender<Eager>) {
        if let Err(error) = self.take_event(room_id, event, queue).await {
            tracing::warn!(%error, "media: references of an event not kept");
        }
    }

    async fn take_event(
        &self,
        room_id: RoomId,
        event: &Event,
        queue: &tokio::sync::mpsc::Sender<Eager>,
    ) -> Result<(), MediaError> {
        if let Content::Redaction(redaction) = event.content() {
            let store = self.engine.store().clone();
            let target = redaction.target;
            let stored = tokio::task::spawn_blocking(move || store.event_by_id(&target.0))
                .await
                .map_err(|e| BlobError::Store(e.to_string()))?
                .map_err(EngineError::from)?;
            if let Some(message) = stored.and_then(|s| Event::decode_trusted(&s.bytes).ok())
                && message.room_id() == room_id
            {
                self.forget(&room_id, &message).await?;
            }
            return Ok(());
        }
        let attachments = attachments(event.content());
        if attachments.is_empty() {
            return Ok(());
        }
        let reference = Reference {
            scope: room_id.to_string(),
            item: event.id().to_string(),
        };
        if event.origin() == self.engine.node_id() {
            for attachment in attachments {
                self.blobs
                    .add_reference(&Hash::from_bytes(attachment.hash), &reference)
                    .await?;
            }
            return Ok(());
        }
        for attachment in attachments {
            self.blobs
                .add_remote_reference(&Hash::from_bytes(attachment.hash), &reference)
                .await?;
        }
        self.queue_eager(queue, &reference, attachments);
        Ok(())
    }

    /// Takes the events of the store's stream after `done`, page by page,
    /// up to its end, moving the cursor after each page. An event the
    /// room now holds as refused is skipped, as the live stream skips it.
    async fn catch_up(
        &self,
        queue: &tokio::sync::mpsc::Sender<Eager>,
        done: &mut u64,
    ) -> Result<(), MediaError> {
        loop {
            let store = self.engine.store().clone();
            let after = *done;
            let (items, last) = tokio::task::spawn_blocking(move || {
                crate::engine::stream_page(&store, after, CATCH_UP_PAGE)
            })
            .await
            .map_err(|e| BlobError::Store(e.to_string()))?
            .map_err(EngineError::from)?;
            if last == after {
                return Ok(());
            }
            for item in items {
                let relevant = !attachments(item.event.content()).is_empty()
                    || matches!(item.event.content(), Content::Redaction(_));
                if relevant && self.accepted(&item.room_id, &item.event.id()).await {
                    self.take(item.room_id, &item.event, queue).await;
                }
            }
            *done = last;
            self.save_cursor(last).await;
        }
    }

    /// Whether the room holds the event as accepted now.
    async fn accepted(&self, room_id: &RoomId, event: &EventId) -> bool {
        let Ok(slot) = self.engine.room(room_id) else {
            return false;
        };
        let view = slot.lock().await;
        view.room.is_accepted(event)
    }

    async fn save_cursor(&self, seq: u64) {
        if let Err(error) = self.blobs.set_cursor(CURSOR, seq).await {
            tracing::warn!(%error, "media: the cursor was not saved");
        }
    }
}
