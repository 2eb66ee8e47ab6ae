//! Health, metrics, the OpenAPI document, and the web client's files.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The API description, kept in docs/spec/ and compiled in.
pub const OPENAPI: &str = include_str!("../../../docs/spec/openapi.json");

pub async fn healthz(State(state): State<AppState>) -> Response {
    // Moderation's state only: where a missing library was looked for is
    // for admins (GET /api/v1/admin/moderation), not for anyone who asks.
    let body = serde_json::json!({ "status": "ok", "node_id": state.engine.node_id().to_string(), "version": env!("CARGO_PKG_VERSION"),
        "moderation": state.moderation.status().state });
    axum::Json(body).into_response()
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            None => {
                return ApiError::unauthorized("missing_token", "metrics need the metrics token")
                    .into_response();
            }
            // BLAKE3 hashes compare in constant time: the comparison says
            // nothing about how much of the token was right.
            Some(presented)
                if blake3::hash(presented.as_bytes()) != blake3::hash(token.as_bytes()) =>
            {
                return ApiError::unauthorized("bad_token", "not the metrics token")
                    .into_response();
            }
            Some(_) => {}
        }
    }
    // The alarm also goes off when failures stop, not only on the next one.
    state.signin.tick(std::time::Instant::now(), &state.metrics);
    let mut text = state
        .metrics
        .render(state.engine.writer_queue_depth(), state.engine.n_rooms());
    text.push_str(&crate::metrics::render_federation(
        &state.federation.handle.inbound_stats(),
    ));
    text.push_str(&crate::metrics::render_traffic(
        &state.federation.handle.traffic_stats(),
    ));
    let rooms = state
        .engine
        .largest_rooms(crate::metrics::MAX_ROOM_SAMPLES)
        .await;
    text.push_str(&crate::metrics::render_rooms(&rooms));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A known path with a method it does not take: a JSON error like any other.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
    .into_response()
}

/// Serves the built web client for anything that is not an API route;
/// unknown paths get the client's index (it routes itself), unknown API
/// paths a JSON 404.
pub async fn fallback(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
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
    let requested = dir.join(relative);
    // Unknown paths get the client's index: it routes itself.
    let (file, is_asset) = if safe && !relative.is_empty() && requested.is_file() {
        (requested, relative.starts_with("assets/"))
    } else {
        (dir.join("index.html"), false)
    };
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
    let cache = if is_asset {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    // The build leaves a gzip copy beside each text file; send it to clients
    // that take gzip.
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut gz = file.clone().into_os_string();
    gz.push(".gz");
    if gzip_ok && let Ok(bytes) = tokio::fs::read(&gz).await {
        return (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            bytes,
        )
            .into_response();
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache),
                (header::VARY, "accept-encoding"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::OPENAPI;

    /// The `(METHOD, path)` pairs `router()` registers, read from its source:
    /// every `.route("<path>", get(..).post(..))` call of `api/mod.rs`.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let body = &source[source
            .find("pub fn router(")
            .expect("router() in api/mod.rs")..];
        let mut routes = BTreeSet::new();
        for call in body.split(".route(").skip(1) {
            // The call's text: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .expect("a closed .route( call");
            let call = &call[..end];
            let path = call
                .split('"')
                .nth(1)
                .expect("a .route( call names its path as a literal");
            // Method routers: `get(`, `.post(`, … — not handler names such
            // as `rooms::get`, which are never followed by `(` here.
            let words = call
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '('));
            let mut n_methods = 0;
            for word in words {
                for method in ["get", "post", "put", "patch", "delete"] {
                    if word.starts_with(&format!("{method}(")) {
                        routes.insert((method.to_uppercase(), path.to_owned()));
                        n_methods += 1;
                    }
                }
            }
            assert!(n_methods > 0, "no method router found in .route({call})");
        }
        routes
    }

    /// The router registers exactly the routes of `ROUTES`, both ways.
    #[test]
    fn router_serves_exactly_the_route_table() {
        let routed = routed();
        let table: BTreeSet<(String, String)> = crate::api::ROUTES
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert!(
            routed.len() > 40,
            "the router's source was not read: {routed:?}"
        );
        let unlisted: Vec<_> = routed.difference(&table).collect();
        let unrouted: Vec<_> = table.difference(&routed).collect();
        assert!(
            unlisted.is_empty() && unrouted.is_empty(),
            "routed but not in ROUTES: {unlisted:?}; in ROUTES but not routed: {unrouted:?}"
        );
    }

    /// docs/spec/openapi.json describes exactly the routes of `ROUTES`, both
    /// ways (and `ROUTES` is what the router serves, checked above).
    #[test]
    fn openapi_paths_match_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("3.1."),
            "openapi.json is OpenAPI {version:?}, not 3.1"
        );
        const METHODS: [&str; 8] = [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ];
        let paths = doc["paths"].as_object().expect("openapi.json has paths");
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("a path item is an object");
                item.keys()
                    .filter(|key| METHODS.contains(&key.as_str()))
                    .map(|method| (method.to_uppercase(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let served: BTreeSet<(String, String)> = crate::api::ROUTES
            .iter()
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert_eq!(
            served.len(),
            crate::api::ROUTES.len(),
            "ROUTES lists a route twice"
        );
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "routes missing from openapi.json: {undocumented:?}; \
             in openapi.json but not in ROUTES: {unserved:?}"
        );
    }
}
