//! Reading events back whole. The replica holds skeletons (no text, files
//! or signed bytes: see ARCHITECTURE.md §What is resident), so whatever a
//! client or a peer is shown comes from the store: the room lock is held
//! only to pick the events and copy what the read model says of them, and
//! the store is read after it is released, off the async threads.

use std::collections::HashMap;

use spaces_protocol::content::Content;
use spaces_protocol::{Event, EventId};
use spaces_store::StoredEvent;
use tokio::sync::MutexGuard;

use super::view::{Reactions, RoomView};
use super::{Engine, EngineError};
use spaces_protocol::{RoomId, UserId};

/// An event as a client is shown it: read back whole, with the read
/// model's notes when it is a message.
#[derive(Debug)]
pub struct Shown {
    pub event: Event,
    pub notes: Option<Notes>,
}

/// What the room says of a message besides its own content.
#[derive(Debug, Default)]
pub struct Notes {
    pub reactions: Reactions,
    /// The latest accepted edit: its id and the body it gives the message.
    pub edited: Option<(EventId, String)>,
    pub redacted: bool,
    pub thread_count: usize,
}

/// Where a history page is taken.
#[derive(Clone, Copy, Debug)]
pub enum PageAt {
    /// Older than this event (exclusive), or the newest.
    Before(Option<EventId>),
    /// Newer than this event (exclusive), or the oldest.
    After(Option<EventId>),
    /// A window centred on this event (inclusive).
    Around(EventId),
}

/// A history page, in canonical order, and whether more lies either side
/// (each only for the directions the page was taken in).
#[derive(Debug)]
pub struct Page {
    pub events: Vec<Shown>,
    pub more_before: bool,
    pub more_after: bool,
}

/// Shown in the main timeline: everything accepted except reactions, edits
/// and redactions (folded into their targets) and thread replies (in the
/// thread view).
fn in_timeline(content: &Content) -> bool {
    match content {
        Content::Message(m) => m.thread.is_none(),
        Content::Reaction(_) | Content::Edit(_) | Content::Redaction(_) => false,
        _ => true,
    }
}

/// Up to `limit` positions of `floor..len` for which `shown` holds:
/// backwards from just before `start`, or forwards from `start` (inclusive),
/// in scan order; and whether another lies beyond them.
fn scan(
    (start, backwards): (usize, bool),
    (floor, len): (usize, usize),
    limit: usize,
    shown: &dyn Fn(usize) -> bool,
) -> (Vec<usize>, bool) {
    let mut positions = Vec::with_capacity(limit);
    let candidates: Box<dyn Iterator<Item = usize>> = if backwards {
        Box::new((floor..start.min(len)).rev())
    } else {
        Box::new(start.max(floor)..len)
    };
    for pos in candidates {
        if !shown(pos) {
            continue;
        }
        if positions.len() == limit {
            return (positions, true);
        }
        positions.push(pos);
    }
    (positions, false)
}

/// A [`Notes`] as copied under the room lock: the edit by seq, its body
/// still to read.
struct Pending {
    seq: u64,
    notes: Option<(Notes, Option<(EventId, u64)>)>,
}

impl Engine {
    /// A page of `room_id`'s timeline as `user` may read it: at most `limit`
    /// accepted, durable timeline events from their floor on (invariant 4:
    /// an anchor before it is an unknown event).
    pub async fn history(
        &self,
        room_id: &RoomId,
        user: &UserId,
        at: PageAt,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock().await;
        let floor = view.readable(user)?;
        let len = view.room.len();
        let bounds = (floor, len);
        // A page from an event before the floor is empty or starts at the
        // floor; a window around one is not the caller's to find.
        let position = |id: &EventId| view.room.position(id).ok_or(EngineError::UnknownEvent);
        // Only what is on disk: a received event is in the replica a moment
        // before the writer stores it, and until then has no seq (a read
        // marker on it would find nothing). The arrivals lock is taken per
        // candidate: the writer needs it after every commit to this room.
        let shown = |pos: usize| {
            view.room.at(pos).is_some_and(|(event, accepted)| {
                accepted && in_timeline(event.content()) && view.seq(&event.id()).is_some()
            })
        };
        let (positions, more_before, more_after) = match at {
            PageAt::Around(anchor) => {
                let anchor = position(&anchor)?;
                if anchor < floor {
                    return Err(EngineError::UnknownEvent);
                }
                let n_before = (limit - 1) / 2;
                let (mut positions, more_before) = scan((anchor, true), bounds, n_before, &shown);
                positions.reverse();
                if shown(anchor) {
                    positions.push(anchor);
                }
                let n_after = limit - positions.len();
                let (after, more_after) = scan((anchor + 1, false), bounds, n_after, &shown);
                positions.extend(after);
                (positions, more_before, more_after)
            }
            PageAt::Before(from) => {
                let start = from.as_ref().map(position).transpose()?.unwrap_or(len);
                let (mut positions, more) = scan((start, true), bounds, limit, &shown);
                positions.reverse();
                (positions, more, false)
            }
            PageAt::After(from) => {
                let start = from
                    .as_ref()
                    .map(position)
                    .transpose()?
                    .map_or(floor, |a| a + 1);
                let (positions, more) = scan((start, false), bounds, limit, &shown);
                (positions, false, more)
            }
        };
        let ids: Vec<EventId> = positions
            .iter()
            .filter_map(|p| view.room.id_at(*p))
            .collect();
        let events = self.show(view, &ids, true).await?;
        Ok(Page {
            events,
            more_before,
            more_after,
        })
    }

    /// A thread as `user` may read it: its root and its replies, in
    /// canonical order.
    pub async fn thread(
        &self,
        room_id: &RoomId,
        user: &UserId,
        root: EventId,
    ) -> Result<(Shown, Vec<Shown>), EngineError> {
        let slot = self.room(room_id)?;
        let view = slot.lock().await;
        let floor = view.readable(user)?;
        let visible = |id: &EventId| {
            view.room.position(id).is_some_and(|p| p >= floor)
                && view.room.is_accepted(id)
                && view.seq(id).is_some()
        };
        if !visible(&root) {
            return Err(EngineError::UnknownEvent);
        }
        let ids: Vec<EventId> = std::iter::once(root)
            .chain(
                view.agg
                    .threads
                    .get(&root)
                    .into_iter()
                    .flatten()
                    .filter(|id| visible(id))
                    .copied(),
            )
            .collect();
        let mut shown = self.show(view, &ids, true).await?.into_iter();
        let root = shown
            .next()
            .filter(|s| s.event.id() == root)
            .ok_or(EngineError::UnknownEvent)?;
        Ok((root, shown.collect()))
    }

    /// The durable events `ids` of the room `view` guards, whole and in the
    /// order asked, with their notes when `annotate` (history, threads; not
    /// for frames every member shares). Events not yet durable are left out.
    /// Releases the room before reading the store.
    pub async fn show(
        &self,
        view: MutexGuard<'_, RoomView>,
        ids: &[EventId],
        annotate: bool,
    ) -> Result<Vec<Shown>, EngineError> {
        let pending: Vec<Pending> = {
            let arrivals = view.arrivals();
            ids.iter()
                .filter_map(|id| {
                    let seq = arrivals.seq(&view.room, id)?;
                    let is_message = view.room.is_message(id);
                    let notes = (annotate && is_message).then(|| {
                        let agg = &view.agg;
                        let redacted = agg.redacted.contains(id);
                        let edit = agg
                            .edits
                            .get(id)
                            .filter(|_| !redacted)
                            .and_then(|edit| Some((*edit, arrivals.seq(&view.room, edit)?)));
                        let notes = Notes {
                            reactions: agg.reactions.get(id).cloned().unwrap_or_default(),
                            edited: None,
                            redacted,
                            thread_count: agg.threads.get(id).map_or(0, Vec::len),
                        };
                        (notes, edit)
                    });
                    Some(Pending { seq, notes })
                })
                .collect()
        };
        drop(view);
        let mut seqs: Vec<u64> = pending
            .iter()
            .flat_map(|p| {
                let edit = p
                    .notes
                    .as_ref()
                    .and_then(|(_, edit)| edit.map(|(_, seq)| seq));
                std::iter::once(p.seq).chain(edit)
            })
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let read = self.read_events(seqs).await?;
        let mut whole: HashMap<u64, Event> = HashMap::with_capacity(read.len());
        for stored in read {
            match Event::decode_trusted(&stored.bytes) {
                Ok(event) => {
                    whole.insert(stored.seq, event);
                }
                Err(rejection) => {
                    tracing::error!(%rejection, seq = stored.seq, "stored event does not decode")
                }
            }
        }
        Ok(pending
            .into_iter()
            .filter_map(|p| {
                let event = whole.get(&p.seq)?.clone();
                let notes = p.notes.map(|(mut notes, edit)| {
                    notes.edited =
                        edit.and_then(|(edit_id, seq)| match whole.get(&seq)?.content() {
                            Content::Edit(e) => Some((edit_id, e.body.clone())),
                            _ => None,
                        });
                    notes
                });
                Some(Shown { event, notes })
            })
            .collect())
    }

    /// The stored events at `seqs`, in that order, read off the async
    /// threads.
    pub(super) async fn read_events(
        &self,
        seqs: Vec<u64>,
    ) -> Result<Vec<StoredEvent>, EngineError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.inner.store.clone();
        match tokio::task::spawn_blocking(move || store.events_at(&seqs)).await {
            Ok(read) => Ok(read?),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}

/// One event of the store's stream, read back whole, with what its arrival
/// changed about earlier events: what a follower of the live stream
/// ([`super::StreamItem`]) catches up from after a restart or a lag.
#[derive(Debug)]
pub struct StoredItem {
    pub seq: u64,
    pub room_id: RoomId,
    pub event: Event,
    /// Earlier events whose acceptance it flipped, and to what.
    pub flips: Vec<(EventId, bool)>,
}

/// Up to `limit` events of the store's stream after `after`, with their
/// flips, and the last seq read (`after` when there is nothing more).
/// Every seq of the page counts as read, even one that does not decode
/// (logged). Blocking: call it off the async threads.
pub fn stream_page(
    store: &spaces_store::Store,
    after: u64,
    limit: usize,
) -> Result<(Vec<StoredItem>, u64), spaces_store::Error> {
    let stored = store.stream_after(after, limit)?;
    let Some(last) = stored.last().map(|s| s.seq) else {
        return Ok((Vec::new(), after));
    };
    let mut flips: HashMap<u64, Vec<(EventId, bool)>> = store
        .flips_after(after, last)?
        .into_iter()
        .map(|f| {
            let flips = f.flips.into_iter().map(|(id, ok)| (EventId(id), ok));
            (f.seq, flips.collect())
        })
        .collect();
    let mut items = Vec::with_capacity(stored.len());
    for event in stored {
        match Event::decode_trusted(&event.bytes) {
            Ok(decoded) => items.push(StoredItem {
                seq: event.seq,
                room_id: RoomId(event.room_id),
                event: decoded,
                flips: flips.remove(&event.seq).unwrap_or_default(),
            }),
            Err(rejection) => {
                tracing::error!(%rejection, seq = event.seq, "stored event does not decode; skipped");
            }
        }
    }
    Ok((items, last))
}
