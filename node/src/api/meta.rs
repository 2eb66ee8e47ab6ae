//! Health, metrics, the OpenAPI document, and the web client's files.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The API description, kept in docs/spec/ and compiled in.
pub const OPENAPI: &str = include_str!("../../../docs/spec/openapi.json");

pub async fn healthz(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({ "status": "ok", "node_id": state.engine.node_id().to_string(), "version": env!("CARGO_PKG_VERSION") });
    axum::Json(body).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .metrics
        .render(state.engine.writer_queue_depth(), state.engine.n_rooms());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Serves the built web client for anything that is not an API route;
/// unknown paths get the client's index (it routes itself), unknown API
/// paths a JSON 404.
pub async fn fallback(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/ws" {
        return ApiError::not_found("unknown_route", format!("no route {path}")).into_response();
    }
    let Some(dir) = &state.web_dir else {
        return ApiError::not_found(
            "no_web_client",
            "this node serves no web client; build web-ui",
        )
        .into_response();
    };
    let relative = path.trim_start_matches('/');
    // Only plain relative paths: no `..`, no absolute components.
    let safe = relative
        .split('/')
        .all(|part| !part.is_empty() && part != ".." && part != "." && !part.contains('\\'));
    let file = if relative.is_empty() || !safe {
        dir.join("index.html")
    } else {
        dir.join(relative)
    };
    let file = if file.is_file() {
        file
    } else {
        dir.join("index.html")
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mime = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                Some("ico") => "image/x-icon",
                Some("json") | Some("webmanifest") => "application/json",
                Some("woff2") => "font/woff2",
                _ => "application/octet-stream",
            };
            // Hashed asset names never change content: cache them for a year.
            let cache = if relative.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, cache)],
                bytes,
            )
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
