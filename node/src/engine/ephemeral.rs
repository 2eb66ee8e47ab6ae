//! Typing notices, read receipts and presence: signed but never stored,
//! fanned out to local clients ([`EphemeralItem`]) and, through the
//! federation glue, to peers.

use std::sync::Arc;

use spaces_protocol::{
    AuthError, Ephemeral, EphemeralBody, EphemeralKind, EventId, RoomId, UserId,
};
use tokio::sync::broadcast;

use super::*;

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
    /// When it was made: someone who joined a room after that does not get
    /// it through that room, however late their WebSocket takes it.
    pub made: std::time::Instant,
}

/// What an [`EphemeralItem`] says about its `user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Typing { room_id: RoomId, typing: bool },
    Receipt { room_id: RoomId, event_id: EventId },
    Presence(spaces_protocol::Presence),
}

impl EphemeralItem {
    pub(super) fn new(room_id: RoomId, user: UserId, kind: &EphemeralKind) -> EphemeralItem {
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

    pub(super) fn presence(
        user: UserId,
        state: spaces_protocol::Presence,
        rooms: Vec<RoomId>,
    ) -> EphemeralItem {
        EphemeralItem::to_rooms(rooms, user, Notice::Presence(state))
    }

    pub(super) fn to_rooms(rooms: Vec<RoomId>, user: UserId, notice: Notice) -> EphemeralItem {
        EphemeralItem {
            rooms,
            unless_in: Vec::new(),
            to: None,
            user,
            notice,
            rendered: std::sync::OnceLock::new(),
            made: std::time::Instant::now(),
        }
    }
}

impl Engine {
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
}
