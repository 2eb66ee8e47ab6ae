//! Moderation endpoints: scoring a line with the node's default thresholds
//! (admins and the node's moderators, to try lines before choosing a room's
//! thresholds), the service's status for admins, a room's review queue and
//! revealing a hidden message (room moderators); and the checks the message
//! endpoints make (a blocked local send, who sees hidden messages).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use spaces_protocol::content::ModerationPolicy;
use spaces_protocol::limits::MAX_BODY_BYTES;
use spaces_protocol::{EventId, Permissions, RoomId, UserId};

use super::error::{ApiError, ApiResult, Json, Path};
use super::rooms::parse_room;
use super::{AppState, Authed, render};
use crate::services::moderation::{ModerationError, Resolved, Status};

impl From<ModerationError> for ApiError {
    fn from(e: ModerationError) -> ApiError {
        match e {
            ModerationError::Off => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "moderation_off",
                "moderation is turned off on this node",
            ),
            ModerationError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "moderation_unavailable",
                "moderation is unavailable: this node has no ONNX Runtime library (see GET /api/v1/admin/moderation)",
            ),
            ModerationError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "moderation_busy",
                "moderation is busy; try again",
            ),
            ModerationError::Failed(cause) => ApiError::internal(cause),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    text: String,
}

/// `{"scores": {label: p}, "flagged": bool, "labels": [...]}`.
pub async fn score(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<ScoreBody>,
) -> ApiResult<Json<Value>> {
    // Node moderators are those of the admin API (an account's role) and
    // those `moderation.moderators` names.
    let node_moderator = state
        .store
        .account(&authed.username)?
        .is_some_and(|a| a.moderator && a.may_sign_in());
    if !authed.admin && !node_moderator && !state.moderation.is_moderator(&authed.username) {
        return Err(ApiError::forbidden(
            "not_moderator",
            "only node admins and moderators score text",
        ));
    }
    if req.text.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("text is longer than a message may be ({MAX_BODY_BYTES} bytes)"),
        ));
    }
    let verdict = state.moderation.score(&req.text).await?;
    let scores: Map<String, Value> = verdict
        .scores
        .iter()
        .map(|(label, p)| (label.name().to_owned(), json!(round(p))))
        .collect();
    Ok(Json(json!({
        "scores": scores,
        "flagged": !verdict.labels.is_empty(),
        "labels": verdict.labels.iter().map(|l| l.name()).collect::<Vec<_>>(),
    })))
}

/// Four decimals: enough to choose a threshold, and stable across runs.
fn round(p: f32) -> f64 {
    (f64::from(p) * 10_000.0).round() / 10_000.0
}

/// The service's state, its library or where it looked, and the node's
/// default thresholds. Admins only.
pub async fn status(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    if !authed.admin {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins see the moderation service",
        ));
    }
    Ok(Json(render_status(&state.moderation.status())))
}

pub fn render_status(status: &Status) -> Value {
    let thresholds: Map<String, Value> = spaces_moderation::LABELS
        .iter()
        .map(|l| (l.name().to_owned(), json!(round(status.thresholds.get(*l)))))
        .collect();
    json!({
        "state": status.state,
        "library": status.library.as_ref().map(|p| p.display().to_string()),
        "looked": status.looked.iter().map(|(path, why)| json!({
            "path": path.display().to_string(),
            "error": why,
        })).collect::<Vec<_>>(),
        "thresholds": thresholds,
        "threads": status.threads,
    })
}

/// The room's policy if it blocks anything and `user` is joined to it: a
/// refusal must not tell a non-member anything about a room (the send is
/// refused for them anyway). Read from the engine's indexes, without the
/// room lock: the send takes that lock once, after.
fn policy_for_member(
    state: &AppState,
    room_id: &RoomId,
    user: &UserId,
) -> Option<std::sync::Arc<ModerationPolicy>> {
    if !state.engine.is_joined_local(user, room_id) {
        return None;
    }
    state.engine.blocking_policy(room_id)
}

/// The room's AutoMod rules, if `user` is joined to it: from the engine's
/// indexes, without the room lock, as the policy.
fn automod_for_member(
    state: &AppState,
    room_id: &RoomId,
    user: &UserId,
) -> Option<std::sync::Arc<spaces_protocol::content::AutoMod>> {
    if !state.engine.is_joined_local(user, room_id) {
        return None;
    }
    state.engine.automod(room_id)
}

/// Refuses a local user's text that the room's AutoMod rules or policy
/// block, before it is
/// signed: 422 `moderation_blocked`, naming the labels.
pub(super) async fn vet(
    state: &AppState,
    room_id: &RoomId,
    user: &UserId,
    text: &str,
    n_mentions: usize,
) -> ApiResult<()> {
    if let Some(rules) = automod_for_member(state, room_id, user)
        && let Some(rule) = state.moderation.automod(*room_id, &rules, text, n_mentions)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "automod_blocked",
            format!("this room's AutoMod refuses the message: {rule}"),
        ));
    }
    let policy = policy_for_member(state, room_id, user);
    state
        .moderation
        .vet_local(policy.as_deref(), text)
        .await
        .map_err(|blocked| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "moderation_blocked",
                format!(
                    "this room's moderation policy blocks the message: {}",
                    blocked.labels.join(", ")
                ),
            )
        })
}

/// Whether `user` moderates the room's messages: a joined member with
/// `manage_messages`, or a joined member who is one of this node's admins
/// or moderators (marks are this node's decisions, so its staff review them
/// in the rooms they are in). They see hidden events in history, the
/// review queue, and may reveal and resolve.
pub(super) async fn is_room_moderator(state: &AppState, room_id: &RoomId, user: &UserId) -> bool {
    let Ok(slot) = state.engine.room(room_id) else {
        return false;
    };
    let (joined, manages) = {
        let view = slot.lock().await;
        let room_state = view.room.state();
        (
            room_state.is_joined(user),
            room_state
                .permissions(user)
                .contains(Permissions::MANAGE_MESSAGES),
        )
    };
    joined && (manages || is_node_staff(state, user))
}

/// A local user who is a node admin or moderator now (their account's
/// role, or `moderation.moderators`).
fn is_node_staff(state: &AppState, user: &UserId) -> bool {
    if !state.engine.is_local(user) {
        return false;
    }
    let username = user.localpart();
    let staff = state
        .store
        .account(username)
        .ok()
        .flatten()
        .is_some_and(|a| (a.is_admin || a.moderator) && a.may_sign_in());
    staff || state.moderation.is_moderator(username)
}

async fn room_moderator(state: &AppState, room_id: &RoomId, user: &UserId) -> ApiResult<()> {
    // One answer for outsiders and members alike who lack the right: the
    // queue's existence is the moderators' business.
    if is_room_moderator(state, room_id, user).await {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_room_moderator",
            "only members with manage_messages moderate this room",
        ))
    }
}

/// This node's review queue of a room, newest first: messages received
/// from other nodes that its moderation flagged or hid, and messages its
/// users reported, each with the message itself. Deleted (redacted)
/// messages are left out: deleting was the moderator's answer. Room
/// moderators only.
pub async fn queue(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    room_moderator(&state, &room_id, &authed.user).await?;
    let marks = state.moderation.marks_of(&room_id);
    let ids: Vec<EventId> = marks.iter().map(|(id, _)| *id).collect();
    let shown = {
        let slot = state.engine.room(&room_id)?;
        let view = slot.lock().await;
        state.engine.show(view, &ids, true).await?
    };
    let items: Vec<Value> = marks
        .into_iter()
        .filter_map(|(event_id, mark)| {
            // A mark whose event is not stored (yet) has nothing to show.
            let shown = shown.iter().find(|s| s.event.id() == event_id)?;
            if shown.notes.as_ref().is_some_and(|n| n.redacted) {
                return None;
            }
            Some(json!({
                "event_id": event_id.to_string(),
                "hidden": mark.hidden && mark.revealed_by.is_none(),
                "flagged": !mark.hidden && !mark.labels.is_empty(),
                "labels": mark.labels,
                "at_ms": mark.at_ms,
                "revealed_by": mark.revealed_by,
                "reported_by": mark.reported_by,
                "event": render::event(&shown.event, shown.notes.as_ref(), &authed.user),
            }))
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Takes a message off the room's review queue once a moderator acted on
/// it. A message still hidden must be revealed or deleted first (409
/// `still_hidden`). Room moderators only.
pub async fn resolve(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room_id = parse_room(&room_id)?;
    let event_id = parse_event_id(&event_id)?;
    room_moderator(&state, &room_id, &authed.user).await?;
    let in_room = state
        .moderation
        .mark(&event_id)
        .is_some_and(|m| m.room_id == room_id.0);
    if !in_room {
        return Err(not_queued());
    }
    match state
        .moderation
        .resolve(event_id)
        .await
        .map_err(ApiError::internal)?
    {
        Resolved::Cleared => Ok(StatusCode::NO_CONTENT),
        Resolved::NotQueued => Err(not_queued()),
        Resolved::StillHidden => Err(ApiError::conflict(
            "still_hidden",
            "this message is hidden: reveal it or delete it",
        )),
    }
}

fn not_queued() -> ApiError {
    ApiError::not_found("not_queued", "this message is not in the review queue")
}

fn parse_event_id(text: &str) -> ApiResult<EventId> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_event_id", format!("{text:?} is not an event id")))
}

/// Reveals a hidden message to the room's members on this node. Room
/// moderators only.
pub async fn reveal(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room_id = parse_room(&room_id)?;
    let event_id: EventId = event_id.parse().map_err(|_| {
        ApiError::bad_request("bad_event_id", format!("{event_id:?} is not an event id"))
    })?;
    room_moderator(&state, &room_id, &authed.user).await?;
    let in_room = state
        .moderation
        .mark(&event_id)
        .is_some_and(|m| m.room_id == room_id.0);
    if !in_room {
        return Err(ApiError::not_found(
            "not_hidden",
            "this message is not hidden here",
        ));
    }
    let revealed = state
        .moderation
        .reveal(event_id, &authed.user)
        .await
        .map_err(ApiError::internal)?;
    if revealed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "not_hidden",
            "this message is not hidden here",
        ))
    }
}

/// Reports a message to the room's moderators on this node. Any user who
/// can read it; reporting twice counts once.
pub async fn report(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let room_id = parse_room(&room_id)?;
    let event_id: EventId = event_id.parse().map_err(|_| {
        ApiError::bad_request("bad_event_id", format!("{event_id:?} is not an event id"))
    })?;
    let readable = state
        .engine
        .readable_events(&authed.user, &[(room_id, event_id)])
        .await;
    if readable.first() != Some(&true) {
        return Err(ApiError::not_found(
            "unknown_event",
            "no such message in this room",
        ));
    }
    state
        .moderation
        .report(room_id, event_id, &authed.user, crate::engine::now_ms())
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
