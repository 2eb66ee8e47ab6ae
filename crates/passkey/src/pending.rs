//! Ceremonies begun and not yet finished.
//!
//! A ceremony's state must stay on the server (it holds the challenge): it waits here, under a
//! random id the client sends back with its answer, until it is finished (taken out, so a
//! second answer to the same ceremony finds nothing) or expires. The table is bounded three
//! ways, because beginning a sign-in needs no account: entries in all, entries per source (an
//! address, or a user for registrations), and bytes (each state's encoded size plus its
//! bookkeeping). Expired entries are dropped when room is needed; an expired entry still
//! present answers [`Error::Expired`], one dropped answers [`Error::UnknownCeremony`]. When no
//! room can be made the new ceremony is refused ([`Error::Busy`]): evicting live ones would let
//! a flood push out everyone else's. All in memory: a restart forgets every ceremony, and
//! clients start again.

use std::collections::HashMap;
use std::time::Instant;

use crate::Error;

/// Bookkeeping counted per entry beyond the state's encoded size: the id, the source, the
/// map's slot.
const ENTRY_OVERHEAD: usize = 160;

/// The bounds of a [`Pending`] table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_entries: usize,
    pub(crate) max_per_source: usize,
    pub(crate) max_bytes: usize,
}

#[derive(Debug)]
struct Entry<S> {
    state: S,
    source: String,
    expires_at: Instant,
    bytes: usize,
}

/// The table. `S` is the ceremony's state.
#[derive(Debug)]
pub(crate) struct Pending<S> {
    limits: Limits,
    entries: HashMap<String, Entry<S>>,
    per_source: HashMap<String, usize>,
    bytes: usize,
}

impl<S> Pending<S> {
    pub(crate) fn new(limits: Limits) -> Pending<S> {
        Pending {
            limits,
            entries: HashMap::new(),
            per_source: HashMap::new(),
            bytes: 0,
        }
    }

    /// Adds a ceremony of `source` under `id`, `size` bytes of state, until `expires_at`.
    pub(crate) fn insert(
        &mut self,
        id: String,
        source: &str,
        state: S,
        size: usize,
        now: Instant,
        expires_at: Instant,
    ) -> Result<(), Error> {
        let bytes = size + ENTRY_OVERHEAD + source.len();
        if self.fits(source, bytes).is_err() {
            self.drop_expired(now);
            self.fits(source, bytes)?;
        }
        *self.per_source.entry(source.to_owned()).or_default() += 1;
        self.bytes += bytes;
        let entry = Entry {
            state,
            source: source.to_owned(),
            expires_at,
            bytes,
        };
        if let Some(old) = self.entries.insert(id, entry) {
            // Ids are 128 random bits: a collision is not expected, but the books stay right.
            self.forget(&old);
        }
        Ok(())
    }

    /// Takes the ceremony `id` out: it cannot be finished twice.
    pub(crate) fn take(&mut self, id: &str, now: Instant) -> Result<S, Error> {
        let entry = self.entries.remove(id).ok_or(Error::UnknownCeremony)?;
        self.forget(&entry);
        if entry.expires_at <= now {
            return Err(Error::Expired);
        }
        Ok(entry.state)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a ceremony of `bytes` from `source` fits; the error says
    /// which bound it meets (the source's share first).
    fn fits(&self, source: &str, bytes: usize) -> Result<(), Error> {
        if self.per_source.get(source).copied().unwrap_or(0) >= self.limits.max_per_source {
            return Err(Error::TooManyPending);
        }
        if self.entries.len() >= self.limits.max_entries
            || self.bytes + bytes > self.limits.max_bytes
        {
            return Err(Error::Busy);
        }
        Ok(())
    }

    fn drop_expired(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(entry) = self.entries.remove(&id) {
                self.forget(&entry);
            }
        }
    }

    fn forget(&mut self, entry: &Entry<S>) {
        self.bytes -= entry.bytes;
        if let Some(n) = self.per_source.get_mut(&entry.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&entry.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table(max_entries: usize, max_per_source: usize, max_bytes: usize) -> Pending<u32> {
        Pending::new(Limits {
            max_entries,
            max_per_source,
            max_bytes,
        })
    }

    #[test]
    fn a_ceremony_is_taken_once() {
        let mut pending = table(10, 10, 1 << 20);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        pending
            .insert("a".into(), "ip", 7, 100, now, later)
            .unwrap();
        assert_eq!(pending.take("a", now).unwrap(), 7);
        assert!(matches!(
            pending.take("a", now),
            Err(Error::UnknownCeremony)
        ));
        assert_eq!((pending.len(), pending.bytes()), (0, 0));
    }

    #[test]
    fn an_expired_ceremony_is_refused() {
        let mut pending = table(10, 10, 1 << 20);
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        pending.insert("a".into(), "ip", 7, 100, now, soon).unwrap();
        assert!(matches!(pending.take("a", soon), Err(Error::Expired)));
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn bounded_in_count_per_source_and_bytes() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut pending = table(3, 2, 1 << 20);
        pending.insert("a".into(), "x", 1, 10, now, later).unwrap();
        pending.insert("b".into(), "x", 2, 10, now, later).unwrap();
        assert!(matches!(
            pending.insert("c".into(), "x", 3, 10, now, later),
            Err(Error::TooManyPending)
        ));
        pending.insert("c".into(), "y", 3, 10, now, later).unwrap();
        assert!(matches!(
            pending.insert("d".into(), "z", 4, 10, now, later),
            Err(Error::Busy)
        ));
        // Finishing one makes room for its source again.
        pending.take("a", now).unwrap();
        pending.insert("d".into(), "x", 4, 10, now, later).unwrap();

        let mut small = table(100, 100, 2 * (ENTRY_OVERHEAD + 1 + 100));
        small.insert("a".into(), "x", 1, 100, now, later).unwrap();
        small.insert("b".into(), "x", 1, 100, now, later).unwrap();
        assert!(matches!(
            small.insert("c".into(), "x", 1, 100, now, later),
            Err(Error::Busy)
        ));
    }

    #[test]
    fn expired_entries_make_room() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let mut pending = table(1, 1, 1 << 20);
        pending.insert("a".into(), "x", 1, 10, now, soon).unwrap();
        pending
            .insert("b".into(), "x", 2, 10, soon, soon + Duration::from_secs(1))
            .unwrap();
        assert!(matches!(
            pending.take("a", soon),
            Err(Error::UnknownCeremony)
        ));
        assert_eq!(pending.take("b", soon).unwrap(), 2);
    }
}
