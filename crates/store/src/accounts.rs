//! What the node keeps per local user: the account, profile, settings, contacts and read markers.
//!
//! All of it is keyed by the lowercased username (see `keys`); callers validate the charset.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::keys::{self, tree};
use crate::records;
use crate::{Account, Error, Id, Profile, Store};

impl Store {
    /// Creates an account as given; [`Error::AlreadyExists`] if the username, ignoring case, is
    /// taken. Durable on return.
    pub fn create_account(&self, account: &Account) -> Result<(), Error> {
        self.insert_account(account, false).map(drop)
    }

    /// Creates an account that is a node admin if it is the first account this store ever held
    /// (the first sign-up of a new node), as given otherwise; returns it as stored.
    /// [`Error::AlreadyExists`] if the username, ignoring case, is taken. "First" is decided in
    /// the transaction that creates it, so of any number of concurrent first sign-ups exactly
    /// one is admin. Durable on return.
    pub fn create_account_first_admin(&self, account: &Account) -> Result<Account, Error> {
        self.insert_account(account, true)
    }

    fn insert_account(&self, account: &Account, first_is_admin: bool) -> Result<Account, Error> {
        let key = keys::username(&account.username);
        let gate = self.shared_gate();
        let created = (&self.accounts, &self.meta).transaction(
            |(accounts, meta)| -> Result<Account, ConflictableTransactionError<Error>> {
                if accounts.get(&key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Error::AlreadyExists));
                }
                let mut account = account.clone();
                if meta.get(keys::meta::FIRST_ACCOUNT)?.is_none() {
                    meta.insert(keys::meta::FIRST_ACCOUNT, &key[..])?;
                    account.is_admin |= first_is_admin;
                }
                let value = records::encode(tree::ACCOUNTS, &account)
                    .map_err(ConflictableTransactionError::Abort)?;
                accounts.insert(&key[..], value)?;
                Ok(account)
            },
        )?;
        drop(gate);
        self.db.flush()?;
        Ok(created)
    }

    /// The account of `username`, ignoring case.
    pub fn account(&self, username: &str) -> Result<Option<Account>, Error> {
        let key = keys::username(username);
        self.accounts
            .get(&key)?
            .map(|value| records::decode(tree::ACCOUNTS, &key, &value))
            .transpose()
    }

    /// Replaces an existing account (matched by username, ignoring case); [`Error::NotFound`] if
    /// there is none. Durable on return.
    pub fn update_account(&self, account: &Account) -> Result<(), Error> {
        let key = keys::username(&account.username);
        let value = sled::IVec::from(records::encode(tree::ACCOUNTS, account)?);
        self.accounts.transaction(|accounts| {
            if accounts.get(&key)?.is_none() {
                return Err(ConflictableTransactionError::Abort(Error::NotFound));
            }
            accounts.insert(&key[..], value.clone())?;
            Ok(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Changes the account of `username` by `change`, atomically (compare-and-swap: a
    /// concurrent change is not lost); the account as stored, [`Error::NotFound`] if there is
    /// none. `change` may run more than once. Durable on return.
    pub fn modify_account(
        &self,
        username: &str,
        change: impl Fn(&mut Account),
    ) -> Result<Account, Error> {
        let key = keys::username(username);
        loop {
            let Some(current) = self.accounts.get(&key)? else {
                return Err(Error::NotFound);
            };
            let mut account: Account = records::decode(tree::ACCOUNTS, &key, &current)?;
            change(&mut account);
            let value = records::encode(tree::ACCOUNTS, &account)?;
            if self
                .accounts
                .compare_and_swap(&key, Some(&current), Some(value))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(account);
            }
        }
    }

    /// Every account, by lowercased username.
    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.accounts
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                records::decode(tree::ACCOUNTS, &key, &value)
            })
            .collect()
    }

    /// The profile of `username`; all fields `None` if never set.
    pub fn profile(&self, username: &str) -> Result<Profile, Error> {
        let key = keys::username(username);
        match self.profiles.get(&key)? {
            Some(value) => records::decode(tree::PROFILES, &key, &value),
            None => Ok(Profile::default()),
        }
    }

    /// Replaces the profile of `username`. Durable on return.
    pub fn put_profile(&self, username: &str, profile: &Profile) -> Result<(), Error> {
        let value = records::encode(tree::PROFILES, profile)?;
        self.profiles.insert(keys::username(username), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The settings of `username`: JSON owned and validated by the API layer.
    pub fn settings(&self, username: &str) -> Result<Option<Vec<u8>>, Error> {
        let value = self.settings.get(keys::username(username))?;
        Ok(value.map(|value| value.to_vec()))
    }

    /// Replaces the settings of `username`. Durable on return.
    pub fn put_settings(&self, username: &str, json: &[u8]) -> Result<(), Error> {
        self.settings.insert(keys::username(username), json)?;
        self.db.flush()?;
        Ok(())
    }

    /// Adds `contact` (a user id) to the contacts of `username`; adding one twice is a no-op.
    /// Durable on return.
    pub fn add_contact(&self, username: &str, contact: &str) -> Result<(), Error> {
        let key = keys::user_item(username, contact.as_bytes());
        self.contacts.insert(key, &[][..])?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes `contact` from the contacts of `username`; `false` if it was not there.
    /// Durable on return.
    pub fn remove_contact(&self, username: &str, contact: &str) -> Result<bool, Error> {
        let key = keys::user_item(username, contact.as_bytes());
        let removed = self.contacts.remove(key)?.is_some();
        self.db.flush()?;
        Ok(removed)
    }

    /// The contacts of `username`, sorted.
    pub fn contacts(&self, username: &str) -> Result<Vec<String>, Error> {
        let prefix = keys::user_prefix(username);
        // Keys of one user sort by the contact's UTF-8 bytes, which is `String`'s order.
        self.contacts
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, _) = entry?;
                keys::decode_user_item(tree::CONTACTS, &prefix, &key)
            })
            .collect()
    }

    /// Records that `username` has read `room_id` up to `seq`. A marker only moves forward: an
    /// older `seq` (a late request from another device) leaves it as is. Durable on return.
    pub fn set_read_marker(&self, username: &str, room_id: &Id, seq: u64) -> Result<(), Error> {
        let key = keys::user_item(username, room_id);
        loop {
            let current = self.read_markers.get(&key)?;
            if let Some(value) = &current
                && keys::decode_seq(tree::READ_MARKERS, &key, value)? >= seq
            {
                break;
            }
            let swapped =
                self.read_markers
                    .compare_and_swap(&key, current, Some(&keys::seq(seq)[..]))?;
            if swapped.is_ok() {
                break;
            }
            // Another writer moved the marker in between: compare with its value.
        }
        self.db.flush()?;
        Ok(())
    }

    /// How far `username` has read `room_id`: a seq, 0 if never set.
    pub fn read_marker(&self, username: &str, room_id: &Id) -> Result<u64, Error> {
        let key = keys::user_item(username, room_id);
        match self.read_markers.get(&key)? {
            Some(value) => keys::decode_seq(tree::READ_MARKERS, &key, &value),
            None => Ok(0),
        }
    }
}

/// Records the first account of a store that has accounts but predates the `first_account`
/// marker, so that [`Store::create_account_first_admin`] never makes a later sign-up admin.
/// Called at open.
pub(crate) fn mark_first_account(store: &Store) -> Result<(), Error> {
    if store.meta.get(keys::meta::FIRST_ACCOUNT)?.is_some() {
        return Ok(());
    }
    if let Some((key, _)) = store.accounts.first()? {
        let _ = store
            .meta
            .compare_and_swap(keys::meta::FIRST_ACCOUNT, None::<&[u8]>, Some(key))?;
        store.db.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn account(username: &str) -> Account {
        Account {
            username: username.into(),
            password_hash: format!("hash of {username}"),
            created_at_ms: 1_000,
            is_admin: false,
            disabled: false,
            moderator: false,
            suspended: false,
        }
    }

    #[test]
    fn modify_changes_one_account() {
        let (_dir, store) = open_temp();
        store.create_account(&account("alice")).unwrap();
        let changed = store
            .modify_account("Alice", |a| a.suspended = true)
            .unwrap();
        assert!(changed.suspended && !changed.may_sign_in());
        assert_eq!(store.account("alice").unwrap().unwrap(), changed);
        assert!(matches!(
            store.modify_account("bob", |a| a.suspended = true),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn create_then_read_ignoring_case() {
        let (_dir, store) = open_temp();
        store.create_account(&account("Alice")).unwrap();
        assert_eq!(store.account("alice").unwrap(), Some(account("Alice")));
        assert_eq!(store.account("ALICE").unwrap(), Some(account("Alice")));
        assert_eq!(store.account("al").unwrap(), None);
    }

    #[test]
    fn create_conflicts_ignoring_case_and_keeps_the_first() {
        let (_dir, store) = open_temp();
        store.create_account(&account("alice")).unwrap();
        for taken in ["alice", "Alice", "ALICE"] {
            let mut second = account(taken);
            second.is_admin = true;
            assert!(matches!(
                store.create_account(&second),
                Err(Error::AlreadyExists)
            ));
        }
        assert_eq!(store.account("alice").unwrap(), Some(account("alice")));
    }

    #[test]
    fn concurrent_creates_of_one_name_let_exactly_one_win() {
        let (_dir, store) = open_temp();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || store.create_account(&account("bob")).is_ok())
            })
            .collect();
        let n_won = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(n_won, 1);
    }

    #[test]
    fn only_the_first_account_ever_is_made_admin() {
        let (dir, store) = open_temp();
        let first = store.create_account_first_admin(&account("alice")).unwrap();
        assert!(first.is_admin);
        assert_eq!(store.account("alice").unwrap(), Some(first));
        let second = store.create_account_first_admin(&account("bob")).unwrap();
        assert!(!second.is_admin);
        // Not even after a restart, or once the first account is gone.
        let store = reopen(&dir, store);
        store.accounts.remove("alice").unwrap();
        assert!(
            !store
                .create_account_first_admin(&account("carol"))
                .unwrap()
                .is_admin
        );
        // A taken name is refused without touching anything.
        assert!(matches!(
            store.create_account_first_admin(&account("Bob")),
            Err(Error::AlreadyExists)
        ));
    }

    #[test]
    fn an_account_made_by_the_operator_counts_as_the_first() {
        let (_dir, store) = open_temp();
        store.create_account(&account("root")).unwrap();
        assert!(
            !store
                .create_account_first_admin(&account("bob"))
                .unwrap()
                .is_admin
        );
    }

    #[test]
    fn a_store_with_accounts_from_before_the_marker_makes_no_new_admin() {
        let (dir, store) = open_temp();
        store.create_account(&account("old")).unwrap();
        store.meta.remove(keys::meta::FIRST_ACCOUNT).unwrap();
        let store = reopen(&dir, store);
        assert!(
            !store
                .create_account_first_admin(&account("new"))
                .unwrap()
                .is_admin
        );
    }

    #[test]
    fn concurrent_first_accounts_make_exactly_one_admin() {
        let (_dir, store) = open_temp();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store
                        .create_account_first_admin(&account(&format!("user{i}")))
                        .unwrap()
                        .is_admin
                })
            })
            .collect();
        let n_admins = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .filter(|admin| *admin)
            .count();
        assert_eq!(n_admins, 1);
        let stored = store.accounts().unwrap();
        assert_eq!(stored.iter().filter(|a| a.is_admin).count(), 1);
    }

    #[test]
    fn update_replaces_an_existing_account_only() {
        let (_dir, store) = open_temp();
        assert!(matches!(
            store.update_account(&account("alice")),
            Err(Error::NotFound)
        ));
        assert_eq!(store.account("alice").unwrap(), None);

        store.create_account(&account("alice")).unwrap();
        let mut disabled = account("Alice");
        disabled.disabled = true;
        store.update_account(&disabled).unwrap();
        assert_eq!(store.account("alice").unwrap(), Some(disabled));
    }

    #[test]
    fn accounts_lists_all_by_lowercased_name() {
        let (_dir, store) = open_temp();
        for username in ["carol", "Bob", "alice"] {
            store.create_account(&account(username)).unwrap();
        }
        let usernames: Vec<String> = store
            .accounts()
            .unwrap()
            .into_iter()
            .map(|account| account.username)
            .collect();
        assert_eq!(usernames, ["alice", "Bob", "carol"]);
    }

    #[test]
    fn accounts_and_user_data_survive_reopen() {
        let (dir, store) = open_temp();
        store.create_account(&account("alice")).unwrap();
        let profile = Profile {
            display_name: Some("Alice".into()),
            avatar: None,
            bio: Some("hi".into()),
        };
        store.put_profile("alice", &profile).unwrap();
        store.put_settings("alice", br#"{"theme":"dark"}"#).unwrap();
        store.add_contact("alice", "@bob:node").unwrap();
        store.set_read_marker("alice", &[1; 32], 7).unwrap();

        let store = reopen(&dir, store);
        assert_eq!(store.account("alice").unwrap(), Some(account("alice")));
        assert!(matches!(
            store.create_account(&account("alice")),
            Err(Error::AlreadyExists)
        ));
        assert_eq!(store.profile("alice").unwrap(), profile);
        assert_eq!(
            store.settings("alice").unwrap().as_deref(),
            Some(&br#"{"theme":"dark"}"#[..])
        );
        assert_eq!(store.contacts("alice").unwrap(), ["@bob:node"]);
        assert_eq!(store.read_marker("alice", &[1; 32]).unwrap(), 7);
    }

    #[test]
    fn undecodable_account_is_corrupt() {
        let (_dir, store) = open_temp();
        store.create_account(&account("alice")).unwrap();
        store.accounts.insert("alice", &[0xff, 1, 2][..]).unwrap();
        assert!(matches!(
            store.account("Alice"),
            Err(Error::Corrupt {
                tree: "accounts",
                ..
            })
        ));
        assert!(matches!(
            store.accounts(),
            Err(Error::Corrupt {
                tree: "accounts",
                ..
            })
        ));
    }

    #[test]
    fn profile_defaults_then_round_trips() {
        let (_dir, store) = open_temp();
        assert_eq!(store.profile("alice").unwrap(), Profile::default());
        let profile = Profile {
            display_name: Some("Al".into()),
            avatar: Some("blob:abc".into()),
            bio: None,
        };
        store.put_profile("Alice", &profile).unwrap();
        assert_eq!(store.profile("alice").unwrap(), profile);
        assert_eq!(store.profile("bob").unwrap(), Profile::default());

        store.profiles.insert("bob", &[1][..]).unwrap();
        assert!(matches!(
            store.profile("bob"),
            Err(Error::Corrupt {
                tree: "profiles",
                ..
            })
        ));
    }

    #[test]
    fn settings_are_opaque_and_replaced() {
        let (_dir, store) = open_temp();
        assert_eq!(store.settings("alice").unwrap(), None);
        store.put_settings("alice", b"{}").unwrap();
        store.put_settings("ALICE", b"[1]").unwrap();
        assert_eq!(
            store.settings("alice").unwrap().as_deref(),
            Some(&b"[1]"[..])
        );
    }

    #[test]
    fn contacts_are_sorted_deduplicated_and_removable() {
        let (_dir, store) = open_temp();
        for contact in ["@carol:b", "@bob:a", "@carol:b", "@al:z"] {
            store.add_contact("alice", contact).unwrap();
        }
        assert_eq!(
            store.contacts("Alice").unwrap(),
            ["@al:z", "@bob:a", "@carol:b"]
        );
        assert!(store.remove_contact("alice", "@bob:a").unwrap());
        assert!(!store.remove_contact("alice", "@bob:a").unwrap());
        assert_eq!(store.contacts("alice").unwrap(), ["@al:z", "@carol:b"]);
        assert!(store.contacts("nobody").unwrap().is_empty());
    }

    #[test]
    fn contacts_of_prefix_names_are_separate() {
        let (_dir, store) = open_temp();
        store.add_contact("alice", "@x:n").unwrap();
        store.add_contact("al", "ice@y:n").unwrap();
        store.add_contact("a", "lice@z:n").unwrap();
        assert_eq!(store.contacts("al").unwrap(), ["ice@y:n"]);
        assert_eq!(store.contacts("alice").unwrap(), ["@x:n"]);
        assert_eq!(store.contacts("a").unwrap(), ["lice@z:n"]);
        assert!(!store.remove_contact("al", "ice").unwrap());
    }

    #[test]
    fn read_marker_only_moves_forward() {
        let (_dir, store) = open_temp();
        let room_id = [1; 32];
        assert_eq!(store.read_marker("alice", &room_id).unwrap(), 0);
        // (seq written, marker after it)
        let steps = [(5, 5), (3, 5), (5, 5), (9, 9), (0, 9), (u64::MAX, u64::MAX)];
        for (seq, expected) in steps {
            store.set_read_marker("alice", &room_id, seq).unwrap();
            assert_eq!(
                store.read_marker("Alice", &room_id).unwrap(),
                expected,
                "after {seq}"
            );
        }
        // Other rooms and users are untouched.
        assert_eq!(store.read_marker("alice", &[2; 32]).unwrap(), 0);
        assert_eq!(store.read_marker("al", &room_id).unwrap(), 0);
    }

    #[test]
    fn corrupt_read_marker_is_reported_not_overwritten() {
        let (_dir, store) = open_temp();
        let key = keys::user_item("alice", &[1; 32]);
        store.read_markers.insert(key, &[1, 2][..]).unwrap();
        assert!(matches!(
            store.read_marker("alice", &[1; 32]),
            Err(Error::Corrupt {
                tree: "read_markers",
                ..
            })
        ));
        assert!(matches!(
            store.set_read_marker("alice", &[1; 32], 3),
            Err(Error::Corrupt { .. })
        ));
    }
}
