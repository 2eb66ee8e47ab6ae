//! The user service of the original diagram: accounts, sessions,
//! registration invite tokens, profiles, settings, contacts and read
//! markers, all kept in the store; and the node's account administration
//! (roles, suspension, deactivation).
//!
//! State: the store's trees, and a channel telling open WebSockets which
//! sessions ended. The rules that need one decision are single store
//! operations (the first account is an admin, a token's or session's use is
//! a compare-and-swap), so this service holds no lock. Every write flushes, so every method runs it through
//! [`on_disk`]; reads are sled lookups served from its cache and stay
//! inline at the callers.

use spaces_store::{Account, Error, Id, InviteToken, Profile, Renewal, Rotation, Session, Store};
use tokio::sync::broadcast;

use super::on_disk;

/// Session ends not yet seen by a slow listener; past that it lags and
/// checks its session in the store instead. Sessions end a few at a time.
const ENDED_CAPACITY: usize = 64;

/// The accounts service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Accounts {
    store: Store,
    /// The id of every session [`delete_session`](Self::delete_session) ended.
    ended: broadcast::Sender<String>,
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        Accounts {
            store,
            ended: broadcast::channel(ENDED_CAPACITY).0,
        }
    }

    /// The ids of sessions ended from now on, so a WebSocket can close at
    /// once. On `Lagged`, the listener looks its session up instead.
    pub fn subscribe_ended(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    /// Creates a sign-up's account; it is a node admin exactly when it is
    /// the node's first ([`Store::create_account_first_admin`]). Returns it
    /// as stored.
    pub async fn register(&self, account: Account) -> Result<Account, Error> {
        on_disk(&self.store, move |store| {
            store.create_account_first_admin(&account)
        })
        .await
    }

    /// Takes one use of a registration invite token; false if it has none.
    pub async fn consume_invite_token(&self, token: String, now_ms: u64) -> Result<bool, Error> {
        on_disk(&self.store, move |store| {
            store.consume_invite_token(&token, now_ms)
        })
        .await
    }

    /// The registration mode an admin set at run time, by name (`open`,
    /// `invite`, `closed`), if any; the API applies it in place of the
    /// config's.
    pub fn registration_override(&self) -> Result<Option<String>, Error> {
        self.store.registration_mode()
    }

    /// Sets the run-time registration mode by name (`None`: the config's
    /// again).
    pub async fn set_registration_override(&self, mode: Option<&'static str>) -> Result<(), Error> {
        on_disk(&self.store, move |store| store.set_registration_mode(mode)).await
    }

    pub async fn put_invite_token(&self, token: InviteToken) -> Result<(), Error> {
        on_disk(&self.store, move |store| store.put_invite_token(&token)).await
    }

    pub async fn put_session(&self, session: Session) -> Result<(), Error> {
        on_disk(&self.store, move |store| store.put_session(&session)).await
    }

    /// [`Store::rotate_session`]: whether `old` was the session's current
    /// refresh hash, one it issued before, or neither.
    pub async fn rotate_session(
        &self,
        id: String,
        old: [u8; 32],
        renewal: Renewal,
    ) -> Result<Rotation, Error> {
        on_disk(&self.store, move |store| {
            store.rotate_session(&id, &old, &renewal)
        })
        .await
    }

    /// Ends a session, and tells open WebSockets; false if there was none.
    pub async fn delete_session(&self, id: String) -> Result<bool, Error> {
        let ended = id.clone();
        let deleted = on_disk(&self.store, move |store| store.delete_session(&id)).await?;
        if deleted {
            // Nobody listening is fine: no WebSocket is open.
            let _ = self.ended.send(ended);
        }
        Ok(deleted)
    }

    pub async fn put_profile(&self, username: String, profile: Profile) -> Result<(), Error> {
        on_disk(&self.store, move |store| {
            store.put_profile(&username, &profile)
        })
        .await
    }

    pub async fn put_settings(&self, username: String, json: Vec<u8>) -> Result<(), Error> {
        on_disk(&self.store, move |store| {
            store.put_settings(&username, &json)
        })
        .await
    }

    pub async fn add_contact(&self, username: String, contact: String) -> Result<(), Error> {
        on_disk(&self.store, move |store| {
            store.add_contact(&username, &contact)
        })
        .await
    }

    /// False if `contact` was not a contact.
    pub async fn remove_contact(&self, username: String, contact: String) -> Result<bool, Error> {
        on_disk(&self.store, move |store| {
            store.remove_contact(&username, &contact)
        })
        .await
    }

    /// Suspends `username`: no sign-in by any method from now on, and every
    /// session ended at once (their tokens refused, their WebSockets
    /// closed). The flag is written first, so a sign-in racing this either
    /// sees it or made a session that this ends; one that stored its
    /// session after the listing below checks the flag again itself
    /// (`api::session::new_session`).
    pub async fn suspend(&self, username: String) -> Result<Account, Error> {
        let account = on_disk(&self.store, move |store| {
            store.modify_account(&username, |a| a.suspended = true)
        })
        .await?;
        self.end_sessions(&account.username).await?;
        tracing::info!(username = %account.username, "account suspended");
        Ok(account)
    }

    /// Lifts a suspension. A deactivated account stays deactivated.
    pub async fn reactivate(&self, username: String) -> Result<Account, Error> {
        let account = on_disk(&self.store, move |store| {
            store.modify_account(&username, |a| a.suspended = false)
        })
        .await?;
        tracing::info!(username = %account.username, "account reactivated");
        Ok(account)
    }

    /// Deactivates `username` for good: like a suspension that cannot be
    /// lifted. The account's name stays taken and its events stay.
    pub async fn deactivate(&self, username: String) -> Result<Account, Error> {
        let account = on_disk(&self.store, move |store| {
            store.modify_account(&username, |a| a.disabled = true)
        })
        .await?;
        self.end_sessions(&account.username).await?;
        tracing::info!(username = %account.username, "account deactivated");
        Ok(account)
    }

    /// Makes `username` a node admin, a moderator, or neither. Their open
    /// sessions pick the change up at their next refresh; the admin API
    /// reads the account itself, so it applies there at once.
    pub async fn set_role(
        &self,
        username: String,
        admin: bool,
        moderator: bool,
    ) -> Result<Account, Error> {
        on_disk(&self.store, move |store| {
            store.modify_account(&username, |a| {
                a.is_admin = admin;
                a.moderator = moderator;
            })
        })
        .await
    }

    /// Replaces `username`'s password hash (an operator's reset, or a reset by mail) and ends
    /// every session, so whoever held the account must sign in with the new
    /// password. The hash is written first, so a sign-in racing this either
    /// uses the new password or made a session that this ends.
    pub async fn reset_password(&self, username: String, hash: String) -> Result<Account, Error> {
        let account = on_disk(&self.store, move |store| {
            store.modify_account(&username, |a| a.password_hash.clone_from(&hash))
        })
        .await?;
        self.end_sessions(&account.username).await?;
        tracing::info!(username = %account.username, "password reset by an operator");
        Ok(account)
    }

    async fn end_sessions(&self, username: &str) -> Result<(), Error> {
        for session in self.store.sessions_of(username)? {
            self.delete_session(session.id).await?;
        }
        Ok(())
    }

    /// Moves `username`'s read marker in a room forward to `seq`.
    pub async fn set_read_marker(
        &self,
        username: String,
        room_id: Id,
        seq: u64,
    ) -> Result<(), Error> {
        on_disk(&self.store, move |store| {
            store.set_read_marker(&username, &room_id, seq)
        })
        .await
    }
}
