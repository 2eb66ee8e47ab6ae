//! A consistent copy of a running store ([`Store::snapshot`]) and writing one into a new
//! directory ([`Restorer`]).
//!
//! # What "consistent" means here
//!
//! sled 0.34 has no point-in-time iteration: an iterator sees some writes made while it runs and
//! not others. The snapshot gets a consistent copy without stopping the node's writes:
//! - *Events*: the log is append-only and a record never changes once written, and the *durable*
//!   seq watermark (see `events`) is raised only after a record and its index entries are on disk
//!   (and the flip records of its events, in the same transaction). So the snapshot reads the
//!   watermark `W` once and then takes, at its leisure, every record keyed at or before `W`,
//!   every room-index entry of such a record, every event-id entry naming a seq at or before `W`
//!   and every flip record at or before `W`. A record written later is skipped whole; an
//!   unflushed one (its seq is above `W`) too. The event writer is never paused.
//! - *Everything else* (accounts, sessions, profiles, metadata, ...) is small next to the log and
//!   is copied into memory while [`Store::gate`] is held exclusively, which the writes that span
//!   two trees in one transaction (an account and the first-account marker, a session and its
//!   per-user index) hold shared. So no cross-tree rule is ever seen half-applied. Writes to one
//!   tree go on meanwhile; each record is copied whole, as of some instant during the copy.
//! - Read markers past `W` are cut back to `W`: a restored store hands out seqs after `W` again,
//!   and a marker must not already point at events it has not seen.
//!
//! The copy holds the store's bytes as they are: no record is decoded, so a snapshot of a store
//! from an older build restores that build's records, and the restored store is opened (and
//! migrated, checked) like any other.

use std::path::Path;

use crate::keys::{self, tree};
use crate::{Error, Store};

/// One key of one tree, as a snapshot yields it and a [`Restorer`] takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tree: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A consistent copy of a store in progress: the small trees already copied, the event log
/// read lazily up to [`last_seq`](Snapshot::last_seq). See the module docs.
#[derive(Debug)]
pub struct Snapshot {
    last_seq: u64,
    small: Vec<Entry>,
    log: sled::Tree,
    flips: sled::Tree,
    size_on_disk: u64,
}

impl Store {
    /// Starts a consistent copy of the store (module docs): the trees other than the event log
    /// are copied now, while writes that span two trees wait (a few milliseconds for thousands
    /// of accounts); the events are read by [`Snapshot::entries`].
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let size_on_disk = self.db.size_on_disk()?;
        let mut small = Vec::new();
        let last_seq = {
            let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
            let last_seq = self.last_seq();
            for name in self.db.tree_names() {
                let Ok(name) = std::str::from_utf8(&name) else {
                    continue;
                };
                if name == tree::LOG || name == tree::FLIPS || name.starts_with("__sled__") {
                    continue;
                }
                for entry in self.db.open_tree(name)?.iter() {
                    let (key, value) = entry?;
                    let mut value = value.to_vec();
                    if name == tree::READ_MARKERS
                        && let Ok(seq) = keys::decode_seq(tree::READ_MARKERS, &key, &value)
                        && seq > last_seq
                    {
                        value = keys::seq(last_seq).to_vec();
                    }
                    // Likewise the notifier's cursor: a restored store must notify of the
                    // events it will hold past the copy's last seq.
                    if name == tree::NOTIFICATIONS
                        && key[..] == keys::NOTIFY_CURSOR[..]
                        && let Ok(seq) = keys::decode_seq(tree::NOTIFICATIONS, &key, &value)
                        && seq > last_seq
                    {
                        value = keys::seq(last_seq).to_vec();
                    }
                    small.push(Entry {
                        tree: name.to_owned(),
                        key: key.to_vec(),
                        value,
                    });
                }
            }
            last_seq
        };
        Ok(Snapshot {
            last_seq,
            small,
            log: self.log.clone(),
            flips: self.flips.clone(),
            size_on_disk,
        })
    }
}

impl Snapshot {
    /// The last event seq the snapshot holds.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The database's size on disk when the snapshot started: an upper estimate of its bytes,
    /// for progress reports.
    pub fn size_estimate(&self) -> u64 {
        self.size_on_disk
    }

    /// Every entry of the snapshot: the small trees, then the log and the flips up to
    /// [`last_seq`](Self::last_seq). Lazy over the log; an error ends the copy.
    pub fn entries(self) -> impl Iterator<Item = Result<Entry, Error>> {
        let last_seq = self.last_seq;
        let log = self.log.iter().filter_map(move |entry| match entry {
            Err(e) => Some(Err(Error::from(e))),
            Ok((key, value)) => match log_entry_seq(&key, &value) {
                Ok(Some(seq)) if seq > last_seq => None,
                Ok(_) => Some(Ok(Entry {
                    tree: tree::LOG.to_owned(),
                    key: key.to_vec(),
                    value: value.to_vec(),
                })),
                Err(e) => Some(Err(e)),
            },
        });
        let flips = self.flips.range(..=keys::seq(last_seq)).map(|entry| {
            let (key, value) = entry?;
            Ok(Entry {
                tree: tree::FLIPS.to_owned(),
                key: key.to_vec(),
                value: value.to_vec(),
            })
        });
        self.small.into_iter().map(Ok).chain(log).chain(flips)
    }
}

/// The seq a `log` entry belongs to: a record's first seq, a room-index entry's record, an
/// event-id entry's event; `None` for a key of no known kind (kept).
fn log_entry_seq(key: &[u8], value: &[u8]) -> Result<Option<u64>, Error> {
    match key.first() {
        Some(&first) if first < keys::INDEX_START[0] => {
            keys::decode_seq(tree::LOG, key, key).map(Some)
        }
        Some(_) if keys::is_room_index(key) => keys::decode_room_index(key).map(Some),
        Some(_) if keys::is_id_index(key) => keys::decode_seq(tree::LOG, key, value).map(Some),
        _ => Ok(None),
    }
}

/// Entries written into a new store's directory, in batches; see [`Restorer::create`].
#[derive(Debug)]
pub struct Restorer {
    db: sled::Db,
    pending: Vec<Entry>,
    pending_bytes: usize,
}

/// Bytes of entries gathered before they are applied: one sled batch per tree at a time keeps
/// memory bounded whatever the archive's size.
const RESTORE_BATCH_BYTES: usize = 8 * 1024 * 1024;

impl Restorer {
    /// Creates a new database in `path`, which must not hold one.
    pub fn create(path: &Path) -> Result<Restorer, Error> {
        if path.exists() && std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
            return Err(Error::AlreadyExists);
        }
        let db = sled::Config::new().path(path).open()?;
        Ok(Restorer {
            db,
            pending: Vec::new(),
            pending_bytes: 0,
        })
    }

    /// Adds one entry; it may be applied later.
    pub fn put(&mut self, entry: Entry) -> Result<(), Error> {
        if entry.tree.starts_with("__sled__") || entry.tree.is_empty() {
            return Err(Error::corrupt(
                "(snapshot)",
                entry.tree.as_bytes(),
                "not a tree name",
            ));
        }
        self.pending_bytes += entry.key.len() + entry.value.len();
        self.pending.push(entry);
        if self.pending_bytes >= RESTORE_BATCH_BYTES {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), Error> {
        let mut batches: Vec<(String, sled::Batch)> = Vec::new();
        for entry in self.pending.drain(..) {
            let at = match batches.iter().position(|(name, _)| *name == entry.tree) {
                Some(at) => at,
                None => {
                    batches.push((entry.tree.clone(), sled::Batch::default()));
                    batches.len() - 1
                }
            };
            batches[at].1.insert(entry.key, entry.value);
        }
        for (name, batch) in batches {
            self.db.open_tree(name)?.apply_batch(batch)?;
        }
        self.pending_bytes = 0;
        Ok(())
    }

    /// Applies what is left and makes it durable.
    pub fn complete(mut self) -> Result<(), Error> {
        self.apply()?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewEvent;
    use crate::store::tests::open_temp;
    use crate::{Account, Options};

    fn append(store: &Store, room: u8, id: u8) {
        store
            .append_events(&[NewEvent {
                room_id: [room; 32],
                event_id: [id; 32],
                bytes: &[room, id],
                flips: &[],
            }])
            .unwrap();
    }

    fn copy(store: &Store) -> (tempfile::TempDir, Store) {
        let snapshot = store.snapshot().unwrap();
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("store");
        let mut restorer = Restorer::create(&path).unwrap();
        for entry in snapshot.entries() {
            restorer.put(entry.unwrap()).unwrap();
        }
        restorer.complete().unwrap();
        let restored = Store::open(&path, &Options::default()).unwrap();
        (dir, restored)
    }

    #[test]
    fn a_snapshot_restores_events_indexes_and_accounts() {
        let (_dir, store) = open_temp();
        append(&store, 1, 10);
        append(&store, 2, 20);
        store
            .create_account_first_admin(&Account {
                username: "alice".into(),
                password_hash: "h".into(),
                created_at_ms: 1,
                is_admin: false,
                disabled: false,
                moderator: false,
                suspended: false,
            })
            .unwrap();
        let (_copy_dir, copy) = copy(&store);
        assert_eq!(copy.last_seq(), 2);
        assert_eq!(copy.event_by_id(&[20; 32]).unwrap().unwrap().seq, 2);
        assert_eq!(copy.room_events_after(&[1; 32], 0, 10).unwrap().len(), 1);
        assert!(copy.account("alice").unwrap().unwrap().is_admin);
    }

    /// Events that become durable after the snapshot started are left out whole: records,
    /// room-index and id-index entries; a read marker past the snapshot is cut back.
    #[test]
    fn later_events_are_left_out_and_markers_cut_back() {
        let (_dir, store) = open_temp();
        append(&store, 1, 10);
        store.set_read_marker("bob", &[1; 32], 5).unwrap();
        let snapshot = store.snapshot().unwrap();
        append(&store, 1, 11);
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("store");
        let mut restorer = Restorer::create(&path).unwrap();
        let entries: Vec<Entry> = snapshot.entries().map(Result::unwrap).collect();
        for entry in entries {
            restorer.put(entry).unwrap();
        }
        restorer.complete().unwrap();
        let copy = Store::open(&path, &Options::default()).unwrap();
        assert_eq!(copy.last_seq(), 1);
        assert_eq!(copy.event_seq(&[11; 32]).unwrap(), None);
        assert_eq!(copy.room_events_after(&[1; 32], 0, 10).unwrap().len(), 1);
        assert!(copy.log.get(keys::id_index(&[11; 32])).unwrap().is_none());
        assert!(
            copy.log
                .get(keys::room_index(&[1; 32], 2))
                .unwrap()
                .is_none()
        );
        assert_eq!(copy.read_marker("bob", &[1; 32]).unwrap(), 1);
    }

    #[test]
    fn restoring_into_a_non_empty_directory_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        assert!(matches!(
            Restorer::create(dir.path()),
            Err(Error::AlreadyExists)
        ));
    }
}
