//! Registration invite tokens: a token allows a number of registrations until it expires.
//!
//! Tokens are secrets: their keys never appear in errors or logs.

use crate::keys::tree;
use crate::records::{self, InviteToken};
use crate::{Error, Store};

impl Store {
    /// Stores an invite token, replacing one with the same token. Durable on return.
    pub fn put_invite_token(&self, t: &InviteToken) -> Result<(), Error> {
        let value = records::encode(tree::INVITES, t)?;
        self.invites.insert(t.token.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// Uses the token once: `true` if it exists, is unexpired at `now_ms` (expiry is exclusive:
    /// at `expires_at_ms` it is expired) and has a use left, which is taken; the token is removed
    /// with its last use. `false` changes nothing. Atomic against concurrent uses; durable on
    /// return.
    pub fn consume_invite_token(&self, token: &str, now_ms: u64) -> Result<bool, Error> {
        loop {
            let Some(current) = self.invites.get(token)? else {
                return Ok(false);
            };
            let invite: InviteToken = records::decode_secret_keyed(tree::INVITES, &current)?;
            let expired = invite
                .expires_at_ms
                .is_some_and(|expires| now_ms >= expires);
            if expired || invite.uses_left == 0 {
                return Ok(false);
            }
            let uses_left = invite.uses_left - 1;
            let next = if uses_left == 0 {
                None
            } else {
                let next = InviteToken {
                    uses_left,
                    ..invite
                };
                Some(records::encode(tree::INVITES, &next)?)
            };
            if self
                .invites
                .compare_and_swap(token, Some(&current), next)?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(true);
            }
            // Another use (or a replacement) came first; decide again on the new value.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn invite(uses_left: u32, expires_at_ms: Option<u64>) -> InviteToken {
        InviteToken {
            token: "tok".into(),
            uses_left,
            expires_at_ms,
            created_by: "admin".into(),
        }
    }

    #[test]
    fn uses_run_out_and_remove_the_token() {
        let (dir, store) = open_temp();
        store.put_invite_token(&invite(3, None)).unwrap();
        assert!(store.consume_invite_token("tok", 0).unwrap());
        let store = reopen(&dir, store);
        assert!(store.consume_invite_token("tok", 0).unwrap());
        assert!(store.consume_invite_token("tok", 0).unwrap());
        assert!(!store.consume_invite_token("tok", 0).unwrap());
        assert!(store.invites.is_empty());
    }

    #[test]
    fn expiry_is_exclusive() {
        // (expires_at_ms, now_ms, usable)
        let cases = [
            (None, u64::MAX, true),
            (Some(100), 0, true),
            (Some(100), 99, true),
            (Some(100), 100, false),
            (Some(100), 101, false),
            (Some(0), 0, false),
        ];
        for (expires_at_ms, now_ms, usable) in cases {
            let (_dir, store) = open_temp();
            store.put_invite_token(&invite(2, expires_at_ms)).unwrap();
            assert_eq!(
                store.consume_invite_token("tok", now_ms).unwrap(),
                usable,
                "expires {expires_at_ms:?}, now {now_ms}"
            );
            // A refused use takes nothing.
            let expected_left = if usable { 1 } else { 2 };
            let left = store.invites.get("tok").unwrap().unwrap();
            let left: InviteToken = records::decode_secret_keyed(tree::INVITES, &left).unwrap();
            assert_eq!(left.uses_left, expected_left);
        }
    }

    #[test]
    fn unknown_or_used_up_tokens_are_refused() {
        let (_dir, store) = open_temp();
        assert!(!store.consume_invite_token("tok", 0).unwrap());
        store.put_invite_token(&invite(0, None)).unwrap();
        assert!(!store.consume_invite_token("tok", 0).unwrap());
        assert!(!store.consume_invite_token("TOK", 0).unwrap());
    }

    #[test]
    fn concurrent_uses_never_exceed_the_count() {
        let (_dir, store) = open_temp();
        store.put_invite_token(&invite(5, None)).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..2)
                        .filter(|_| store.consume_invite_token("tok", 0).unwrap())
                        .count()
                })
            })
            .collect();
        let n_used: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(n_used, 5);
        assert!(store.invites.is_empty());
    }

    #[test]
    fn undecodable_token_is_corrupt_and_withholds_the_token() {
        let (_dir, store) = open_temp();
        store.invites.insert("tok", &[7][..]).unwrap();
        match store.consume_invite_token("tok", 0) {
            Err(error @ Error::Corrupt { key_hex: None, .. }) => {
                assert!(!error.to_string().contains("tok"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
