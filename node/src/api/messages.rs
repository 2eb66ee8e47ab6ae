//! Messages: send, history both ways, threads, reactions, edits, deletion
//! and read markers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::content::*;
use spaces_protocol::{EphemeralKind, EventId, RoleId};

use super::account::parse_user;
use super::error::{ApiError, ApiResult, Json, Path, Query, object};
use super::rooms::{parse_room, rate};
use super::{AppState, Authed, ranges, render};
use crate::engine::EngineError;

fn parse_event(text: &str) -> ApiResult<EventId> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_event_id", format!("{text:?} is not an event id")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MentionsBody {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    roles: Vec<u32>,
    #[serde(default)]
    room: bool,
}

impl MentionsBody {
    fn parse(self) -> ApiResult<Mentions> {
        Ok(Mentions {
            users: self
                .users
                .iter()
                .map(|u| parse_user(u))
                .collect::<ApiResult<_>>()?,
            roles: self.roles.into_iter().map(RoleId).collect(),
            room: self.room,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    body: String,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    thread: Option<String>,
    #[serde(default, deserialize_with = "object")]
    mentions: MentionsBody,
    /// Files uploaded through `POST /api/v1/media`, by hash.
    #[serde(default)]
    attachments: Vec<AttachmentBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentBody {
    hash: String,
    #[serde(default)]
    name: Option<String>,
}

pub async fn send(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<SendBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    if req.body.trim().is_empty() && req.attachments.is_empty() {
        return Err(ApiError::bad_request(
            "empty_message",
            "a message needs a body or an attachment",
        ));
    }
    let attachments = req
        .attachments
        .into_iter()
        .map(|a| {
            Ok(crate::services::media::AttachmentRequest {
                hash: super::media::parse_hash(&a.hash)?,
                name: a.name,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let content = Content::Message(Message {
        body: req.body,
        mentions: req.mentions.parse()?,
        reply_to: req.reply_to.as_deref().map(parse_event).transpose()?,
        thread: req.thread.as_deref().map(parse_event).transpose()?,
        attachments: Vec::new(),
    });
    let event = if attachments.is_empty() {
        state.engine.send(&authed.user, &room_id, content).await?
    } else {
        state
            .media
            .send(&authed.user, &room_id, content, attachments)
            .await?
    };
    Ok((
        StatusCode::CREATED,
        Json(render::event(&event, None, &authed.user)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// An event id to page from (exclusive); absent: the newest (dir=b) or oldest (dir=f).
    #[serde(default)]
    from: Option<String>,
    /// "b" (older, default) or "f" (newer).
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    /// An event id to centre a window on (inclusive); not with `from` or `dir`.
    #[serde(default)]
    around: Option<String>,
}

/// Shown in the main timeline: everything accepted except reactions, edits
/// and redactions (folded into their targets) and thread replies (in the
/// thread view).
fn in_timeline(content: &Content) -> bool {
    match content {
        Content::Message(m) => m.thread.is_none(),
        Content::Reaction(_) | Content::Edit(_) | Content::Redaction(_) => false,
        _ => true,
    }
}

pub async fn history(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let limit = ranges::page_limit(query.limit)?;
    if query.around.is_some() && (query.from.is_some() || query.dir.is_some()) {
        return Err(ApiError::bad_request(
            "bad_value",
            "around cannot be combined with from or dir",
        ));
    }
    let backwards = match query.dir.as_deref() {
        None | Some("b") => true,
        Some("f") => false,
        Some(_) => return Err(ApiError::bad_request("bad_value", "dir must be b or f")),
    };
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let floor = view.readable(&authed.user)?;
    let len = view.room.len();
    let bounds = (floor, len);
    let position = |id: &str| -> ApiResult<usize> {
        view.room
            .position(&parse_event(id)?)
            .ok_or_else(|| ApiError::not_found("unknown_event", "no such event in this room"))
    };
    // Only what is on disk: a received event is in the replica a moment
    // before the writer stores it, and until then has no seq (a read
    // marker on it would find nothing). The arrivals lock is taken per
    // candidate: the writer needs it after every commit to this room.
    let shown = |pos: usize| {
        view.room.at(pos).is_some_and(|(event, accepted)| {
            accepted && in_timeline(event.content()) && view.arrivals().seq(&event.id()).is_some()
        })
    };
    let render = |positions: &[usize]| -> Vec<Value> {
        positions
            .iter()
            .filter_map(|p| view.room.at(*p))
            .map(|(e, _)| render::event(e, Some(&view), &authed.user))
            .collect()
    };
    if let Some(around) = &query.around {
        let anchor = position(around)?;
        if anchor < floor {
            // Invariant 4: an event the caller may not read is not theirs to find.
            return Err(ApiError::not_found(
                "unknown_event",
                "no such event in this room",
            ));
        }
        let n_before = (limit - 1) / 2;
        let (mut positions, has_more_before) = scan((anchor, true), bounds, n_before, &shown);
        positions.reverse();
        if shown(anchor) {
            positions.push(anchor);
        }
        let n_after = limit - positions.len();
        let (after, has_more_after) = scan((anchor + 1, false), bounds, n_after, &shown);
        positions.extend(after);
        return Ok(Json(json!({
            "events": render(&positions),
            "has_more_before": has_more_before,
            "has_more_after": has_more_after,
        })));
    }
    let anchor = query.from.as_deref().map(position).transpose()?;
    let (positions, has_more) = if backwards {
        let (mut positions, has_more) = scan((anchor.unwrap_or(len), true), bounds, limit, &shown);
        positions.reverse();
        (positions, has_more)
    } else {
        scan(
            (anchor.map_or(floor, |a| a + 1), false),
            bounds,
            limit,
            &shown,
        )
    };
    Ok(Json(
        json!({ "events": render(&positions), "has_more": has_more }),
    ))
}

/// Up to `limit` positions of `floor..len` for which `shown` holds:
/// backwards from just before `start`, or forwards from `start` (inclusive),
/// in scan order; and whether another lies beyond them.
fn scan(
    (start, backwards): (usize, bool),
    (floor, len): (usize, usize),
    limit: usize,
    shown: &dyn Fn(usize) -> bool,
) -> (Vec<usize>, bool) {
    let mut positions = Vec::with_capacity(limit);
    let candidates: Box<dyn Iterator<Item = usize>> = if backwards {
        Box::new((floor..start.min(len)).rev())
    } else {
        Box::new(start.max(floor)..len)
    };
    for pos in candidates {
        if !shown(pos) {
            continue;
        }
        if positions.len() == limit {
            return (positions, true);
        }
        positions.push(pos);
    }
    (positions, false)
}

pub async fn thread(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let root = parse_event(&event_id)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    let floor = view.readable(&authed.user)?;
    let visible = |id: &EventId| {
        view.room.position(id).is_some_and(|p| p >= floor)
            && view.room.is_accepted(id)
            && view.arrivals().seq(id).is_some()
    };
    if !visible(&root) {
        return Err(ApiError::not_found(
            "unknown_event",
            "no such message in this room",
        ));
    }
    let root_event = view
        .room
        .event(&root)
        .ok_or_else(|| ApiError::not_found("unknown_event", "no such message"))?;
    let replies: Vec<Value> = view
        .agg
        .threads
        .get(&root)
        .into_iter()
        .flatten()
        .filter(|id| visible(id))
        .filter_map(|id| view.room.event(id))
        .map(|e| render::event(e, Some(&view), &authed.user))
        .collect();
    Ok(Json(
        json!({ "root": render::event(root_event, Some(&view), &authed.user), "replies": replies }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactBody {
    key: String,
}

pub async fn react(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
    Json(req): Json<ReactBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let target = parse_event(&event_id)?;
    let event = state
        .engine
        .react(&authed.user, &room_id, target, req.key)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(render::event(&event, None, &authed.user)),
    ))
}

pub async fn unreact(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let target = parse_event(&event_id)?;
    state
        .engine
        .unreact(&authed.user, &room_id, target, &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    body: String,
    #[serde(default, deserialize_with = "object")]
    mentions: MentionsBody,
}

pub async fn edit(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
    Json(req): Json<EditBody>,
) -> ApiResult<Json<Value>> {
    rate(&state, &authed)?;
    if req.body.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty_message",
            "an edit needs a body; delete the message instead",
        ));
    }
    let room_id = parse_room(&room_id)?;
    let target = parse_event(&event_id)?;
    let content = Content::Edit(Edit {
        target,
        body: req.body,
        mentions: req.mentions.parse()?,
    });
    let event = state.engine.send(&authed.user, &room_id, content).await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

pub async fn redact(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    let target = parse_event(&event_id)?;
    state.media.redact(&authed.user, &room_id, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    event_id: String,
}

pub async fn read(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<ReadBody>,
) -> ApiResult<StatusCode> {
    let room_id = parse_room(&room_id)?;
    let event_id = parse_event(&req.event_id)?;
    let seq = {
        let slot = state.engine.room(&room_id)?;
        let view = slot.lock().await;
        view.readable(&authed.user)?;
        view.arrivals()
            .seq(&event_id)
            .ok_or_else(|| ApiError::not_found("unknown_event", "no such event in this room"))?
    };
    state
        .accounts
        .set_read_marker(authed.username.clone(), room_id.0, seq)
        .await?;
    // Others in the room see the receipt; a member who has left or was
    // never joined (reading a public room) sends none.
    match state
        .federation
        .ephemeral(&authed.user, room_id, EphemeralKind::Receipt(event_id))
        .await
    {
        Ok(()) | Err(EngineError::Forbidden(_) | EngineError::UnknownRoom) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypingBody {
    typing: bool,
}

/// The user started or stopped typing: shown to the room's other members
/// on every node, never stored. Clients repeat `true` every few seconds
/// while typing; receivers expire a notice after about 10 s.
pub async fn typing(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<TypingBody>,
) -> ApiResult<StatusCode> {
    rate(&state, &authed)?;
    let room_id = parse_room(&room_id)?;
    state
        .federation
        .ephemeral(&authed.user, room_id, EphemeralKind::Typing(req.typing))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
