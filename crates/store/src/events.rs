//! Events: an append-only log of opaque event bytes in node-wide stream order.
//!
//! One tree, `log` (layout in `keys`). A group commit's events get consecutive seqs and are
//! written as a few *records*, each holding a run of consecutive events and keyed by the seq of
//! its first; the records of one commit go in one atomic sled batch, followed by one flush. So a
//! commit costs one or a few sled inserts, not several per event: with sled's per-insert cost
//! (page lookup, log reservation, node rewrites) that was most of the node's CPU per message.
//!
//! The store does not deduplicate: the caller appends only events it has not stored before. The
//! engine can promise that, because each room's replica holds every stored event of the room
//! (it loads them all at start) and an event reaches the writer only after the replica took it
//! as new.
//!
//! # Indexes
//!
//! Two indexes live in the same tree under tagged keys (see `keys`), written in the same atomic
//! batch as the records they point into, so after a crash an index entry never names a missing
//! record and no stored event lacks its entries:
//! - *room*: room ‖ record seq → the offsets of the room's events in that record. One entry per
//!   room per record, not per event, so a busy single-room commit adds one insert per record.
//!   [`Store::room_events_before`] and [`Store::room_events_after`] page through one room in
//!   seq order with it.
//! - *event id*: event id → seq, one entry per event: [`Store::event_by_id`].
//!
//! [`Store::events_at`] reads events by seq: the record holding seq `s` is the last record keyed
//! at or before `s`. Readers that hold seqs (the engine keeps one per event of a room) need no
//! index at all.
//!
//! # Seqs
//!
//! The seq is node-local arrival order: it starts at 1, grows by one per stored event and is
//! never reused. [`Seqs`] holds two watermarks:
//! - *committed*, the last seq handed out, behind a mutex so that concurrent appends cannot
//!   allocate the same seq (callers have one writer task; the mutex makes that a non-issue);
//! - *durable*, the last seq known to be on disk, raised only after a successful flush.
//!
//! The listings (`stream_after`, `events`) and `last_seq` stop at *durable*. Between a commit and
//! its fsync a concurrent reader could otherwise see a seq that a crash takes back and the next
//! start hands to a different event, and a client holding that seq as a cursor would skip the new
//! event.
//!
//! After a restart both watermarks are the seq of the last event of the last record.
//!
//! # Flips
//!
//! An event whose storing changed what resolution accepts among earlier events of its room
//! carries those changes ([`NewEvent::flips`]); they go to the `flips` tree under the event's
//! seq, in one sled transaction with the log records, and [`Store::flips_after`] reads them back
//! for clients that resume from before them.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::keys::{self, tree};
use crate::records::{self, FlipRecord, LogEntry, LogRecord, RoomIndexRecord};
use crate::{Error, Id, Store};

/// Events in one `log` record at most. Whoever wants one event of a record (the first page of
/// [`Store::stream_after`]) decodes the whole record: 256 events keep that to tens of
/// microseconds, while a busy commit still costs a handful of inserts.
const RECORD_MAX_EVENTS: usize = 256;

/// Event bytes in one record before the next starts. sled writes a value larger than a quarter
/// of its 512 KiB segment to a blob file of its own; 64 KiB keeps records in the log.
const RECORD_MAX_BYTES: usize = 64 * 1024;

/// An event to append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub room_id: Id,
    pub event_id: Id,
    /// The event as the protocol encodes it; the store never looks inside.
    pub bytes: &'a [u8],
    /// Earlier events of its room whose acceptance storing it changed, with their new value
    /// (usually none); read back with [`Store::flips_after`].
    pub flips: &'a [(Id, bool)],
}

/// What storing the event at `seq` changed about earlier events of its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFlips {
    pub seq: u64,
    pub room_id: Id,
    pub flips: Vec<(Id, bool)>,
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
        // The guarded value is one integer, assigned after its batch was applied: a panic
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
    /// Appends events atomically and makes them durable: when this returns `Ok`, all of them are
    /// on disk, with the returned seqs, in order.
    ///
    /// The caller appends each event once (see the module docs); the store does not check.
    pub fn append_events(&self, events: &[NewEvent<'_>]) -> Result<Range<u64>, Error> {
        let mut committed = self.seqs.lock();
        let first_seq = *committed + 1;
        // A u64 does not run out: a million events a second last 584,000 years.
        let end_seq = first_seq + events.len() as u64;
        let mut batch = sled::Batch::default();
        let mut record_seq = first_seq;
        for chunk in records_of(events) {
            let record = LogRecord {
                events: chunk
                    .iter()
                    .map(|event| LogEntry {
                        room_id: event.room_id,
                        event_id: event.event_id,
                        bytes: Cow::Borrowed(event.bytes),
                    })
                    .collect(),
            };
            batch.insert(
                &keys::seq(record_seq)[..],
                records::encode(tree::LOG, &record)?,
            );
            // The room index: one entry per room of the record. Usually one room; a federation
            // batch may hold many, and a record has at most 256 events, so a linear search is
            // cheap.
            let mut rooms: Vec<(Id, Vec<u8>)> = Vec::new();
            for (offset, event) in (0u8..=u8::MAX).zip(chunk) {
                match rooms
                    .iter_mut()
                    .find(|(room_id, _)| *room_id == event.room_id)
                {
                    Some((_, offsets)) => offsets.push(offset),
                    None => rooms.push((event.room_id, vec![offset])),
                }
                batch.insert(
                    &keys::id_index(&event.event_id)[..],
                    &keys::seq(record_seq + u64::from(offset))[..],
                );
            }
            for (room_id, offsets) in rooms {
                let entry = RoomIndexRecord {
                    offsets: Cow::Owned(offsets),
                };
                batch.insert(
                    &keys::room_index(&room_id, record_seq)[..],
                    records::encode(tree::LOG, &entry)?,
                );
            }
            record_seq += chunk.len() as u64;
        }
        let mut flips = Vec::new();
        for (seq, event) in (first_seq..).zip(events) {
            if !event.flips.is_empty() {
                let record = FlipRecord {
                    room_id: event.room_id,
                    flips: Cow::Borrowed(event.flips),
                };
                flips.push((keys::seq(seq), records::encode(tree::FLIPS, &record)?));
            }
        }
        // One batch is applied atomically: after a crash all of its records are there or none.
        // With flip records (rarely) both trees change in one transaction, so an event is never
        // kept without what it changed, nor a flip record without its event.
        if flips.is_empty() {
            self.log.apply_batch(batch)?;
        } else {
            (&self.log, &self.flips).transaction(|(log, flips_tree)| {
                log.apply_batch(&batch)?;
                for (key, value) in &flips {
                    flips_tree.insert(&key[..], value.clone())?;
                }
                Ok::<(), ConflictableTransactionError<Error>>(())
            })?;
        }
        *committed = end_seq - 1;
        // Flush even when there was nothing to write: the caller may be retrying after a failed
        // flush, and `Ok` must mean that everything before is on disk too.
        self.db.flush()?;
        self.seqs.durable.store(end_seq - 1, Ordering::Release);
        drop(committed);
        tracing::debug!(
            n_events = events.len(),
            last_seq = end_seq - 1,
            "events appended"
        );
        Ok(first_seq..end_seq)
    }

    /// Every durable event in stream order, lazily, up to [`last_seq`](Self::last_seq) at the
    /// time of the call.
    ///
    /// The iterator does not borrow the store, so it can move to another thread.
    pub fn events(&self) -> impl Iterator<Item = Result<StoredEvent, Error>> + use<> {
        let last_seq = self.last_seq();
        self.log
            .range(..=keys::seq(last_seq))
            .flat_map(move |entry| {
                let events = entry
                    .map_err(Error::from)
                    .and_then(|(key, value)| decode_record(&key, &value));
                match events {
                    Ok(events) => events.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(error) => vec![Err(error)],
                }
            })
            .filter(move |event| event.as_ref().map_or(true, |event| event.seq <= last_seq))
    }

    /// The node-wide stream after `after_seq` (exclusive), ascending, at most `limit` events.
    /// Page by passing the last returned seq as the next `after_seq`.
    pub fn stream_after(&self, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, Error> {
        let last_seq = self.last_seq();
        if after_seq >= last_seq || limit == 0 {
            return Ok(Vec::new());
        }
        // The record holding `after_seq + 1` is the last one keyed at or before it.
        let first_wanted = after_seq + 1;
        let start = match self.log.range(..=keys::seq(first_wanted)).next_back() {
            Some(entry) => {
                let (key, _) = entry?;
                keys::decode_seq(tree::LOG, &key, &key)?
            }
            None => first_wanted,
        };
        let mut page = Vec::with_capacity(limit.min(RECORD_MAX_EVENTS));
        for entry in self.log.range(keys::seq(start)..=keys::seq(last_seq)) {
            let (key, value) = entry?;
            for event in decode_record(&key, &value)? {
                if event.seq > last_seq {
                    return Ok(page);
                }
                if event.seq >= first_wanted {
                    page.push(event);
                    if page.len() == limit {
                        return Ok(page);
                    }
                }
            }
        }
        Ok(page)
    }

    /// The flip records of events after `after_seq` (exclusive) up to `until_seq` (inclusive, and
    /// never past [`last_seq`](Self::last_seq)), ascending.
    pub fn flips_after(&self, after_seq: u64, until_seq: u64) -> Result<Vec<StoredFlips>, Error> {
        let until_seq = until_seq.min(self.last_seq());
        if after_seq >= until_seq {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for entry in self
            .flips
            .range(keys::seq(after_seq + 1)..=keys::seq(until_seq))
        {
            let (key, value) = entry?;
            let seq = keys::decode_seq(tree::FLIPS, &key, &key)?;
            let record: FlipRecord = records::decode(tree::FLIPS, &key, &value)?;
            found.push(StoredFlips {
                seq,
                room_id: record.room_id,
                flips: record.flips.into_owned(),
            });
        }
        Ok(found)
    }

    /// The durable events at `seqs`, in the order asked; a seq past
    /// [`last_seq`](Self::last_seq) or never stored is left out. Each record is read once
    /// however many of its events are asked for in a row.
    pub fn events_at(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>, Error> {
        let last_seq = self.last_seq();
        let mut found = Vec::with_capacity(seqs.len());
        let mut record: Vec<StoredEvent> = Vec::new();
        for &seq in seqs {
            if seq == 0 || seq > last_seq {
                continue;
            }
            let held = |record: &[StoredEvent]| {
                record
                    .first()
                    .is_some_and(|first| first.seq <= seq && seq - first.seq < record.len() as u64)
            };
            if !held(&record) {
                record = match self.log.range(..=keys::seq(seq)).next_back() {
                    Some(entry) => {
                        let (key, value) = entry?;
                        decode_record(&key, &value)?
                    }
                    None => Vec::new(),
                };
                if !held(&record) {
                    continue;
                }
            }
            let first = record[0].seq;
            // Lossless: `held` checked that the offset is below the record's length.
            found.push(record[(seq - first) as usize].clone());
        }
        Ok(found)
    }

    /// The seq of the durable event `event_id`, if it is stored.
    pub fn event_seq(&self, event_id: &Id) -> Result<Option<u64>, Error> {
        let key = keys::id_index(event_id);
        let Some(value) = self.log.get(key)? else {
            return Ok(None);
        };
        let seq = keys::decode_seq(tree::LOG, &key, &value)?;
        Ok((seq <= self.last_seq()).then_some(seq))
    }

    /// The durable event `event_id`, if it is stored.
    pub fn event_by_id(&self, event_id: &Id) -> Result<Option<StoredEvent>, Error> {
        let Some(seq) = self.event_seq(event_id)? else {
            return Ok(None);
        };
        match self.events_at(&[seq])?.pop() {
            Some(event) if event.event_id == *event_id => Ok(Some(event)),
            // The index named a record that does not hold the event: not a crash (both are in
            // one batch), so the tree was damaged.
            _ => Err(Error::corrupt(
                tree::LOG,
                &keys::id_index(event_id),
                "names a seq that does not hold the event",
            )),
        }
    }

    /// The durable events of `room_id` after `after_seq` (exclusive), ascending seq, at most
    /// `limit`. Page on by passing the last returned seq.
    pub fn room_events_after(
        &self,
        room_id: &Id,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error> {
        let last_seq = self.last_seq();
        if after_seq >= last_seq || limit == 0 {
            return Ok(Vec::new());
        }
        // A record holding `after_seq + 1` starts at most `RECORD_MAX_EVENTS - 1` before it.
        let start = (after_seq + 1).saturating_sub(RECORD_MAX_EVENTS as u64 - 1);
        let range = keys::room_index(room_id, start)..=keys::room_index(room_id, last_seq);
        let mut page = Vec::new();
        for entry in self.log.range(range) {
            let (key, value) = entry?;
            let wanted = self.room_entry(&key, &value, |seq| seq > after_seq && seq <= last_seq)?;
            for event in wanted {
                page.push(event);
                if page.len() == limit {
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }

    /// The durable events of `room_id` before `before_seq` (exclusive), *descending* seq, at
    /// most `limit`. Page back by passing the last returned seq.
    pub fn room_events_before(
        &self,
        room_id: &Id,
        before_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, Error> {
        let last_seq = self.last_seq();
        if before_seq <= 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let end = before_seq.min(last_seq.saturating_add(1));
        let range = keys::room_index(room_id, 0)..keys::room_index(room_id, end);
        let mut page = Vec::new();
        for entry in self.log.range(range).rev() {
            let (key, value) = entry?;
            let wanted = self.room_entry(&key, &value, |seq| seq < end)?;
            for event in wanted.into_iter().rev() {
                page.push(event);
                if page.len() == limit {
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }

    /// The events a room-index entry names whose seq passes `wanted`, ascending.
    fn room_entry(
        &self,
        key: &[u8],
        value: &[u8],
        wanted: impl Fn(u64) -> bool,
    ) -> Result<Vec<StoredEvent>, Error> {
        let record_seq = keys::decode_room_index(key)?;
        let entry: RoomIndexRecord = records::decode(tree::LOG, key, value)?;
        let seqs: Vec<u64> = entry
            .offsets
            .iter()
            .map(|&offset| record_seq + u64::from(offset))
            .filter(|&seq| wanted(seq))
            .collect();
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let Some(record) = self.log.get(keys::seq(record_seq))? else {
            return Err(Error::corrupt(tree::LOG, key, "names a missing record"));
        };
        let events = decode_record(&keys::seq(record_seq), &record)?;
        let first = events[0].seq;
        seqs.into_iter()
            .map(|seq| {
                usize::try_from(seq - first)
                    .ok()
                    .and_then(|offset| events.get(offset))
                    .cloned()
                    .ok_or_else(|| Error::corrupt(tree::LOG, key, "offset past its record"))
            })
            .collect()
    }

    /// The seq of the last event that is on disk; 0 if there is none.
    pub fn last_seq(&self) -> u64 {
        self.seqs.durable()
    }
}

/// `events` cut into runs that each make one record.
fn records_of<'a, 'b>(events: &'a [NewEvent<'b>]) -> impl Iterator<Item = &'a [NewEvent<'b>]> {
    let mut rest = events;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = 0;
        let mut bytes = 0;
        // At least one event, however large.
        while n < rest.len()
            && n < RECORD_MAX_EVENTS
            && (n == 0 || bytes + rest[n].bytes.len() <= RECORD_MAX_BYTES)
        {
            bytes += rest[n].bytes.len();
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// The events of the `log` record under `key`, with their seqs.
pub(crate) fn decode_record(key: &[u8], value: &[u8]) -> Result<Vec<StoredEvent>, Error> {
    let first_seq = keys::decode_seq(tree::LOG, key, key)?;
    let record: LogRecord = records::decode(tree::LOG, key, value)?;
    if record.events.is_empty() {
        return Err(Error::corrupt(tree::LOG, key, "empty record"));
    }
    Ok(record
        .events
        .into_iter()
        .zip(first_seq..)
        .map(|(entry, seq)| StoredEvent {
            seq,
            room_id: entry.room_id,
            event_id: entry.event_id,
            bytes: entry.bytes.into_owned(),
        })
        .collect())
}

/// The seq of the last event in `log`; 0 when it is empty.
pub(crate) fn last_stored_seq(log: &sled::Tree) -> Result<u64, Error> {
    match log.range(..keys::INDEX_START).next_back().transpose()? {
        Some((key, value)) => Ok(decode_record(&key, &value)?
            .last()
            .map_or(0, |event| event.seq)),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::store::tests::{open_temp, reopen};

    /// An event's bytes: `[room, id, 0xee]`.
    fn bytes_of(room: u8, id: u8) -> Vec<u8> {
        vec![room, id, 0xee]
    }

    fn append(store: &Store, events: &[(u8, u8)]) -> Range<u64> {
        let bytes: Vec<Vec<u8>> = events.iter().map(|&(r, id)| bytes_of(r, id)).collect();
        let new: Vec<NewEvent> = events
            .iter()
            .zip(&bytes)
            .map(|(&(room, id), bytes)| NewEvent {
                room_id: [room; 32],
                event_id: [id; 32],
                bytes,
                flips: &[],
            })
            .collect();
        store.append_events(&new).unwrap()
    }

    fn ids(events: &[StoredEvent]) -> Vec<u8> {
        events.iter().map(|event| event.event_id[0]).collect()
    }

    fn n_records(store: &Store) -> usize {
        store.log.range(..keys::INDEX_START).count()
    }

    fn all(store: &Store) -> Vec<StoredEvent> {
        store.events().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn append_assigns_seqs_from_one() {
        let (_dir, store) = open_temp();
        assert_eq!(store.last_seq(), 0);
        assert_eq!(append(&store, &[(1, 10), (2, 20)]), 1..3);
        assert_eq!(append(&store, &[(1, 11)]), 3..4);
        assert_eq!(store.last_seq(), 3);
        assert_eq!(
            all(&store)[1],
            StoredEvent {
                seq: 2,
                room_id: [2; 32],
                event_id: [20; 32],
                bytes: vec![2, 20, 0xee],
            }
        );
        assert_eq!(ids(&all(&store)), [10, 20, 11]);
    }

    #[test]
    fn empty_append_changes_nothing() {
        let (_dir, store) = open_temp();
        assert_eq!(store.append_events(&[]).unwrap(), 1..1);
        assert_eq!(store.last_seq(), 0);
        assert!(all(&store).is_empty());
        assert!(store.log.is_empty());
    }

    #[test]
    fn events_and_seqs_survive_reopen() {
        let (dir, store) = open_temp();
        append(&store, &[(1, 10), (2, 20)]);
        let store = reopen(&dir, store);
        assert_eq!(store.last_seq(), 2);
        assert_eq!(all(&store)[1].bytes, [2, 20, 0xee]);
        // Seqs continue where they stopped.
        assert_eq!(append(&store, &[(1, 11)]), 3..4);
        let store = reopen(&dir, store);
        assert_eq!(store.last_seq(), 3);
        assert_eq!(ids(&store.stream_after(0, 10).unwrap()), [10, 20, 11]);
    }

    #[test]
    fn stream_after_pages_through_everything_once() {
        let (_dir, store) = open_temp();
        // Three commits, so pages start inside records and cross their ends.
        append(&store, &(1..=4).map(|id| (id % 3, id)).collect::<Vec<_>>());
        append(&store, &[(0, 5)]);
        append(&store, &(6..=10).map(|id| (id % 3, id)).collect::<Vec<_>>());

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
        assert_eq!(ids(&store.stream_after(2, 2).unwrap()), [3, 4]);
        assert!(store.stream_after(10, 100).unwrap().is_empty());
        assert!(store.stream_after(u64::MAX, 100).unwrap().is_empty());
        assert!(store.stream_after(0, 0).unwrap().is_empty());
    }

    /// A commit larger than one record is split, and every reader sees it whole and in order.
    #[test]
    fn a_large_commit_spans_several_records() {
        let (_dir, store) = open_temp();
        let n = RECORD_MAX_EVENTS * 2 + 3;
        let small: Vec<Vec<u8>> = (0..n).map(|i| (i as u32).to_be_bytes().to_vec()).collect();
        let new: Vec<NewEvent> = small
            .iter()
            .enumerate()
            .map(|(i, bytes)| NewEvent {
                room_id: [(i % 2) as u8; 32],
                event_id: [0; 32],
                bytes,
                flips: &[],
            })
            .collect();
        assert_eq!(store.append_events(&new).unwrap(), 1..n as u64 + 1);
        assert_eq!(n_records(&store), 3, "cut by count");
        let stored = all(&store);
        assert_eq!(stored.len(), n);
        for (i, event) in stored.iter().enumerate() {
            assert_eq!(event.seq, i as u64 + 1);
            assert_eq!(event.bytes, small[i]);
            assert_eq!(event.room_id, [(i % 2) as u8; 32]);
        }
        // Pages that start inside a record and end in the next.
        let after = RECORD_MAX_EVENTS as u64 - 2;
        let page = store.stream_after(after, 5).unwrap();
        let seqs: Vec<u64> = page.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, (after + 1..after + 6).collect::<Vec<_>>());

        // Cut by size: three events of 40 KiB need three records, the last two too big to share.
        let big = vec![0xab; 40 * 1024];
        let new = [NewEvent {
            room_id: [9; 32],
            event_id: [9; 32],
            bytes: &big,
            flips: &[],
        }; 3];
        let seqs = store.append_events(&new).unwrap();
        assert_eq!(n_records(&store), 6);
        let tail = store.stream_after(seqs.start - 1, 10).unwrap();
        assert_eq!(tail.len(), 3);
        assert!(tail.iter().all(|event| event.bytes == big));
    }

    #[test]
    fn events_are_read_by_seq_and_by_id_after_reopen() {
        let (dir, store) = open_temp();
        append(&store, &[(1, 10), (2, 20), (1, 11)]);
        append(&store, &[(2, 21)]);
        let store = reopen(&dir, store);
        let seqs = |events: Vec<StoredEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            ids(&store.events_at(&[4, 1, 3, 2]).unwrap()),
            [21, 10, 11, 20]
        );
        assert_eq!(seqs(store.events_at(&[0, 5, 2, u64::MAX]).unwrap()), [2]);
        let event = store.event_by_id(&[11; 32]).unwrap().unwrap();
        assert_eq!(
            (event.seq, event.room_id, event.bytes),
            (3, [1; 32], bytes_of(1, 11))
        );
        assert_eq!(store.event_seq(&[21; 32]).unwrap(), Some(4));
        assert_eq!(store.event_by_id(&[99; 32]).unwrap(), None);
        // The index does not change what the node-wide readers see.
        assert_eq!(ids(&all(&store)), [10, 20, 11, 21]);
        assert_eq!(store.last_seq(), 4);
    }

    #[test]
    fn a_room_pages_in_seq_order_across_records() {
        let (_dir, store) = open_temp();
        // Rooms 1 and 2 interleaved in a commit that spans three records, then one more commit.
        let n = RECORD_MAX_EVENTS * 2 + 10;
        let events: Vec<(u8, u8)> = (0..n)
            .map(|i| ((i % 2) as u8 + 1, (i % 251) as u8))
            .collect();
        append(&store, &events);
        append(&store, &[(1, 7), (3, 8)]);
        let room_1: Vec<u64> = (1..=n as u64).step_by(2).chain([n as u64 + 1]).collect();
        let seqs = |events: &[StoredEvent]| events.iter().map(|e| e.seq).collect::<Vec<_>>();

        let mut forward = Vec::new();
        let mut after = 0;
        loop {
            let page = store.room_events_after(&[1; 32], after, 7).unwrap();
            assert!(page.iter().all(|e| e.room_id == [1; 32]));
            let Some(last) = page.last() else { break };
            after = last.seq;
            forward.extend(seqs(&page));
        }
        assert_eq!(forward, room_1);

        let mut backward = Vec::new();
        let mut before = u64::MAX;
        loop {
            let page = store.room_events_before(&[1; 32], before, 9).unwrap();
            let Some(last) = page.last() else { break };
            before = last.seq;
            backward.extend(seqs(&page));
        }
        backward.reverse();
        assert_eq!(backward, room_1);

        // Pages that start inside a record.
        assert_eq!(
            seqs(&store.room_events_after(&[2; 32], 300, 3).unwrap()),
            [302, 304, 306]
        );
        assert_eq!(
            seqs(&store.room_events_before(&[2; 32], 300, 2).unwrap()),
            [298, 296]
        );
        assert_eq!(
            seqs(&store.room_events_after(&[3; 32], 0, 10).unwrap()),
            [n as u64 + 2]
        );
        assert!(store.room_events_after(&[4; 32], 0, 10).unwrap().is_empty());
        assert!(
            store
                .room_events_before(&[1; 32], 1, 10)
                .unwrap()
                .is_empty()
        );
        assert!(store.room_events_after(&[1; 32], 0, 0).unwrap().is_empty());
    }

    #[test]
    fn records_of_cuts_by_count_and_size() {
        let big = vec![0; RECORD_MAX_BYTES];
        let small = [0u8; 10];
        let event = |bytes| NewEvent {
            room_id: [0; 32],
            event_id: [0; 32],
            bytes,
            flips: &[],
        };
        let lens = |events: &[NewEvent]| records_of(events).map(<[_]>::len).collect::<Vec<_>>();
        assert_eq!(lens(&[]), Vec::<usize>::new());
        assert_eq!(
            lens(&vec![event(&small); RECORD_MAX_EVENTS + 1]),
            [RECORD_MAX_EVENTS, 1]
        );
        // An event larger than the cap still gets a record; nothing joins a full one.
        assert_eq!(lens(&[event(&big), event(&big), event(&small)]), [1, 1, 1]);
        assert_eq!(lens(&[event(&big), event(&small), event(&small)]), [1, 2]);
        assert_eq!(lens(&[event(&small), event(&big)]), [1, 1]);
    }

    #[test]
    fn flips_are_kept_with_their_event_and_read_back_by_seq() {
        let (dir, store) = open_temp();
        append(&store, &[(1, 10), (1, 11)]);
        let (a, b) = (bytes_of(1, 12), bytes_of(1, 13));
        let flipped = [([10; 32], false), ([11; 32], true)];
        let seqs = store
            .append_events(&[
                NewEvent {
                    room_id: [1; 32],
                    event_id: [12; 32],
                    bytes: &a,
                    flips: &flipped,
                },
                NewEvent {
                    room_id: [1; 32],
                    event_id: [13; 32],
                    bytes: &b,
                    flips: &[],
                },
            ])
            .unwrap();
        assert_eq!(seqs, 3..5);
        let expected = vec![StoredFlips {
            seq: 3,
            room_id: [1; 32],
            flips: flipped.to_vec(),
        }];
        assert_eq!(store.flips_after(0, 4).unwrap(), expected);
        assert_eq!(store.flips_after(2, u64::MAX).unwrap(), expected);
        assert_eq!(store.flips_after(3, u64::MAX).unwrap(), vec![]);
        assert_eq!(store.flips_after(0, 2).unwrap(), vec![]);
        drop(store);
        let store = Store::open(dir.path(), &crate::Options::default()).unwrap();
        assert_eq!(store.flips_after(0, 10).unwrap(), expected);
    }

    #[test]
    fn events_iterator_outlives_the_handle() {
        let (_dir, store) = open_temp();
        append(&store, &[(1, 10)]);
        let iter = store.clone().events();
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
                        let id = thread * n_per_thread + n;
                        seqs.extend(append(&store, &[(thread, id)]));
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        seqs.sort_unstable();
        let n_events = u64::from(n_threads * n_per_thread);
        assert_eq!(seqs, (1..=n_events).collect::<Vec<_>>());
        assert_eq!(store.last_seq(), n_events);
        let stored = store.stream_after(0, 1000).unwrap();
        let distinct: HashSet<u8> = ids(&stored).into_iter().collect();
        assert_eq!(distinct.len(), 100);
        // Each event's bytes are the ones appended with its id: no record got another's seqs.
        for event in stored {
            assert_eq!(event.bytes, bytes_of(event.room_id[0], event.event_id[0]));
        }
    }

    #[test]
    fn undecodable_record_is_corrupt() {
        let (_dir, store) = open_temp();
        append(&store, &[(1, 10)]);
        store.log.insert(keys::seq(1), &b"garbage"[..]).unwrap();
        assert!(matches!(
            store.events().next(),
            Some(Err(Error::Corrupt { tree: "log", .. }))
        ));
        assert!(matches!(
            store.stream_after(0, 10),
            Err(Error::Corrupt { tree: "log", .. })
        ));
        // An empty record would shift every later seq: corrupt too.
        let empty = records::encode(tree::LOG, &LogRecord { events: Vec::new() }).unwrap();
        store.log.insert(keys::seq(1), empty).unwrap();
        match store.stream_after(0, 10) {
            Err(Error::Corrupt { tree, reason, .. }) => {
                assert_eq!(tree, "log");
                assert!(reason.contains("empty"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
