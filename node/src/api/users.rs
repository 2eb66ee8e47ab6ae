//! User search: `GET /api/v1/users?q=`, to start a direct message or an
//! invitation without knowing a username exactly.
//!
//! Users of this node are found by the start of their username or by
//! their display name; a user of another node only by their full id (this
//! node has no directory of other nodes' users). Bounded: a query is at
//! most [`MAX_QUERY`] bytes, answers at most [`MAX_LIMIT`] users and reads
//! at most [`MAX_SCANNED`] profiles; it counts against the caller's search
//! rate limit.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::UserId;

use super::error::{ApiError, ApiResult, Json, Query};
use super::{AppState, Authed};
use crate::services::on_disk;

/// Longest query, in bytes.
pub const MAX_QUERY: usize = 100;
/// Most users in one answer; the default is 10.
pub const MAX_LIMIT: usize = 20;
/// Profiles read at most when matching display names: a query costs the
/// same on a node of a million accounts as on one of ten thousand.
pub const MAX_SCANNED: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    q: String,
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn search(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<UsersQuery>,
) -> ApiResult<Json<Value>> {
    state
        .searches
        .check(&authed.username)
        .map_err(super::session::too_many)?;
    let q = query.q.trim().to_owned();
    if q.is_empty() || q.len() > MAX_QUERY {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("q must be 1 to {MAX_QUERY} bytes"),
        ));
    }
    let limit = match query.limit {
        None => 10,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_value",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
    };
    // A full user id: that user, if it can exist.
    if q.starts_with('@') && q.contains(':') {
        let Ok(user) = q.parse::<UserId>() else {
            return Ok(Json(json!({ "users": [] })));
        };
        if !state.engine.is_local(&user) {
            return Ok(Json(json!({ "users": [
                { "user_id": user.to_string(), "display_name": null, "local": false }
            ] })));
        }
        let localpart = user.localpart().to_owned();
        let found = on_disk(&state.store, move |store| {
            match store.account(&localpart)? {
                Some(account) if !account.disabled => Ok(Some((
                    account.username.clone(),
                    store.profile(&account.username)?,
                ))),
                _ => Ok(None),
            }
        })
        .await?;
        let users: Vec<Value> = found
            .into_iter()
            .map(|(username, profile)| local_user(&state, &username, profile.display_name))
            .collect::<ApiResult<_>>()?;
        return Ok(Json(json!({ "users": users })));
    }
    let wanted = q.trim_start_matches('@').to_owned();
    let found = on_disk(&state.store, move |store| {
        store.find_users(&wanted, limit, MAX_SCANNED)
    })
    .await?;
    let users: Vec<Value> = found
        .into_iter()
        .map(|f| local_user(&state, &f.username, f.display_name))
        .collect::<ApiResult<_>>()?;
    Ok(Json(json!({ "users": users })))
}

fn local_user(state: &AppState, username: &str, display_name: Option<String>) -> ApiResult<Value> {
    let user = UserId::new(username, state.engine.node_id()).map_err(ApiError::internal)?;
    Ok(json!({ "user_id": user.to_string(), "display_name": display_name, "local": true }))
}
