//! Passkeys (WebAuthn credentials) and each user's sign-in policy.
//!
//! `passkeys` holds the record under the credential id (the bytes the authenticator chose, at
//! most [`MAX_CREDENTIAL_ID`]); `user_passkeys` indexes (username, credential id) so that a user's
//! passkeys are one prefix scan. Both change in one transaction, so the index never names a
//! missing record. `auth_policies` holds a user's [`AuthPolicy`] (absent: the default).
//!
//! The store does not know WebAuthn: the credential is opaque bytes the caller encoded. It keeps
//! beside them what the sign-in rules read: the signature counter and the backup flags. A use is
//! a compare-and-swap that refuses a counter that did not go up ([`Store::record_passkey_use`]),
//! so two sign-ins verified at once against the same stored counter cannot both move it.

use sled::transaction::Transactional;

use crate::keys::{self, tree};
use crate::records::{self, AuthPolicy, PasskeyRecord};
use crate::{Error, Store};

/// The longest credential id kept. WebAuthn allows 1023 bytes; a node refuses longer ones
/// before they reach a key.
pub const MAX_CREDENTIAL_ID: usize = 1023;

/// Passkeys one user may hold: a person's devices and security keys, bounded.
pub const MAX_PASSKEYS_PER_USER: usize = 32;

/// The outcome of [`Store::record_passkey_use`].
#[derive(Debug, PartialEq, Eq)]
pub enum PasskeyUse {
    /// Stored, with the new counter and flags.
    Recorded(PasskeyRecord),
    /// The authenticator's counter did not go past the stored one: two copies of the key may
    /// exist. Nothing changed.
    CounterWentBack { stored: u32, presented: u32 },
    /// No such passkey (removed meanwhile).
    Unknown,
}

/// What a use of a passkey changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyUpdate {
    /// The credential as the caller re-encoded it (its counter and flags updated).
    pub credential: Vec<u8>,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub now_ms: u64,
}

impl Store {
    /// Stores a new passkey. [`Error::AlreadyExists`] if its credential id is taken (by anyone:
    /// a credential belongs to one account), [`Error::NotFound`] never. Durable on return.
    pub fn add_passkey(&self, credential_id: &[u8], record: &PasskeyRecord) -> Result<(), Error> {
        check_id(credential_id)?;
        let value = sled::IVec::from(records::encode(tree::PASSKEYS, record)?);
        let index_key = keys::user_item(&record.username, credential_id);
        let gate = self.shared_gate();
        let added = (&self.passkeys, &self.user_passkeys).transaction(|(passkeys, index)| {
            if passkeys.get(credential_id)?.is_some() {
                return Ok(false);
            }
            passkeys.insert(credential_id, value.clone())?;
            index.insert(&index_key[..], &[][..])?;
            Ok(true)
        })?;
        drop(gate);
        if !added {
            return Err(Error::AlreadyExists);
        }
        self.db.flush()?;
        Ok(())
    }

    /// The passkey with this credential id.
    pub fn passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, Error> {
        if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID {
            return Ok(None);
        }
        self.passkeys
            .get(credential_id)?
            .map(|value| records::decode(tree::PASSKEYS, credential_id, &value))
            .transpose()
    }

    /// The passkeys of `username` (ignoring case), by credential id, with their ids.
    pub fn passkeys_of(&self, username: &str) -> Result<Vec<(Vec<u8>, PasskeyRecord)>, Error> {
        let prefix = keys::user_prefix(username);
        self.user_passkeys
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, _) = entry?;
                let id = key[prefix.len()..].to_vec();
                let record = self.passkey(&id)?.ok_or_else(|| {
                    Error::corrupt(
                        tree::USER_PASSKEYS,
                        &key,
                        "index entry points at a missing passkey",
                    )
                })?;
                Ok((id, record))
            })
            .collect()
    }

    /// Records a verified use: the counter must have gone up (unless the authenticator keeps
    /// none: both zero). Compare-and-swap on the record. Durable on return.
    pub fn record_passkey_use(
        &self,
        credential_id: &[u8],
        update: &PasskeyUpdate,
    ) -> Result<PasskeyUse, Error> {
        loop {
            let Some(current) = self.passkeys.get(credential_id)? else {
                return Ok(PasskeyUse::Unknown);
            };
            let record: PasskeyRecord = records::decode(tree::PASSKEYS, credential_id, &current)?;
            if (update.counter > 0 || record.counter > 0) && update.counter <= record.counter {
                return Ok(PasskeyUse::CounterWentBack {
                    stored: record.counter,
                    presented: update.counter,
                });
            }
            let used = PasskeyRecord {
                credential: update.credential.clone(),
                counter: update.counter,
                backup_eligible: update.backup_eligible,
                backup_state: update.backup_state,
                last_used_ms: Some(update.now_ms),
                ..record
            };
            let value = records::encode(tree::PASSKEYS, &used)?;
            if self
                .passkeys
                .compare_and_swap(credential_id, Some(&current), Some(value))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(PasskeyUse::Recorded(used));
            }
        }
    }

    /// Renames a passkey of `username`; [`Error::NotFound`] if it is not theirs. Durable on
    /// return.
    pub fn rename_passkey(
        &self,
        username: &str,
        credential_id: &[u8],
        name: &str,
    ) -> Result<PasskeyRecord, Error> {
        loop {
            let current = match self.passkeys.get(credential_id)? {
                Some(current) if credential_id.len() <= MAX_CREDENTIAL_ID => current,
                _ => return Err(Error::NotFound),
            };
            let record: PasskeyRecord = records::decode(tree::PASSKEYS, credential_id, &current)?;
            if keys::username(&record.username) != keys::username(username) {
                return Err(Error::NotFound);
            }
            let renamed = PasskeyRecord {
                name: name.to_owned(),
                ..record
            };
            let value = records::encode(tree::PASSKEYS, &renamed)?;
            if self
                .passkeys
                .compare_and_swap(credential_id, Some(&current), Some(value))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(renamed);
            }
        }
    }

    /// Removes a passkey of `username`; false if it is not theirs. Durable on return.
    pub fn remove_passkey(&self, username: &str, credential_id: &[u8]) -> Result<bool, Error> {
        if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID {
            return Ok(false);
        }
        let index_key = keys::user_item(username, credential_id);
        let gate = self.shared_gate();
        let removed = (&self.passkeys, &self.user_passkeys).transaction(|(passkeys, index)| {
            if index.get(&index_key[..])?.is_none() {
                return Ok(false);
            }
            index.remove(&index_key[..])?;
            passkeys.remove(credential_id)?;
            Ok(true)
        })?;
        drop(gate);
        self.db.flush()?;
        Ok(removed)
    }

    /// The sign-in policy of `username`: the default when none was stored.
    pub fn auth_policy(&self, username: &str) -> Result<AuthPolicy, Error> {
        let key = keys::username(username);
        Ok(self
            .auth_policies
            .get(&key)?
            .map(|value| records::decode(tree::AUTH_POLICIES, &key, &value))
            .transpose()?
            .unwrap_or_default())
    }

    /// Sets the sign-in policy of `username`. Turning the passkey second factor on needs a
    /// passkey: [`Error::NotFound`] if the user has none. Durable on return.
    pub fn put_auth_policy(&self, username: &str, policy: &AuthPolicy) -> Result<(), Error> {
        let key = keys::username(username);
        let value = sled::IVec::from(records::encode(tree::AUTH_POLICIES, policy)?);
        let prefix = keys::user_prefix(username);
        // sled transactions cannot scan, so the index is read before the write: a removal racing
        // this can leave the policy on with no passkey, which sign-in reads as off (a second
        // factor the user cannot give is no factor).
        if policy.passkey_second_factor && self.user_passkeys.scan_prefix(&prefix).next().is_none()
        {
            return Err(Error::NotFound);
        }
        self.auth_policies.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }
}

fn check_id(credential_id: &[u8]) -> Result<(), Error> {
    if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID {
        return Err(Error::corrupt(
            tree::PASSKEYS,
            credential_id,
            "credential id is empty or longer than 1023 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn record(username: &str, counter: u32) -> PasskeyRecord {
        PasskeyRecord {
            username: username.into(),
            user_handle: [7; 16],
            name: "laptop".into(),
            credential: vec![1, 2, 3],
            created_at_ms: 10,
            last_used_ms: None,
            counter,
            backup_eligible: false,
            backup_state: false,
        }
    }

    fn update(counter: u32) -> PasskeyUpdate {
        PasskeyUpdate {
            credential: vec![9],
            counter,
            backup_eligible: true,
            backup_state: true,
            now_ms: 99,
        }
    }

    #[test]
    fn add_list_rename_remove() {
        let (dir, store) = open_temp();
        store.add_passkey(b"cred-a", &record("Alice", 0)).unwrap();
        store.add_passkey(b"cred-b", &record("alice", 0)).unwrap();
        store.add_passkey(b"cred-c", &record("bob", 0)).unwrap();
        assert!(matches!(
            store.add_passkey(b"cred-a", &record("bob", 0)),
            Err(Error::AlreadyExists)
        ));
        let store = reopen(&dir, store);
        let ids: Vec<_> = store
            .passkeys_of("ALICE")
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, vec![b"cred-a".to_vec(), b"cred-b".to_vec()]);
        assert_eq!(
            store
                .rename_passkey("alice", b"cred-a", "phone")
                .unwrap()
                .name,
            "phone"
        );
        assert!(matches!(
            store.rename_passkey("bob", b"cred-a", "mine"),
            Err(Error::NotFound)
        ));
        assert!(!store.remove_passkey("bob", b"cred-a").unwrap());
        assert!(store.remove_passkey("alice", b"cred-a").unwrap());
        assert!(store.passkey(b"cred-a").unwrap().is_none());
        assert_eq!(store.passkeys_of("alice").unwrap().len(), 1);
    }

    #[test]
    fn a_counter_must_go_up() {
        let (_dir, store) = open_temp();
        store.add_passkey(b"c", &record("alice", 5)).unwrap();
        assert_eq!(
            store.record_passkey_use(b"c", &update(5)).unwrap(),
            PasskeyUse::CounterWentBack {
                stored: 5,
                presented: 5
            }
        );
        let PasskeyUse::Recorded(used) = store.record_passkey_use(b"c", &update(6)).unwrap() else {
            panic!("not recorded")
        };
        assert_eq!((used.counter, used.backup_state), (6, true));
        assert_eq!(used.last_used_ms, Some(99));
        assert!(matches!(
            store.record_passkey_use(b"c", &update(3)).unwrap(),
            PasskeyUse::CounterWentBack { .. }
        ));
        assert_eq!(
            store.record_passkey_use(b"nope", &update(9)).unwrap(),
            PasskeyUse::Unknown
        );
    }

    #[test]
    fn authenticators_without_a_counter_stay_at_zero() {
        let (_dir, store) = open_temp();
        store.add_passkey(b"c", &record("alice", 0)).unwrap();
        assert!(matches!(
            store.record_passkey_use(b"c", &update(0)).unwrap(),
            PasskeyUse::Recorded(_)
        ));
    }

    #[test]
    fn second_factor_needs_a_passkey() {
        let (_dir, store) = open_temp();
        let on = AuthPolicy {
            passkey_second_factor: true,
        };
        assert!(matches!(
            store.put_auth_policy("alice", &on),
            Err(Error::NotFound)
        ));
        assert!(!store.auth_policy("alice").unwrap().passkey_second_factor);
        store.add_passkey(b"c", &record("alice", 0)).unwrap();
        store.put_auth_policy("alice", &on).unwrap();
        assert!(store.auth_policy("Alice").unwrap().passkey_second_factor);
    }
}
