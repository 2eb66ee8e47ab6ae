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
//! Between nodes: an attachment names the node that holds its blob. When a
//! message from another node arrives, [`run_references`] tags its blobs as
//! referenced before they are here; the first reader who asks for one
//! makes this node fetch it from its holder over federation's
//! request-response protocol (`Request::Blob`, 1 MiB a request), hashing
//! it as it streams into `incoming/`; `Blobs::import` keeps it only if
//! size and BLAKE3 hash match (docs/spec/federation.md#blobs). A holder
//! that sends other bytes is charged `bad_blob`. Fetches are bounded: one
//! at a time per blob, `media.fetch_jobs` node-wide, each within
//! `media.fetch_timeout_secs`, never larger than `media.max_file_bytes`.
//! A crash between storing a message and tagging its blobs leaves them
//! unfetchable here (fails closed), never readable by the wrong user.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spaces_blobs::{BlobError, Blobs, Chunks, Hash, Meta, Reference, Upload};
use spaces_federation::wire::{MAX_BLOB_CHUNK, Request, Response};
use spaces_federation::{FedError, Handle};
use spaces_protocol::content::{Attachment, Content, Redaction};
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
}

/// Fetches of blobs held by other nodes (see the module doc).
#[derive(Clone, Debug)]
struct Fetcher {
    handle: Handle,
    jobs: Arc<Semaphore>,
    /// One fetch per blob: later askers wait for it, then find it stored.
    running: Arc<Mutex<HashMap<Hash, Arc<tokio::sync::Mutex<()>>>>>,
    timeout: Duration,
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
        async {
            if let Some(meta) = self.blobs.meta(&hash).await? {
                return Ok(meta);
            }
            let _job = fetcher
                .jobs
                .acquire()
                .await
                .map_err(|e| BlobError::Store(e.to_string()))?;
            let faulty = Arc::new(AtomicBool::new(false));
            let body = chunks(
                fetcher.handle.clone(),
                holder,
                (room, event, *hash.as_bytes()),
                attachment.size,
                faulty.clone(),
            );
            let imported = tokio::time::timeout(
                fetcher.timeout,
                self.blobs.import(hash, attachment.size, body, reference),
            )
            .await;
            match imported {
                Ok(Ok(meta)) => Ok(meta),
                Ok(Err(BlobError::Mismatch(why))) => {
                    tracing::warn!(%holder, %hash, %why, "a node sent bytes that are not the blob");
                    fetcher.handle.charge(holder, "bad_blob").await;
                    Err(MediaError::Unavailable(
                        "its holder sent other bytes".into(),
                    ))
                }
                Ok(Err(BlobError::Interrupted(why))) => {
                    if faulty.load(Ordering::Relaxed) {
                        fetcher.handle.charge(holder, "bad_blob").await;
                    }
                    Err(MediaError::Unavailable(why))
                }
                Ok(Err(e @ BlobError::Store(_))) => Err(e.into()),
                // Too large, of a refused type, an image too large to
                // describe: not this reader's fault, and not servable.
                Ok(Err(e)) => Err(MediaError::Unavailable(e.to_string())),
                Err(_) => Err(MediaError::Unavailable(format!(
                    "no answer within {} s",
                    fetcher.timeout.as_secs()
                ))),
            }
        }
        .await
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

    /// Tags the blobs of an event another node sent (its attachments, a
    /// room avatar) as referenced by it, and drops those of a message a
    /// remote redaction ends.
    async fn take_remote(&self, room_id: RoomId, event: &Event) -> Result<(), MediaError> {
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
        let reference = Reference {
            scope: room_id.to_string(),
            item: event.id().to_string(),
        };
        for attachment in attachments(event.content()) {
            self.blobs
                .add_remote_reference(&Hash::from_bytes(attachment.hash), &reference)
                .await?;
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

/// The bytes of a blob from `holder`, [`MAX_BLOB_CHUNK`] a request, in
/// order; `faulty` is set when the holder answers what no honest node
/// would (more than asked, nothing, another size).
fn chunks(
    handle: Handle,
    holder: NodeId,
    (room, event, hash): (RoomId, EventId, [u8; 32]),
    size: u64,
    faulty: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, String>> + Send + Unpin {
    /// Busy answers waited out per fetch, each by the pause asked (at most 5 s).
    const MAX_BUSY: u32 = 5;
    let state = (0u64, 0u32);
    Box::pin(futures_util::stream::unfold(Some(state), move |state| {
        let (handle, faulty) = (handle.clone(), faulty.clone());
        async move {
            let (offset, mut busy) = state?;
            if offset >= size {
                return None;
            }
            let len = (size - offset).min(u64::from(MAX_BLOB_CHUNK)) as u32;
            let fault = |why: String| {
                faulty.store(true, Ordering::Relaxed);
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
                    Err(FedError::Busy { retry_after_ms }) if busy < MAX_BUSY => {
                        busy += 1;
                        let pause = Duration::from_millis(retry_after_ms.clamp(100, 5_000).into());
                        tokio::time::sleep(pause).await;
                    }
                    Err(e) => return Some((Err(e.to_string()), None)),
                }
            }
        }
    }))
}

/// Keeps the references of events other nodes send (see the module doc)
/// until the engine's stream ends.
pub async fn run_references(media: Media) {
    let mut stream = media.engine.subscribe();
    let node = media.engine.node_id();
    loop {
        let item = match stream.recv().await {
            Ok(item) => item,
            Err(RecvError::Lagged(missed)) => {
                // Their blobs stay unfetchable here (fails closed).
                tracing::warn!(
                    missed,
                    "media: events missed; their attachments are not fetchable here"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if !item.accepted || item.event.origin() == node {
            continue;
        }
        if let Err(error) = media.take_remote(item.room_id, &item.event).await {
            tracing::warn!(%error, "media: references of a remote event not kept");
        }
    }
}
