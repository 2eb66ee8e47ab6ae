//! Email: each account's address (and whether it is verified and gets digests), each user's
//! digest state, the queue of digests to send, the index of verified addresses, and
//! password-reset tokens, all in the `email` tree.
//!
//! The store does not decide who gets a digest (the node's mailer does); it keeps what it is
//! given. Every write that must hold together is one atomic sled batch within the tree: an
//! address and its index entry; a user's digest state and the digest it queued, so a crash
//! neither sends two digests in a period nor loses a queued one. A reset token is taken by
//! sled's atomic remove, so it is used at most once.

use crate::keys::{self, tree};
use crate::records::{self, DigestState, EmailAddress, EmailDelivery, ResetToken};
use crate::{Error, Id, Store};

/// A queued digest's place in the queue: (due ms, id).
pub type EmailKey = (u64, u64);

/// Digests due now, and when the next one after them is due.
pub type DueEmails = (Vec<(EmailKey, EmailDelivery)>, Option<u64>);

impl Store {
    /// `username`'s email address, if they gave one.
    pub fn email_address(&self, username: &str) -> Result<Option<EmailAddress>, Error> {
        let key = keys::email_user(keys::EMAIL_ADDRESS_TAG, username);
        self.email
            .get(&key)?
            .map(|value| records::decode(tree::EMAIL, &key, &value))
            .transpose()
    }

    /// Every address kept, by username.
    pub fn email_addresses(&self) -> Result<Vec<(String, EmailAddress)>, Error> {
        self.email
            .scan_prefix([keys::EMAIL_ADDRESS_TAG])
            .map(|entry| {
                let (key, value) = entry?;
                Ok((
                    keys::decode_email_user(&key)?,
                    records::decode(tree::EMAIL, &key, &value)?,
                ))
            })
            .collect()
    }

    /// Replaces (`Some`) or removes (`None`) `username`'s address, and with it the
    /// verified-address index: `unindex`'s entry goes (if it names this user), `index`'s is set
    /// to this user. One atomic batch, durable on return.
    pub fn put_email_address(
        &self,
        username: &str,
        record: Option<&EmailAddress>,
        unindex: Option<&str>,
        index: Option<&str>,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        let key = keys::email_user(keys::EMAIL_ADDRESS_TAG, username);
        match record {
            Some(record) => batch.insert(key, records::encode(tree::EMAIL, record)?),
            None => batch.remove(key),
        }
        if let Some(address) = unindex
            && self
                .email_user_by_address(address)?
                .is_some_and(|owner| owner == username.to_lowercase())
        {
            batch.remove(keys::email_index(address));
        }
        if let Some(address) = index {
            batch.insert(
                keys::email_index(address),
                username.to_lowercase().into_bytes(),
            );
        }
        self.email.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The (lowercased) username whose verified address `address` is, if any.
    pub fn email_user_by_address(&self, address: &str) -> Result<Option<String>, Error> {
        let key = keys::email_index(address);
        self.email
            .get(&key)?
            .map(|value| {
                String::from_utf8(value.to_vec())
                    .map_err(|_| Error::corrupt(tree::EMAIL, &key, "username is not UTF-8"))
            })
            .transpose()
    }

    /// `username`'s digest state (the default before their first digest).
    pub fn digest_state(&self, username: &str) -> Result<DigestState, Error> {
        let key = keys::email_user(keys::DIGEST_STATE_TAG, username);
        Ok(self
            .email
            .get(&key)?
            .map(|value| records::decode(tree::EMAIL, &key, &value))
            .transpose()?
            .unwrap_or_default())
    }

    /// Queues `delivery`, due at `due_ms`, and sets its user's digest state to `state`: one
    /// atomic batch, durable on return.
    pub fn queue_digest(
        &self,
        state: &DigestState,
        due_ms: u64,
        delivery: &EmailDelivery,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::email_user(keys::DIGEST_STATE_TAG, &delivery.username),
            records::encode(tree::EMAIL, state)?,
        );
        let id = self.db.generate_id()?;
        batch.insert(
            &keys::email_delivery(due_ms, id)[..],
            records::encode(tree::EMAIL, delivery)?,
        );
        self.email.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Up to `limit` queued digests due at or before `now_ms`, in due order; and when the next
    /// one after them is due, if any.
    pub fn due_emails(&self, now_ms: u64, limit: usize) -> Result<DueEmails, Error> {
        let mut due = Vec::new();
        for entry in self.email.scan_prefix([keys::EMAIL_QUEUE_TAG]) {
            let (key, value) = entry?;
            let (due_ms, id) = keys::decode_email_delivery(&key)?;
            if due_ms > now_ms || due.len() == limit {
                return Ok((due, Some(due_ms)));
            }
            due.push(((due_ms, id), records::decode(tree::EMAIL, &key, &value)?));
        }
        Ok((due, None))
    }

    /// Takes the digest at `key` off the queue and, with `retry`, queues it again: one atomic
    /// batch, durable on return.
    pub fn finish_email(
        &self,
        key: EmailKey,
        retry: Option<(u64, &EmailDelivery)>,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        batch.remove(&keys::email_delivery(key.0, key.1)[..]);
        if let Some((due_ms, delivery)) = retry {
            batch.insert(
                &keys::email_delivery(due_ms, key.1)[..],
                records::encode(tree::EMAIL, delivery)?,
            );
        }
        self.email.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Keeps a password-reset token by its hash, and drops tokens that expired before `now_ms`.
    /// Durable on return.
    pub fn put_reset_token(&self, hash: &Id, token: &ResetToken, now_ms: u64) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for entry in self.email.scan_prefix([keys::RESET_TOKEN_TAG]) {
            let (key, value) = entry?;
            let old: ResetToken = records::decode_secret_keyed(tree::EMAIL, &value)?;
            if old.expires_ms < now_ms {
                batch.remove(key);
            }
        }
        batch.insert(
            &keys::reset_token(hash)[..],
            records::encode(tree::EMAIL, token)?,
        );
        self.email.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The reset token with this hash, if it is kept (expired or not).
    pub fn reset_token(&self, hash: &Id) -> Result<Option<ResetToken>, Error> {
        self.email
            .get(keys::reset_token(hash))?
            .map(|value| records::decode_secret_keyed(tree::EMAIL, &value))
            .transpose()
    }

    /// Takes the reset token with this hash: it is gone after this, whoever asked first got it.
    /// Durable on return.
    pub fn take_reset_token(&self, hash: &Id) -> Result<Option<ResetToken>, Error> {
        let Some(value) = self.email.remove(keys::reset_token(hash))? else {
            return Ok(None);
        };
        self.db.flush()?;
        Ok(Some(records::decode_secret_keyed(tree::EMAIL, &value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn address(text: &str, verified: bool) -> EmailAddress {
        EmailAddress {
            address: text.into(),
            verified,
            digests: true,
            mails_sent_ms: vec![1, 2],
        }
    }

    #[test]
    fn addresses_and_their_index() {
        let (dir, store) = open_temp();
        assert_eq!(store.email_address("al").unwrap(), None);
        store
            .put_email_address("Al", Some(&address("al@x.org", false)), None, None)
            .unwrap();
        assert_eq!(store.email_user_by_address("al@x.org").unwrap(), None);
        store
            .put_email_address(
                "al",
                Some(&address("al@x.org", true)),
                None,
                Some("al@x.org"),
            )
            .unwrap();
        let store = reopen(&dir, store);
        assert_eq!(
            store.email_user_by_address("AL@x.org").unwrap().as_deref(),
            Some("al")
        );
        // Another user's unindex does not remove al's entry.
        store
            .put_email_address("bo", None, Some("al@x.org"), None)
            .unwrap();
        assert!(store.email_user_by_address("al@x.org").unwrap().is_some());
        // A new address: the old index entry goes.
        store
            .put_email_address(
                "al",
                Some(&address("al@y.org", false)),
                Some("al@x.org"),
                None,
            )
            .unwrap();
        assert_eq!(store.email_user_by_address("al@x.org").unwrap(), None);
        assert_eq!(
            store.email_addresses().unwrap(),
            [("al".to_owned(), address("al@y.org", false))]
        );
        store.put_email_address("al", None, None, None).unwrap();
        assert!(store.email_addresses().unwrap().is_empty());
        assert!(store.check(&mut |_| None).unwrap().problems.is_empty());
    }

    #[test]
    fn the_digest_queue_and_state_survive_a_restart() {
        let (dir, store) = open_temp();
        assert_eq!(store.digest_state("al").unwrap(), DigestState::default());
        let delivery = |seqs: Vec<u64>| EmailDelivery {
            username: "al".into(),
            seqs,
            attempts: 0,
        };
        let state = DigestState {
            last_sent_ms: 100,
            cursor: 9,
        };
        store
            .queue_digest(&state, 200, &delivery(vec![7, 9]))
            .unwrap();
        store.queue_digest(&state, 100, &delivery(vec![3])).unwrap();
        let store = reopen(&dir, store);
        assert_eq!(store.digest_state("AL").unwrap(), state);
        let (due, next) = store.due_emails(150, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.seqs, [3]);
        assert_eq!(next, Some(200));
        let (key, mut again) = due[0].clone();
        again.attempts = 1;
        store.finish_email(key, Some((300, &again))).unwrap();
        let (due, _) = store.due_emails(250, 10).unwrap();
        assert_eq!(
            due.iter().map(|d| d.1.seqs.clone()).collect::<Vec<_>>(),
            [vec![7, 9]]
        );
        store.finish_email(due[0].0, None).unwrap();
        let store = reopen(&dir, store);
        let (due, next) = store.due_emails(u64::MAX, 10).unwrap();
        assert_eq!((due.len(), due[0].1.attempts, next), (1, 1, None));
        assert!(store.check(&mut |_| None).unwrap().problems.is_empty());
    }

    #[test]
    fn a_reset_token_is_taken_once_and_expired_ones_go() {
        let (_dir, store) = open_temp();
        let token = |expires_ms| ResetToken {
            username: "al".into(),
            expires_ms,
        };
        store.put_reset_token(&[1; 32], &token(100), 0).unwrap();
        store.put_reset_token(&[2; 32], &token(500), 0).unwrap();
        // Putting a third at 200 drops the first (expired).
        store.put_reset_token(&[3; 32], &token(900), 200).unwrap();
        assert_eq!(store.reset_token(&[1; 32]).unwrap(), None);
        assert_eq!(store.reset_token(&[2; 32]).unwrap(), Some(token(500)));
        assert_eq!(store.take_reset_token(&[2; 32]).unwrap(), Some(token(500)));
        assert_eq!(store.take_reset_token(&[2; 32]).unwrap(), None);
        assert!(store.check(&mut |_| None).unwrap().problems.is_empty());
    }
}
