//! The send path: a local user's event drafted on the room's heads, signed,
//! checked and inserted under the room lock, queued to the writer before
//! the lock is released and acknowledged once durable.

use std::collections::HashMap;
use std::sync::Arc;

use spaces_protocol::content::*;
use spaces_protocol::{Event, EventBody, InsertError, Rejection, Room, RoomId, UserId};
use tokio::sync::Mutex;

use super::*;

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

impl Engine {
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
        if let Err(error) = self.persist(view, events).await {
            // Not stored (the writer failed): the room must not stay listed.
            self.forget_new_room(&room_id);
            return Err(error);
        }
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

    /// Drafts an event on the room's heads, signs it and inserts it.
    pub(super) fn draft_insert(
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
}
