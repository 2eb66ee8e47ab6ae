//! Web Push subscriptions: `GET`, `POST` and `DELETE
//! /api/v1/push/subscriptions`. The service (`services::push`) checks and
//! keeps them, and sends; this parses and renders.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Json};
use super::{AppState, Authed};
use crate::services::push::{Push, PushError};

impl From<PushError> for ApiError {
    fn from(error: PushError) -> ApiError {
        match error {
            PushError::Subscription(bad) => {
                ApiError::bad_request("bad_subscription", bad.to_string())
            }
            PushError::TooMany(_) => ApiError::bad_request("too_many", error.to_string()),
            PushError::Unknown => ApiError::not_found("unknown_subscription", error.to_string()),
            PushError::Store(cause) => cause.into(),
        }
    }
}

fn push(state: &AppState) -> ApiResult<&Push> {
    state.push.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "push_off",
            "Web Push is turned off on this node",
        )
    })
}

/// A browser's `PushSubscription.toJSON()`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    endpoint: String,
    keys: KeysBody,
    /// Sent by browsers; the node does not use it.
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    endpoint: String,
}

pub async fn list(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    let push = push(&state)?;
    let endpoints = push.subscriptions(&authed.username).await?;
    let subscriptions: Vec<Value> = endpoints
        .into_iter()
        .map(|endpoint| json!({ "endpoint": endpoint }))
        .collect();
    Ok(Json(json!({
        "vapid_public_key": push.public_key(),
        "subscriptions": subscriptions,
    })))
}

pub async fn subscribe(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<SubscriptionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let push = push(&state)?;
    push.subscribe(
        &authed.username,
        &body.endpoint,
        &body.keys.p256dh,
        &body.keys.auth,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "endpoint": body.endpoint, "vapid_public_key": push.public_key() })),
    ))
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<EndpointBody>,
) -> ApiResult<StatusCode> {
    push(&state)?
        .unsubscribe(&authed.username, &body.endpoint)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
