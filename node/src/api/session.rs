//! Accounts and sessions: register, log in, refresh, log out, list and
//! revoke sessions, and the `Authed` extractor every other route uses.
//!
//! A session is a row in the store holding the hash of its current refresh
//! token. The refresh token the client holds is `<session id>.<secret>`;
//! each refresh rotates the secret atomically, and a refresh token used
//! twice (a stolen copy racing its owner) ends the session. Only a token the
//! session really issued counts as used twice (the store keeps the hashes of
//! its last few); a made-up secret after a known session id is just refused,
//! so the session id, readable in every access token, is no weapon. Access
//! tokens are opaque too, `a1.<session id>.<secret>`: the session record
//! keeps the hashes and expiries of its newest two, so a token is honoured
//! only while its session exists, and ending a session takes effect at once
//! (open WebSockets hear of it through `Accounts::subscribe_ended`).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use spaces_protocol::UserId;
use spaces_protocol::ids::validate_localpart;
use spaces_protocol::text::TextKind;
use spaces_store::{AccessGrant, Account, InviteToken, Renewal, Rotation, Session, SignInMethod};

use std::time::Instant;

use spaces_auth::DeviceId;

use super::client::ClientAddr;
use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, ranges};
use crate::config::RegistrationMode;
use crate::engine::now_ms;
use crate::signin::{self, Trust};

/// The client's `User-Agent`, kept with a session it starts so its owner
/// can tell their sessions apart: a name's characters only, shortened.
#[derive(Clone, Debug, Default)]
pub struct UserAgent(pub String);

/// Longest user agent kept with a session.
const MAX_USER_AGENT_LEN: usize = 256;

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<UserAgent, Self::Rejection> {
        let mut agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        agent.retain(|c| !TextKind::Name.refuses(c));
        agent.truncate(agent.floor_char_boundary(MAX_USER_AGENT_LEN));
        Ok(UserAgent(agent))
    }
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: UserId,
    pub username: String,
    pub session_id: String,
    pub admin: bool,
    /// What a third-party OAuth client's token may do; `None` for a
    /// first-party session, which may do everything its user may.
    pub scopes: Option<spaces_oidc::Scopes>,
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
        let authed = authenticate(state, token)?;
        if let Some(scopes) = authed.scopes {
            super::scopes::check(&parts.method, parts.uri.path(), scopes)?;
        }
        Ok(authed)
    }
}

/// Checks an access token against its session's record: the session is
/// alive, the token one of its grants (compared in constant time), unexpired.
pub fn authenticate(state: &AppState, token: &str) -> Result<Authed, ApiError> {
    let bad_token = || ApiError::unauthorized("bad_token", "access token is not valid here");
    let revoked =
        || ApiError::unauthorized("session_revoked", "this session has ended; log in again");
    let presented = spaces_auth::parse_access_token(token).ok_or_else(bad_token)?;
    let now = now_ms();
    let Some(session) = state.store.session(presented.session_id)? else {
        // Deleted here while its tokens were live, or never ours: only the
        // first is worth telling apart, so the client stops refreshing.
        return Err(if state.store.session_ended(presented.session_id, now)? {
            revoked()
        } else {
            bad_token()
        });
    };
    if session.expires_at_ms <= now {
        return Err(revoked());
    }
    let grant = session
        .access_grant(&presented.hash)
        .ok_or_else(bad_token)?;
    if grant.expires_at_ms <= now {
        return Err(ApiError::unauthorized(
            "token_expired",
            "access token expired; refresh it",
        ));
    }
    let user = UserId::new(&session.username, state.engine.node_id())
        .map_err(|_| ApiError::internal("a session names an invalid username"))?;
    Ok(Authed {
        user,
        username: session.username,
        session_id: session.id,
        admin: session.admin,
        scopes: session
            .oauth
            .map(|grant| spaces_oidc::Scopes::from_bits(grant.scopes)),
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
    /// The `device_token` of an earlier sign-in to this account, if the
    /// client kept it: lets it past the account's back-off.
    #[serde(default)]
    device_token: Option<String>,
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
    pub(super) access_token: String,
    token_type: &'static str,
    pub(super) expires_in: u64,
    pub(super) refresh_token: String,
    is_admin: bool,
    /// Proof of this sign-in for later ones (register and login only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// Largest device label kept with a session.
const MAX_DEVICE_LEN: usize = 64;

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user_agent: UserAgent,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Tokens>)> {
    // Per address first, so that one address spends only its own budget;
    // the node-wide ceiling then bounds what many addresses can do together.
    let source = signin::source_of(client).to_string();
    if let Err(wait) = state.registrations_per_ip.check(&source) {
        state.metrics.registrations_throttled.add(1);
        return Err(too_many(wait));
    }
    if let Err(wait) = state.registrations.check("register") {
        state.registrations_per_ip.refund(&source);
        state.metrics.registrations_throttled.add(1);
        return Err(too_many(wait));
    }
    let username = req.username.to_lowercase();
    validate_localpart(&username)
        .map_err(|e| ApiError::bad_request("bad_username", e.to_string()))?;
    spaces_auth::check_password_policy(&req.password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    match registration_mode(&state)? {
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
            let token = req.invite_token.clone().unwrap_or_default();
            if !state.accounts.consume_invite_token(token, now_ms()).await? {
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
    let account = Account {
        username: username.clone(),
        password_hash: hash,
        created_at_ms: now_ms(),
        // The node's first account is its admin: decided by the store.
        is_admin: false,
        disabled: false,
        moderator: false,
        suspended: false,
    };
    let account = match state.accounts.register(account).await {
        Ok(account) => account,
        Err(spaces_store::Error::AlreadyExists) => {
            return Err(ApiError::conflict(
                "username_taken",
                "that username is taken",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(username = %username, admin = account.is_admin, "account registered");
    let mut tokens = new_session(
        &state,
        &account,
        req.device,
        SignInMethod::Password,
        user_agent,
    )
    .await?;
    tokens.device_token = Some(device_token(&state, &username, None));
    Ok((StatusCode::CREATED, Json(tokens)))
}

/// The answer to a right password when the account also needs a passkey:
/// finish with `POST /api/v1/auth/passkey/finish`.
#[derive(Serialize)]
pub struct PasskeyRequired {
    passkey_required: bool,
    ceremony_id: String,
    options: spaces_passkey::RequestChallengeResponse,
}

/// Signs in. Throttled by `crate::signin`: per address, per (address,
/// username) and per account, with known devices let past the last two.
/// An account whose policy asks for a passkey after the password gets 202
/// and a second-factor ceremony instead of tokens.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    user_agent: UserAgent,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let bad_credentials =
        || ApiError::unauthorized("bad_credentials", "wrong username or password");
    let username = req.username.to_lowercase();
    // No account can have such a name, and the rule is public: refusing at
    // once tells nothing, and keeps unbounded strings out of the guard's tables.
    if validate_localpart(&username).is_err() {
        return Err(bad_credentials());
    }
    let max_age_s = state.config.login.device_token_days.saturating_mul(86_400);
    let known_device = req.device_token.as_deref().and_then(|token| {
        state
            .device_key
            .verify(token, &username, now_ms() / 1000, max_age_s)
    });
    let trust = known_device.map_or(Trust::Unknown, Trust::KnownDevice);
    let attempt = match state.signin.begin(client, &username, trust, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            state.metrics.login_throttled.add(1);
            return Err(too_many(wait.as_secs_f64()));
        }
    };
    let account = state.store.account(&username)?;
    let phc = account.as_ref().map(|a| a.password_hash.clone());
    let password = req.password;
    let ok = state.hasher.verify(phc, password).await;
    state
        .signin
        .finish(attempt, ok, Instant::now(), &state.metrics);
    let account = match account {
        Some(account) if ok => account,
        _ => return Err(bad_credentials()),
    };
    may_sign_in(&account)?;
    if let Some((ceremony_id, options)) = state
        .passkeys
        .second_factor(&username, &signin::source_of(client).to_string())?
    {
        return Ok((
            StatusCode::ACCEPTED,
            Json(PasskeyRequired {
                passkey_required: true,
                ceremony_id,
                options,
            }),
        )
            .into_response());
    }
    let mut tokens = new_session(
        &state,
        &account,
        req.device,
        SignInMethod::Password,
        user_agent,
    )
    .await?;
    tokens.device_token = Some(device_token(&state, &username, known_device));
    Ok(Json(tokens).into_response())
}

/// A device token for `username`: for the device that presented `known`, or
/// for a new device.
pub fn device_token(state: &AppState, username: &str, known: Option<DeviceId>) -> String {
    let device_id = known.unwrap_or_else(|| spaces_auth::new_device_id(&mut rand::rng()));
    state
        .device_key
        .issue(username, &device_id, now_ms() / 1000)
}

pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    Ok(Json(rotate(&state, &req.refresh_token, None).await?.0))
}

/// Rotates a session's refresh token (`refresh_token`): a first-party
/// session's when `client` is `None`, else one held by that OAuth client
/// (a token of another client, or of a first-party session, is refused
/// alike). A token the session issued before ends it. Answers the new
/// tokens and the session's OAuth scopes.
pub(super) async fn rotate(
    state: &AppState,
    refresh_token: &str,
    client: Option<&str>,
) -> ApiResult<(Tokens, Option<spaces_oidc::Scopes>)> {
    let req = RefreshRequest {
        refresh_token: refresh_token.to_owned(),
    };
    let bad = || {
        ApiError::unauthorized(
            "bad_refresh_token",
            "refresh token is not valid; log in again",
        )
    };
    let (session_id, _) = req.refresh_token.split_once('.').ok_or_else(bad)?;
    let old_hash = spaces_auth::hash_refresh_token(&req.refresh_token);
    let now = now_ms();
    let (username, oauth) = match state.store.session(session_id)? {
        Some(session) if session.oauth.as_ref().map(|grant| grant.client_id.as_str()) != client => {
            return Err(bad());
        }
        Some(session) if session.expires_at_ms > now => (session.username, session.oauth),
        Some(_) => {
            // Expired: gone for good, not revived by a late refresh.
            state.accounts.delete_session(session_id.into()).await?;
            return Err(bad());
        }
        None => return Err(bad()),
    };
    let state = state.clone();
    // Read before the rotation, whose access grant records the admin flag.
    let account = state.store.account(&username)?.ok_or_else(bad)?;
    may_sign_in(&account)?;
    let issued = Issued::new(&state, session_id);
    let renewal = Renewal {
        refresh_hash: issued.refresh_hash,
        access: issued.access,
        admin: account.is_admin,
        now_ms: now,
        expires_at_ms: now + state.config.limits.session_days * 86_400_000,
    };
    match state
        .accounts
        .rotate_session(session_id.into(), old_hash, renewal)
        .await?
    {
        Rotation::Rotated(_) => {}
        Rotation::Reused => {
            // A refresh token this session issued before, used again: two holders (a stolen
            // copy racing its owner). End the session for both.
            if state.accounts.delete_session(session_id.into()).await? {
                tracing::warn!(
                    session = session_id,
                    "refresh token reused; session revoked"
                );
            }
            return Err(bad());
        }
        // Not a token of this session: a guess or a forgery naming someone's session id,
        // which is no one's proof of anything. Refused; the session is untouched.
        Rotation::Unknown => return Err(bad()),
    }
    let scopes = oauth.map(|grant| spaces_oidc::Scopes::from_bits(grant.scopes));
    Ok((tokens_for(&state, &account, session_id, issued), scopes))
}

pub async fn logout(State(state): State<AppState>, authed: Authed) -> ApiResult<StatusCode> {
    state.accounts.delete_session(authed.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct SessionInfo {
    session_id: String,
    device: String,
    /// How it began: `password`, `passkey`, `password_and_passkey`, or
    /// `unknown` for sessions older than the record of it.
    method: &'static str,
    user_agent: String,
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
                method: s.method.as_str(),
                user_agent: s.user_agent,
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
            state.accounts.delete_session(session_id).await?;
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
    state.accounts.put_invite_token(token.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteTokenResponse {
            token: token.token,
            uses: token.uses_left,
            expires_at_ms: token.expires_at_ms,
        }),
    ))
}

pub async fn new_session(
    state: &AppState,
    account: &Account,
    device: Option<String>,
    method: SignInMethod,
    user_agent: UserAgent,
) -> ApiResult<Tokens> {
    let session_id = spaces_auth::new_session_id(&mut rand::rng());
    new_session_with(state, account, device, method, user_agent, session_id, None).await
}

/// [`new_session`] with a chosen id, for an OAuth client when `oauth` is
/// set (its code names the session before it exists).
pub(super) async fn new_session_with(
    state: &AppState,
    account: &Account,
    device: Option<String>,
    method: SignInMethod,
    UserAgent(user_agent): UserAgent,
    session_id: String,
    oauth: Option<spaces_store::OAuthGrant>,
) -> ApiResult<Tokens> {
    let issued = Issued::new(state, &session_id);
    let now = now_ms();
    let mut device = device.unwrap_or_else(|| "unnamed device".into());
    // Shown in the session list: a label, so a name's characters only.
    device.retain(|c| !TextKind::Name.refuses(c));
    device.truncate(device.floor_char_boundary(MAX_DEVICE_LEN));
    state
        .accounts
        .put_session(Session {
            id: session_id.clone(),
            username: account.username.clone(),
            refresh_hash: issued.refresh_hash,
            device,
            created_at_ms: now,
            last_used_ms: now,
            expires_at_ms: now + state.config.limits.session_days * 86_400_000,
            previous_hashes: Vec::new(),
            access: vec![issued.access],
            admin: account.is_admin,
            method,
            user_agent,
            oauth,
        })
        .await?;
    // A suspension between the caller's check and this session's write
    // would miss it (the suspension ends the sessions it finds): checked
    // again now that the session is stored, and ended if it lost the race.
    let now_account = state.store.account(&account.username)?;
    if let Err(refused) = now_account.as_ref().map_or(Ok(()), may_sign_in) {
        state.accounts.delete_session(session_id).await?;
        return Err(refused);
    }
    Ok(tokens_for(state, account, &session_id, issued))
}

/// A fresh refresh token and access token for a session, with what its
/// record keeps of them. No `Debug`: it holds the secrets.
struct Issued {
    refresh_token: String,
    refresh_hash: [u8; 32],
    access_token: String,
    access: AccessGrant,
}

impl Issued {
    fn new(state: &AppState, session_id: &str) -> Issued {
        let mut rng = rand::rng();
        let refresh = spaces_auth::new_refresh_token(&mut rng);
        let refresh_token = format!("{session_id}.{}", refresh.token);
        let access = spaces_auth::new_access_token(session_id, &mut rng);
        Issued {
            refresh_hash: spaces_auth::hash_refresh_token(&refresh_token),
            refresh_token,
            access_token: access.token,
            access: AccessGrant {
                hash: access.hash,
                expires_at_ms: now_ms() + state.config.limits.access_token_secs * 1000,
            },
        }
    }
}

fn tokens_for(state: &AppState, account: &Account, session_id: &str, issued: Issued) -> Tokens {
    let user_id = UserId::new(&account.username, state.engine.node_id())
        .map(|u| u.to_string())
        .unwrap_or_default();
    Tokens {
        user_id,
        session_id: session_id.to_owned(),
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: state.config.limits.access_token_secs,
        refresh_token: issued.refresh_token,
        is_admin: account.is_admin,
        device_token: None,
    }
}

/// Refuses a deactivated or suspended account: no sign-in, refresh or new
/// session by any method.
pub fn may_sign_in(account: &Account) -> ApiResult<()> {
    if account.disabled {
        return Err(ApiError::forbidden(
            "account_disabled",
            "this account is disabled",
        ));
    }
    if account.suspended {
        return Err(ApiError::forbidden(
            "account_suspended",
            "this account is suspended; ask the node's admins",
        ));
    }
    Ok(())
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

/// How people sign up now: the mode an admin set at run time, else the
/// config's. A stored name this build does not know counts as unset
/// (logged).
pub(super) fn registration_mode(state: &AppState) -> ApiResult<RegistrationMode> {
    let configured = state.config.registration.mode;
    Ok(match state.accounts.registration_override()? {
        None => configured,
        Some(stored) => mode_from_name(&stored).unwrap_or_else(|| {
            tracing::warn!(stored = %stored, "unknown stored registration mode; using the config's");
            configured
        }),
    })
}

/// A registration mode as the API and the store write it.
pub(super) fn mode_name(mode: RegistrationMode) -> &'static str {
    match mode {
        RegistrationMode::Open => "open",
        RegistrationMode::Invite => "invite",
        RegistrationMode::Closed => "closed",
    }
}

pub(super) fn mode_from_name(name: &str) -> Option<RegistrationMode> {
    match name {
        "open" => Some(RegistrationMode::Open),
        "invite" => Some(RegistrationMode::Invite),
        "closed" => Some(RegistrationMode::Closed),
        _ => None,
    }
}
