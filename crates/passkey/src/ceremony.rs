//! The [`Passkeys`] handle: the three ceremonies over one webauthn-rs relying party.
//!
//! Every ceremony is two calls. The first makes the options the browser needs and parks the
//! state under a fresh [`CeremonyId`] in the pending table (`pending.rs`); the second takes it
//! out (so it cannot be answered twice) and verifies the answer against it. A sign-in's second
//! call is split again, because the caller must look the credential up in its store between
//! taking the ceremony ([`Passkeys::take_sign_in`]) and verifying ([`Passkeys::verify_sign_in`]).
//!
//! Registration asks for a discoverable credential (`residentKey: preferred`, which browsers
//! treat as required) and user verification, so the passkey alone can sign in later with no
//! username typed. The user handle is the caller's: 16 random bytes, the same for all of one
//! user's passkeys.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::CryptoRng;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::Error;
use crate::pending::{Limits, Pending};

/// The id under which a ceremony waits: 128 random bits, base64url.
pub type CeremonyId = String;

/// How to build [`Passkeys`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The node's public URL (`http.public_url`): its origin is the only one accepted, its host
    /// the relying-party id.
    pub public_url: String,
    /// Shown by authenticators beside the user's name.
    pub rp_name: String,
    /// How long a ceremony may take, also sent to the browser as its timeout.
    pub challenge_ttl: Duration,
    /// Ceremonies waiting at most, in all.
    pub max_pending: usize,
    /// Ceremonies waiting at most per source (a client address, or a user for registrations).
    pub max_pending_per_source: usize,
    /// Bytes of waiting ceremonies at most (their encoded state and bookkeeping).
    pub max_pending_bytes: usize,
}

impl Options {
    /// Defaults for `public_url`: a person takes well under 5 minutes to touch a key (WebAuthn
    /// recommends 5 as the timeout); 10,000 ceremonies of about 1 KiB are 10 MiB at most.
    pub fn new(public_url: String) -> Options {
        Options {
            public_url,
            rp_name: "Spaces".into(),
            challenge_ttl: Duration::from_secs(300),
            max_pending: 10_000,
            max_pending_per_source: 32,
            max_pending_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A passkey just registered: what the caller stores.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// The credential id the authenticator chose.
    pub id: Vec<u8>,
    /// The user handle the ceremony was begun with.
    pub user_handle: [u8; 16],
    /// The credential, encoded for [`Passkeys::verify_sign_in`].
    pub credential: Vec<u8>,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("id", &URL_SAFE_NO_PAD.encode(&self.id))
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// A sign-in verified: what the caller stores back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The credential re-encoded with its new counter and flags.
    pub credential: Vec<u8>,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

enum State {
    Register {
        username: String,
        user_handle: [u8; 16],
        state: PasskeyRegistration,
    },
    SignIn(SignInStart),
}

/// A sign-in ceremony taken out of the table by [`Passkeys::take_sign_in`].
#[derive(Debug)]
pub enum SignInStart {
    /// A passkey alone: any user's discoverable credential.
    Discoverable(DiscoverableAuthentication),
    /// The second factor after `username`'s password: one of their passkeys.
    SecondFactor {
        username: String,
        state: PasskeyAuthentication,
    },
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Register { username, .. } => write!(f, "Register({username})"),
            State::SignIn(start) => write!(f, "{start:?}"),
        }
    }
}

/// The relying party and its pending ceremonies: cheap to clone.
#[derive(Clone, Debug)]
pub struct Passkeys {
    inner: Arc<Inner>,
}

struct Inner {
    webauthn: Webauthn,
    origin: String,
    ttl: Duration,
    pending: Mutex<Pending<State>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Passkeys {
    /// The relying party of `options.public_url`; [`Error::Config`] if it cannot be one.
    pub fn new(options: &Options) -> Result<Passkeys, Error> {
        let url = Url::parse(&options.public_url)
            .map_err(|e| Error::Config(format!("{:?}: {e}", options.public_url)))?;
        let Some(rp_id) = url.domain().map(str::to_owned) else {
            return Err(Error::Config(format!(
                "{:?} names no domain (an IP address cannot be a WebAuthn origin)",
                options.public_url
            )));
        };
        if url.scheme() != "https" && !(url.scheme() == "http" && rp_id == "localhost") {
            return Err(Error::Config(format!(
                "{:?} is neither https nor http://localhost",
                options.public_url
            )));
        }
        let origin = url.origin().ascii_serialization();
        let origin_url = Url::parse(&origin).map_err(|e| Error::Config(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(&rp_id, &origin_url)
            .and_then(|builder| {
                builder
                    .rp_name(&options.rp_name)
                    .timeout(options.challenge_ttl)
                    .build()
            })
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Passkeys {
            inner: Arc::new(Inner {
                webauthn,
                origin,
                ttl: options.challenge_ttl,
                pending: Mutex::new(Pending::new(Limits {
                    max_entries: options.max_pending,
                    max_per_source: options.max_pending_per_source,
                    max_bytes: options.max_pending_bytes,
                })),
            }),
        })
    }

    /// The one origin accepted, e.g. `https://chat.example.org`.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Ceremonies waiting now, and their bytes.
    pub fn pending(&self) -> (usize, usize) {
        let pending = self.lock();
        (pending.len(), pending.bytes())
    }

    /// Begins registering a passkey for `username`, whose user handle is `user_handle`;
    /// `existing` are the ids of their passkeys, which the authenticator must not register
    /// again.
    pub fn start_registration(
        &self,
        username: &str,
        user_handle: [u8; 16],
        existing: &[Vec<u8>],
        now: Instant,
    ) -> Result<(CeremonyId, CreationChallengeResponse), Error> {
        let exclude: Vec<CredentialID> = existing.to_vec();
        let (mut options, state) = self
            .inner
            .webauthn
            .start_passkey_registration(
                Uuid::from_bytes(user_handle),
                username,
                username,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| Error::Encoding(e.to_string()))?;
        // A passkey that can sign in with no username typed: a discoverable credential.
        // "preferred", not "required": authenticators that cannot store one still register
        // (they then serve as a second factor only); browsers treat both alike.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let size = encoded_len(&state)?;
        let id = self.park(
            &format!("user:{username}"),
            State::Register {
                username: username.to_owned(),
                user_handle,
                state,
            },
            size,
            now,
        )?;
        Ok((id, options))
    }

    /// Finishes a registration `username` began; the new credential to store.
    pub fn finish_registration(
        &self,
        ceremony: &str,
        username: &str,
        answer: &RegisterPublicKeyCredential,
        now: Instant,
    ) -> Result<NewCredential, Error> {
        let (state, user_handle) = match self.lock().take(ceremony, now)? {
            State::Register {
                username: owner,
                state,
                user_handle,
            } if owner == username => (state, user_handle),
            // Another user's, or a sign-in: as if it did not exist (it is gone now).
            _ => return Err(Error::UnknownCeremony),
        };
        let passkey = self
            .inner
            .webauthn
            .finish_passkey_registration(answer, &state)
            .map_err(refused)?;
        let (counter, backup_eligible, backup_state) = facts(&passkey)?;
        Ok(NewCredential {
            id: passkey.cred_id().to_vec(),
            user_handle,
            credential: encode(&passkey)?,
            counter,
            backup_eligible,
            backup_state,
        })
    }

    /// Begins a sign-in with a passkey alone, for a client at `source`.
    pub fn start_sign_in(
        &self,
        source: &str,
        now: Instant,
    ) -> Result<(CeremonyId, RequestChallengeResponse), Error> {
        let (mut options, state) = self
            .inner
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| Error::Encoding(e.to_string()))?;
        // webauthn-rs asks for conditional mediation (username autofill); the web client signs
        // in from a button, so the browser's ordinary dialog.
        options.mediation = None;
        let size = encoded_len(&state)?;
        let id = self.park(
            &format!("addr:{source}"),
            State::SignIn(SignInStart::Discoverable(state)),
            size,
            now,
        )?;
        Ok((id, options))
    }

    /// Begins the second factor after `username`'s password: one of `credentials` (as
    /// [`NewCredential::credential`] encoded them) must answer.
    pub fn start_second_factor(
        &self,
        username: &str,
        credentials: &[Vec<u8>],
        source: &str,
        now: Instant,
    ) -> Result<(CeremonyId, RequestChallengeResponse), Error> {
        let passkeys = credentials
            .iter()
            .map(|bytes| decode(bytes))
            .collect::<Result<Vec<Passkey>, Error>>()?;
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| Error::Encoding(e.to_string()))?;
        let size = encoded_len(&state)?;
        let id = self.park(
            &format!("addr:{source}"),
            State::SignIn(SignInStart::SecondFactor {
                username: username.to_owned(),
                state,
            }),
            size,
            now,
        )?;
        Ok((id, options))
    }

    /// Takes a sign-in ceremony out of the table: from here it can be verified once.
    pub fn take_sign_in(&self, ceremony: &str, now: Instant) -> Result<SignInStart, Error> {
        match self.lock().take(ceremony, now)? {
            State::SignIn(start) => Ok(start),
            State::Register { .. } => Err(Error::UnknownCeremony),
        }
    }

    /// Verifies a sign-in `answer` against its ceremony and the stored credential it names
    /// (found by [`credential_id_of`]), made for `user_handle`. For a passkey alone, the
    /// answer must carry that user handle.
    pub fn verify_sign_in(
        &self,
        start: SignInStart,
        answer: &PublicKeyCredential,
        credential: &[u8],
        user_handle: [u8; 16],
    ) -> Result<Verified, Error> {
        let mut passkey = decode(credential)?;
        let result = match start {
            SignInStart::Discoverable(state) => {
                let (uuid, _) = self
                    .inner
                    .webauthn
                    .identify_discoverable_authentication(answer)
                    .map_err(|_| Error::NoUser)?;
                if uuid.as_bytes() != &user_handle {
                    return Err(Error::Refused(
                        "the answer's user handle is not the credential's".into(),
                    ));
                }
                self.inner
                    .webauthn
                    .finish_discoverable_authentication_v2(answer, state, &passkey)
            }
            SignInStart::SecondFactor { state, .. } => self
                .inner
                .webauthn
                .finish_passkey_authentication(answer, &state),
        }
        .map_err(refused)?;
        passkey.update_credential(&result);
        Ok(Verified {
            credential: encode(&passkey)?,
            counter: result.counter(),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
        })
    }

    fn park(&self, source: &str, state: State, size: usize, now: Instant) -> Result<String, Error> {
        let id = new_ceremony_id(&mut rand::rng());
        self.lock()
            .insert(id.clone(), source, state, size, now, now + self.inner.ttl)?;
        Ok(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending<State>> {
        // Every change leaves the table consistent before it can panic.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The credential id an answer names (raw bytes), to look the credential up by.
pub fn credential_id_of(answer: &PublicKeyCredential) -> &[u8] {
    answer.get_credential_id()
}

fn new_ceremony_id(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn refused(e: WebauthnError) -> Error {
    match e {
        WebauthnError::CredentialPossibleCompromise => Error::PossiblyCloned,
        other => Error::Refused(other.to_string()),
    }
}

fn encoded_len(state: &impl serde::Serialize) -> Result<usize, Error> {
    serde_json::to_vec(state)
        .map(|bytes| bytes.len())
        .map_err(|e| Error::Encoding(e.to_string()))
}

fn encode(passkey: &Passkey) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(passkey).map_err(|e| Error::Encoding(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Passkey, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Encoding(e.to_string()))
}

/// The counter and backup flags of a passkey. webauthn-rs keeps them private (short of its
/// `danger-credential-internals` feature); its serialised form names them.
fn facts(passkey: &Passkey) -> Result<(u32, bool, bool), Error> {
    let value = serde_json::to_value(passkey).map_err(|e| Error::Encoding(e.to_string()))?;
    let cred = &value["cred"];
    let counter = cred["counter"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::Encoding("a passkey without a counter".into()))?;
    let flag = |name: &str| {
        cred[name]
            .as_bool()
            .ok_or_else(|| Error::Encoding(format!("a passkey without {name}")))
    };
    Ok((counter, flag("backup_eligible")?, flag("backup_state")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_https_or_localhost() {
        for ok in [
            "https://chat.example.org",
            "https://chat.example.org:8443/",
            "http://localhost:8080",
        ] {
            let passkeys = Passkeys::new(&Options::new(ok.into())).unwrap();
            assert!(ok.starts_with(passkeys.origin()), "{ok}");
        }
        for bad in [
            "http://chat.example.org",
            "http://127.0.0.1:8080",
            "https://[::1]/",
            "not a url",
        ] {
            assert!(
                matches!(
                    Passkeys::new(&Options::new(bad.into())),
                    Err(Error::Config(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn registration_asks_for_a_discoverable_verified_credential() {
        let passkeys = Passkeys::new(&Options::new("http://localhost:1".into())).unwrap();
        let (id, options) = passkeys
            .start_registration("alice", [1; 16], &[], Instant::now())
            .unwrap();
        let selection = options.public_key.authenticator_selection.unwrap();
        assert_eq!(
            selection.resident_key,
            Some(ResidentKeyRequirement::Preferred)
        );
        assert_eq!(options.public_key.user.id, vec![1; 16]);
        assert_eq!(passkeys.pending().0, 1);
        // Another user cannot finish it, and it is gone afterwards.
        let (_, sign_in) = passkeys.start_sign_in("127.0.0.1", Instant::now()).unwrap();
        assert!(sign_in.mediation.is_none());
        assert!(matches!(
            passkeys.take_sign_in(&id, Instant::now()),
            Err(Error::UnknownCeremony)
        ));
    }
}
