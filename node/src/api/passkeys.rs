//! Passkeys: registering one on a signed-in account, listing, renaming and
//! removing them, the account's sign-in policy (a passkey after the
//! password), and signing in with a passkey alone. The ceremonies are
//! `services::passkeys`; this module parses, throttles and renders.
//!
//! A passkey sign-in goes through the same guard as a password
//! (`crate::signin`): its source's failure budget is charged before the
//! answer is verified and given back when it verifies, so a client trying
//! made-up or replayed assertions is slowed like one guessing passwords.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use spaces_passkey::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use spaces_protocol::text::TextKind;
use spaces_store::{AuthPolicy, PasskeyRecord, SignInMethod};

use super::client::ClientAddr;
use super::error::{ApiError, ApiResult, Json, Path};
use super::session::{Tokens, UserAgent, device_token, may_sign_in, new_session, too_many};
use super::{AppState, Authed};
use crate::engine::now_ms;
use crate::services::passkeys::PasskeyError;
use crate::signin;

/// Longest passkey name.
const MAX_NAME: usize = 64;

impl From<PasskeyError> for ApiError {
    fn from(error: PasskeyError) -> ApiError {
        use spaces_passkey::Error as Ceremony;
        let message = error.to_string();
        match error {
            PasskeyError::Ceremony(Ceremony::UnknownCeremony) => {
                ApiError::bad_request("unknown_ceremony", message)
            }
            PasskeyError::Ceremony(Ceremony::Expired) => {
                ApiError::bad_request("ceremony_expired", message)
            }
            PasskeyError::Ceremony(Ceremony::Busy) => {
                let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
                error.retry_after = Some(10);
                error
            }
            PasskeyError::Ceremony(Ceremony::TooManyPending) => {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_ceremonies",
                    message,
                );
                error.retry_after = Some(10);
                error
            }
            PasskeyError::Ceremony(Ceremony::Refused(_) | Ceremony::NoUser) => {
                ApiError::unauthorized("passkey_refused", message)
            }
            PasskeyError::Ceremony(Ceremony::PossiblyCloned) => {
                ApiError::unauthorized("passkey_cloned", message)
            }
            PasskeyError::Ceremony(e @ (Ceremony::Encoding(_) | Ceremony::Config(_))) => {
                ApiError::internal(e)
            }
            PasskeyError::UnknownCredential => ApiError::unauthorized("unknown_passkey", message),
            PasskeyError::Taken => ApiError::conflict("passkey_taken", message),
            PasskeyError::UnknownPasskey => ApiError::not_found("unknown_passkey", message),
            PasskeyError::TooMany => ApiError::bad_request("too_many", message),
            PasskeyError::LastPasskey => ApiError::conflict("last_passkey", message),
            PasskeyError::NoPasskey => ApiError::conflict("no_passkey", message),
            PasskeyError::Store(e) => e.into(),
        }
    }
}

/// A ceremony begun: the client passes `options` to
/// `navigator.credentials.create`/`get` and sends the result back with the id.
#[derive(Serialize)]
pub struct Ceremony<T> {
    ceremony_id: String,
    options: T,
}

#[derive(Serialize)]
pub struct PasskeyInfo {
    /// The credential id, base64url: the passkey's name in paths.
    id: String,
    name: String,
    created_at_ms: u64,
    last_used_ms: Option<u64>,
    /// The credential may be synced to the user's other devices.
    backup_eligible: bool,
    /// It is synced now.
    backup_state: bool,
}

fn info(id: &[u8], record: PasskeyRecord) -> PasskeyInfo {
    PasskeyInfo {
        id: URL_SAFE_NO_PAD.encode(id),
        name: record.name,
        created_at_ms: record.created_at_ms,
        last_used_ms: record.last_used_ms,
        backup_eligible: record.backup_eligible,
        backup_state: record.backup_state,
    }
}

fn name(name: Option<String>) -> ApiResult<String> {
    let name = name.unwrap_or_else(|| "passkey".into());
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("a passkey's name is 1 to {MAX_NAME} bytes"),
        ));
    }
    TextKind::Name
        .check("name", &name)
        .map_err(|e| ApiError::bad_request("bad_text", e.to_string()))?;
    Ok(name)
}

/// A passkey id from a path; one that does not decode names no passkey.
fn passkey_id(id: &str) -> ApiResult<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .filter(|id| !id.is_empty() && id.len() <= spaces_store::MAX_CREDENTIAL_ID)
        .ok_or_else(|| ApiError::not_found("unknown_passkey", "no such passkey of yours"))
}

pub async fn register_begin(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Ceremony<CreationChallengeResponse>>> {
    let (ceremony_id, options) = state.passkeys.start_registration(&authed.username)?;
    Ok(Json(Ceremony {
        ceremony_id,
        options,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinish {
    ceremony_id: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    name: Option<String>,
}

pub async fn register_finish(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<RegisterFinish>,
) -> ApiResult<(StatusCode, Json<PasskeyInfo>)> {
    let name = name(req.name)?;
    let (id, record) = state
        .passkeys
        .finish_registration(
            authed.username,
            &req.ceremony_id,
            &req.credential,
            name,
            now_ms(),
        )
        .await
        .map_err(|e| {
            // A refused registration is a bad request, not a bad token.
            let mut error = ApiError::from(e);
            if error.status == StatusCode::UNAUTHORIZED {
                error.status = StatusCode::BAD_REQUEST;
            }
            error
        })?;
    Ok((StatusCode::CREATED, Json(info(&id, record))))
}

#[derive(Serialize)]
pub struct PasskeyList {
    passkeys: Vec<PasskeyInfo>,
    /// Sign-in with a password also needs one of these.
    passkey_second_factor: bool,
}

pub async fn list(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<PasskeyList>> {
    let passkeys = state.passkeys.list(&authed.username)?;
    let policy = state.passkeys.policy(&authed.username)?;
    Ok(Json(PasskeyList {
        passkeys: passkeys
            .into_iter()
            .map(|(id, record)| info(&id, record))
            .collect(),
        passkey_second_factor: policy.passkey_second_factor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    Json(req): Json<Rename>,
) -> ApiResult<Json<PasskeyInfo>> {
    let id = passkey_id(&id)?;
    let name = name(Some(req.name))?;
    let record = state
        .passkeys
        .rename(authed.username, id.clone(), name)
        .await?;
    Ok(Json(info(&id, record)))
}

pub async fn remove(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = passkey_id(&id)?;
    state.passkeys.remove(authed.username, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    passkey_second_factor: bool,
}

pub async fn get_policy(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Policy>> {
    let policy = state.passkeys.policy(&authed.username)?;
    Ok(Json(Policy {
        passkey_second_factor: policy.passkey_second_factor,
    }))
}

pub async fn put_policy(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<Policy>,
) -> ApiResult<Json<Policy>> {
    let policy = state
        .passkeys
        .set_policy(
            authed.username,
            AuthPolicy {
                passkey_second_factor: req.passkey_second_factor,
            },
        )
        .await?;
    Ok(Json(Policy {
        passkey_second_factor: policy.passkey_second_factor,
    }))
}

pub async fn signin_begin(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
) -> ApiResult<Json<Ceremony<RequestChallengeResponse>>> {
    let source = signin::source_of(client).to_string();
    let (ceremony_id, options) = state.passkeys.start_sign_in(&source)?;
    Ok(Json(Ceremony {
        ceremony_id,
        options,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInFinish {
    ceremony_id: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    device: Option<String>,
}

/// Finishes a passkey sign-in, alone or as the second factor after
/// `POST /auth/login` answered 202.
pub async fn signin_finish(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user_agent: UserAgent,
    Json(req): Json<SignInFinish>,
) -> ApiResult<Json<Tokens>> {
    let attempt = match state.signin.begin_passkey(client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            state.metrics.login_throttled.add(1);
            return Err(too_many(wait.as_secs_f64()));
        }
    };
    let signed_in = state
        .passkeys
        .finish_sign_in(&req.ceremony_id, &req.credential, now_ms())
        .await;
    state
        .signin
        .finish(attempt, signed_in.is_ok(), Instant::now(), &state.metrics);
    let signed_in = signed_in?;
    let account = state.store.account(&signed_in.username)?.ok_or_else(|| {
        ApiError::unauthorized("unknown_passkey", "this passkey's account is gone")
    })?;
    may_sign_in(&account)?;
    let method = if signed_in.second_factor {
        SignInMethod::PasswordAndPasskey
    } else {
        SignInMethod::Passkey
    };
    let mut tokens = new_session(&state, &account, req.device, method, user_agent).await?;
    tokens.device_token = Some(device_token(&state, &account.username, None));
    tracing::info!(username = %account.username, method = method.as_str(), "signed in with a passkey");
    Ok(Json(tokens))
}
