//! Why a passkey ceremony failed.

/// What went wrong. The node answers each differently: a client error, a retry later, or (for
/// `Encoding`) a 500 whose cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `http.public_url` cannot be a WebAuthn origin (it needs a domain name; http only for
    /// `localhost`).
    #[error("passkeys need http.public_url to be https://<domain> or http://localhost: {0}")]
    Config(String),
    /// No such ceremony: never begun, already finished (a replay), or forgotten.
    #[error("no such passkey ceremony; start again")]
    UnknownCeremony,
    /// The ceremony's time ran out.
    #[error("the passkey ceremony expired; start again")]
    Expired,
    /// Too many ceremonies are waiting in all (the node's bound).
    #[error("too many passkey ceremonies in progress; retry shortly")]
    Busy,
    /// This source (client address or account) has its share of
    /// ceremonies waiting: finish or let one expire first.
    #[error("too many of your passkey ceremonies are waiting; finish one or retry later")]
    TooManyPending,
    /// The authenticator's answer does not verify: wrong origin, another challenge, a bad
    /// signature, no user verification, or a credential this ceremony did not allow.
    #[error("the passkey was refused: {0}")]
    Refused(String),
    /// The signature counter did not go up: two copies of the key may exist.
    #[error("the passkey's signature counter went back; it may have been cloned")]
    PossiblyCloned,
    /// The answer names no user handle or credential in the expected form.
    #[error("the passkey answer names no user")]
    NoUser,
    /// A stored credential did not decode, or a state did not encode: a bug or damage.
    #[error("passkey encoding: {0}")]
    Encoding(String),
}
