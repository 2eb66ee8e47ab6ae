//! Backfill: bringing a room up to date from one other node.
//!
//! The asker sends its heads; the answerer returns the events the asker
//! lacks, parents first, a bounded batch at a time; the asker verifies and
//! stores each batch and asks again with its new heads until nothing is
//! left (docs/spec/federation.md §Sync). Memory on either side is one
//! batch; a node that sends nothing new, or sends what does not verify,
//! ends the sync.

use std::sync::Arc;
use std::time::Duration;

use spaces_protocol::{NodeId, RoomId};

use crate::swarm::{FedError, Handle, Host, Offer};
use crate::traffic::add;
use crate::wire::{MAX_BATCH_EVENTS, MAX_IDS, Request, Response};

/// Most rounds one sync runs: 10 million events at the largest batch.
const MAX_ROUNDS: usize = 10_000;
/// Busy answers one sync waits out before it gives up: a node that stays
/// busy is left alone until the next trigger (anti-entropy asks a node of
/// the room at random, and a join tries its next candidate).
const MAX_BUSY_WAITS: u32 = 3;
/// The pause after a busy answer, whatever the answerer suggests: at least
/// this (no hammering)…
const MIN_BUSY_PAUSE: Duration = Duration::from_millis(100);
/// …and at most this (a hostile answerer cannot park a sync).
const MAX_BUSY_PAUSE: Duration = Duration::from_secs(5);

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
    let mut busy_waits = 0;
    add(&handle.traffic.syncs, 1);
    for _ in 0..MAX_ROUNDS {
        let mut known = host.heads(room).await;
        known.truncate(MAX_IDS);
        let request = Request::Backfill {
            room,
            known,
            limit: MAX_BATCH_EVENTS,
        };
        report.rounds += 1;
        let response = match handle.request(node, request).await {
            Err(FedError::Busy { retry_after_ms }) if busy_waits < MAX_BUSY_WAITS => {
                // Not misbehaviour: the answerer is loaded. Wait, then ask
                // again from where we are.
                busy_waits += 1;
                tokio::time::sleep(busy_pause(retry_after_ms)).await;
                continue;
            }
            other => other?,
        };
        let (events, more) = match response {
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
                    add(&handle.traffic.sync_events, 1);
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

/// How long to wait after a busy answer that suggested `retry_after_ms`:
/// clamped, with up to half again at random so that the askers a busy node
/// turned away together do not come back together.
fn busy_pause(retry_after_ms: u32) -> Duration {
    let base = Duration::from_millis(retry_after_ms.into()).clamp(MIN_BUSY_PAUSE, MAX_BUSY_PAUSE);
    base + base.mul_f64(rand::random::<f64>() / 2.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pauses_are_clamped_and_spread() {
        for (asked, low, high) in [
            (0, MIN_BUSY_PAUSE, MIN_BUSY_PAUSE.mul_f64(1.5)),
            (500, Duration::from_millis(500), Duration::from_millis(750)),
            (u32::MAX, MAX_BUSY_PAUSE, MAX_BUSY_PAUSE.mul_f64(1.5)),
        ] {
            let pause = busy_pause(asked);
            assert!(low <= pause && pause <= high, "{asked}: {pause:?}");
        }
    }
}
