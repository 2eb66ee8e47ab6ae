//! Messages: send, history both ways, threads, reactions, edits, deletion
//! and read markers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::content::*;
use spaces_protocol::{EphemeralKind, EventId, RoleId, UserId};

use super::account::parse_user;
use super::error::{ApiError, ApiResult, Json, Path, Query, object};
use super::rooms::{parse_room, rate};
use super::{AppState, Authed, ranges, render};
use crate::engine::{EngineError, PageAt, Shown};
use crate::services::txns::{Sent, TxnError};

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
    /// A client transaction id: a second send with it from this session
    /// answers the first one's event (`services::txns`).
    #[serde(default)]
    txn_id: Option<String>,
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
                hash: super::account::parse_hash(&a.hash)?,
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
    if let Content::Message(message) = &content {
        let n_mentions = crate::services::moderation::n_mentions(&message.mentions);
        super::moderation::vet(&state, &room_id, &authed.user, &message.body, n_mentions).await?;
    }
    let sender = authed.user.clone();
    let send = {
        let state = state.clone();
        async move {
            Ok::<_, ApiError>(if attachments.is_empty() {
                state.engine.send(&sender, &room_id, content).await?
            } else {
                state
                    .media
                    .send(&sender, &room_id, content, attachments)
                    .await?
            })
        }
    };
    let (status, event) = match req.txn_id {
        None => (StatusCode::CREATED, send.await?),
        Some(txn_id) => match state
            .txns
            .once(authed.session_id.clone(), txn_id, room_id, send)
            .await?
        {
            Sent::New(event) => (StatusCode::CREATED, event),
            Sent::Replayed(event) => (StatusCode::OK, event),
        },
    };
    Ok((status, Json(render::event(&event, None, &authed.user))))
}

impl From<TxnError> for ApiError {
    fn from(error: TxnError) -> ApiError {
        match error {
            TxnError::BadId => ApiError::bad_request("bad_value", error.to_string()),
            TxnError::OtherRoom => ApiError::conflict("txn_id_reused", error.to_string()),
            TxnError::Store(e) => e.into(),
        }
    }
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
    let from = query.from.as_deref().map(parse_event).transpose()?;
    let at = match (query.around.as_deref(), query.dir.as_deref()) {
        (Some(around), _) => PageAt::Around(parse_event(around)?),
        (None, None | Some("b")) => PageAt::Before(from),
        (None, Some("f")) => PageAt::After(from),
        (None, Some(_)) => return Err(ApiError::bad_request("bad_value", "dir must be b or f")),
    };
    let page = state
        .engine
        .history(&room_id, &authed.user, at, limit)
        .await?;
    // Messages this node's moderation hid are left out, except for the
    // room's moderators (who find them in the review queue too).
    let moderator = super::moderation::is_room_moderator(&state, &room_id, &authed.user).await;
    let events: Vec<Value> = page
        .events
        .iter()
        .filter(|s| moderator || !state.moderation.is_hidden(&s.event.id()))
        .map(|s| shown(&state, s, &authed.user))
        .collect();
    Ok(Json(match at {
        PageAt::Around(_) => json!({
            "events": events,
            "has_more_before": page.more_before,
            "has_more_after": page.more_after,
        }),
        PageAt::Before(_) => json!({ "events": events, "has_more": page.more_before }),
        PageAt::After(_) => json!({ "events": events, "has_more": page.more_after }),
    }))
}

pub async fn thread(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let root = parse_event(&event_id)?;
    let (root, replies) = state.engine.thread(&room_id, &authed.user, root).await?;
    let moderator = super::moderation::is_room_moderator(&state, &room_id, &authed.user).await;
    if !moderator && state.moderation.is_hidden(&root.event.id()) {
        return Err(ApiError::not_found(
            "unknown_event",
            "no such message in this room",
        ));
    }
    let replies: Vec<Value> = replies
        .iter()
        .filter(|s| moderator || !state.moderation.is_hidden(&s.event.id()))
        .map(|s| shown(&state, s, &authed.user))
        .collect();
    Ok(Json(
        json!({ "root": shown(&state, &root, &authed.user), "replies": replies }),
    ))
}

/// An event of history or a thread, marked `"hidden": true` when this
/// node's moderation hides it from members (only moderators are shown
/// those), so their client can say so.
fn shown(state: &AppState, s: &Shown, viewer: &UserId) -> Value {
    let mut value = render::event(&s.event, s.notes.as_ref(), viewer);
    if state.moderation.is_hidden(&s.event.id())
        && let Some(object) = value.as_object_mut()
    {
        object.insert("hidden".into(), json!(true));
    }
    value
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
    let mentions = req.mentions.parse()?;
    let n_mentions = crate::services::moderation::n_mentions(&mentions);
    super::moderation::vet(&state, &room_id, &authed.user, &req.body, n_mentions).await?;
    let content = Content::Edit(Edit {
        target,
        body: req.body,
        mentions,
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
        view.seq(&event_id)
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
