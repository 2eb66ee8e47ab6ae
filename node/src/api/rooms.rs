//! Rooms: create, list, directory, membership, settings and roles. Every
//! change is a protocol event sent through the engine, so the auth rules —
//! not this file — decide who may do what.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_federation::FedError;
use spaces_protocol::content::*;
use spaces_protocol::{NodeId, Permissions, RoleId, RoomId, RoomState, UserId};

use super::account::parse_user;
use super::error::{ApiError, ApiResult, Json, OptionalJson, Path, Query};
use super::{AppState, Authed, ranges, render};
use crate::engine::{NewRoom, now_ms};
use crate::peering::JoinError;
use crate::services::banlists::Listed;
use crate::services::links::{self, LinkError};
use crate::services::on_disk;

pub fn parse_room(text: &str) -> ApiResult<RoomId> {
    text.parse()
        .map_err(|_| ApiError::bad_request("bad_room_id", format!("{text:?} is not a room id")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    /// "public" (anyone may join, listed in the directory) or "private".
    #[serde(default)]
    visibility: Option<String>,
    /// "room" (default) or "space".
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    history_visibility: Option<String>,
    #[serde(default)]
    invite: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<CreateRoom>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    rate(&state, &authed)?;
    let join_rule = match req.visibility.as_deref() {
        None | Some("private") => JoinRule::Invite,
        Some("public") => JoinRule::Public,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_value",
                format!("visibility {other:?}: use public or private"),
            ));
        }
    };
    let kind = match req.kind.as_deref() {
        None | Some("room") => RoomKind::Room,
        Some("space") => RoomKind::Space,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_value",
                format!("kind {other:?}: use room or space"),
            ));
        }
    };
    let history_visibility = match req.history_visibility.as_deref() {
        None => HistoryVisibility::Shared,
        Some(text) => render::parse_history_visibility(text).ok_or_else(|| {
            ApiError::bad_request(
                "bad_value",
                "history_visibility: world_readable, shared, invited or joined",
            )
        })?,
    };
    if req.invite.len() > spaces_protocol::limits::MAX_LIST_LEN {
        return Err(ApiError::bad_request(
            "too_many",
            "too many invitees at once",
        ));
    }
    let invite = req
        .invite
        .iter()
        .map(|u| parse_user(u))
        .collect::<ApiResult<Vec<_>>>()?;
    let name = req.name.filter(|n| !n.trim().is_empty());
    let topic = req.topic.filter(|t| !t.trim().is_empty());
    let room_id = state
        .engine
        .create_room(
            &authed.user,
            NewRoom {
                kind,
                join_rule,
                history_visibility,
                name,
                topic,
                invite,
            },
        )
        .await?;
    let view = state.engine.room(&room_id)?;
    let view = view.lock().await;
    Ok((
        StatusCode::CREATED,
        Json(render::room(&view, &authed.user, Some(0))),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDm {
    user_id: String,
}

pub async fn create_dm(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<CreateDm>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let other = parse_user(&req.user_id)?;
    if other == authed.user {
        return Err(ApiError::bad_request(
            "bad_value",
            "a direct conversation needs someone else",
        ));
    }
    if state.engine.is_local(&other) && state.store.account(other.localpart())?.is_none() {
        return Err(ApiError::not_found(
            "unknown_user",
            "no such user on this node",
        ));
    }
    rate(&state, &authed)?;
    // One conversation per pair: the existing one, or a new one.
    let (room_id, created) = state.engine.direct_room(&authed.user, &other).await?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    Ok(if created {
        (
            StatusCode::CREATED,
            Json(render::room(&view, &authed.user, Some(0))),
        )
    } else {
        (
            StatusCode::OK,
            Json(render::room(&view, &authed.user, None)),
        )
    })
}

/// Characters of a room's last message shown in the room list.
const PREVIEW_CHARS: usize = 140;

/// The start of a message body on one line: whitespace runs become one
/// space, cut after [`PREVIEW_CHARS`] characters with an ellipsis.
fn preview_text(body: &str) -> String {
    let mut out = String::new();
    for (n, word) in body.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > PREVIEW_CHARS {
            let cut: String = out.chars().take(PREVIEW_CHARS).collect();
            return cut + "…";
        }
    }
    out
}

/// Cap on counted unread messages: clients show "99+" long before this.
const UNREAD_CAP: usize = 999;

pub async fn list(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Vec<Value>>> {
    let mut rooms = Vec::new();
    for room_id in state.engine.rooms_of(&authed.user) {
        // The membership index can name a room the engine does not hold:
        // one being created right now, or one whose creation failed after
        // its first member event was indexed. Neither is the caller's room.
        let Ok(slot) = state.engine.room(&room_id) else {
            continue;
        };
        let marker = state.store.read_marker(&authed.username, &room_id.0)?;
        let view = slot.lock().await;
        let unread = view.unread(&authed.user, marker, UNREAD_CAP);
        let last = view.last_message_seq();
        let first_unread = (unread > 0)
            .then(|| view.first_unread(&authed.user, marker))
            .flatten();
        let last_message = view.last_message();
        let mut value = render::room(&view, &authed.user, Some(unread));
        if let Some(object) = value.as_object_mut() {
            object.insert("last_seq".into(), json!(last));
            object.insert(
                "first_unread".into(),
                json!(first_unread.map(|id| id.to_string())),
            );
        }
        rooms.push((last, value, last_message));
    }
    // The previews' text is in the store (the replica holds skeletons):
    // one or two reads per room, off the async threads.
    let wanted: Vec<_> = rooms
        .iter()
        .map(|(_, _, m)| {
            m.as_ref()
                .map(|m| (m.event.id().0, m.edit.map(|e| e.0), m.redacted))
        })
        .collect();
    let texts = on_disk(&state.store, move |store| {
        wanted
            .into_iter()
            .map(|wanted| {
                let Some((message, edit, redacted)) = wanted else {
                    return Ok(None);
                };
                let read =
                    |id: &[u8; 32]| -> Result<Option<spaces_protocol::Event>, spaces_store::Error> {
                        Ok(store
                            .event_by_id(id)?
                            .and_then(|s| spaces_protocol::Event::decode_trusted(&s.bytes).ok()))
                    };
                if redacted {
                    return Ok(Some((None, 0)));
                }
                let original = read(&message)?;
                let n_attachments = match original.as_ref().map(|e| e.content()) {
                    Some(Content::Message(m)) => m.attachments.len(),
                    _ => 0,
                };
                let edited = match edit {
                    Some(edit) => read(&edit)?,
                    None => None,
                };
                let body = match (
                    edited.as_ref().map(|e| e.content()),
                    original.as_ref().map(|e| e.content()),
                ) {
                    (Some(Content::Edit(e)), _) => e.body.clone(),
                    (_, Some(Content::Message(m))) => m.body.clone(),
                    _ => String::new(),
                };
                Ok(Some((Some(preview_text(&body)), n_attachments)))
            })
            .collect::<Result<Vec<_>, spaces_store::Error>>()
    })
    .await?;
    let mut rooms: Vec<(u64, Value)> = rooms
        .into_iter()
        .zip(texts)
        .map(|((last, mut value, message), text)| {
            let preview = message.zip(text).map(|(m, (body, n_attachments))| {
                json!({
                    "event_id": m.event.id().to_string(),
                    "sender": m.event.sender().to_string(),
                    "origin_ts": m.event.origin_ts(),
                    "body": body,
                    "n_attachments": n_attachments,
                })
            });
            if let Some(object) = value.as_object_mut() {
                object.insert("last_message".into(), json!(preview));
            }
            (last, value)
        })
        .collect();
    rooms.sort_by_key(|(last, _)| std::cmp::Reverse(*last));
    Ok(Json(rooms.into_iter().map(|(_, v)| v).collect()))
}

/// Longest directory query, in bytes.
const MAX_DIRECTORY_QUERY: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryQuery {
    #[serde(default)]
    q: Option<String>,
}

/// Whether every word of the query starts a word of the room's name or
/// topic, compared as search compares them (case and accents folded).
fn directory_match(wanted: &[String], name: Option<&str>, topic: Option<&str>) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let text = format!("{} {}", name.unwrap_or_default(), topic.unwrap_or_default());
    let words: Vec<String> = spaces_search::terms(&text)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    wanted
        .iter()
        .all(|w| words.iter().any(|t| t.starts_with(w.as_str())))
}

pub async fn directory(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<DirectoryQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let q = query.q.unwrap_or_default();
    if q.len() > MAX_DIRECTORY_QUERY {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("q must be at most {MAX_DIRECTORY_QUERY} bytes"),
        ));
    }
    let wanted: Vec<String> = spaces_search::terms(&q)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let mut rooms = Vec::new();
    for room_id in state.engine.room_ids() {
        let slot = state.engine.room(&room_id)?;
        let view = slot.lock().await;
        let room_state = view.room.state();
        if room_state.join_rule() == JoinRule::Public
            && room_state.kind() != Some(RoomKind::Direct)
            && directory_match(&wanted, room_state.name(), room_state.topic())
        {
            rooms.push(render::room(&view, &authed.user, None));
        }
    }
    rooms.sort_by_key(|room| std::cmp::Reverse(room["n_members"].as_u64().unwrap_or(0)));
    Ok(Json(rooms))
}

pub async fn get(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    visible_to(view.room.state(), &authed.user)?;
    Ok(Json(render::room(&view, &authed.user, None)))
}

/// Whether `user` may see the room at all (`GET /rooms/{id}` and what
/// hangs off it): a member (not gone), or a public or world-readable room.
/// Invariant 4: a private room does not exist for outsiders (404).
pub(super) fn visible_to(room_state: &RoomState, user: &UserId) -> ApiResult<()> {
    let visible = room_state
        .membership(user)
        .is_some_and(|m| m != Membership::Leave)
        || room_state.join_rule() == JoinRule::Public
        || room_state.history_visibility() == HistoryVisibility::WorldReadable;
    if !visible {
        return Err(ApiError::not_found(
            "unknown_room",
            "no such room on this node",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    join_rule: Option<String>,
    #[serde(default)]
    history_visibility: Option<String>,
    #[serde(default)]
    slowmode_seconds: Option<u32>,
    /// The hash of an image (`null` clears the avatar); absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    avatar: Option<Option<String>>,
    #[serde(default)]
    moderation_policy: Option<PolicyBody>,
    /// Ban lists (list room ids) the room follows; `[]` follows none.
    #[serde(default)]
    ban_lists: Option<Vec<String>>,
    #[serde(default)]
    automod: Option<AutoModBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoModBody {
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    max_links: u16,
    #[serde(default)]
    max_mentions: u16,
}

impl AutoModBody {
    /// Checked as every node checks them, and each regex compiled here
    /// (one this node cannot compile is refused, not silently skipped).
    fn parse(self) -> ApiResult<AutoMod> {
        let rules = AutoMod {
            keywords: self.keywords,
            regexes: self.regexes,
            max_links: self.max_links,
            max_mentions: self.max_mentions,
        };
        Content::AutoMod(rules.clone())
            .check_limits()
            .map_err(|why| ApiError::bad_request("bad_value", format!("automod: {why}")))?;
        for (i, pattern) in rules.regexes.iter().enumerate() {
            crate::services::automod::compile_regex(pattern).map_err(|why| {
                ApiError::bad_request("bad_value", format!("automod: regex {}: {why}", i + 1))
            })?;
        }
        Ok(rules)
    }
}

/// A field that may be `null` on purpose: `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    rules: Vec<PolicyRuleBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleBody {
    label: String,
    /// A probability in (0, 1], kept to thousandths.
    threshold: f64,
    action: String,
}

impl PolicyBody {
    fn parse(self) -> ApiResult<ModerationPolicy> {
        let rules = self
            .rules
            .into_iter()
            .map(|rule| {
                if spaces_moderation::Label::from_name(&rule.label).is_none() {
                    return Err(ApiError::bad_request(
                        "bad_value",
                        "moderation_policy: label must be insult, threat, self_harm, sexual or hate",
                    ));
                }
                let milli = (rule.threshold * 1000.0).round();
                if !(rule.threshold > 0.0 && (1.0..=1000.0).contains(&milli)) {
                    return Err(ApiError::bad_request(
                        "bad_value",
                        "moderation_policy: threshold must be from 0.001 to 1",
                    ));
                }
                let action = render::parse_policy_action(&rule.action).ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_value",
                        "moderation_policy: action must be allow, flag, hide or block",
                    )
                })?;
                Ok(PolicyRule {
                    label: rule.label,
                    threshold_milli: milli as u16,
                    action,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let policy = ModerationPolicy { rules };
        Content::ModerationPolicy(policy.clone())
            .check_limits()
            .map_err(|why| {
                ApiError::bad_request("bad_value", format!("moderation_policy: {why}"))
            })?;
        Ok(policy)
    }
}

pub async fn update(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<UpdateRoom>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let mut contents = Vec::new();
    contents.extend(req.name.map(Content::Name));
    contents.extend(req.topic.map(Content::Topic));
    if let Some(rule) = req.join_rule {
        let rule = render::parse_join_rule(&rule).ok_or_else(|| {
            ApiError::bad_request("bad_value", "join_rule: public, invite or knock")
        })?;
        contents.push(Content::JoinRule(rule));
    }
    if let Some(v) = req.history_visibility {
        let v = render::parse_history_visibility(&v).ok_or_else(|| {
            ApiError::bad_request(
                "bad_value",
                "history_visibility: world_readable, shared, invited or joined",
            )
        })?;
        contents.push(Content::HistoryVisibility(v));
    }
    if let Some(seconds) = req.slowmode_seconds {
        contents.push(Content::Slowmode(Slowmode { seconds }));
    }
    if let Some(avatar) = req.avatar {
        let hash = avatar
            .as_deref()
            .map(super::account::parse_hash)
            .transpose()?;
        contents.push(state.media.room_avatar(&authed.user, hash).await?);
    }
    if let Some(policy) = req.moderation_policy {
        contents.push(Content::ModerationPolicy(policy.parse()?));
    }
    if let Some(rules) = req.automod {
        contents.push(Content::AutoMod(rules.parse()?));
    }
    if let Some(lists) = req.ban_lists {
        let lists = parse_lists(&lists)?;
        let content = Content::BanLists(BanLists { lists });
        content
            .check_limits()
            .map_err(|why| ApiError::bad_request("bad_value", format!("ban_lists: {why}")))?;
        contents.push(content);
    }
    if contents.is_empty() {
        return Err(ApiError::bad_request("bad_value", "nothing to change"));
    }
    // All or nothing: a bad field leaves the room as it was.
    let events = state
        .engine
        .send_all(&authed.user, &room_id, contents)
        .await?;
    for event in &events {
        state.media.pin(event).await?;
    }
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    Ok(Json(render::room(&view, &authed.user, None)))
}

pub async fn members(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let room_id = parse_room(&room_id)?;
    let slot = state.engine.room(&room_id)?;
    let view = slot.lock().await;
    view.readable(&authed.user)?;
    let room_state = view.room.state();
    // Presence is for those who share the room, not for readers of a
    // world-readable one.
    let sees_presence =
        state.engine.presence_options().enabled && room_state.is_joined(&authed.user);
    let members: Vec<Value> = room_state
        .members()
        .into_iter()
        .filter(|(_, m)| *m != Membership::Leave)
        .map(|(user, membership)| {
            let presence = (sees_presence && membership == Membership::Join)
                .then(|| state.engine.presence(&room_id, &user).as_str());
            let display_name = if state.engine.is_local(&user) {
                state
                    .store
                    .profile(user.localpart())
                    .ok()
                    .and_then(|p| p.display_name)
            } else {
                None
            };
            json!({
                "user_id": user.to_string(),
                "membership": render::membership(membership),
                "roles": room_state.roles_of(&user).iter().map(|r| r.0).collect::<Vec<_>>(),
                "rank": room_state.rank(&user),
                "is_owner": room_state.is_owner(&user),
                "timeout_until_ms": room_state.timeout_until(&user),
                "display_name": display_name,
                "presence": presence,
            })
        })
        .collect();
    let roles: Vec<Value> = room_state
        .roles()
        .map(|(id, role)| json!({ "role": id.0, "name": role.name, "rank": role.rank, "permissions": render::permissions(role.permissions), "color": role.color }))
        .collect();
    Ok(Json(json!({ "members": members, "roles": roles })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    user_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn membership_change(
    state: &AppState,
    authed: &Authed,
    room_id: &str,
    target: UserId,
    membership: Membership,
    reason: Option<String>,
) -> ApiResult<Json<Value>> {
    rate(state, authed)?;
    let room_id = parse_room(room_id)?;
    let event = state
        .engine
        .send(
            &authed.user,
            &room_id,
            Content::Member(Member {
                target,
                membership,
                reason,
            }),
        )
        .await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

/// Where to find a room held on other nodes, and the invite link's code
/// that lets the user in when the room is not public.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Node ids (`~...`) of nodes in the room. Empty: ask the DHT.
    #[serde(default)]
    via: Vec<String>,
    #[serde(default)]
    code: Option<String>,
}

/// Joins a room. A room this node does not hold yet (or a link minted on
/// another node) is first fetched over federation from `via`.
pub async fn join(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    OptionalJson(req): OptionalJson<JoinRequest>,
) -> ApiResult<Json<Value>> {
    let room = parse_room(&room_id)?;
    // Checked here, so a user's typo never costs their node standing with
    // the room's nodes.
    if req.via.len() > MAX_VIA {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("via: at most {MAX_VIA} nodes"),
        ));
    }
    if req
        .code
        .as_deref()
        .is_some_and(|c| !links::is_code_shaped(c))
    {
        return Err(LinkError::Unknown.into());
    }
    let via = req
        .via
        .iter()
        .map(|n| {
            let node = n
                .parse::<NodeId>()
                .map_err(|e| ApiError::bad_request("bad_value", format!("via: {n:?}: {e}")))?;
            // Not every 32 bytes are an ed25519 key: such a "node" cannot
            // exist, which is the caller's mistake, not a federation failure.
            if spaces_federation::peer_id(&node).is_none() {
                return Err(ApiError::bad_request(
                    "bad_value",
                    format!("via: {n:?} is not a node's public key"),
                ));
            }
            Ok(node)
        })
        .collect::<ApiResult<Vec<NodeId>>>()?;
    let held = state.engine.room(&room).is_ok();
    if !held || (req.code.is_some() && !via.is_empty()) {
        rate(&state, &authed)?;
        state
            .federation
            .fetch_room(&authed.user, room, via, req.code)
            .await
            .map_err(join_error)?;
    }
    // A ban list the room follows names this user: refused before signing.
    if let Some(listed) = state.ban_lists.listed(&room, &authed.user).await {
        return Err(listed_error(&listed));
    }
    let me = authed.user.clone();
    membership_change(&state, &authed, &room_id, me, Membership::Join, None).await
}

/// Most nodes a join may name: each may take a request timeout to fail.
const MAX_VIA: usize = 8;

fn join_error(error: JoinError) -> ApiError {
    match error {
        JoinError::NoPeers => ApiError::not_found(
            "unknown_room",
            "no such room here, and no node that holds it was found",
        ),
        JoinError::Refused { code, message } => {
            let code = match code.as_str() {
                "unknown_room" => "unknown_room",
                "unknown_invite_link" => "unknown_invite_link",
                "no_change" => "no_change",
                "banned" => "banned",
                _ => "join_refused",
            };
            let status = if code == "unknown_room" || code == "unknown_invite_link" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            ApiError::new(status, code, format!("the room's node refused: {message}"))
        }
        // Every node asked was busy: nothing is wrong, ask again shortly.
        JoinError::Failed(e @ FedError::Busy { .. }) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "federation_busy",
            format!("the room's nodes are busy; try again shortly: {e}"),
        ),
        JoinError::Failed(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "federation_failed",
            format!("could not reach the room's nodes: {e}"),
        ),
    }
}

pub async fn leave(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let me = authed.user.clone();
    membership_change(&state, &authed, &room_id, me, Membership::Leave, None).await
}

pub async fn invite(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<Target>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&req.user_id)?;
    if state.engine.is_local(&target) && state.store.account(target.localpart())?.is_none() {
        return Err(ApiError::not_found(
            "unknown_user",
            "no such user on this node",
        ));
    }
    membership_change(
        &state,
        &authed,
        &room_id,
        target,
        Membership::Invite,
        req.reason,
    )
    .await
}

pub async fn kick(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<Target>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&req.user_id)?;
    membership_change(
        &state,
        &authed,
        &room_id,
        target,
        Membership::Leave,
        req.reason,
    )
    .await
}

pub async fn ban(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<Target>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&req.user_id)?;
    membership_change(
        &state,
        &authed,
        &room_id,
        target,
        Membership::Ban,
        req.reason,
    )
    .await
}

pub async fn unban(
    State(state): State<AppState>,
    authed: Authed,
    Path(room_id): Path<String>,
    Json(req): Json<Target>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&req.user_id)?;
    let room = parse_room(&room_id)?;
    let banned = state
        .engine
        .room(&room)?
        .lock()
        .await
        .room
        .state()
        .membership(&target)
        == Some(Membership::Ban);
    if !banned {
        return Err(ApiError::bad_request(
            "not_banned",
            "that user is not banned here",
        ));
    }
    membership_change(
        &state,
        &authed,
        &room_id,
        target,
        Membership::Leave,
        req.reason,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    name: String,
    rank: u32,
    permissions: Vec<String>,
    #[serde(default)]
    color: Option<u32>,
}

fn parse_role(text: &str) -> ApiResult<RoleId> {
    text.parse()
        .map(RoleId)
        .map_err(|_| ApiError::bad_request("bad_role_id", "role ids are numbers"))
}

pub async fn put_role(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, role_id)): Path<(String, String)>,
    Json(req): Json<RoleBody>,
) -> ApiResult<Json<Value>> {
    let role = parse_role(&role_id)?;
    let mut permissions = Permissions::NONE;
    for name in &req.permissions {
        permissions |= Permissions::from_name(name).ok_or_else(|| {
            ApiError::bad_request("bad_permission", format!("unknown permission {name:?}"))
        })?;
    }
    let content = Content::Role(RoleDef {
        role,
        name: req.name,
        rank: req.rank,
        permissions,
        color: ranges::color(req.color)?,
        deleted: false,
    });
    let event = state
        .engine
        .send(&authed.user, &parse_room(&room_id)?, content)
        .await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

pub async fn delete_role(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, role_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let role = parse_role(&role_id)?;
    let room = parse_room(&room_id)?;
    let existing = state
        .engine
        .room(&room)?
        .lock()
        .await
        .room
        .state()
        .role(role)
        .cloned();
    let existing = existing.ok_or_else(|| ApiError::not_found("unknown_role", "no such role"))?;
    let content = Content::Role(RoleDef {
        role,
        name: existing.name,
        rank: existing.rank,
        permissions: existing.permissions,
        color: existing.color,
        deleted: true,
    });
    state.engine.send(&authed.user, &room, content).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRolesBody {
    roles: Vec<u32>,
}

pub async fn set_member_roles(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, user_id)): Path<(String, String)>,
    Json(req): Json<MemberRolesBody>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&user_id)?;
    let mut roles: Vec<RoleId> = req.roles.into_iter().map(RoleId).collect();
    roles.sort();
    roles.dedup();
    let event = state
        .engine
        .send(
            &authed.user,
            &parse_room(&room_id)?,
            Content::MemberRoles(MemberRoles { target, roles }),
        )
        .await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutBody {
    /// 0 lifts the timeout.
    seconds: u64,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn timeout(
    State(state): State<AppState>,
    authed: Authed,
    Path((room_id, user_id)): Path<(String, String)>,
    Json(req): Json<TimeoutBody>,
) -> ApiResult<Json<Value>> {
    let target = parse_user(&user_id)?;
    let until_ms = ranges::timeout_until(now_ms(), req.seconds);
    let content = Content::Timeout(Timeout {
        target,
        until_ms,
        reason: req.reason,
    });
    let event = state
        .engine
        .send(&authed.user, &parse_room(&room_id)?, content)
        .await?;
    Ok(Json(render::event(&event, None, &authed.user)))
}

/// The per-user send budget (messages, reactions, membership changes).
pub fn rate(state: &AppState, authed: &Authed) -> ApiResult<()> {
    state
        .sends
        .check(&authed.username)
        .map_err(super::session::too_many)
}

/// `ban_lists` of `PATCH /rooms/{id}`: room ids, at most `MAX_BAN_LISTS`.
fn parse_lists(lists: &[String]) -> ApiResult<Vec<RoomId>> {
    if lists.len() > MAX_BAN_LISTS {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("ban_lists: at most {MAX_BAN_LISTS} lists"),
        ));
    }
    lists
        .iter()
        .map(|text| {
            text.parse::<RoomId>().map_err(|e| {
                ApiError::bad_request("bad_value", format!("ban_lists: {text:?}: {e}"))
            })
        })
        .collect()
}

/// The refusal of a join that a list the room follows forbids.
fn listed_error(listed: &Listed) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "banned_by_list",
        format!(
            "a ban list this room follows ({}) names you: {}",
            listed.list, listed.reason
        ),
    )
}
