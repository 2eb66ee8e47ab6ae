//! The OAuth2 / OpenID Connect provider: the seam between the API and
//! `spaces_oidc` (the signing key, PKCE, scopes) and the store's
//! `oauth_clients` and `oauth_codes` trees.
//!
//! State: the signing key (`oidc.key` in the data directory, made at first
//! start) and the store's records. The rules that need one decision are
//! single store operations: a code is redeemed once (`Store::redeem_oauth_code`,
//! a compare-and-swap), and a second use ends the session the first one
//! started (through [`Accounts::delete_session`], so its WebSockets close).
//! Refresh tokens and their rotation are the sessions' own (the API's
//! `session` module), bound to the client here by the session's
//! `OAuthGrant`. Nothing here is in memory but the key: a restart loses no
//! code, client or session.

use std::sync::Arc;

use spaces_oidc::{IdTokenClaims, Scopes, SigningKey};
use spaces_store::{CodeRedemption, OAuthClient, OAuthCode, Store};

use super::accounts::Accounts;
use super::on_disk;

/// How long an authorization code is good for: the client redeems it at
/// once, and RFC 6749 §4.1.2 says at most ten minutes.
pub const CODE_LIFETIME_MS: u64 = 60_000;

/// Longest `state` or `nonce` kept: both are opaque to us, and a client
/// needs a few dozen bytes of randomness, not kilobytes in our store.
const MAX_OPAQUE_LEN: usize = 512;

/// What the client asked for at the authorization endpoint (RFC 6749
/// §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1). Every field as sent.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// A checked authorization request, ready for the user's decision.
#[derive(Clone, Debug)]
pub struct Authorization {
    pub client: OAuthClient,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
}

/// Why an authorization request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// No redirect is safe (unknown client, or a redirect URI it did not
    /// register): the error is shown to the user, never sent to the URI.
    #[error("{0}")]
    Shown(&'static str),
    /// The client is known and the URI is its own: the error goes back to
    /// it (RFC 6749 §4.1.2.1).
    #[error("{description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        /// The OAuth error code.
        error: &'static str,
        description: String,
    },
}

/// Why a token request was refused: RFC 6749 §5.2's codes.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error(transparent)]
    Store(#[from] spaces_store::Error),
}

/// The provider: cheap to clone.
#[derive(Clone, Debug)]
pub struct Oidc {
    key: Arc<SigningKey>,
    store: Store,
    accounts: Accounts,
    issuer: String,
}

impl Oidc {
    /// `issuer` is the node's public URL, without a trailing slash.
    pub fn new(key: SigningKey, store: Store, accounts: Accounts, issuer: String) -> Oidc {
        Oidc {
            key: Arc::new(key),
            store,
            accounts,
            issuer: issuer.trim_end_matches('/').to_owned(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> spaces_oidc::JwkSet {
        self.key.jwks()
    }

    pub fn id_token(&self, claims: &IdTokenClaims) -> Result<String, spaces_oidc::Error> {
        self.key.id_token(claims)
    }

    /// Checks an authorization request: the client and its exact redirect
    /// URI first (failures there are never redirected), then the rest.
    pub fn check(&self, params: &AuthorizeParams) -> Result<Authorization, AuthorizeError> {
        let client_id = params
            .client_id
            .as_deref()
            .ok_or(AuthorizeError::Shown("client_id is missing"))?;
        let client = self
            .store
            .oauth_client(client_id)
            .ok()
            .flatten()
            .ok_or(AuthorizeError::Shown("no such client on this node"))?;
        let redirect_uri = params
            .redirect_uri
            .as_deref()
            .ok_or(AuthorizeError::Shown("redirect_uri is missing"))?;
        // Exact match, byte for byte (RFC 9700 §4.1.3): no prefix, no
        // normalisation.
        if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
            return Err(AuthorizeError::Shown(
                "redirect_uri is not one this client registered",
            ));
        }
        let state = params.state.clone();
        let refuse = |error: &'static str, description: String| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
            description,
        };
        if params.response_type.as_deref() != Some("code") {
            return Err(refuse(
                "unsupported_response_type",
                "response_type must be code".into(),
            ));
        }
        let too_long =
            |value: &Option<String>| value.as_ref().is_some_and(|v| v.len() > MAX_OPAQUE_LEN);
        if too_long(&params.state) || too_long(&params.nonce) {
            return Err(refuse(
                "invalid_request",
                format!("state and nonce are at most {MAX_OPAQUE_LEN} bytes"),
            ));
        }
        let code_challenge = spaces_oidc::check_challenge(
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
        )
        .map_err(|e| refuse("invalid_request", e.to_string()))?
        .to_owned();
        let scopes = Scopes::parse(params.scope.as_deref().unwrap_or_default())
            .map_err(|e| refuse("invalid_scope", e.to_string()))?;
        if scopes.is_empty() {
            return Err(refuse("invalid_scope", "ask for at least one scope".into()));
        }
        if !Scopes::from_bits(client.scopes).covers(scopes) {
            return Err(refuse(
                "invalid_scope",
                format!(
                    "this client may ask for {} only",
                    Scopes::from_bits(client.scopes)
                ),
            ));
        }
        Ok(Authorization {
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            nonce: params.nonce.clone(),
            code_challenge,
            client,
        })
    }

    /// The user approved: stores a code and answers the redirect that
    /// carries it (with `state`) back to the client.
    pub async fn approve(
        &self,
        authorization: &Authorization,
        username: &str,
        now_ms: u64,
    ) -> Result<String, spaces_store::Error> {
        let minted = spaces_auth::new_refresh_token(&mut rand::rng());
        let code = OAuthCode {
            client_id: authorization.client.client_id.clone(),
            username: username.to_owned(),
            redirect_uri: authorization.redirect_uri.clone(),
            scopes: authorization.scopes.bits(),
            nonce: authorization.nonce.clone(),
            code_challenge: authorization.code_challenge.clone(),
            auth_time_ms: now_ms,
            expires_at_ms: now_ms + CODE_LIFETIME_MS,
            redeemed_by: None,
        };
        let hash = minted.hash;
        on_disk(&self.store, move |store| {
            store.put_oauth_code(&hash, &code, now_ms)
        })
        .await?;
        Ok(redirect_with(
            &authorization.redirect_uri,
            &[
                ("code", Some(minted.token.as_str())),
                ("state", authorization.state.as_deref()),
            ],
        ))
    }

    /// The user said no: the redirect that tells the client.
    pub fn deny(&self, authorization: &Authorization) -> String {
        redirect_with(
            &authorization.redirect_uri,
            &[
                ("error", Some("access_denied")),
                ("error_description", Some("the user declined")),
                ("state", authorization.state.as_deref()),
            ],
        )
    }

    /// Authenticates a client at the token or revocation endpoint: a
    /// confidential client by its secret (constant-time on its hash), a
    /// public one by its id alone (its codes need PKCE all the same).
    pub fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<OAuthClient, TokenError> {
        let client = self
            .store
            .oauth_client(client_id)?
            .ok_or(TokenError::InvalidClient)?;
        match (&client.secret_hash, secret) {
            (Some(hash), Some(secret)) => {
                if !spaces_auth::hashes_equal(hash, &spaces_auth::hash_refresh_token(secret)) {
                    return Err(TokenError::InvalidClient);
                }
            }
            (None, None) => {}
            // A confidential client without its secret, or a public one
            // presenting one it was never given.
            _ => return Err(TokenError::InvalidClient),
        }
        Ok(client)
    }

    /// Redeems `code` for `client`, for the new session `session_id`:
    /// checks the record (its client, its redirect URI, the PKCE verifier,
    /// its expiry) and then takes it once. A code used a second time ends
    /// the session the first use started.
    pub async fn redeem(
        &self,
        client: &OAuthClient,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        session_id: &str,
        now_ms: u64,
    ) -> Result<OAuthCode, TokenError> {
        let invalid = TokenError::InvalidGrant;
        let hash = spaces_auth::hash_refresh_token(code);
        // `hash` is `Copy`: the closure takes a copy, used again below.
        let stored = on_disk(&self.store, move |store| store.oauth_code(&hash))
            .await?
            .ok_or(invalid("unknown or expired code"))?;
        if stored.client_id != client.client_id {
            return Err(invalid("this code was issued to another client"));
        }
        if stored.redeemed_by.is_none() {
            if redirect_uri != Some(stored.redirect_uri.as_str()) {
                return Err(invalid(
                    "redirect_uri differs from the authorization request's",
                ));
            }
            let verifier =
                verifier.ok_or(TokenError::InvalidRequest("code_verifier is missing"))?;
            if !spaces_oidc::verify_verifier(verifier, &stored.code_challenge) {
                return Err(invalid("code_verifier does not match the code_challenge"));
            }
        }
        let session = session_id.to_owned();
        let redeemed = on_disk(&self.store, move |store| {
            store.redeem_oauth_code(&hash, &session, now_ms)
        })
        .await?;
        match redeemed {
            CodeRedemption::Redeemed(code) => Ok(code),
            CodeRedemption::AlreadyRedeemed { session_id } => {
                if self.accounts.delete_session(session_id.clone()).await? {
                    tracing::warn!(
                        session = %session_id,
                        client = %client.client_id,
                        "authorization code used twice; the session it started is ended"
                    );
                }
                Err(invalid("this code was used already"))
            }
            CodeRedemption::Unknown => Err(invalid("unknown or expired code")),
        }
    }
}

/// `uri` with the given query parameters appended (those that are `Some`).
fn redirect_with(uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .filter_map(|(name, value)| value.map(|value| (*name, value)))
        .collect();
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with(
                "https://a.example/cb",
                &[("code", Some("x y")), ("state", None)]
            ),
            "https://a.example/cb?code=x+y"
        );
        assert_eq!(
            redirect_with(
                "https://a.example/cb?app=1",
                &[("error", Some("access_denied")), ("state", Some("s&t"))]
            ),
            "https://a.example/cb?app=1&error=access_denied&state=s%26t"
        );
    }
}
