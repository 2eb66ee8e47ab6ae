//! Room invite links: a code that admits a number of users to one room until it expires.
//!
//! Codes are secrets: their keys never appear in errors or logs. A use is one
//! `compare_and_swap` on the link's record, so concurrent uses can never take more than
//! `uses_left`, with no lock held by anyone. The caller's admission may still fail after the use
//! was taken (the auth rules refuse the invite); it then gives the use back with
//! [`Store::return_invite_link_use`], so a failed admission costs the link nothing.
//!
//! Builds before this tree kept links as JSON in `meta` under `invite_link/<code>`. The store
//! does not read JSON or ids' text forms, so the node moves them: it reads them with
//! [`Store::legacy_invite_links`] and hands each back, converted or not, to
//! [`Store::migrate_legacy_invite_link`], which moves it in one transaction.

use sled::transaction::Transactional;

use crate::keys::{self, tree};
use crate::records::{self, InviteLink};
use crate::{Error, Store};

impl Store {
    /// Stores an invite link under `code`, replacing one with the same code. Durable on return.
    pub fn put_invite_link(&self, code: &str, link: &InviteLink) -> Result<(), Error> {
        let value = records::encode(tree::INVITE_LINKS, link)?;
        self.invite_links.insert(keys::invite_link(code), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The link stored under `code`, live or not.
    pub fn invite_link(&self, code: &str) -> Result<Option<InviteLink>, Error> {
        self.invite_links
            .get(keys::invite_link(code))?
            .map(|value| records::decode_secret_keyed(tree::INVITE_LINKS, &value))
            .transpose()
    }

    /// Uses the link once: `Some(link)` (as it is after the use) if it exists, is unexpired at
    /// `now_ms` (expiry is exclusive) and has a use left, which is taken. `None` changes nothing.
    /// Atomic against concurrent uses; durable on return.
    pub fn use_invite_link(&self, code: &str, now_ms: u64) -> Result<Option<InviteLink>, Error> {
        let key = keys::invite_link(code);
        loop {
            let Some(current) = self.invite_links.get(key)? else {
                return Ok(None);
            };
            let link: InviteLink = records::decode_secret_keyed(tree::INVITE_LINKS, &current)?;
            let expired = link.expires_at_ms.is_some_and(|expires| now_ms >= expires);
            if expired || link.uses_left == 0 {
                return Ok(None);
            }
            let used = InviteLink {
                uses_left: link.uses_left - 1,
                ..link
            };
            let next = records::encode(tree::INVITE_LINKS, &used)?;
            if self
                .invite_links
                .compare_and_swap(key, Some(&current), Some(next))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(Some(used));
            }
            // Another use came first; decide again on the new value.
        }
    }

    /// Gives back a use taken by [`Store::use_invite_link`] whose admission then failed. A link
    /// replaced or gone in between is left as it is. Durable on return.
    pub fn return_invite_link_use(&self, code: &str) -> Result<(), Error> {
        let key = keys::invite_link(code);
        loop {
            let Some(current) = self.invite_links.get(key)? else {
                return Ok(());
            };
            let link: InviteLink = records::decode_secret_keyed(tree::INVITE_LINKS, &current)?;
            let returned = InviteLink {
                uses_left: link.uses_left.saturating_add(1),
                ..link
            };
            let next = records::encode(tree::INVITE_LINKS, &returned)?;
            if self
                .invite_links
                .compare_and_swap(key, Some(&current), Some(next))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(());
            }
        }
    }
}

impl Store {
    /// The invite links an older build left in `meta`, as (code, JSON bytes), in code order.
    /// Codes are secrets: an error names no key.
    pub fn legacy_invite_links(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let prefix = keys::meta::LEGACY_INVITE_LINK_PREFIX;
        self.meta
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let code = std::str::from_utf8(&key[prefix.len()..])
                    .map_err(|_| Error::Corrupt {
                        tree: tree::META,
                        key_hex: None,
                        reason: "a legacy invite link's code is not UTF-8".into(),
                    })?
                    .to_owned();
                Ok((code, value.to_vec()))
            })
            .collect()
    }

    /// Moves the legacy link `code` out of `meta`: stores `link` under its code in
    /// `invite_links` (unless a link already has that code there) and removes the `meta` entry,
    /// in one transaction; with `None` (a record the node could not read) it only removes it.
    /// Durable on return. A crash leaves the link either moved or not, never both or neither.
    pub fn migrate_legacy_invite_link(
        &self,
        code: &str,
        link: Option<&InviteLink>,
    ) -> Result<(), Error> {
        let value = link
            .map(|link| records::encode(tree::INVITE_LINKS, link))
            .transpose()?;
        let legacy_key = keys::legacy_invite_link(code);
        let key = keys::invite_link(code);
        (&self.meta, &self.invite_links).transaction(|(meta, invite_links)| {
            if let Some(value) = &value
                && invite_links.get(key)?.is_none()
            {
                invite_links.insert(key, value.as_slice())?;
            }
            meta.remove(legacy_key.as_slice())?;
            Ok(())
        })?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn link(uses_left: u32, expires_at_ms: Option<u64>) -> InviteLink {
        InviteLink {
            room_id: [1; 32],
            creator: "@al:n".into(),
            uses_left,
            expires_at_ms,
        }
    }

    #[test]
    fn uses_run_out_but_the_link_stays() {
        let (dir, store) = open_temp();
        store.put_invite_link("code", &link(2, None)).unwrap();
        assert_eq!(
            store.use_invite_link("code", 0).unwrap(),
            Some(link(1, None))
        );
        let store = reopen(&dir, store);
        assert_eq!(
            store.use_invite_link("code", 0).unwrap(),
            Some(link(0, None))
        );
        assert_eq!(store.use_invite_link("code", 0).unwrap(), None);
        assert_eq!(store.invite_link("code").unwrap(), Some(link(0, None)));
        assert_eq!(store.use_invite_link("other", 0).unwrap(), None);
    }

    #[test]
    fn a_returned_use_can_be_taken_again() {
        let (_dir, store) = open_temp();
        store.put_invite_link("code", &link(1, None)).unwrap();
        assert!(store.use_invite_link("code", 0).unwrap().is_some());
        assert_eq!(store.use_invite_link("code", 0).unwrap(), None);
        store.return_invite_link_use("code").unwrap();
        assert!(store.use_invite_link("code", 0).unwrap().is_some());
        // Returning to a link that is gone creates nothing.
        store.return_invite_link_use("gone").unwrap();
        assert_eq!(store.invite_link("gone").unwrap(), None);
    }

    #[test]
    fn expiry_is_exclusive() {
        // (expires_at_ms, now_ms, usable)
        let cases = [
            (None, u64::MAX, true),
            (Some(100), 99, true),
            (Some(100), 100, false),
            (Some(100), 101, false),
        ];
        for (expires_at_ms, now_ms, usable) in cases {
            let (_dir, store) = open_temp();
            store
                .put_invite_link("code", &link(2, expires_at_ms))
                .unwrap();
            let used = store.use_invite_link("code", now_ms).unwrap();
            assert_eq!(used.is_some(), usable, "{expires_at_ms:?} at {now_ms}");
            let left = store.invite_link("code").unwrap().unwrap().uses_left;
            assert_eq!(left, if usable { 1 } else { 2 });
        }
    }

    #[test]
    fn concurrent_uses_never_exceed_the_count() {
        let (_dir, store) = open_temp();
        store.put_invite_link("code", &link(5, None)).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..2)
                        .filter(|_| store.use_invite_link("code", 0).unwrap().is_some())
                        .count()
                })
            })
            .collect();
        let n_used: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(n_used, 5);
        assert_eq!(store.invite_link("code").unwrap().unwrap().uses_left, 0);
    }

    #[test]
    fn undecodable_link_is_corrupt_and_withholds_the_code() {
        let (_dir, store) = open_temp();
        store.invite_links.insert("code", &[7][..]).unwrap();
        match store.use_invite_link("code", 0) {
            Err(error @ Error::Corrupt { key_hex: None, .. }) => {
                assert!(!error.to_string().contains("code"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn legacy_links_move_out_of_meta_once() {
        let (dir, store) = open_temp();
        store
            .put_meta("invite_link/old", br#"{"uses_left":3}"#)
            .unwrap();
        store.put_meta("invite_link/junk", b"not json").unwrap();
        store.put_meta("invite_links_other", b"x").unwrap();
        store.put_meta("first_start", b"1").unwrap();
        let found = store.legacy_invite_links().unwrap();
        assert_eq!(
            found,
            [
                ("junk".to_owned(), b"not json".to_vec()),
                ("old".to_owned(), br#"{"uses_left":3}"#.to_vec()),
            ]
        );
        store
            .migrate_legacy_invite_link("old", Some(&link(3, None)))
            .unwrap();
        store.migrate_legacy_invite_link("junk", None).unwrap();
        let store = reopen(&dir, store);
        assert!(store.legacy_invite_links().unwrap().is_empty());
        assert_eq!(store.invite_link("old").unwrap(), Some(link(3, None)));
        assert_eq!(store.invite_link("junk").unwrap(), None);
        assert_eq!(
            store.meta("invite_links_other").unwrap(),
            Some(b"x".to_vec())
        );
        assert_eq!(store.meta("first_start").unwrap(), Some(b"1".to_vec()));
    }

    /// A code already in the tree keeps its record: the legacy copy is only removed.
    #[test]
    fn a_migration_never_replaces_a_link() {
        let (_dir, store) = open_temp();
        store.put_invite_link("code", &link(1, None)).unwrap();
        store.put_meta("invite_link/code", b"{}").unwrap();
        store
            .migrate_legacy_invite_link("code", Some(&link(9, Some(5))))
            .unwrap();
        assert_eq!(store.invite_link("code").unwrap(), Some(link(1, None)));
        assert!(store.legacy_invite_links().unwrap().is_empty());
    }
}
