//! The OAuth2 provider's durable state: registered clients and authorization codes.
//!
//! `oauth_clients` holds each [`OAuthClient`] under its client id; `oauth_codes` holds each
//! [`OAuthCode`] under the SHA-256 of the code. A code is redeemed by compare-and-swap
//! ([`Store::redeem_oauth_code`]): of two token requests presenting it, one wins, and the record
//! then names the session it started, so that a second use (a stolen code, or a replay) can end
//! that session (RFC 6749 §4.1.2, RFC 9700 §4.5.3). Expired codes are swept when a new one is
//! stored, and their number is bounded. The sessions the codes start are ordinary sessions
//! (`sessions`) with an [`OAuthGrant`](crate::OAuthGrant): refresh rotation and reuse detection
//! are the sessions'.

use crate::keys::tree;
use crate::records::{self, OAuthClient, OAuthCode, Session};
use crate::{Error, Store};

/// Unredeemed, unexpired codes kept at most: each lives a minute, so this is ~160 consents a
/// second sustained. Past it a new authorization is refused rather than memory grown.
pub const MAX_OAUTH_CODES: usize = 10_000;

/// What [`Store::redeem_oauth_code`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code was live; it is now marked as redeemed by the given session.
    Redeemed(OAuthCode),
    /// The code was redeemed before, by this session: it is being used twice.
    AlreadyRedeemed { session_id: String },
    /// No such code, or it expired.
    Unknown,
}

impl Store {
    /// Registers a client; [`Error::AlreadyExists`] if its id is taken. Durable on return.
    pub fn add_oauth_client(&self, client: &OAuthClient) -> Result<(), Error> {
        let value = records::encode(tree::OAUTH_CLIENTS, client)?;
        self.oauth_clients
            .compare_and_swap(
                client.client_id.as_bytes(),
                None as Option<&[u8]>,
                Some(value),
            )?
            .map_err(|_| Error::AlreadyExists)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, Error> {
        self.oauth_clients
            .get(client_id.as_bytes())?
            .map(|value| records::decode(tree::OAUTH_CLIENTS, client_id.as_bytes(), &value))
            .transpose()
    }

    /// Every registered client, by id.
    pub fn oauth_clients(&self) -> Result<Vec<OAuthClient>, Error> {
        self.oauth_clients
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                records::decode(tree::OAUTH_CLIENTS, &key, &value)
            })
            .collect()
    }

    /// Removes a client and ends every session it holds. `None` if there was no such client;
    /// otherwise the number of sessions ended. Durable on return.
    pub fn remove_oauth_client(&self, client_id: &str) -> Result<Option<usize>, Error> {
        if self.oauth_clients.remove(client_id.as_bytes())?.is_none() {
            return Ok(None);
        }
        self.db.flush()?;
        let mut ended = 0;
        for id in self.sessions_of_client(client_id)? {
            if self.delete_session(&id)? {
                ended += 1;
            }
        }
        Ok(Some(ended))
    }

    /// The ids of the sessions held by OAuth client `client_id`: a scan of every session, for
    /// the rare removal of a client.
    pub fn sessions_of_client(&self, client_id: &str) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        for entry in self.sessions.iter() {
            let (key, value) = entry?;
            let session: Session = records::decode(tree::SESSIONS, &key, &value)?;
            if session
                .oauth
                .as_ref()
                .is_some_and(|grant| grant.client_id == client_id)
            {
                ids.push(session.id);
            }
        }
        Ok(ids)
    }

    /// Stores a new code under `hash` (the SHA-256 of the code), after dropping the codes that
    /// expired by `now_ms`. [`Error::AlreadyExists`] when [`MAX_OAUTH_CODES`] live codes are
    /// kept already. Durable on return.
    pub fn put_oauth_code(
        &self,
        hash: &[u8; 32],
        code: &OAuthCode,
        now_ms: u64,
    ) -> Result<(), Error> {
        let mut n_live = 0;
        for entry in self.oauth_codes.iter() {
            let (key, value) = entry?;
            let stored: OAuthCode = records::decode_secret_keyed(tree::OAUTH_CODES, &value)?;
            if stored.expires_at_ms <= now_ms {
                // A concurrent redemption of an expired code finds nothing either way.
                self.oauth_codes.remove(key)?;
            } else {
                n_live += 1;
            }
        }
        if n_live >= MAX_OAUTH_CODES {
            return Err(Error::AlreadyExists);
        }
        let value = records::encode(tree::OAUTH_CODES, code)?;
        self.oauth_codes.insert(hash, value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The code whose hash is `hash`, redeemed or not, expired or not.
    pub fn oauth_code(&self, hash: &[u8; 32]) -> Result<Option<OAuthCode>, Error> {
        self.oauth_codes
            .get(hash)?
            .map(|value| records::decode_secret_keyed(tree::OAUTH_CODES, &value))
            .transpose()
    }

    /// Redeems the code whose hash is `hash` for the new session `session_id`: once, by
    /// compare-and-swap. Durable on return.
    pub fn redeem_oauth_code(
        &self,
        hash: &[u8; 32],
        session_id: &str,
        now_ms: u64,
    ) -> Result<CodeRedemption, Error> {
        loop {
            let Some(current) = self.oauth_codes.get(hash)? else {
                return Ok(CodeRedemption::Unknown);
            };
            let code: OAuthCode = records::decode_secret_keyed(tree::OAUTH_CODES, &current)?;
            if let Some(session_id) = code.redeemed_by {
                return Ok(CodeRedemption::AlreadyRedeemed { session_id });
            }
            if code.expires_at_ms <= now_ms {
                return Ok(CodeRedemption::Unknown);
            }
            let redeemed = OAuthCode {
                redeemed_by: Some(session_id.to_owned()),
                ..code.clone()
            };
            let value = records::encode(tree::OAUTH_CODES, &redeemed)?;
            if self
                .oauth_codes
                .compare_and_swap(hash, Some(&current), Some(value))?
                .is_ok()
            {
                self.db.flush()?;
                return Ok(CodeRedemption::Redeemed(code));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OAuthGrant;
    use crate::store::tests::open_temp;

    fn client(id: &str) -> OAuthClient {
        OAuthClient {
            client_id: id.into(),
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: 15,
            secret_hash: Some([4; 32]),
            created_at_ms: 1,
        }
    }

    fn code(expires_at_ms: u64) -> OAuthCode {
        OAuthCode {
            client_id: "c1".into(),
            username: "alice".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: 5,
            nonce: Some("n".into()),
            code_challenge: "x".into(),
            auth_time_ms: 10,
            expires_at_ms,
            redeemed_by: None,
        }
    }

    #[test]
    fn clients_add_list_remove() {
        let (_dir, store) = open_temp();
        store.add_oauth_client(&client("c1")).unwrap();
        assert!(matches!(
            store.add_oauth_client(&client("c1")),
            Err(Error::AlreadyExists)
        ));
        store.add_oauth_client(&client("c0")).unwrap();
        assert_eq!(store.oauth_client("c1").unwrap(), Some(client("c1")));
        let ids: Vec<_> = store
            .oauth_clients()
            .unwrap()
            .into_iter()
            .map(|c| c.client_id)
            .collect();
        assert_eq!(ids, ["c0", "c1"]);

        // Removing a client ends its sessions, and only its.
        let session = |id: &str, client: Option<&str>| Session {
            id: id.into(),
            username: "alice".into(),
            refresh_hash: [1; 32],
            device: "d".into(),
            created_at_ms: 1,
            last_used_ms: 1,
            expires_at_ms: 9,
            previous_hashes: Vec::new(),
            access: Vec::new(),
            admin: false,
            method: crate::SignInMethod::OAuthClient,
            user_agent: String::new(),
            oauth: client.map(|c| OAuthGrant {
                client_id: c.into(),
                scopes: 1,
            }),
        };
        store.put_session(&session("s1", Some("c1"))).unwrap();
        store.put_session(&session("s2", Some("c0"))).unwrap();
        store.put_session(&session("s3", None)).unwrap();
        assert_eq!(store.remove_oauth_client("c1").unwrap(), Some(1));
        assert_eq!(store.remove_oauth_client("c1").unwrap(), None);
        assert_eq!(store.session("s1").unwrap(), None);
        assert!(store.session("s2").unwrap().is_some());
        assert!(store.session("s3").unwrap().is_some());
    }

    #[test]
    fn a_code_is_redeemed_once() {
        let (_dir, store) = open_temp();
        store.put_oauth_code(&[1; 32], &code(100), 0).unwrap();
        assert_eq!(
            store.redeem_oauth_code(&[1; 32], "s1", 50).unwrap(),
            CodeRedemption::Redeemed(code(100))
        );
        assert_eq!(
            store.redeem_oauth_code(&[1; 32], "s2", 60).unwrap(),
            CodeRedemption::AlreadyRedeemed {
                session_id: "s1".into()
            }
        );
        assert_eq!(
            store.redeem_oauth_code(&[2; 32], "s3", 60).unwrap(),
            CodeRedemption::Unknown
        );
    }

    #[test]
    fn expired_codes_are_refused_and_swept() {
        let (_dir, store) = open_temp();
        store.put_oauth_code(&[1; 32], &code(100), 0).unwrap();
        assert_eq!(
            store.redeem_oauth_code(&[1; 32], "s1", 100).unwrap(),
            CodeRedemption::Unknown
        );
        store.put_oauth_code(&[2; 32], &code(300), 200).unwrap();
        assert_eq!(store.oauth_codes.len(), 1, "the expired code is gone");
    }

    #[test]
    fn concurrent_redemptions_let_one_win() {
        let (_dir, store) = open_temp();
        store.put_oauth_code(&[1; 32], &code(100), 0).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store
                        .redeem_oauth_code(&[1; 32], &format!("s{n}"), 10)
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners = outcomes
            .iter()
            .filter(|o| matches!(o, CodeRedemption::Redeemed(_)))
            .count();
        assert_eq!(winners, 1);
    }
}
