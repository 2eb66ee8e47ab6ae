//! Refresh-token sessions, by id and by user.
//!
//! `sessions` holds the record; `user_sessions` indexes (username, id) so that a user's sessions
//! are one prefix scan. Both change in one transaction. Rotation changes only the record, with a
//! compare-and-swap on its encoded bytes: of two refreshes presenting the same token, one wins.
//! A record that does not decode is reported as [`Error::Corrupt`] by every method, writes
//! included: it is never silently overwritten, since its index entry could not be found.
//!
//! # The cache
//!
//! Every authenticated request looks its session up by id, so [`Store::session`] answers from a
//! bounded in-memory [`SessionCache`] of what it read before. It never answers with a session that
//! a write has since replaced or deleted: every write goes through this module, and each one,
//! after its sled write and before it returns, bumps the cache's generation and drops the entry.
//! A lookup that missed caches what it read only if no write bumped the generation since it
//! started, so a read that raced a revocation cannot put the revoked session back. Only this
//! process writes the database (sled locks the directory), so the cache sees every change.
//!
//! # Ended sessions
//!
//! A deleted session that issued access tokens leaves a note in `ended_sessions`, written in the
//! deletion's transaction, until the last of those tokens would have expired, so that the API can
//! tell a client "your session ended" rather than "this is no token of ours"
//! ([`Store::session_ended`]), across restarts and for sessions ended by the admin CLI. A note is
//! dropped when it is read after its expiry; there are at most as many as sessions ended within
//! one access-token lifetime.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sled::transaction::{ConflictableTransactionError, Transactional};
use subtle::ConstantTimeEq;

use crate::keys::{self, tree};
use crate::records::{self, AccessGrant, Session};
use crate::{Error, Store};

/// Sessions kept in memory at most. A node's active sessions fit many times over; past that the
/// cache starts again empty, and lookups go to sled until it refills.
const MAX_CACHED_SESSIONS: usize = 16_384;

/// Sessions by id, as last read; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    sessions: HashMap<String, Session>,
    /// Bumped by every write of a session.
    generation: u64,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // Every change leaves the map and counter consistent: a panic elsewhere while the lock
        // was held cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<Session> {
        self.lock().sessions.get(id).cloned()
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches `session`, read from sled after [`generation`](Self::generation) returned
    /// `generation`, unless a write has happened since.
    fn insert(&self, generation: u64, session: &Session) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.sessions.len() >= MAX_CACHED_SESSIONS {
            inner.sessions.clear();
        }
        inner.sessions.insert(session.id.clone(), session.clone());
    }

    /// Called by every write of session `id`, after it reached sled.
    fn invalidate(&self, id: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.sessions.remove(id);
    }
}

impl Store {
    /// Stores `session`, replacing one with the same id. Durable on return.
    pub fn put_session(&self, session: &Session) -> Result<(), Error> {
        let value = sled::IVec::from(records::encode(tree::SESSIONS, session)?);
        let index_key = keys::user_item(&session.username, session.id.as_bytes());
        let gate = self.shared_gate();
        (&self.sessions, &self.user_sessions).transaction(|(sessions, user_sessions)| {
            let old = sessions.insert(session.id.as_bytes(), value.clone())?;
            // A replaced session of another user must leave that user's index.
            if let Some(old) = old {
                let old: Session = records::decode(tree::SESSIONS, session.id.as_bytes(), &old)
                    .map_err(ConflictableTransactionError::Abort)?;
                user_sessions.remove(keys::user_item(&old.username, old.id.as_bytes()))?;
            }
            user_sessions.insert(&index_key[..], &[][..])?;
            Ok(())
        })?;
        drop(gate);
        self.session_cache.invalidate(&session.id);
        self.db.flush()?;
        Ok(())
    }

    /// The session with this id; from memory when it was read before and not written since.
    pub fn session(&self, id: &str) -> Result<Option<Session>, Error> {
        if let Some(session) = self.session_cache.get(id) {
            return Ok(Some(session));
        }
        let generation = self.session_cache.generation();
        let session: Option<Session> = self
            .sessions
            .get(id)?
            .map(|value| records::decode(tree::SESSIONS, id.as_bytes(), &value))
            .transpose()?;
        if let Some(session) = &session {
            self.session_cache.insert(generation, session);
        }
        Ok(session)
    }

    /// The sessions of `username` (ignoring case), by id.
    pub fn sessions_of(&self, username: &str) -> Result<Vec<Session>, Error> {
        let prefix = keys::user_prefix(username);
        self.user_sessions
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, _) = entry?;
                let id = keys::decode_user_item(tree::USER_SESSIONS, &prefix, &key)?;
                self.session(&id)?.ok_or_else(|| {
                    Error::corrupt(
                        tree::USER_SESSIONS,
                        &key,
                        "index entry points at a missing session",
                    )
                })
            })
            .collect()
    }

    /// Deletes a session; `false` if there was none. Durable on return. If it issued access
    /// tokens, a note that it ended stays until the last of them expires (see the module docs).
    pub fn delete_session(&self, id: &str) -> Result<bool, Error> {
        let gate = self.shared_gate();
        let deleted = (
            &self.sessions,
            &self.user_sessions,
            &self.ended_sessions,
            &self.txns,
        )
            .transaction(|(sessions, user_sessions, ended, txns)| {
                let Some(old) = sessions.remove(id.as_bytes())? else {
                    return Ok(false);
                };
                txns.remove(id.as_bytes())?;
                let old: Session = records::decode(tree::SESSIONS, id.as_bytes(), &old)
                    .map_err(ConflictableTransactionError::Abort)?;
                user_sessions.remove(keys::user_item(&old.username, id.as_bytes()))?;
                if let Some(until_ms) = old.access.iter().map(|g| g.expires_at_ms).max() {
                    ended.insert(id.as_bytes(), &until_ms.to_be_bytes()[..])?;
                }
                Ok(true)
            })?;
        drop(gate);
        self.session_cache.invalidate(id);
        self.db.flush()?;
        Ok(deleted)
    }

    /// Whether session `id` was deleted while an access token it issued was still unexpired at
    /// `now_ms`: a token naming it is then from an ended session, not unknown. See the module
    /// docs.
    pub fn session_ended(&self, id: &str, now_ms: u64) -> Result<bool, Error> {
        let Some(value) = self.ended_sessions.get(id.as_bytes())? else {
            return Ok(false);
        };
        let until_ms = <[u8; 8]>::try_from(&value[..])
            .map(u64::from_be_bytes)
            .map_err(|_| Error::corrupt(tree::ENDED_SESSIONS, id.as_bytes(), "not a u64"))?;
        if until_ms > now_ms {
            return Ok(true);
        }
        // Expired: nothing will ask again. Not flushed; a crash only keeps a stale note.
        self.ended_sessions
            .compare_and_swap(id.as_bytes(), Some(value), None as Option<&[u8]>)?
            .ok();
        Ok(false)
    }

    /// Refresh-token rotation: if `presented` is the hash of the session's current refresh
    /// token, atomically replaces it by the renewal's (keeping it among the
    /// [previous hashes](Session::previous_hashes)), adds the renewal's access grant before the
    /// others that are unexpired at `now_ms` (keeping [`Session::MAX_ACCESS_GRANTS`]), and sets
    /// `admin`, `last_used_ms` and `expires_at_ms`. Durable on return.
    ///
    /// Hashes are compared in constant time. [`Rotation::Reused`] if `presented` is one of the
    /// session's earlier tokens (replayed or stolen: the caller ends the session);
    /// [`Rotation::Unknown`] if the session is gone or `presented` is none of its tokens, and
    /// then nothing changed.
    pub fn rotate_session(
        &self,
        id: &str,
        presented: &[u8; 32],
        renewal: &Renewal,
    ) -> Result<Rotation, Error> {
        loop {
            let Some(current) = self.sessions.get(id)? else {
                return Ok(Rotation::Unknown);
            };
            let session: Session = records::decode(tree::SESSIONS, id.as_bytes(), &current)?;
            if !hash_eq(&session.refresh_hash, presented) {
                // Every earlier hash is compared, so the time taken says nothing about which.
                let reused = session
                    .previous_hashes
                    .iter()
                    .fold(subtle::Choice::from(0), |found, hash| {
                        found | hash.ct_eq(presented)
                    });
                return Ok(if bool::from(reused) {
                    Rotation::Reused
                } else {
                    Rotation::Unknown
                });
            }
            let mut previous_hashes = Vec::with_capacity(Session::MAX_PREVIOUS_HASHES);
            previous_hashes.push(session.refresh_hash);
            previous_hashes.extend(
                session
                    .previous_hashes
                    .iter()
                    .take(Session::MAX_PREVIOUS_HASHES - 1),
            );
            let mut access = Vec::with_capacity(Session::MAX_ACCESS_GRANTS);
            access.push(renewal.access);
            access.extend(
                session
                    .access
                    .iter()
                    .filter(|grant| grant.expires_at_ms > renewal.now_ms)
                    .take(Session::MAX_ACCESS_GRANTS - 1),
            );
            let rotated = Session {
                refresh_hash: renewal.refresh_hash,
                last_used_ms: renewal.now_ms,
                expires_at_ms: renewal.expires_at_ms,
                previous_hashes,
                access,
                admin: renewal.admin,
                ..session
            };
            let value = records::encode(tree::SESSIONS, &rotated)?;
            let swapped = self
                .sessions
                .compare_and_swap(id, Some(&current), Some(value))?;
            if swapped.is_ok() {
                self.session_cache.invalidate(id);
                self.db.flush()?;
                return Ok(Rotation::Rotated(rotated));
            }
            // The record changed in between; decide again on its new value. If a concurrent
            // rotation won, the presented hash is now an earlier one and this is `Reused`.
        }
    }
}

/// What a successful [`Store::rotate_session`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// The hash of the session's new refresh token.
    pub refresh_hash: [u8; 32],
    /// The new access token's.
    pub access: AccessGrant,
    /// Whether the account is an admin now.
    pub admin: bool,
    pub now_ms: u64,
    /// The session's new expiry.
    pub expires_at_ms: u64,
}

/// What [`Store::rotate_session`] did.
// One value per refresh, returned and dropped: boxing the session would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current; here is the session with its new one.
    Rotated(Session),
    /// The presented token is one the session issued before: two holders have it.
    Reused,
    /// No such session, or not a token it ever issued (within its memory). Nothing changed.
    Unknown,
}

fn hash_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn session(id: &str, username: &str) -> Session {
        Session {
            id: id.into(),
            username: username.into(),
            refresh_hash: [1; 32],
            device: "laptop".into(),
            created_at_ms: 100,
            last_used_ms: 100,
            expires_at_ms: 1_000,
            previous_hashes: Vec::new(),
            access: Vec::new(),
            admin: false,
            method: crate::SignInMethod::Unknown,
            user_agent: String::new(),
            oauth: None,
        }
    }

    /// A renewal to refresh hash `refresh_hash`, with an access grant of the same hash.
    fn renewal(refresh_hash: [u8; 32], now_ms: u64, expires_at_ms: u64) -> Renewal {
        Renewal {
            refresh_hash,
            access: AccessGrant {
                hash: refresh_hash,
                expires_at_ms: now_ms + 100,
            },
            admin: true,
            now_ms,
            expires_at_ms,
        }
    }

    fn ids(sessions: &[Session]) -> Vec<&str> {
        sessions.iter().map(|session| session.id.as_str()).collect()
    }

    #[test]
    fn put_then_read_by_id_and_user() {
        let (dir, store) = open_temp();
        store.put_session(&session("s2", "alice")).unwrap();
        store.put_session(&session("s1", "Alice")).unwrap();
        store.put_session(&session("s3", "bob")).unwrap();
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "Alice")));
        assert_eq!(store.session("nope").unwrap(), None);
        assert_eq!(ids(&store.sessions_of("ALICE").unwrap()), ["s1", "s2"]);
        assert_eq!(ids(&store.sessions_of("bob").unwrap()), ["s3"]);

        let store = reopen(&dir, store);
        assert_eq!(ids(&store.sessions_of("alice").unwrap()), ["s1", "s2"]);
    }

    #[test]
    fn sessions_of_prefix_names_are_separate() {
        let (_dir, store) = open_temp();
        store.put_session(&session("ice-1", "al")).unwrap();
        store.put_session(&session("x", "alice")).unwrap();
        assert_eq!(ids(&store.sessions_of("al").unwrap()), ["ice-1"]);
        assert_eq!(ids(&store.sessions_of("alice").unwrap()), ["x"]);
        assert!(store.sessions_of("a").unwrap().is_empty());
    }

    #[test]
    fn replacing_a_session_moves_its_index_entry() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        store.put_session(&session("s1", "bob")).unwrap();
        assert!(store.sessions_of("alice").unwrap().is_empty());
        assert_eq!(ids(&store.sessions_of("bob").unwrap()), ["s1"]);
        assert_eq!(store.user_sessions.len(), 1);
    }

    #[test]
    fn delete_removes_record_and_index() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        store.put_session(&session("s2", "alice")).unwrap();
        assert!(store.delete_session("s1").unwrap());
        assert!(!store.delete_session("s1").unwrap());
        assert_eq!(store.session("s1").unwrap(), None);
        assert_eq!(ids(&store.sessions_of("alice").unwrap()), ["s2"]);
        assert_eq!(store.user_sessions.len(), 1);
    }

    /// Reads after every kind of write see the write, not the cached copy.
    #[test]
    fn cached_sessions_follow_every_write() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        // Read twice: the second answer comes from the cache.
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "alice")));
        assert_eq!(store.session_cache.get("s1"), Some(session("s1", "alice")));
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "alice")));

        store.put_session(&session("s1", "bob")).unwrap();
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "bob")));

        store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        assert_eq!(store.session("s1").unwrap().unwrap().expires_at_ms, 5_000);

        assert!(store.delete_session("s1").unwrap());
        assert_eq!(store.session_cache.get("s1"), None);
        assert_eq!(store.session("s1").unwrap(), None);
    }

    /// A lookup that read sled before a write and caches after it must not bring back what the
    /// write replaced: here, a revoked session.
    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let cache = SessionCache::default();
        let generation = cache.generation();
        // The lookup has read the session from sled; now it is deleted...
        cache.invalidate("s1");
        // ...and the lookup finishes.
        cache.insert(generation, &session("s1", "alice"));
        assert_eq!(cache.get("s1"), None);
        // A lookup that starts after the write caches.
        cache.insert(cache.generation(), &session("s1", "alice"));
        assert_eq!(cache.get("s1"), Some(session("s1", "alice")));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SessionCache::default();
        for n in 0..=MAX_CACHED_SESSIONS {
            cache.insert(cache.generation(), &session(&n.to_string(), "alice"));
        }
        assert_eq!(cache.lock().sessions.len(), 1);
        assert!(cache.get(&MAX_CACHED_SESSIONS.to_string()).is_some());
    }

    #[test]
    fn rotate_replaces_hash_and_times() {
        let (dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        let rotated = store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        let expected = Session {
            refresh_hash: [2; 32],
            last_used_ms: 500,
            expires_at_ms: 5_000,
            previous_hashes: vec![[1; 32]],
            access: vec![renewal([2; 32], 500, 5_000).access],
            admin: true,
            ..session("s1", "alice")
        };
        assert_eq!(rotated, Rotation::Rotated(expected.clone()));
        let store = reopen(&dir, store);
        assert_eq!(store.session("s1").unwrap(), Some(expected));
    }

    /// A token the session never issued is refused and changes nothing: forging
    /// `<session id>.<anything>` cannot end someone's session.
    #[test]
    fn rotate_with_an_unknown_hash_changes_nothing() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        assert_eq!(
            store
                .rotate_session("s1", &[9; 32], &renewal([2; 32], 500, 5_000))
                .unwrap(),
            Rotation::Unknown
        );
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "alice")));
        // Still so after rotations, when the session has earlier hashes.
        store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        let before = store.session("s1").unwrap();
        assert_eq!(
            store
                .rotate_session("s1", &[9; 32], &renewal([3; 32], 600, 6_000))
                .unwrap(),
            Rotation::Unknown
        );
        assert_eq!(store.session("s1").unwrap(), before);
    }

    #[test]
    fn rotate_with_an_earlier_token_is_reuse() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        assert_eq!(
            store
                .rotate_session("s1", &[1; 32], &renewal([3; 32], 600, 6_000))
                .unwrap(),
            Rotation::Reused
        );
        // Detecting reuse changes nothing by itself: the caller ends the session.
        assert_eq!(store.session("s1").unwrap().unwrap().refresh_hash, [2; 32]);
    }

    /// The session remembers its last `MAX_PREVIOUS_HASHES` tokens, newest first; an older one
    /// is merely unknown.
    #[test]
    fn earlier_hashes_are_bounded() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        let n_rotations = Session::MAX_PREVIOUS_HASHES as u8 + 3;
        for n in 1..=n_rotations {
            assert!(matches!(
                store
                    .rotate_session("s1", &[n; 32], &renewal([n + 1; 32], 500, 5_000))
                    .unwrap(),
                Rotation::Rotated(_)
            ));
        }
        let stored = store.session("s1").unwrap().unwrap();
        assert_eq!(stored.refresh_hash, [n_rotations + 1; 32]);
        let expected: Vec<[u8; 32]> = (0..Session::MAX_PREVIOUS_HASHES as u8)
            .map(|back| [n_rotations - back; 32])
            .collect();
        assert_eq!(stored.previous_hashes, expected);
        let oldest_kept = n_rotations + 1 - Session::MAX_PREVIOUS_HASHES as u8;
        assert_eq!(
            store
                .rotate_session("s1", &[oldest_kept; 32], &renewal([99; 32], 1, 2))
                .unwrap(),
            Rotation::Reused
        );
        assert_eq!(
            store
                .rotate_session("s1", &[oldest_kept - 1; 32], &renewal([99; 32], 1, 2))
                .unwrap(),
            Rotation::Unknown
        );
    }

    /// A session written in format 1 (before earlier hashes were kept) rotates, and is written
    /// back in the current format.
    #[test]
    fn a_format_1_session_rotates() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        let mut v1 = vec![1, 2, b's', b'1', 5, b'a', b'l', b'i', b'c', b'e'];
        v1.extend_from_slice(&[1; 32]);
        v1.extend_from_slice(&[6, b'l', b'a', b'p', b't', b'o', b'p', 100, 100, 0xe8, 0x07]);
        store.sessions.insert("s1", v1).unwrap();
        store.session_cache.invalidate("s1");
        assert_eq!(store.session("s1").unwrap(), Some(session("s1", "alice")));
        assert!(matches!(
            store
                .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
                .unwrap(),
            Rotation::Rotated(_)
        ));
        assert_eq!(
            store.sessions.get("s1").unwrap().unwrap()[0],
            <Session as records::Record>::VERSION
        );
        assert_eq!(
            store.session("s1").unwrap().unwrap().previous_hashes,
            [[1; 32]]
        );
    }

    /// A rotation keeps the new access grant and the one before it while it is unexpired.
    #[test]
    fn rotation_keeps_the_newest_unexpired_access_grants() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        let grants = |store: &Store| store.session("s1").unwrap().unwrap().access;
        // Each grant of `renewal` lives 100 ms.
        store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        assert_eq!(grants(&store), [renewal([2; 32], 500, 5_000).access]);
        store
            .rotate_session("s1", &[2; 32], &renewal([3; 32], 550, 5_000))
            .unwrap();
        store
            .rotate_session("s1", &[3; 32], &renewal([4; 32], 560, 5_000))
            .unwrap();
        assert_eq!(
            grants(&store),
            [
                renewal([4; 32], 560, 5_000).access,
                renewal([3; 32], 550, 5_000).access
            ]
        );
        // Past the previous grant's expiry (660), only the new one is kept.
        store
            .rotate_session("s1", &[4; 32], &renewal([5; 32], 660, 5_000))
            .unwrap();
        assert_eq!(grants(&store), [renewal([5; 32], 660, 5_000).access]);
    }

    /// A deleted session that issued access tokens is remembered as ended until the last of
    /// them expires; one that never did, or was never there, is not.
    #[test]
    fn ended_sessions_are_remembered_until_their_tokens_expire() {
        let (dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        store.put_session(&session("s2", "alice")).unwrap();
        store
            .rotate_session("s1", &[1; 32], &renewal([2; 32], 500, 5_000))
            .unwrap();
        let ended = |store: &Store, id: &str, now_ms: u64| store.session_ended(id, now_ms).unwrap();
        assert!(!ended(&store, "s1", 500));
        assert!(store.delete_session("s1").unwrap());
        assert!(store.delete_session("s2").unwrap());
        assert!(ended(&store, "s1", 599));
        assert!(!ended(&store, "s2", 599), "it issued no access token");
        assert!(!ended(&store, "nope", 599));
        // Across a restart (and for a deletion by another process, the admin CLI).
        let store = reopen(&dir, store);
        assert!(ended(&store, "s1", 599));
        assert!(!ended(&store, "s1", 600));
        assert!(!ended(&store, "s1", 500), "forgotten once expired");
    }

    #[test]
    fn rotate_a_missing_session_is_unknown() {
        let (_dir, store) = open_temp();
        assert_eq!(
            store
                .rotate_session("gone", &[1; 32], &renewal([2; 32], 1, 2))
                .unwrap(),
            Rotation::Unknown
        );
        assert_eq!(store.session("gone").unwrap(), None);
    }

    #[test]
    fn concurrent_rotations_of_one_token_let_exactly_one_win() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store
                        .rotate_session("s1", &[1; 32], &renewal([10 + n; 32], 500, 5_000))
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Rotation> = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        let winners: Vec<Session> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Rotation::Rotated(session) => Some(session.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1);
        // The losers presented what is now an earlier token.
        assert_eq!(
            outcomes
                .iter()
                .filter(|outcome| **outcome == Rotation::Reused)
                .count(),
            3
        );
        assert_eq!(store.session("s1").unwrap().as_ref(), winners.first());
    }

    #[test]
    fn undecodable_session_is_corrupt() {
        let (_dir, store) = open_temp();
        store.put_session(&session("s1", "alice")).unwrap();
        store.sessions.insert("s1", &[1, 0xff][..]).unwrap();
        assert!(matches!(
            store.session("s1"),
            Err(Error::Corrupt {
                tree: "sessions",
                ..
            })
        ));
        assert!(matches!(
            store.sessions_of("alice"),
            Err(Error::Corrupt {
                tree: "sessions",
                ..
            })
        ));
        assert!(matches!(
            store.rotate_session("s1", &[1; 32], &renewal([2; 32], 1, 2)),
            Err(Error::Corrupt {
                tree: "sessions",
                ..
            })
        ));
    }

    #[test]
    fn dangling_session_index_is_corrupt() {
        let (_dir, store) = open_temp();
        let key = keys::user_item("alice", b"ghost");
        store.user_sessions.insert(key, &[][..]).unwrap();
        assert!(matches!(
            store.sessions_of("alice"),
            Err(Error::Corrupt {
                tree: "user_sessions",
                ..
            })
        ));
    }
}
