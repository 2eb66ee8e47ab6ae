//! Events: an append-only log of opaque event bytes, by id, by node-wide stream seq and by room.
//!
//! Each new event goes to three trees in one sled transaction (layout in `keys`): `events`
//! (id → seq, room, bytes), `stream` (seq → id) and `room_events` (room ‖ seq → id).
//!
//! # Seqs
//!
//! The seq is node-local arrival order: it starts at 1, grows by one per stored event and is
//! never reused. [`Seqs`] holds two watermarks:
//! - *committed*, the last seq handed out, behind a mutex so that concurrent appends cannot
//!   allocate the same seq (callers have one writer task; the mutex makes that a non-issue);
//! - *durable*, the last seq known to be on disk, raised only after a successful flush.
//!
//! The ordered listings (`stream_after`, `room_events`) and `last_seq` stop at *durable*. Between
//! a commit and its fsync a concurrent reader could otherwise see a seq that a crash takes back
//! and the next start hands to a different event, and a client holding that seq as a cursor would
//! skip the new event. Point lookups (`event`, `has_event`) see every committed event.
//!
//! After a restart both watermarks are the last key of `stream`.

use std::borrow::Cow;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::keys::{self, tree};
use crate::records::{self, EventRecord};
use crate::{Error, Id, Store};

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub room_id: Id,
    pub event_id: Id,
    /// The event as the protocol encodes it; the store never looks inside.
    pub bytes: Vec<u8>,
}

/// An event as stored, with the seq it was given on arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub room_id: Id,
    pub event_id: Id,
    pub bytes: Vec<u8>,
}

/// The seq watermarks shared by all clones of a [`Store`]; see the module docs.
#[derive(Debug)]
pub(crate) struct Seqs {
    committed: Mutex<u64>,
    durable: AtomicU64,
}

impl Seqs {
    pub(crate) fn new(last_seq: u64) -> Self {
        Seqs {
            committed: Mutex::new(last_seq),
            durable: AtomicU64::new(last_seq),
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // The guarded value is one integer, assigned after its transaction committed: a panic
        // elsewhere while the lock was held cannot leave it half-updated.
        self.committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Flushes `db` and publishes everything committed so far as durable.
    pub(crate) fn flush(&self, db: &sled::Db) -> Result<(), Error> {
        let committed = self.lock();
        db.flush()?;
        self.durable.store(*committed, Ordering::Release);
        Ok(())
    }
}

impl Store {
    /// Appends a batch atomically and makes it durable: when this returns `Ok`, the whole batch is
    /// on disk.
    ///
    /// Each new event gets the next seq. An event whose id is already stored, or that appeared
    /// earlier in the same batch, is skipped and gets `None`. The result is aligned with `events`.
    pub fn append_events(&self, events: &[NewEvent]) -> Result<Vec<Option<u64>>, Error> {
        let mut committed = self.seqs.lock();
        let first_seq = *committed;
        let (seqs, last_seq) = (&self.events, &self.stream, &self.room_events).transaction(
            |(events_tx, stream_tx, room_events_tx)| {
                // sled may run this closure again after a conflict: derive everything from
                // `first_seq` and the transaction's view, nothing from a previous run.
                let mut last_seq = first_seq;
                let mut seqs = Vec::with_capacity(events.len());
                for event in events {
                    // The transaction's reads see its own writes: a duplicate within the batch
                    // is found here too.
                    if events_tx.get(event.event_id)?.is_some() {
                        seqs.push(None);
                        continue;
                    }
                    // A u64 does not run out: a million events a second last 584,000 years.
                    last_seq += 1;
                    let record = EventRecord {
                        seq: last_seq,
                        room_id: event.room_id,
                        bytes: Cow::Borrowed(&event.bytes),
                    };
                    let value = records::encode(tree::EVENTS, &record)
                        .map_err(ConflictableTransactionError::Abort)?;
                    events_tx.insert(&event.event_id[..], value)?;
                    stream_tx.insert(&keys::seq(last_seq)[..], &event.event_id[..])?;
                    room_events_tx.insert(
                        &keys::room_event(&event.room_id, last_seq)[..],
                        &event.event_id[..],
                    )?;
                    seqs.push(Some(last_seq));
                }
                Ok::<_, ConflictableTransactionError<Error>>((seqs, last_seq))
            },
        )?;
        *committed = last_seq;
        // Flush even when every event was a duplicate: the caller may be retrying a batch whose
        // first flush failed, and "already stored" must mean "on disk" too.
        self.db.flush()?;
        self.seqs.durable.store(last_seq, Ordering::Release);
        drop(committed);
        tracing::debug!(
            n_events = events.len(),
            n_new = last_seq - first_seq,
            last_seq,
            "events appended"
        );
        Ok(seqs)
    }

    /// The event with this id, if stored.
    pub fn event(&self, event_id: &Id) -> Result<Option<StoredEvent>, Error> {
        load_event(&self.events, event_id)
    }

    /// Whether an event with this id is stored.
    pub fn has_event(&self, event_id: &Id) -> Result<bool, Error> {
        Ok(self.events.contains_key(event_id)?)
    }

    /// Every event of one room in stream (arrival) order, up to [`last_seq`](Self::last_seq) at
    /// the time of the call.
    ///
    /// The iterator reads lazily and does not borrow the store, so it can move to another thread.
    pub fn room_events(
        &self,
        room_id: &Id,
    ) -> impl Iterator<Item = Result<StoredEvent, Error>> + use<> {
        let events = self.events.clone();
        let range = keys::room_event(room_id, 0)..=keys::room_event(room_id, self.last_seq());
        self.room_events.range(range).map(move |entry| {
            let (key, value) = entry?;
            resolve(&events, tree::ROOM_EVENTS, &key, &value)
        })
    }

    /// The rooms that have at least one event, in id order.
    pub fn room_ids(&self) -> Result<Vec<Id>, Error> {
        let mut room_ids = Vec::new();
        let mut next = self.room_events.first()?;
        while let Some((key, _)) = next {
            let room_id = keys::room_of_room_event(&key)?;
            room_ids.push(room_id);
            // Skip the rest of this room: its largest possible key is (room, u64::MAX).
            let after_room = keys::room_event(&room_id, u64::MAX);
            next = self
                .room_events
                .range((Bound::Excluded(after_room), Bound::Unbounded))
                .next()
                .transpose()?;
        }
        Ok(room_ids)
    }

    /// The node-wide stream after `after_seq` (exclusive), ascending, at most `limit` events.
    /// Page by passing the last returned seq as the next `after_seq`.
    pub fn stream_after(&self, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, Error> {
        let last_seq = self.last_seq();
        if after_seq >= last_seq {
            return Ok(Vec::new());
        }
        let range = (
            Bound::Excluded(keys::seq(after_seq)),
            Bound::Included(keys::seq(last_seq)),
        );
        self.stream
            .range(range)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                resolve(&self.events, tree::STREAM, &key, &value)
            })
            .collect()
    }

    /// The seq of the last event that is on disk; 0 if there is none.
    pub fn last_seq(&self) -> u64 {
        self.seqs.durable()
    }
}

fn load_event(events: &sled::Tree, event_id: &Id) -> Result<Option<StoredEvent>, Error> {
    let Some(value) = events.get(event_id)? else {
        return Ok(None);
    };
    let record: EventRecord = records::decode(tree::EVENTS, event_id, &value)?;
    Ok(Some(StoredEvent {
        seq: record.seq,
        room_id: record.room_id,
        event_id: *event_id,
        bytes: record.bytes.into_owned(),
    }))
}

/// The event an index entry (`key` → event id in `index`) points at.
fn resolve(
    events: &sled::Tree,
    index: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<StoredEvent, Error> {
    let event_id = keys::decode_id(index, key, value)?;
    load_event(events, &event_id)?
        .ok_or_else(|| Error::corrupt(index, key, "index entry points at a missing event"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn new_event(room: u8, id: u8) -> NewEvent {
        NewEvent {
            room_id: [room; 32],
            event_id: [id; 32],
            bytes: vec![room, id, 0xee],
        }
    }

    fn ids(events: &[StoredEvent]) -> Vec<u8> {
        events.iter().map(|event| event.event_id[0]).collect()
    }

    fn room(store: &Store, room: u8) -> Vec<StoredEvent> {
        store
            .room_events(&[room; 32])
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn append_assigns_seqs_from_one() {
        let (_dir, store) = open_temp();
        assert_eq!(store.last_seq(), 0);
        let seqs = store
            .append_events(&[new_event(1, 10), new_event(2, 20)])
            .unwrap();
        assert_eq!(seqs, [Some(1), Some(2)]);
        assert_eq!(store.append_events(&[new_event(1, 11)]).unwrap(), [Some(3)]);
        assert_eq!(store.last_seq(), 3);
        assert_eq!(
            store.event(&[20; 32]).unwrap(),
            Some(StoredEvent {
                seq: 2,
                room_id: [2; 32],
                event_id: [20; 32],
                bytes: vec![2, 20, 0xee],
            })
        );
        assert!(store.has_event(&[10; 32]).unwrap());
        assert!(!store.has_event(&[99; 32]).unwrap());
        assert_eq!(store.event(&[99; 32]).unwrap(), None);
    }

    #[test]
    fn append_is_idempotent() {
        let (_dir, store) = open_temp();
        assert_eq!(store.append_events(&[new_event(1, 10)]).unwrap(), [Some(1)]);
        // Again alone, then again within a batch, then twice within one batch.
        assert_eq!(store.append_events(&[new_event(1, 10)]).unwrap(), [None]);
        assert_eq!(
            store
                .append_events(&[new_event(1, 11), new_event(1, 10)])
                .unwrap(),
            [Some(2), None]
        );
        assert_eq!(
            store
                .append_events(&[new_event(1, 12), new_event(1, 12)])
                .unwrap(),
            [Some(3), None]
        );
        assert_eq!(store.last_seq(), 3);
        assert_eq!(ids(&room(&store, 1)), [10, 11, 12]);
        assert_eq!(ids(&store.stream_after(0, 100).unwrap()), [10, 11, 12]);
        assert_eq!(store.event(&[10; 32]).unwrap().unwrap().seq, 1);
        assert_eq!(store.stream.len(), 3);
        assert_eq!(store.room_events.len(), 3);
    }

    #[test]
    fn a_duplicate_keeps_its_first_room_and_bytes() {
        let (_dir, store) = open_temp();
        store.append_events(&[new_event(1, 10)]).unwrap();
        let imposter = NewEvent {
            room_id: [2; 32],
            event_id: [10; 32],
            bytes: vec![0],
        };
        assert_eq!(store.append_events(&[imposter]).unwrap(), [None]);
        let stored = store.event(&[10; 32]).unwrap().unwrap();
        assert_eq!((stored.room_id, stored.bytes), ([1; 32], vec![1, 10, 0xee]));
        assert!(room(&store, 2).is_empty());
    }

    #[test]
    fn empty_append_changes_nothing() {
        let (_dir, store) = open_temp();
        assert_eq!(store.append_events(&[]).unwrap(), []);
        assert_eq!(store.last_seq(), 0);
        assert!(store.room_ids().unwrap().is_empty());
    }

    #[test]
    fn events_and_seqs_survive_reopen() {
        let (dir, store) = open_temp();
        store
            .append_events(&[new_event(1, 10), new_event(2, 20)])
            .unwrap();
        let store = reopen(&dir, store);
        assert_eq!(store.last_seq(), 2);
        assert_eq!(
            store.event(&[20; 32]).unwrap().unwrap().bytes,
            [2, 20, 0xee]
        );
        assert_eq!(ids(&room(&store, 1)), [10]);
        // Seqs continue where they stopped; duplicates are still recognised.
        assert_eq!(
            store
                .append_events(&[new_event(1, 10), new_event(1, 11)])
                .unwrap(),
            [None, Some(3)]
        );
        let store = reopen(&dir, store);
        assert_eq!(store.last_seq(), 3);
        assert_eq!(ids(&store.stream_after(0, 10).unwrap()), [10, 20, 11]);
    }

    #[test]
    fn stream_after_pages_through_everything_once() {
        let (_dir, store) = open_temp();
        let batch: Vec<NewEvent> = (1..=10).map(|id| new_event(id % 3, id)).collect();
        store.append_events(&batch).unwrap();

        let mut seen = Vec::new();
        let mut after_seq = 0;
        loop {
            let page = store.stream_after(after_seq, 3).unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after_seq = last.seq;
            seen.extend(page.iter().map(|event| (event.seq, event.event_id[0])));
        }
        let expected: Vec<(u64, u8)> = (1..=10).map(|n| (u64::from(n), n)).collect();
        assert_eq!(seen, expected);

        assert_eq!(ids(&store.stream_after(7, 100).unwrap()), [8, 9, 10]);
        assert!(store.stream_after(10, 100).unwrap().is_empty());
        assert!(store.stream_after(u64::MAX, 100).unwrap().is_empty());
        assert!(store.stream_after(0, 0).unwrap().is_empty());
    }

    #[test]
    fn rooms_are_isolated_and_in_arrival_order() {
        let (_dir, store) = open_temp();
        // Interleaved, with ids deliberately out of numeric order.
        store
            .append_events(&[new_event(2, 50), new_event(1, 40), new_event(2, 30)])
            .unwrap();
        store
            .append_events(&[new_event(1, 20), new_event(2, 10)])
            .unwrap();
        assert_eq!(ids(&room(&store, 1)), [40, 20]);
        assert_eq!(ids(&room(&store, 2)), [50, 30, 10]);
        assert!(room(&store, 3).is_empty());
        let seqs: Vec<u64> = room(&store, 2).iter().map(|event| event.seq).collect();
        assert_eq!(seqs, [1, 3, 5]);
        assert_eq!(store.room_ids().unwrap(), [[1; 32], [2; 32]]);
    }

    #[test]
    fn room_ids_lists_each_room_once_including_extreme_ids() {
        let (_dir, store) = open_temp();
        let events = [
            new_event(0xff, 1),
            new_event(0x00, 2),
            new_event(0xff, 3),
            new_event(0x00, 4),
            new_event(0x7f, 5),
        ];
        store.append_events(&events).unwrap();
        assert_eq!(
            store.room_ids().unwrap(),
            [[0x00; 32], [0x7f; 32], [0xff; 32]]
        );
    }

    #[test]
    fn room_events_iterator_outlives_the_handle() {
        let (_dir, store) = open_temp();
        store.append_events(&[new_event(1, 10)]).unwrap();
        let iter = store.clone().room_events(&[1; 32]);
        let handle = std::thread::spawn(move || iter.count());
        assert_eq!(handle.join().unwrap(), 1);
    }

    #[test]
    fn concurrent_appends_get_distinct_contiguous_seqs() {
        let (_dir, store) = open_temp();
        let n_threads = 4;
        let n_per_thread = 25;
        let threads: Vec<_> = (0..n_threads)
            .map(|thread| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for n in 0..n_per_thread {
                        let event = new_event(thread, thread * n_per_thread + n);
                        seqs.extend(store.append_events(&[event]).unwrap());
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .map(|seq| seq.unwrap())
            .collect();
        seqs.sort_unstable();
        let n_events = u64::from(n_threads * n_per_thread);
        assert_eq!(seqs, (1..=n_events).collect::<Vec<_>>());
        assert_eq!(store.last_seq(), n_events);
        let distinct: HashSet<u8> = ids(&store.stream_after(0, 1000).unwrap())
            .into_iter()
            .collect();
        assert_eq!(distinct.len(), 100);
    }

    #[test]
    fn undecodable_event_is_corrupt() {
        let (_dir, store) = open_temp();
        store.append_events(&[new_event(1, 10)]).unwrap();
        store.events.insert([10; 32], &b"garbage"[..]).unwrap();
        assert!(matches!(
            store.event(&[10; 32]),
            Err(Error::Corrupt { tree: "events", .. })
        ));
        let mut iter = store.room_events(&[1; 32]);
        assert!(matches!(
            iter.next(),
            Some(Err(Error::Corrupt { tree: "events", .. }))
        ));
        assert!(matches!(
            store.stream_after(0, 10),
            Err(Error::Corrupt { tree: "events", .. })
        ));
        // The raw lookup does not decode.
        assert!(store.has_event(&[10; 32]).unwrap());
    }

    #[test]
    fn bad_index_entries_are_corrupt() {
        let (_dir, store) = open_temp();
        store.append_events(&[new_event(1, 10)]).unwrap();
        // An index value that is no id, then one naming an event that is not stored.
        store.stream.insert(keys::seq(1), &b"short"[..]).unwrap();
        assert!(matches!(
            store.stream_after(0, 10),
            Err(Error::Corrupt { tree: "stream", .. })
        ));
        let room_key = keys::room_event(&[1; 32], 1);
        store.room_events.insert(room_key, &[99; 32][..]).unwrap();
        match store.room_events(&[1; 32]).next() {
            Some(Err(Error::Corrupt { tree, reason, .. })) => {
                assert_eq!(tree, "room_events");
                assert!(reason.contains("missing event"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        store.room_events.insert([1; 5], &[99; 32][..]).unwrap();
        assert!(matches!(
            store.room_ids(),
            Err(Error::Corrupt {
                tree: "room_events",
                ..
            })
        ));
    }
}
