//! Exactly-once sends: a client names a send with a transaction id
//! (`txn_id`), and a second send with the same id from the same session
//! answers the event the first one made instead of making another. So an
//! outbox that resends after a lost acknowledgement never duplicates.
//!
//! State: the store's `txns` records (a session's last
//! [`spaces_store::MAX_TXNS_PER_SESSION`] ids, see `spaces_store`), nothing else durable;
//! in memory, [`SHARDS`] locks. A send with an id takes the lock its
//! (session, id) hashes to, looks the id up, sends if it is new and records
//! it, then lets go: two concurrent sends with one id make one event. Sends
//! without an id take no lock. The whole of it runs in a task of its own,
//! awaited by the request, so a client that hangs up after the event is
//! made still gets the id recorded (there are never more such tasks than
//! requests in flight).
//!
//! The window: the id is written right after the event is durable, not in
//! the event's commit. A crash between the two (one fsync) forgets the id,
//! and a resend then makes a second event. And a session remembers only its
//! last [`spaces_store::MAX_TXNS_PER_SESSION`] ids. Deleting the session forgets them.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use spaces_protocol::{Event, RoomId};
use spaces_store::Store;
use tokio::sync::Mutex;

use super::on_disk;

/// Locks for sends with an id. Two ids that hash to one shard only wait
/// for each other; 64 keeps that rare among the few sends that carry one
/// at any moment.
pub const SHARDS: usize = 64;
/// Longest accepted id, in bytes: a UUID or a counter fits many times.
pub const MAX_TXN_ID_BYTES: usize = 64;

/// What a send with an id did.
#[derive(Debug)]
pub enum Sent {
    /// The id was new: this is the event just made.
    New(Event),
    /// The id was used before: this is the event that send made.
    Replayed(Event),
}

/// Why a send with an id was refused before sending.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error("txn_id must be 1 to {MAX_TXN_ID_BYTES} bytes of printable ASCII")]
    BadId,
    /// The id was used for a send to another room.
    #[error("this txn_id was used for a message in another room")]
    OtherRoom,
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

/// The handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Txns {
    store: Store,
    locks: Arc<[Mutex<()>]>,
}

impl Txns {
    pub fn new(store: Store) -> Txns {
        Txns {
            store,
            locks: (0..SHARDS).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Runs `send` unless session `session_id` already sent `txn_id`, and
    /// remembers what it made; see the module docs.
    pub async fn once<E, F>(
        &self,
        session_id: String,
        txn_id: String,
        room_id: RoomId,
        send: F,
    ) -> Result<Sent, E>
    where
        F: Future<Output = Result<Event, E>> + Send + 'static,
        E: From<TxnError> + Send + 'static,
    {
        if txn_id.is_empty()
            || txn_id.len() > MAX_TXN_ID_BYTES
            || !txn_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(TxnError::BadId.into());
        }
        let this = self.clone();
        let task = tokio::spawn(async move {
            let shard = {
                let mut hasher = std::hash::DefaultHasher::new();
                (&session_id, &txn_id).hash(&mut hasher);
                (hasher.finish() % SHARDS as u64) as usize
            };
            let _guard = this.locks[shard].lock().await;
            if let Some(event) = this
                .earlier(&session_id, &txn_id, &room_id)
                .await
                .map_err(E::from)?
            {
                return Ok(Sent::Replayed(event));
            }
            let event = send.await?;
            let event_id = event.id().0;
            on_disk(&this.store, move |store| {
                store.record_txn(&session_id, &txn_id, room_id.0, event_id)
            })
            .await
            .map_err(|e| E::from(TxnError::Store(e)))?;
            Ok(Sent::New(event))
        });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("send task cancelled by runtime shutdown: {error}"),
        }
    }

    /// The event an earlier send with this id made, if any.
    async fn earlier(
        &self,
        session_id: &str,
        txn_id: &str,
        room_id: &RoomId,
    ) -> Result<Option<Event>, TxnError> {
        let (session_id, txn_id) = (session_id.to_owned(), txn_id.to_owned());
        let found = on_disk(&self.store, move |store| {
            let Some((room, event_id)) = store.sent_txn(&session_id, &txn_id)? else {
                return Ok(None);
            };
            Ok(Some((room, store.event_by_id(&event_id)?)))
        })
        .await?;
        let Some((room, stored)) = found else {
            return Ok(None);
        };
        if room != room_id.0 {
            return Err(TxnError::OtherRoom);
        }
        // Recorded only after the event was durable, so it is there; a
        // record naming a missing or unreadable event counts as unused.
        Ok(stored.and_then(|s| Event::decode_trusted(&s.bytes).ok()))
    }
}
