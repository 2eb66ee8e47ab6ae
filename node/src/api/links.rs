//! Invite links: a member with the `invite` permission mints a code; anyone
//! logged in to this node who has it can join the room, private or not.
//!
//! A link is a node-local capability, not a protocol object. Redeeming one
//! makes the link's creator invite the redeemer (a protocol `member` event
//! the auth rules check as of now: a creator who lost `invite`, or a banned
//! redeemer, is refused), then the redeemer joins. So a link can never do
//! more than its creator could do by hand at redemption time.
//!
//! Links are kept in the store's metadata under `invite_link/<code>`; a
//! mutex serialises redemptions so a link's use count is never exceeded.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use spaces_protocol::content::{Content, JoinRule, Member, Membership};
use spaces_protocol::{Permissions, RoomId, UserId};

use super::error::{ApiError, ApiResult, Json, Path};
use super::rooms::{parse_room, rate};
use super::{AppState, Authed, ranges, render};
use crate::engine::{Engine, now_ms};
use spaces_store::Store;

#[derive(Serialize, Deserialize, Debug, Clone)]
struct Link {
    room_id: String,
    creator: String,
    uses_left: u32,
    expires_at_ms: Option<u64>,
}

fn key(code: &str) -> String {
    format!("invite_link/{code}")
}

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
    {
        let slot = state.engine.room(&room_id)?;
        let view = slot.lock().await;
        super::messages::readable(&view, &authed)?;
        let room_state = view.room.state();
        if !room_state.is_joined(&authed.user) {
            return Err(ApiError::forbidden(
                "not_member",
                "you are not in this room",
            ));
        }
        if !room_state
            .permissions(&authed.user)
            .contains(Permissions::INVITE)
        {
            return Err(ApiError::forbidden(
                "missing_permission",
                "you may not invite to this room",
            ));
        }
    }
    let code = spaces_auth::new_invite_token(&mut rand::rng());
    let link = Link {
        room_id: room_id.to_string(),
        creator: authed.user.to_string(),
        uses_left,
        expires_at_ms,
    };
    let bytes = serde_json::to_vec(&link).map_err(ApiError::internal)?;
    state.store.put_meta(&key(&code), &bytes)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "code": code, "path": format!("/join/{code}"), "room_id": link.room_id,
            "uses_left": link.uses_left, "expires_at_ms": link.expires_at_ms,
        })),
    ))
}

/// Codes are base64url: anything else cannot be one (and stays out of keys).
pub(crate) fn is_code_shaped(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn unknown_link() -> ApiError {
    ApiError::not_found(
        "unknown_invite_link",
        "this invite link does not exist or has run out",
    )
}

/// A live link, or why not.
fn load(store: &Store, code: &str) -> ApiResult<Link> {
    let gone = unknown_link;
    if !is_code_shaped(code) {
        return Err(gone());
    }
    let bytes = store.meta(&key(code))?.ok_or_else(gone)?;
    let link: Link = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    if link.uses_left == 0 || link.expires_at_ms.is_some_and(|t| t <= now_ms()) {
        return Err(gone());
    }
    Ok(link)
}

fn ids(link: &Link) -> ApiResult<(RoomId, UserId)> {
    let room_id = link.room_id.parse().map_err(ApiError::internal)?;
    let creator = link.creator.parse().map_err(ApiError::internal)?;
    Ok((room_id, creator))
}

/// What a link leads to, for the page that offers to join.
pub async fn preview(
    State(state): State<AppState>,
    _authed: Authed,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let link = load(&state.store, &code)?;
    let (room_id, creator) = ids(&link)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let room_state = view.room.state();
    Ok(Json(json!({
        "room_id": link.room_id,
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
    let room_id = admit(
        &state.engine,
        &state.store,
        &state.link_redemptions,
        &code,
        &authed.user,
        None,
    )
    .await?;
    let join = Content::Member(Member {
        target: authed.user.clone(),
        membership: Membership::Join,
        reason: None,
    });
    let event = state.engine.send(&authed.user, &room_id, join).await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

/// Lets `user` (of this node or another) into a link's room: the link's
/// creator invites them, unless the room is public or they are invited
/// already, and one use is spent. The user then joins through their own
/// node. `lock` serialises admissions so a link's uses are never exceeded.
pub(crate) async fn admit(
    engine: &Engine,
    store: &Store,
    lock: &tokio::sync::Mutex<()>,
    code: &str,
    user: &UserId,
    for_room: Option<RoomId>,
) -> ApiResult<RoomId> {
    let _one_at_a_time = lock.lock().await;
    let mut link = load(store, code)?;
    let (room_id, creator) = ids(&link)?;
    if for_room.is_some_and(|r| r != room_id) {
        // Nothing spent: a link opens only its own room.
        return Err(unknown_link());
    }
    let (join_rule, membership) = {
        let slot = engine.room(&room_id)?;
        let view = slot.lock().await;
        let room_state = view.room.state();
        (room_state.join_rule(), room_state.membership(user))
    };
    if membership == Some(Membership::Join) {
        return Err(ApiError::forbidden(
            "no_change",
            "you are already in this room",
        ));
    }
    if join_rule != JoinRule::Public && membership != Some(Membership::Invite) {
        let invite = Content::Member(Member {
            target: user.clone(),
            membership: Membership::Invite,
            reason: None,
        });
        engine.send(&creator, &room_id, invite).await?;
    }
    link.uses_left -= 1;
    let bytes = serde_json::to_vec(&link).map_err(ApiError::internal)?;
    store.put_meta(&key(code), &bytes)?;
    Ok(room_id)
}
