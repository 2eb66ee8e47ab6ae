//! Full-text search: `GET /api/v1/search`. The service
//! (`services::search`) decides what is found and who may see it; this
//! parses the parameters and renders the page.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_search::{Has, MAX_LIMIT, MAX_OFFSET, Order};

use super::account::parse_user;
use super::error::{ApiError, ApiResult, Json, Query};
use super::rooms::parse_room;
use super::{AppState, Authed};
use crate::services::search::{self, SearchError};

/// Hits per page when the client names no limit.
const DEFAULT_LIMIT: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    sender: Option<String>,
    /// Unix ms, exclusive.
    #[serde(default)]
    before: Option<u64>,
    /// Unix ms, exclusive.
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    has: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> ApiError {
        match error {
            SearchError::Query(query) => ApiError::bad_request("bad_query", query.to_string()),
            SearchError::Engine(engine) => engine.into(),
            SearchError::Off => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "search_off",
                error.to_string(),
            ),
            SearchError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "search_busy",
                error.to_string(),
            ),
            SearchError::Index(cause) => ApiError::internal(cause),
        }
    }
}

/// A cursor is `o` and the number of index candidates already looked at.
fn parse_cursor(text: &str) -> ApiResult<usize> {
    text.strip_prefix('o')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= MAX_OFFSET)
        .ok_or_else(|| ApiError::bad_request("bad_cursor", "not a cursor this node gave"))
}

pub async fn search(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    state
        .searches
        .check(&authed.username)
        .map_err(super::session::too_many)?;
    let limit = match query.limit.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => limit,
        _ => {
            return Err(ApiError::bad_request(
                "bad_value",
                format!("limit must be 1–{MAX_LIMIT}"),
            ));
        }
    };
    let order = match query.order.as_deref() {
        None | Some("relevance") => Order::Relevance,
        Some("recent") => Order::Recent,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_value",
                "order must be relevance or recent",
            ));
        }
    };
    let has = match query.has.as_deref() {
        None => Vec::new(),
        Some(text) => vec![Has::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "bad_value",
                "has must be one of file, image, link, reply, thread",
            )
        })?],
    };
    let request = search::Query {
        text: query.q,
        room: query.room.as_deref().map(parse_room).transpose()?,
        sender: query.sender.as_deref().map(parse_user).transpose()?,
        after_ms: query.after,
        before_ms: query.before,
        has,
        order,
        limit,
        offset: query
            .cursor
            .as_deref()
            .map(parse_cursor)
            .transpose()?
            .unwrap_or(0),
    };
    let found = state.search.search(&authed.user, request).await?;
    let results: Vec<Value> = found
        .hits
        .into_iter()
        // Hidden by this node's moderation: not found by search, for anyone.
        .filter(|hit| {
            hit.event_id
                .parse()
                .ok()
                .is_none_or(|id| !state.moderation.is_hidden(&id))
        })
        .map(|hit| {
            json!({
                "event_id": hit.event_id,
                "room_id": hit.room_id,
                "sender": hit.sender,
                "origin_ts": hit.origin_ts,
                "body": hit.body,
                "highlights": hit.highlights.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "results": results,
        "next_cursor": found.next_offset.map(|n| format!("o{n}")),
        "estimated_total": found.estimated_total,
    })))
}
