//! The [`Store`] handle: opening the database, durability, node metadata.
//!
//! # Durability and crashes
//!
//! Every method that writes calls `sled::Db::flush` (write + fsync of sled's log) before it
//! returns `Ok`, so whatever the store has acknowledged survives a crash or power loss. A write
//! that returned an error may or may not have reached the disk.
//!
//! sled applies one transaction atomically, across trees too, and recovery after a crash replays
//! either all of it or none. Every write that touches more than one tree is one such transaction:
//! a session and its per-user index (`sessions.rs`). So the indexes never point at a missing
//! record; if one ever does, readers report [`Error::Corrupt`] instead of silently skipping it.
//! A group commit of events is one tree's atomic batch (`events.rs`).
//!
//! Single-key read-modify-writes (creating an account, rotating a refresh token, using an invite,
//! moving a read marker) are `compare_and_swap` loops: correct under concurrent callers, no lock
//! held across I/O.
//!
//! The handle is cheap to clone (sled trees are reference-counted) and all clones share one
//! database, one seq allocator and one session cache.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::Error;
use crate::events::Seqs;
use crate::keys::tree;
use crate::sessions::SessionCache;

/// How to open a [`Store`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The upper bound of sled's page cache.
    pub cache_capacity_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // sled's default is 1 GiB, sized for a dedicated database server. A node shares a
            // laptop or small VPS with the search index and moderation models; 32 MiB keeps the
            // recently active rooms and the account tables hot, and the OS page cache serves the
            // rest of the file.
            cache_capacity_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The node's durable state. See the crate docs for what lives where.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    pub(crate) flips: sled::Tree,
    pub(crate) accounts: sled::Tree,
    pub(crate) profiles: sled::Tree,
    pub(crate) settings: sled::Tree,
    pub(crate) contacts: sled::Tree,
    pub(crate) sessions: sled::Tree,
    pub(crate) user_sessions: sled::Tree,
    pub(crate) ended_sessions: sled::Tree,
    pub(crate) invites: sled::Tree,
    pub(crate) invite_links: sled::Tree,
    pub(crate) read_markers: sled::Tree,
    pub(crate) txns: sled::Tree,
    pub(crate) passkeys: sled::Tree,
    pub(crate) user_passkeys: sled::Tree,
    pub(crate) auth_policies: sled::Tree,
    pub(crate) oauth_clients: sled::Tree,
    pub(crate) oauth_codes: sled::Tree,
    pub(crate) moderation: sled::Tree,
    pub(crate) notifications: sled::Tree,
    pub(crate) email: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) seqs: Arc<Seqs>,
    pub(crate) session_cache: Arc<SessionCache>,
    /// Held shared by every write that spans two trees in one transaction, and exclusively by
    /// [`Store::snapshot`] while it copies those trees (see `snapshot`).
    pub(crate) gate: Arc<std::sync::RwLock<()>>,
}

/// How long `open` waits for the directory's lock. sled closes its file on a
/// background IO thread, so right after the last handle in this process is
/// dropped the lock can still be held for a moment; another process that
/// really holds it is reported after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_db(path: &Path, options: &Options) -> Result<sled::Db, Error> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_capacity_bytes);
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return Ok(result?),
        }
    }
}

/// Refuses a directory whose events are in layout 1 (three trees per event, before the `log`
/// of group-commit records). No node with such data was ever deployed, so there is no
/// migration; empty layout-1 trees (a directory that never stored an event) are dropped.
fn check_layout(db: &sled::Db) -> Result<(), Error> {
    let names = db.tree_names();
    for old in tree::LAYOUT_1 {
        if !names.iter().any(|name| name == old.as_bytes()) {
            continue;
        }
        if !db.open_tree(old)?.is_empty() {
            return Err(Error::OldLayout { tree: old });
        }
        db.drop_tree(old)?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the database in the directory `path`.
    ///
    /// Fails if another process, or another `Store` in this one, holds it open
    /// (after waiting up to two seconds for a just-dropped one to let go).
    pub fn open(path: &Path, options: &Options) -> Result<Store, Error> {
        let db = open_db(path, options)?;
        check_layout(&db)?;
        let log = db.open_tree(tree::LOG)?;
        let last_seq = crate::events::last_stored_seq(&log)?;
        let store = Store {
            log,
            flips: db.open_tree(tree::FLIPS)?,
            accounts: db.open_tree(tree::ACCOUNTS)?,
            profiles: db.open_tree(tree::PROFILES)?,
            settings: db.open_tree(tree::SETTINGS)?,
            contacts: db.open_tree(tree::CONTACTS)?,
            sessions: db.open_tree(tree::SESSIONS)?,
            user_sessions: db.open_tree(tree::USER_SESSIONS)?,
            ended_sessions: db.open_tree(tree::ENDED_SESSIONS)?,
            invites: db.open_tree(tree::INVITES)?,
            invite_links: db.open_tree(tree::INVITE_LINKS)?,
            read_markers: db.open_tree(tree::READ_MARKERS)?,
            txns: db.open_tree(tree::TXNS)?,
            passkeys: db.open_tree(tree::PASSKEYS)?,
            user_passkeys: db.open_tree(tree::USER_PASSKEYS)?,
            auth_policies: db.open_tree(tree::AUTH_POLICIES)?,
            oauth_clients: db.open_tree(tree::OAUTH_CLIENTS)?,
            oauth_codes: db.open_tree(tree::OAUTH_CODES)?,
            moderation: db.open_tree(tree::MODERATION)?,
            notifications: db.open_tree(tree::NOTIFICATIONS)?,
            email: db.open_tree(tree::EMAIL)?,
            meta: db.open_tree(tree::META)?,
            db,
            seqs: Arc::new(Seqs::new(last_seq)),
            session_cache: Arc::default(),
            gate: Arc::default(),
        };
        crate::accounts::mark_first_account(&store)?;
        tracing::info!(path = %path.display(), last_seq, "store opened");
        Ok(store)
    }

    /// Makes every write so far durable. Writing methods already do this before they return;
    /// this is for callers that want a barrier, e.g. at shutdown.
    pub fn flush(&self) -> Result<(), Error> {
        self.seqs.flush(&self.db)
    }

    /// Holds off [`Store::snapshot`] while a write spanning two trees runs.
    pub(crate) fn shared_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        // The guarded value is `()`: a panic while it was held left nothing half-updated.
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A small piece of node metadata, e.g. the schema version or the node's first start time.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.meta.get(key)?.map(|value| value.to_vec()))
    }

    /// Stores node metadata under `key`, replacing any previous value; durable on return.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.meta.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("last_seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tempfile::TempDir;

    /// A store on disk in a fresh directory; keep the `TempDir` alive as long as the store.
    pub(crate) fn open_temp() -> (TempDir, Store) {
        let dir = TempDir::new().unwrap();
        let store = Store::open(dir.path(), &Options::default()).unwrap();
        (dir, store)
    }

    /// Drops `store` and opens the same directory again, as after a restart.
    pub(crate) fn reopen(dir: &TempDir, store: Store) -> Store {
        drop(store);
        Store::open(dir.path(), &Options::default()).unwrap()
    }

    #[test]
    fn default_cache_is_32_mib() {
        assert_eq!(Options::default().cache_capacity_bytes, 33_554_432);
    }

    #[test]
    fn meta_round_trips_and_survives_reopen() {
        let (dir, store) = open_temp();
        assert_eq!(store.meta("schema").unwrap(), None);
        store.put_meta("schema", b"1").unwrap();
        store.put_meta("schema", b"2").unwrap();
        assert_eq!(store.meta("schema").unwrap().as_deref(), Some(&b"2"[..]));
        let store = reopen(&dir, store);
        assert_eq!(store.meta("schema").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn a_second_open_of_the_same_directory_fails() {
        let (dir, _store) = open_temp();
        assert!(matches!(
            Store::open(dir.path(), &Options::default()),
            Err(Error::Sled(_))
        ));
    }

    #[test]
    fn open_fails_on_a_corrupt_log_record() {
        for (key, value) in [(&b"short"[..], &[1, 0][..]), (&[0; 8][..], &b"garbage"[..])] {
            let (dir, store) = open_temp();
            store.log.insert(key, value).unwrap();
            let store = {
                store.flush().unwrap();
                drop(store);
                Store::open(dir.path(), &Options::default())
            };
            assert!(matches!(store, Err(Error::Corrupt { tree: "log", .. })));
        }
    }

    /// A directory with events in layout 1 is refused, not read as empty; one whose layout-1
    /// trees hold nothing opens.
    #[test]
    fn open_refuses_events_in_layout_1() {
        let dir = TempDir::new().unwrap();
        {
            let db = open_db(dir.path(), &Options::default()).unwrap();
            db.open_tree("events").unwrap();
            db.open_tree("stream")
                .unwrap()
                .insert(1u64.to_be_bytes(), &[7; 32][..])
                .unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path(), &Options::default()),
            Err(Error::OldLayout { tree: "stream" })
        ));

        let dir = TempDir::new().unwrap();
        {
            let db = open_db(dir.path(), &Options::default()).unwrap();
            for name in tree::LAYOUT_1 {
                db.open_tree(name).unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path(), &Options::default()).unwrap();
        assert_eq!(store.last_seq(), 0);
        let names = store.db.tree_names();
        for name in tree::LAYOUT_1 {
            assert!(
                !names.iter().any(|n| n == name.as_bytes()),
                "{name} dropped"
            );
        }
    }

    #[test]
    fn debug_shows_last_seq() {
        let (_dir, store) = open_temp();
        assert_eq!(format!("{store:?}"), "Store { last_seq: 0, .. }");
    }
}
