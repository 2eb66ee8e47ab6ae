//! The receive path: events from other nodes (signature already checked)
//! admitted, resolved and stored like local ones, and what peers may ask
//! of this node's rooms (backfill, events by id, heads).

use std::collections::HashMap;
use std::sync::Arc;

use spaces_protocol::content::*;
use spaces_protocol::{Event, EventId, InsertError, NodeId, Room, RoomId};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::*;

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

impl Engine {
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
    pub(super) async fn ingest_room(
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
                        let index = view.room.index_of(&event.id()).unwrap_or(u32::MAX);
                        view.arrivals().stored(&event, index, seq);
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
    pub(super) fn may_serve(view: &RoomView, node: NodeId) -> bool {
        let state = view.room.state();
        state.join_rule() == JoinRule::Public
            || state.members().iter().any(|(user, membership)| {
                user.node() == node && matches!(membership, Membership::Join | Membership::Invite)
            })
    }

    /// Whether one of `node`'s users is joined or invited in the room,
    /// public or not: who may fetch the blobs its events carry
    /// (docs/spec/federation.md#blobs).
    pub async fn has_member_node(&self, room_id: &RoomId, node: NodeId) -> bool {
        let Ok(slot) = self.room(room_id) else {
            return false;
        };
        let view = slot.lock().await;
        view.room
            .state()
            .members()
            .iter()
            .any(|(user, membership)| {
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
        let view = self.served(room_id, node).await?;
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
            for id in room.missing_ids_for(&known) {
                let Some(seq) = arrivals.seq(room, &id) else {
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
        let (events, cut) = self.signed_bytes(&seqs, max_bytes).await?;
        Ok((events, cut || more))
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
        let view = self.served(room_id, node).await?;
        let seqs: Vec<u64> = {
            let arrivals = view.arrivals();
            ids.iter()
                .filter_map(|id| arrivals.seq(&view.room, id))
                .collect()
        };
        drop(view);
        self.signed_bytes(&seqs, max_bytes).await
    }

    /// The room, locked, when `node` may be sent its events; otherwise it is
    /// an unknown room to that node.
    async fn served(
        &self,
        room_id: &RoomId,
        node: NodeId,
    ) -> Result<OwnedMutexGuard<RoomView>, EngineError> {
        let view = self.room(room_id)?.lock_owned().await;
        if !Self::may_serve(&view, node) {
            return Err(EngineError::UnknownRoom);
        }
        Ok(view)
    }

    /// The signed bytes of the stored events at `seqs`, in that order,
    /// stopping once `max_bytes` is reached (`true`: some were left out), so
    /// 256 ids of large events (or one large event named 256 times) cannot
    /// build a response beyond the frame limit. Read a few at a time, so
    /// what is read and then left out stays small too.
    async fn signed_bytes(
        &self,
        seqs: &[u64],
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, bool), EngineError> {
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

    /// The room's heads; empty when this node does not hold it.
    pub async fn heads(&self, room_id: &RoomId) -> Vec<EventId> {
        match self.room(room_id) {
            Ok(slot) => slot.lock().await.room.heads(),
            Err(_) => Vec::new(),
        }
    }
}
