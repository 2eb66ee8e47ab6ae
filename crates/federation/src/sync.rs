//! Backfill: bringing a room up to date from one other node.
//!
//! The asker sends its heads; the answerer returns the events the asker
//! lacks, parents first, a bounded batch at a time; the asker verifies and
//! stores each batch and asks again with its new heads until nothing is
//! left (docs/spec/federation.md §Sync). Memory on either side is one
//! batch; a node that sends nothing new, or sends what does not verify,
//! ends the sync.

use std::sync::Arc;

use spaces_protocol::{NodeId, RoomId};

use crate::swarm::{FedError, Handle, Host, Offer};
use crate::wire::{MAX_BATCH_EVENTS, MAX_IDS, Request, Response};

/// Most rounds one sync runs: 10 million events at the largest batch.
const MAX_ROUNDS: usize = 10_000;

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub new: usize,
    pub rejected: usize,
    /// Events whose parents did not come: the answerer sent a batch that
    /// does not stand on what we hold.
    pub stalled: usize,
    pub rounds: usize,
}

/// Brings `room` up to date from `node`, and returns when nothing is left
/// to fetch or the node stops helping.
pub async fn sync_room<H: Host>(
    handle: &Handle,
    host: &H,
    room: RoomId,
    node: NodeId,
) -> Result<SyncReport, FedError> {
    let mut report = SyncReport::default();
    for _ in 0..MAX_ROUNDS {
        let mut known = host.heads(room).await;
        known.truncate(MAX_IDS);
        let request = Request::Backfill {
            room,
            known,
            limit: MAX_BATCH_EVENTS,
        };
        report.rounds += 1;
        let (events, more) = match handle.request(node, request).await? {
            Response::Events { events, more } => (events, more),
            Response::Refused { code, message } => return Err(FedError::Refused { code, message }),
            _ => {
                handle.charge(node, "bad_request").await;
                return Err(FedError::Unexpected);
            }
        };
        if events.is_empty() {
            break;
        }
        let mut progressed = false;
        for offer in host.offer(node, events).await {
            match offer {
                Offer::New => {
                    report.new += 1;
                    progressed = true;
                }
                Offer::Duplicate | Offer::Deferred { .. } => {}
                Offer::Rejected(code) => {
                    report.rejected += 1;
                    handle.charge(node, code).await;
                }
                Offer::MissingParents { .. } | Offer::UnknownRoom { .. } => report.stalled += 1,
                Offer::Unavailable => return Err(FedError::Failed("store unavailable".into())),
            }
        }
        if !more || !progressed {
            break;
        }
    }
    tracing::debug!(%room, %node, ?report, "sync done");
    Ok(report)
}

/// Runs [`sync_room`] in the background, at most one per (room, node).
pub(crate) fn spawn_sync<H: Host>(handle: Handle, host: Arc<H>, room: RoomId, node: NodeId) {
    if !handle.begin_sync(room, node) {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = sync_room(&handle, &*host, room, node).await {
            tracing::debug!(%room, %node, error = %e, "background sync failed");
        }
        handle.end_sync(room, node);
    });
}
