//! Invite links over HTTP: mint, preview and redeem. The rules live in the
//! links service (`crate::services::links`); this file parses, renders and
//! maps [`LinkError`] to HTTP errors.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Json, Path};
use super::rooms::{parse_room, rate};
use super::{AppState, Authed, ranges, render};
use crate::engine::now_ms;
use crate::services::links::{LinkError, Live};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// How many people may join with it; absent and 0 mean the maximum.
    #[serde(default)]
    uses: Option<u32>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

pub async fn create(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<NewLink>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let uses_left = ranges::link_uses(req.uses)?;
    let expires_at_ms = ranges::expiry(now_ms(), req.expires_in_secs)?;
    let (code, link) = state
        .links
        .create(&authed.user, room_id, uses_left, expires_at_ms)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "code": code, "path": format!("/join/{code}"), "room_id": room_id.to_string(),
            "uses_left": link.uses_left, "expires_at_ms": link.expires_at_ms,
        })),
    ))
}

/// What a link leads to, for the page that offers to join.
pub async fn preview(
    State(state): State<AppState>,
    _authed: Authed,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let Live {
        room_id,
        creator,
        link,
    } = state.links.live(&code)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let room_state = view.room.state();
    Ok(Json(json!({
        "room_id": room_id.to_string(),
        "name": room_state.name(),
        "topic": room_state.topic(),
        "kind": room_state.kind().map(render::room_kind),
        "n_members": room_state.joined().len(),
        "inviter": creator.to_string(),
        "uses_left": link.uses_left,
        "expires_at_ms": link.expires_at_ms,
    })))
}

/// Joins the link's room: the creator invites the redeemer (unless the room
/// is public or they are already invited), then the redeemer joins.
pub async fn redeem(
    State(state): State<AppState>,
    authed: Authed,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    rate(&state, &authed)?;
    let event = state.links.redeem(&code, &authed.user).await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> ApiError {
        match error {
            LinkError::Unknown => ApiError::not_found("unknown_invite_link", error.to_string()),
            LinkError::AlreadyJoined => ApiError::forbidden("no_change", error.to_string()),
            LinkError::TooManyUses => ApiError::bad_request("bad_value", error.to_string()),
            LinkError::Engine(error) => error.into(),
            LinkError::Store(error) => error.into(),
        }
    }
}
