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

use spaces_blobs::{BlobError, Blobs, Chunks, Hash, Meta, Reference, Upload};
use spaces_protocol::content::{Attachment, Content, Redaction};
use spaces_protocol::{Event, EventId, RoomId, UserId};

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
    /// An attachment names a blob the sender cannot read.
    #[error("attachment {0} is not a file you can share")]
    UnknownAttachment(String),
    #[error("a message carries at most {MAX_ATTACHMENTS} attachments")]
    TooManyAttachments,
    #[error(transparent)]
    Engine(#[from] EngineError),
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
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Media {
    pub fn new(blobs: Blobs, engine: Engine) -> Media {
        Media { blobs, engine }
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
            if self.reads(user, &reference).await {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `user` can read the message `reference` names.
    async fn reads(&self, user: &UserId, reference: &Reference) -> bool {
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
    }

    /// The record of a blob `user` may fetch; `NotFound` otherwise.
    pub async fn open(&self, user: &UserId, hash: &Hash) -> Result<Meta, MediaError> {
        let meta = self.blobs.meta(hash).await?.ok_or(MediaError::NotFound)?;
        if !self.may_read(user, hash).await? {
            return Err(MediaError::NotFound);
        }
        Ok(meta)
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
        let Some(message) = stored.and_then(|s| Event::decode_trusted(&s.bytes).ok()) else {
            return Ok(event);
        };
        if let Content::Message(m) = message.content() {
            let reference = Reference {
                scope: room_id.to_string(),
                item: target.to_string(),
            };
            for attachment in &m.attachments {
                self.blobs
                    .remove_reference(&Hash::from_bytes(attachment.hash), &reference)
                    .await?;
            }
        }
        Ok(event)
    }
}
