//! Ban-list endpoints: a list room's entries (read like the room itself)
//! and adding or removing one (a `ban_entry` state event; the auth rules
//! ask for the `ban` permission in the list room). Which lists a room
//! follows is a room setting (`PATCH /rooms/{id}`, `ban_lists`); what a
//! node does with them is `services::banlists`; the room API parses the
//! setting and refuses a listed user's join (`rooms.rs`).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::content::{BanEntry, BanTarget, Content, Recommendation};
use spaces_protocol::{NodeId, UserId};

use super::error::{ApiError, ApiResult, Json, Path};
use super::rooms::parse_room;
use super::{AppState, Authed, render};

/// A list's entries, sorted by kind then target.
pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let room_state = view.room.state();
    // As GET /rooms/{id}: a private room does not exist for outsiders.
    super::rooms::visible_to(room_state, &authed.user)?;
    let entries: Vec<Value> = room_state
        .ban_entries()
        .values()
        .map(|entry| render::ban_entry(entry))
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// `user`, `node` or `pattern`.
    kind: String,
    target: String,
    #[serde(default)]
    reason: String,
    /// false removes the entry.
    #[serde(default = "yes")]
    present: bool,
}

fn yes() -> bool {
    true
}

/// Adds, changes or removes one entry: answers the `ban_entry` event.
pub async fn put_entry(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<EntryBody>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let bad = |why: String| ApiError::bad_request("bad_value", why);
    let target = match req.kind.as_str() {
        "user" => BanTarget::User(
            req.target
                .parse::<UserId>()
                .map_err(|e| bad(format!("target: {e}")))?,
        ),
        "node" => BanTarget::Node(
            req.target
                .parse::<NodeId>()
                .map_err(|e| bad(format!("target: {e}")))?,
        ),
        "pattern" => BanTarget::Pattern(req.target),
        _ => return Err(bad("kind: user, node or pattern".into())),
    };
    let content = Content::BanEntry(BanEntry {
        target,
        recommendation: Recommendation::Ban,
        reason: req.reason,
        present: req.present,
    });
    content.check_limits().map_err(|why| bad(why.into()))?;
    let event = state.engine.send(&authed.user, &room_id, content).await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}
