//! Passkeys: the seam between the API and `spaces_passkey` (the WebAuthn
//! ceremonies and their pending state) and the store's `passkeys` trees.
//!
//! State: the crate's pending ceremonies (in memory, bounded, expiring;
//! forgotten at restart) and the store's records. The rules that need one
//! decision are single store operations: a credential id belongs to one
//! account (`Store::add_passkey` refuses a taken one in its transaction),
//! and a use must move the signature counter forward
//! (`Store::record_passkey_use`, a compare-and-swap), so two sign-ins
//! verified at once against the same counter cannot both succeed. Throttling
//! and the account's state (disabled) are the caller's: the API checks
//! them around these calls, like the password path.

use std::time::Instant;

use spaces_passkey::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, SignInStart,
};
use spaces_store::{
    AuthPolicy, MAX_PASSKEYS_PER_USER, PasskeyRecord, PasskeyUpdate, PasskeyUse, Store,
};

use super::on_disk;

/// Why a passkey operation failed; the API maps each to its answer.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The ceremony or the authenticator's answer: see [`spaces_passkey::Error`].
    #[error(transparent)]
    Ceremony(#[from] spaces_passkey::Error),
    /// The answer names a credential this node does not hold.
    #[error("this passkey is not registered here")]
    UnknownCredential,
    /// The credential is already registered (to this or another account).
    #[error("this passkey is already registered")]
    Taken,
    /// No passkey of the user's has this id.
    #[error("no such passkey of yours")]
    UnknownPasskey,
    /// The user holds [`MAX_PASSKEYS_PER_USER`] already.
    #[error("at most {MAX_PASSKEYS_PER_USER} passkeys per account")]
    TooMany,
    /// Removing it would leave a second factor the user cannot give.
    #[error(
        "this is your last passkey and your sign-in needs one; turn the second factor off first"
    )]
    LastPasskey,
    /// The second factor needs a passkey and the user has none.
    #[error("add a passkey before requiring one")]
    NoPasskey,
    #[error(transparent)]
    Store(#[from] spaces_store::Error),
}

/// A sign-in proved by a passkey.
#[derive(Debug)]
pub struct SignedIn {
    /// The lowercased username of the passkey's owner.
    pub username: String,
    /// The passkey answered a second-factor ceremony (after a password).
    pub second_factor: bool,
}

/// The passkey service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Passkeys {
    ceremonies: spaces_passkey::Passkeys,
    store: Store,
}

impl Passkeys {
    pub fn new(ceremonies: spaces_passkey::Passkeys, store: Store) -> Passkeys {
        Passkeys { ceremonies, store }
    }

    /// The origin passkeys are bound to.
    pub fn origin(&self) -> &str {
        self.ceremonies.origin()
    }

    /// Begins registering a passkey for `username`.
    pub fn start_registration(
        &self,
        username: &str,
    ) -> Result<(String, CreationChallengeResponse), PasskeyError> {
        let existing = self.store.passkeys_of(username)?;
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        // One handle per user: an authenticator keeps one discoverable
        // credential per (site, handle), so a second registration on the same
        // device replaces the first rather than piling up.
        let user_handle = existing
            .first()
            .map(|(_, record)| record.user_handle)
            .unwrap_or_else(|| {
                let mut handle = [0; 16];
                rand::Rng::fill_bytes(&mut rand::rng(), &mut handle);
                handle
            });
        let ids: Vec<Vec<u8>> = existing.into_iter().map(|(id, _)| id).collect();
        Ok(self
            .ceremonies
            .start_registration(username, user_handle, &ids, Instant::now())?)
    }

    /// Finishes a registration `username` began; the stored passkey.
    pub async fn finish_registration(
        &self,
        username: String,
        ceremony: &str,
        answer: &RegisterPublicKeyCredential,
        name: String,
        now_ms: u64,
    ) -> Result<(Vec<u8>, PasskeyRecord), PasskeyError> {
        let new =
            self.ceremonies
                .finish_registration(ceremony, &username, answer, Instant::now())?;
        // Checked again: several ceremonies may have begun under the bound.
        if self.store.passkeys_of(&username)?.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        let record = PasskeyRecord {
            username: username.clone(),
            user_handle: new.user_handle,
            name,
            credential: new.credential,
            created_at_ms: now_ms,
            last_used_ms: None,
            counter: new.counter,
            backup_eligible: new.backup_eligible,
            backup_state: new.backup_state,
        };
        let id = new.id;
        let (stored_id, stored) = (id.clone(), record.clone());
        match on_disk(&self.store, move |store| store.add_passkey(&id, &record)).await {
            Ok(()) => Ok((stored_id, stored)),
            Err(spaces_store::Error::AlreadyExists) => Err(PasskeyError::Taken),
            Err(e) => Err(e.into()),
        }
    }

    /// The passkeys of `username`, with their ids.
    pub fn list(&self, username: &str) -> Result<Vec<(Vec<u8>, PasskeyRecord)>, PasskeyError> {
        Ok(self.store.passkeys_of(username)?)
    }

    pub async fn rename(
        &self,
        username: String,
        id: Vec<u8>,
        name: String,
    ) -> Result<PasskeyRecord, PasskeyError> {
        match on_disk(&self.store, move |store| {
            store.rename_passkey(&username, &id, &name)
        })
        .await
        {
            Ok(record) => Ok(record),
            Err(spaces_store::Error::NotFound) => Err(PasskeyError::UnknownPasskey),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a passkey of `username`. The last one is kept while the
    /// second factor is on.
    pub async fn remove(&self, username: String, id: Vec<u8>) -> Result<(), PasskeyError> {
        let passkeys = self.store.passkeys_of(&username)?;
        if !passkeys.iter().any(|(held, _)| *held == id) {
            return Err(PasskeyError::UnknownPasskey);
        }
        if passkeys.len() == 1 && self.store.auth_policy(&username)?.passkey_second_factor {
            return Err(PasskeyError::LastPasskey);
        }
        if on_disk(&self.store, move |store| {
            store.remove_passkey(&username, &id)
        })
        .await?
        {
            Ok(())
        } else {
            Err(PasskeyError::UnknownPasskey)
        }
    }

    pub fn policy(&self, username: &str) -> Result<AuthPolicy, PasskeyError> {
        Ok(self.store.auth_policy(username)?)
    }

    pub async fn set_policy(
        &self,
        username: String,
        policy: AuthPolicy,
    ) -> Result<AuthPolicy, PasskeyError> {
        let stored = policy.clone();
        match on_disk(&self.store, move |store| {
            store.put_auth_policy(&username, &policy)
        })
        .await
        {
            Ok(()) => Ok(stored),
            Err(spaces_store::Error::NotFound) => Err(PasskeyError::NoPasskey),
            Err(e) => Err(e.into()),
        }
    }

    /// Begins a sign-in with a passkey alone, for a client at `source`.
    pub fn start_sign_in(
        &self,
        source: &str,
    ) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        Ok(self.ceremonies.start_sign_in(source, Instant::now())?)
    }

    /// After `username`'s right password: the second-factor ceremony if
    /// their policy asks for one and they hold a passkey (a policy left on
    /// with none, after a removal raced turning it on, asks for nothing).
    pub fn second_factor(
        &self,
        username: &str,
        source: &str,
    ) -> Result<Option<(String, RequestChallengeResponse)>, PasskeyError> {
        if !self.store.auth_policy(username)?.passkey_second_factor {
            return Ok(None);
        }
        let credentials: Vec<Vec<u8>> = self
            .store
            .passkeys_of(username)?
            .into_iter()
            .map(|(_, record)| record.credential)
            .collect();
        if credentials.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.ceremonies.start_second_factor(
            username,
            &credentials,
            source,
            Instant::now(),
        )?))
    }

    /// Finishes a passkey sign-in (alone or as a second factor): the
    /// ceremony is used up whatever the outcome.
    pub async fn finish_sign_in(
        &self,
        ceremony: &str,
        answer: &PublicKeyCredential,
        now_ms: u64,
    ) -> Result<SignedIn, PasskeyError> {
        let start = self.ceremonies.take_sign_in(ceremony, Instant::now())?;
        let id = spaces_passkey::credential_id_of(answer).to_vec();
        let record = self
            .store
            .passkey(&id)?
            .ok_or(PasskeyError::UnknownCredential)?;
        let second_factor = match &start {
            SignInStart::SecondFactor { username, .. } => {
                if *username != record.username {
                    return Err(PasskeyError::UnknownCredential);
                }
                true
            }
            SignInStart::Discoverable(_) => false,
        };
        let verified = self.ceremonies.verify_sign_in(
            start,
            answer,
            &record.credential,
            record.user_handle,
        )?;
        let update = PasskeyUpdate {
            credential: verified.credential,
            counter: verified.counter,
            backup_eligible: verified.backup_eligible,
            backup_state: verified.backup_state,
            now_ms,
        };
        let used = on_disk(&self.store, move |store| {
            store.record_passkey_use(&id, &update)
        })
        .await?;
        match used {
            PasskeyUse::Recorded(record) => Ok(SignedIn {
                username: record.username,
                second_factor,
            }),
            PasskeyUse::CounterWentBack { stored, presented } => {
                tracing::warn!(
                    username = %record.username,
                    stored,
                    presented,
                    "passkey counter went back; sign-in refused"
                );
                Err(spaces_passkey::Error::PossiblyCloned.into())
            }
            PasskeyUse::Unknown => Err(PasskeyError::UnknownCredential),
        }
    }
}
