//! The admin console's node endpoints: the node at a glance (registration
//! mode, moderation, storage sizes), the rooms it holds with their size and
//! members, and shutting a room down for this node's users. Node admins
//! only, read from their account on every request (as `admin_users` does),
//! so a demotion applies at once. Member lists, never messages: an admin
//! reads a room's history only as a member of it.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::content::Membership;
use spaces_store::Account;

use super::error::{ApiError, ApiResult, Json, Path};
use super::rooms::parse_room;
use super::session::{mode_from_name, mode_name, registration_mode};
use super::{AppState, Authed, render};
use crate::services::operator;

/// 403 unless the caller's account is a node admin now.
fn admin_now(state: &AppState, authed: &Authed) -> ApiResult<()> {
    let admin = state
        .store
        .account(&authed.username)?
        .is_some_and(|a| a.is_admin && Account::may_sign_in(&a));
    if admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_admin",
            "only node admins may do this",
        ))
    }
}

/// The node at a glance.
pub async fn node(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    admin_now(&state, &authed)?;
    let sizes = operator::storage_sizes(state.config.data_dir.clone()).await;
    let configured = state.config.registration.mode;
    let registration = registration_mode(&state)?;
    Ok(Json(json!({
        "node_id": state.engine.node_id().to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "registration_mode": mode_name(registration),
        "registration_mode_config": mode_name(configured),
        "moderation": state.moderation.status().state,
        "rooms": state.engine.n_rooms(),
        "storage": {
            "store_bytes": sizes.store,
            "search_bytes": sizes.search,
            "blobs_bytes": sizes.blobs,
            "total_bytes": sizes.total,
        },
    })))
}

/// Every room the node holds, largest first.
pub async fn rooms(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    admin_now(&state, &authed)?;
    let rooms: Vec<Value> = operator::rooms(&state.engine)
        .await
        .into_iter()
        .map(|r| {
            json!({
                "room_id": r.room_id.to_string(),
                "name": r.name,
                "public": r.public,
                "events": r.events,
                "joined": r.joined,
                "local_joined": r.local_joined,
                "nodes": r.nodes,
            })
        })
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}

/// A room's members (joined, invited, knocking, banned), whoever asks among
/// the node's admins.
pub async fn members(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin_now(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let room_state = view.room.state();
    let members: Vec<Value> = room_state
        .members()
        .into_iter()
        .filter(|(_, m)| *m != Membership::Leave)
        .map(|(user, membership)| {
            json!({
                "user_id": user.to_string(),
                "membership": render::membership(membership),
                "local": state.engine.is_local(&user),
                "is_owner": room_state.is_owner(&user),
            })
        })
        .collect();
    Ok(Json(json!({ "members": members })))
}

/// Shuts the room down on this node: every local member leaves.
pub async fn shutdown(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin_now(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let left = operator::shutdown_room(&state.engine, &room_id).await?;
    tracing::info!(by = %authed.username, room = %room_id, left, "room shut down by an operator");
    Ok(Json(json!({ "left": left })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    /// `open`, `invite` or `closed`; null goes back to the config's.
    mode: Option<String>,
}

/// Sets how people sign up, at run time and across restarts, in place of
/// `registration.mode`; `null` goes back to the config's.
pub async fn set_registration(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<RegistrationBody>,
) -> ApiResult<Json<Value>> {
    admin_now(&state, &authed)?;
    let mode = req
        .mode
        .as_deref()
        .map(|name| {
            mode_from_name(name).ok_or_else(|| {
                ApiError::bad_request("bad_value", "mode must be open, invite or closed")
            })
        })
        .transpose()?;
    state
        .accounts
        .set_registration_override(mode.map(mode_name))
        .await?;
    let configured = state.config.registration.mode;
    let now = registration_mode(&state)?;
    tracing::info!(by = %authed.username, mode = mode_name(now), "registration mode set by an operator");
    Ok(Json(json!({
        "registration_mode": mode_name(now),
        "registration_mode_config": mode_name(configured),
    })))
}
