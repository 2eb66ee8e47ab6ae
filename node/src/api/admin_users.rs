//! Account administration: node roles (admin, moderator), suspending,
//! reactivating and deactivating accounts, and resetting a password. Admins do everything;
//! moderators list accounts and suspend or reactivate plain users. The
//! caller's role is read from their account on every request (not from
//! the session, which records it only at issue), so a demotion applies at
//! once. Nobody acts on their own account here.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use spaces_protocol::UserId;
use spaces_protocol::ids::validate_localpart;
use spaces_store::Account;

use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, Authed};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Moderator,
    Admin,
}

fn role_of(account: &Account) -> Role {
    if account.is_admin {
        Role::Admin
    } else if account.moderator {
        Role::Moderator
    } else {
        Role::User
    }
}

#[derive(Serialize)]
pub struct UserInfo {
    user_id: String,
    username: String,
    role: Role,
    /// `active`, `suspended` or `deactivated`.
    status: &'static str,
    created_at_ms: u64,
}

fn info(state: &AppState, account: Account) -> UserInfo {
    let user_id = UserId::new(&account.username, state.engine.node_id())
        .map(|u| u.to_string())
        .unwrap_or_default();
    UserInfo {
        user_id,
        role: role_of(&account),
        status: if account.disabled {
            "deactivated"
        } else if account.suspended {
            "suspended"
        } else {
            "active"
        },
        created_at_ms: account.created_at_ms,
        username: account.username,
    }
}

/// The caller's role now; 403 for plain users.
fn staff(state: &AppState, authed: &Authed) -> ApiResult<Role> {
    let role = state
        .store
        .account(&authed.username)?
        .filter(Account::may_sign_in)
        .map_or(Role::User, |a| role_of(&a));
    if role == Role::User {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins and moderators may do this",
        ));
    }
    Ok(role)
}

/// The target account, which the caller (of `role`) may act on.
fn target(state: &AppState, authed: &Authed, role: Role, username: &str) -> ApiResult<Account> {
    let username = username.to_lowercase();
    let unknown = || ApiError::not_found("unknown_user", "no account with this username here");
    if validate_localpart(&username).is_err() {
        return Err(unknown());
    }
    let account = state.store.account(&username)?.ok_or_else(unknown)?;
    if account.username == authed.username.to_lowercase() {
        return Err(ApiError::forbidden(
            "own_account",
            "you cannot do this to your own account",
        ));
    }
    if role != Role::Admin && role_of(&account) != Role::User {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins may act on admins and moderators",
        ));
    }
    Ok(account)
}

fn admin_only(role: Role) -> ApiResult<()> {
    if role != Role::Admin {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins may do this",
        ));
    }
    Ok(())
}

pub async fn list(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Vec<UserInfo>>> {
    staff(&state, &authed)?;
    let accounts = state.store.accounts()?;
    Ok(Json(
        accounts.into_iter().map(|a| info(&state, a)).collect(),
    ))
}

pub async fn suspend(
    State(state): State<AppState>,
    authed: Authed,
    Path(username): Path<String>,
) -> ApiResult<Json<UserInfo>> {
    let role = staff(&state, &authed)?;
    let account = target(&state, &authed, role, &username)?;
    let account = state.accounts.suspend(account.username).await?;
    tracing::info!(by = %authed.username, username = %account.username, "suspension by an operator");
    Ok(Json(info(&state, account)))
}

pub async fn reactivate(
    State(state): State<AppState>,
    authed: Authed,
    Path(username): Path<String>,
) -> ApiResult<Json<UserInfo>> {
    let role = staff(&state, &authed)?;
    let account = target(&state, &authed, role, &username)?;
    if account.disabled {
        return Err(ApiError::conflict(
            "account_deactivated",
            "a deactivated account cannot be reactivated",
        ));
    }
    let account = state.accounts.reactivate(account.username).await?;
    Ok(Json(info(&state, account)))
}

pub async fn deactivate(
    State(state): State<AppState>,
    authed: Authed,
    Path(username): Path<String>,
) -> ApiResult<Json<UserInfo>> {
    let role = staff(&state, &authed)?;
    admin_only(role)?;
    let account = target(&state, &authed, role, &username)?;
    let account = state.accounts.deactivate(account.username).await?;
    Ok(Json(info(&state, account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    role: Role,
}

pub async fn set_role(
    State(state): State<AppState>,
    authed: Authed,
    Path(username): Path<String>,
    Json(req): Json<RoleRequest>,
) -> ApiResult<Json<UserInfo>> {
    let role = staff(&state, &authed)?;
    admin_only(role)?;
    let account = target(&state, &authed, role, &username)?;
    let account = state
        .accounts
        .set_role(
            account.username,
            req.role == Role::Admin,
            req.role == Role::Moderator,
        )
        .await?;
    Ok(Json(info(&state, account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    password: String,
}

/// Sets a new password for an account (admins only; the node's password
/// policy applies) and ends every session of it.
pub async fn reset_password(
    State(state): State<AppState>,
    authed: Authed,
    Path(username): Path<String>,
    Json(req): Json<PasswordRequest>,
) -> ApiResult<Json<UserInfo>> {
    let role = staff(&state, &authed)?;
    admin_only(role)?;
    let account = target(&state, &authed, role, &username)?;
    spaces_auth::check_password_policy(&req.password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let hash = state
        .hasher
        .hash(req.password)
        .await
        .ok_or_else(|| ApiError::internal("the hashing pool stopped"))?
        .map_err(ApiError::internal)?;
    let account = state
        .accounts
        .reset_password(account.username, hash)
        .await?;
    tracing::info!(by = %authed.username, username = %account.username, "password reset by an operator");
    Ok(Json(info(&state, account)))
}
