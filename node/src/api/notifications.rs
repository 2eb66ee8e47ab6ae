//! Notifications: `GET /api/v1/notifications` (unread first), the unread
//! count, marking read, and the user's notification settings. The service
//! (`services::notify`) decides who is notified and keeps the records;
//! this parses, calls it and renders.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_notify::{Level, RoomSetting, Settings};

use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::render;
use super::rooms::parse_room;
use super::{AppState, Authed};
use crate::services::notify::NotifyError;

/// Notifications per page when the client names no limit.
const DEFAULT_LIMIT: usize = 20;
/// Most notifications per page.
pub const MAX_LIMIT: usize = 100;

impl From<NotifyError> for ApiError {
    fn from(error: NotifyError) -> ApiError {
        match error {
            NotifyError::Unknown => ApiError::not_found("unknown_notification", error.to_string()),
            NotifyError::Settings(settings) => {
                ApiError::bad_request("bad_value", settings.to_string())
            }
            NotifyError::Store(cause) => cause.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A cursor is `u` (unread) or `r` (read) and the id of the previous page's
/// last notification.
fn parse_cursor(text: &str) -> ApiResult<(bool, u64)> {
    let bad = || ApiError::bad_request("bad_cursor", "not a cursor this node gave");
    let (unread, id) = match text.split_at_checked(1) {
        Some(("u", id)) => (true, id),
        Some(("r", id)) => (false, id),
        _ => return Err(bad()),
    };
    let id = id.parse::<u64>().map_err(|_| bad())?;
    Ok((unread, id))
}

pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = match query.limit.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => limit,
        _ => {
            return Err(ApiError::bad_request(
                "bad_value",
                format!("limit must be 1–{MAX_LIMIT}"),
            ));
        }
    };
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let page = state.notify.list(&authed.user, after, limit).await?;
    let unread = state.notify.unread(&authed.user).await?;
    let next_cursor = match page.last() {
        Some(last) if page.len() == limit => Some(format!(
            "{}{}",
            if last.unread { 'u' } else { 'r' },
            last.seq
        )),
        _ => None,
    };
    let notifications: Vec<Value> = page.iter().map(render::notification).collect();
    Ok(Json(json!({
        "notifications": notifications,
        "unread": unread,
        "next_cursor": next_cursor,
    })))
}

pub async fn unread(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    let unread = state.notify.unread(&authed.user).await?;
    Ok(Json(json!({ "unread": unread })))
}

pub async fn mark_read(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = id
        .parse::<u64>()
        .map_err(|_| ApiError::not_found("unknown_notification", "unknown notification"))?;
    state.notify.mark_read(&authed.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn mark_all_read(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Value>> {
    let marked = state.notify.mark_all_read(&authed.user).await?;
    Ok(Json(json!({ "marked": marked })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    level: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    rooms: BTreeMap<String, RoomBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomBody {
    #[serde(default)]
    level: Option<String>,
    /// Unix ms.
    #[serde(default)]
    mute_until: Option<u64>,
}

fn parse_level(text: &str) -> ApiResult<Level> {
    Level::parse(text)
        .ok_or_else(|| ApiError::bad_request("bad_value", "level must be all, mentions or nothing"))
}

fn render_settings(settings: &Settings) -> Value {
    let rooms: serde_json::Map<String, Value> = settings
        .rooms
        .iter()
        .map(|(room_id, room)| {
            (
                room_id.to_string(),
                json!({
                    "level": room.level.map(Level::as_str),
                    "mute_until": room.mute_until_ms,
                }),
            )
        })
        .collect();
    json!({
        "level": settings.level.as_str(),
        "keywords": settings.keywords,
        "rooms": rooms,
    })
}

pub async fn settings(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    let settings = state.notify.settings(&authed.user).await?;
    Ok(Json(render_settings(&settings)))
}

pub async fn put_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<SettingsBody>,
) -> ApiResult<Json<Value>> {
    if body.rooms.len() > spaces_notify::MAX_ROOM_SETTINGS {
        return Err(ApiError::bad_request(
            "bad_value",
            spaces_notify::SettingsError::TooManyRooms.to_string(),
        ));
    }
    let mut rooms = BTreeMap::new();
    for (room_id, room) in body.rooms {
        let setting = RoomSetting {
            level: room.level.as_deref().map(parse_level).transpose()?,
            mute_until_ms: room.mute_until,
        };
        rooms.insert(parse_room(&room_id)?, setting);
    }
    let settings = Settings {
        level: parse_level(&body.level)?,
        keywords: body.keywords,
        rooms,
    };
    let rendered = render_settings(&settings);
    state.notify.set_settings(&authed.user, settings).await?;
    Ok(Json(rendered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("u12").unwrap(), (true, 12));
        assert_eq!(parse_cursor("r0").unwrap(), (false, 0));
        for bad in ["", "u", "x1", "u-1", "r1x", "é1"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
