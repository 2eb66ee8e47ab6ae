//! Accounts and sessions: register, log in, refresh, log out, list and
//! revoke sessions, and the `Authed` extractor every other route uses.
//!
//! A session is a row in the store holding the hash of its current refresh
//! token. The refresh token the client holds is `<session id>.<secret>`;
//! each refresh rotates the secret atomically, and a refresh token used
//! twice (a stolen copy racing its owner) ends the session. Access tokens
//! are short-lived JWTs naming the session, and the session must still
//! exist for one to be honoured, so revoking a session takes effect at once.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use spaces_auth::{Claims, TokenError};
use spaces_protocol::UserId;
use spaces_protocol::ids::validate_localpart;
use spaces_protocol::text::TextKind;
use spaces_store::{Account, InviteToken, Session};

use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, ranges};
use crate::config::RegistrationMode;
use crate::engine::now_ms;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: UserId,
    pub username: String,
    pub session_id: String,
    pub admin: bool,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Authed, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("missing_token", "send Authorization: Bearer <access token>")
            })?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| &header[7..])
            .ok_or_else(|| {
                ApiError::unauthorized("missing_token", "send Authorization: Bearer <access token>")
            })?;
        authenticate(state, token)
    }
}

/// Checks an access token and that its session is still alive.
pub fn authenticate(state: &AppState, token: &str) -> Result<Authed, ApiError> {
    let claims = state
        .verifier
        .verify(token, now_ms() / 1000, &state.issuer)
        .map_err(|e| match e {
            TokenError::Expired => {
                ApiError::unauthorized("token_expired", "access token expired; refresh it")
            }
            _ => ApiError::unauthorized("bad_token", "access token is not valid here"),
        })?;
    let session = state.store.session(&claims.sid)?;
    let user: UserId = claims
        .sub
        .parse()
        .map_err(|_| ApiError::unauthorized("bad_token", "access token names no user"))?;
    match session {
        Some(s) if s.username == user.localpart() && s.expires_at_ms > now_ms() => {}
        _ => {
            return Err(ApiError::unauthorized(
                "session_revoked",
                "this session has ended; log in again",
            ));
        }
    }
    Ok(Authed {
        username: user.localpart().to_owned(),
        user,
        session_id: claims.sid,
        admin: claims.adm,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    username: String,
    password: String,
    #[serde(default)]
    invite_token: Option<String>,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize)]
pub struct Tokens {
    user_id: String,
    session_id: String,
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
    is_admin: bool,
}

/// Largest device label kept with a session.
const MAX_DEVICE_LEN: usize = 64;

pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Tokens>)> {
    if let Err(wait) = state.registrations.check("register") {
        return Err(too_many(wait));
    }
    let username = req.username.to_lowercase();
    validate_localpart(&username)
        .map_err(|e| ApiError::bad_request("bad_username", e.to_string()))?;
    spaces_auth::check_password_policy(&req.password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    match state.config.registration.mode {
        RegistrationMode::Open => {}
        RegistrationMode::Closed => {
            return Err(ApiError::forbidden(
                "registration_closed",
                "this node does not take sign-ups",
            ));
        }
        RegistrationMode::Invite => {
            // A taken name must not cost the newcomer a use of their token.
            if state.store.account(&username)?.is_some() {
                return Err(ApiError::conflict(
                    "username_taken",
                    "that username is taken",
                ));
            }
            let token = req.invite_token.as_deref().unwrap_or_default();
            if !state.store.consume_invite_token(token, now_ms())? {
                return Err(ApiError::forbidden(
                    "bad_invite_token",
                    "sign-up needs a valid invite token",
                ));
            }
        }
    }
    let password = req.password;
    let hash = state
        .hasher
        .hash(password)
        .await
        .ok_or_else(|| ApiError::internal("the hashing pool stopped"))?
        .map_err(ApiError::internal)?;
    let first = state.store.accounts()?.is_empty();
    let account = Account {
        username: username.clone(),
        password_hash: hash,
        created_at_ms: now_ms(),
        is_admin: first,
        disabled: false,
    };
    match state.store.create_account(&account) {
        Ok(()) => {}
        Err(spaces_store::Error::AlreadyExists) => {
            return Err(ApiError::conflict(
                "username_taken",
                "that username is taken",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(username = %username, admin = first, "account registered");
    let tokens = new_session(&state, &account, req.device)?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<Tokens>> {
    let username = req.username.to_lowercase();
    if let Err(wait) = state.logins.check(&username) {
        return Err(too_many(wait));
    }
    let account = state.store.account(&username)?;
    let phc = account.as_ref().map(|a| a.password_hash.clone());
    let password = req.password;
    let ok = state.hasher.verify(phc, password).await;
    let account = match account {
        Some(account) if ok => account,
        _ => {
            return Err(ApiError::unauthorized(
                "bad_credentials",
                "wrong username or password",
            ));
        }
    };
    if account.disabled {
        return Err(ApiError::forbidden(
            "account_disabled",
            "this account is disabled",
        ));
    }
    Ok(Json(new_session(&state, &account, req.device)?))
}

pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    let bad = || {
        ApiError::unauthorized(
            "bad_refresh_token",
            "refresh token is not valid; log in again",
        )
    };
    let (session_id, _) = req.refresh_token.split_once('.').ok_or_else(bad)?;
    let old_hash = spaces_auth::hash_refresh_token(&req.refresh_token);
    let fresh = spaces_auth::new_refresh_token(&mut rand::rng());
    let now = now_ms();
    let expires = now + state.config.limits.session_days * 86_400_000;
    let new_token = format!("{session_id}.{}", fresh.token);
    let new_hash = spaces_auth::hash_refresh_token(&new_token);
    match state.store.session(session_id)? {
        Some(session) if session.expires_at_ms > now => {}
        Some(_) => {
            // Expired: gone for good, not revived by a late refresh.
            state.store.delete_session(session_id)?;
            return Err(bad());
        }
        None => return Err(bad()),
    }
    let Some(session) = state
        .store
        .rotate_session(session_id, &old_hash, new_hash, now, expires)?
    else {
        // A refresh token used twice means two holders: end the session for both.
        if state.store.delete_session(session_id)? {
            tracing::warn!(
                session = session_id,
                "refresh token reused; session revoked"
            );
        }
        return Err(bad());
    };
    let account = state.store.account(&session.username)?.ok_or_else(bad)?;
    if account.disabled {
        return Err(ApiError::forbidden(
            "account_disabled",
            "this account is disabled",
        ));
    }
    Ok(Json(tokens_for(&state, &account, &session.id, new_token)))
}

pub async fn logout(State(state): State<AppState>, authed: Authed) -> ApiResult<StatusCode> {
    state.store.delete_session(&authed.session_id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct SessionInfo {
    session_id: String,
    device: String,
    created_at_ms: u64,
    last_used_ms: u64,
    expires_at_ms: u64,
    current: bool,
}

pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let sessions = state.store.sessions_of(&authed.username)?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionInfo {
                current: s.id == authed.session_id,
                session_id: s.id,
                device: s.device,
                created_at_ms: s.created_at_ms,
                last_used_ms: s.last_used_ms,
                expires_at_ms: s.expires_at_ms,
            })
            .collect(),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    authed: Authed,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    match state.store.session(&session_id)? {
        Some(s) if s.username == authed.username => {
            state.store.delete_session(&session_id)?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found(
            "unknown_session",
            "no such session of yours",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteTokenRequest {
    /// Absent: 1.
    #[serde(default)]
    uses: Option<u32>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

#[derive(Serialize)]
pub struct InviteTokenResponse {
    token: String,
    uses: u32,
    expires_at_ms: Option<u64>,
}

pub async fn create_invite_token(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<InviteTokenRequest>,
) -> ApiResult<(StatusCode, Json<InviteTokenResponse>)> {
    if !authed.admin {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins create invite tokens",
        ));
    }
    let uses_left = ranges::token_uses(req.uses)?;
    let expires_at_ms = ranges::expiry(now_ms(), req.expires_in_secs)?;
    let token = InviteToken {
        token: spaces_auth::new_invite_token(&mut rand::rng()),
        uses_left,
        expires_at_ms,
        created_by: authed.username,
    };
    state.store.put_invite_token(&token)?;
    Ok((
        StatusCode::CREATED,
        Json(InviteTokenResponse {
            token: token.token,
            uses: token.uses_left,
            expires_at_ms: token.expires_at_ms,
        }),
    ))
}

fn new_session(state: &AppState, account: &Account, device: Option<String>) -> ApiResult<Tokens> {
    let mut rng = rand::rng();
    let session_id = spaces_auth::new_session_id(&mut rng);
    let secret = spaces_auth::new_refresh_token(&mut rng);
    let refresh_token = format!("{session_id}.{}", secret.token);
    let now = now_ms();
    let mut device = device.unwrap_or_else(|| "unnamed device".into());
    // Shown in the session list: a label, so a name's characters only.
    device.retain(|c| !TextKind::Name.refuses(c));
    device.truncate(device.floor_char_boundary(MAX_DEVICE_LEN));
    state.store.put_session(&Session {
        id: session_id.clone(),
        username: account.username.clone(),
        refresh_hash: spaces_auth::hash_refresh_token(&refresh_token),
        device,
        created_at_ms: now,
        last_used_ms: now,
        expires_at_ms: now + state.config.limits.session_days * 86_400_000,
    })?;
    Ok(tokens_for(state, account, &session_id, refresh_token))
}

fn tokens_for(
    state: &AppState,
    account: &Account,
    session_id: &str,
    refresh_token: String,
) -> Tokens {
    let now_s = now_ms() / 1000;
    let user_id = UserId::new(&account.username, state.engine.node_id())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let claims = Claims {
        iss: state.issuer.clone(),
        sub: user_id.clone(),
        sid: session_id.to_owned(),
        iat: now_s,
        exp: now_s + state.config.limits.access_token_secs,
        adm: account.is_admin,
    };
    Tokens {
        user_id,
        session_id: session_id.to_owned(),
        access_token: state.tokens.issue(&claims),
        token_type: "Bearer",
        expires_in: state.config.limits.access_token_secs,
        refresh_token,
        is_admin: account.is_admin,
    }
}

pub fn too_many(wait_secs: f64) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("slow down; retry in {:.1} s", wait_secs.max(0.1)),
    );
    error.retry_after = Some(wait_secs.ceil().max(1.0) as u64);
    error
}
