//! The API's one error type: a status, a stable machine-readable `code` and a
//! human `message`, as `{"code": "...", "message": "..."}`. A 500 never
//! carries internals: the cause goes to the log, the client gets "internal".

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::EngineError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds until a rate-limited client may retry (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
    /// Logs the cause; the client learns only that it was our fault.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the node's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::UnknownRoom => {
                ApiError::not_found("unknown_room", "no such room on this node")
            }
            EngineError::UnknownEvent => {
                ApiError::not_found("unknown_event", "no such event in this room")
            }
            EngineError::AlreadyReacted => ApiError::conflict("already_reacted", error.to_string()),
            EngineError::NotReacted => ApiError::not_found("unknown_reaction", error.to_string()),
            EngineError::Forbidden(auth) => ApiError::forbidden(auth.code(), auth.to_string()),
            EngineError::Invalid(rejection) => {
                ApiError::bad_request(rejection.code(), rejection.to_string())
            }
            EngineError::Text(e) => ApiError::bad_request("bad_text", e.to_string()),
            EngineError::Unavailable(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            EngineError::Store(e) => ApiError::internal(e),
        }
    }
}

impl From<spaces_store::Error> for ApiError {
    fn from(error: spaces_store::Error) -> ApiError {
        ApiError::internal(error)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is larger than this node takes (limits.max_body_bytes)",
            )
        } else {
            ApiError::bad_request("bad_request", "the body could not be read")
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        let message = match &rejection {
            QueryRejection::FailedToDeserializeQueryString(e) => scrub(&e.body_text()),
            _ => "the query string does not parse".to_owned(),
        };
        ApiError::bad_request("bad_query", message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        use axum::extract::path::ErrorKind;
        let PathRejection::FailedToDeserializePathParams(e) = rejection else {
            // A handler asked for a parameter its route does not have.
            return ApiError::internal(rejection.body_text());
        };
        let message = match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => {
                format!("path parameter {key} is not percent-encoded UTF-8")
            }
            ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
                format!("path parameter {key} does not parse")
            }
            _ => "a path parameter does not parse".to_owned(),
        };
        ApiError::bad_request("bad_path", message)
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(rejection: WebSocketUpgradeRejection) -> ApiError {
        ApiError::new(rejection.status(), "not_websocket", rejection.body_text())
    }
}

/// `axum::extract::Query` with our error body on rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with our error body on rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A JSON request body, which must be an object. serde would take an array
/// for a struct (`["x", null, null]` as a profile); this refuses every
/// top-level value that is not an object, and its errors name the client's
/// field, never one of our types.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_content_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await?;
        parse_object(&bytes).map(Json)
    }
}

/// A JSON object body that may be left out (empty or white space only:
/// `T::default()`), for the one route whose body is optional.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<OptionalJson<T>, ApiError> {
        let bytes = Bytes::from_request(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_object(&bytes).map(OptionalJson)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json`, or any `application/*+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"))
}

/// Parses a request body that must be one JSON object into `T`.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let what = match first {
            None => {
                return Err(ApiError::bad_request(
                    "bad_json",
                    "the body is empty; send a JSON object",
                ));
            }
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(_) => "",
        };
        // Valid JSON of another type is a shape error; anything else a syntax error.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) if !what.is_empty() => Err(ApiError::bad_request(
                "bad_field",
                format!("the body must be a JSON object, not {what}"),
            )),
            Ok(_) => Err(ApiError::bad_request(
                "bad_field",
                "the body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(
                "bad_json",
                format!("the body is not JSON: {e}"),
            )),
        };
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = scrub(&inner.to_string());
        let message = if path == "." {
            message
        } else {
            format!("{path}: {message}")
        };
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::bad_request("bad_field", message),
            _ => ApiError::bad_request("bad_json", format!("the body is not JSON: {message}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request("bad_json", format!("the body is not JSON: {e}")))?;
    Ok(value)
}

/// For a nested object field (`#[serde(default, deserialize_with =
/// "object")]`): serde would take an array for a struct there too; this
/// takes an object, or null for the default.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    use serde::Deserialize;
    use serde::de::Error;
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)? {
        None => Ok(T::default()),
        Some(map) => T::deserialize(serde_json::Value::Object(map))
            .map_err(|e| D::Error::custom(scrub(&e.to_string()))),
    }
}

/// A serde error's message without our type names: serde's derive says what
/// it expected as `struct SendBody with 4 elements` or `enum Presence`,
/// which means nothing to a client (and tells it about our code).
pub fn scrub(message: &str) -> String {
    const NAMED: [(&str, &str); 9] = [
        ("expected struct variant ", "expected an object"),
        ("expected tuple struct ", "expected an array"),
        ("expected unit struct ", "expected null"),
        ("expected newtype struct ", "expected a value"),
        ("expected struct ", "expected an object"),
        (
            "expected internally tagged enum ",
            "expected an object with a known type",
        ),
        (
            "expected adjacently tagged enum ",
            "expected an object with a known type",
        ),
        ("expected enum ", "expected one of the documented values"),
        ("any variant of untagged enum ", "any accepted form"),
    ];
    // serde names numbers by their Rust types: `expected u32`.
    const PRIMITIVE: [(&str, &str); 13] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "expected u64",
            "expected a whole number from 0 to 18446744073709551615",
        ),
        ("expected usize", "expected a whole number"),
        ("expected i8", "expected an integer"),
        ("expected i16", "expected an integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected isize", "expected an integer"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected char", "expected a single character"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'outer: while !rest.is_empty() {
        for (pattern, replacement) in PRIMITIVE {
            if let Some(after) = rest.strip_prefix(pattern)
                && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                out.push_str(replacement);
                rest = after;
                continue 'outer;
            }
        }
        for (pattern, replacement) in NAMED {
            if let Some(after) = rest.strip_prefix(pattern) {
                out.push_str(replacement);
                // The type's name (with any path), then serde's " with N elements".
                let name_len = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(after.len());
                rest = &after[name_len..];
                if let Some(tail) = rest.strip_prefix(" with ") {
                    let digits = tail
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(tail.len());
                    let tail = &tail[digits..];
                    rest = tail
                        .strip_prefix(" elements")
                        .or_else(|| tail.strip_prefix(" element"))
                        .filter(|_| digits > 0)
                        .unwrap_or(rest);
                }
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        users: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SendBody {
        body: String,
        #[serde(default)]
        uses: Option<u32>,
        #[serde(default, deserialize_with = "object")]
        inner: Inner,
    }

    fn refused(json: &str) -> ApiError {
        parse_object::<SendBody>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn only_objects_are_bodies() {
        let cases = [
            ("[\"x\", null, null]", "bad_field", "not an array"),
            ("null", "bad_field", "not null"),
            ("12", "bad_field", "not a number"),
            ("\"x\"", "bad_field", "not a string"),
            ("false", "bad_field", "not a boolean"),
            ("", "bad_json", "empty"),
            ("[1,", "bad_json", "not JSON"),
            ("{\"body\": \"x\"} []", "bad_json", "trailing"),
            ("{\"body\": 5}", "bad_field", "body: invalid type"),
            (
                "{\"body\": \"x\", \"uses\": 4294967296}",
                "bad_field",
                "from 0 to 4294967295",
            ),
            (
                "{\"body\": \"x\", \"inner\": [[]]}",
                "bad_field",
                "inner: invalid type: sequence",
            ),
            (
                "{\"body\": \"x\", \"inner\": {\"users\": [1]}}",
                "bad_field",
                "inner: invalid type",
            ),
        ];
        for (json, code, says) in cases {
            let error = refused(json);
            assert_eq!(
                (error.code, error.status),
                (code, StatusCode::BAD_REQUEST),
                "{json}"
            );
            assert!(error.message.contains(says), "{json}: {}", error.message);
            for word in ["SendBody", "Inner", "struct", "u32"] {
                assert!(!error.message.contains(word), "{json}: {}", error.message);
            }
        }
        let ok: SendBody = parse_object(b" {\"body\": \"x\", \"inner\": null} ").unwrap();
        assert_eq!(
            (ok.body.as_str(), ok.uses, ok.inner.users.len()),
            ("x", None, 0)
        );
    }

    #[test]
    fn scrub_removes_type_names_and_keeps_the_rest() {
        assert_eq!(
            scrub("invalid length 2, expected struct SendBody with 4 elements at line 1 column 9"),
            "invalid length 2, expected an object at line 1 column 9"
        );
        assert_eq!(
            scrub("invalid type: sequence, expected struct spaces::Mentions"),
            "invalid type: sequence, expected an object"
        );
        assert_eq!(
            scrub("invalid value: integer `-1`, expected u64"),
            "invalid value: integer `-1`, expected a whole number from 0 to 18446744073709551615"
        );
        assert_eq!(scrub("expected u32x"), "expected u32x");
        assert_eq!(
            scrub("unknown variant `x`, expected enum Presence"),
            "unknown variant `x`, expected one of the documented values"
        );
        assert_eq!(scrub("missing field `body`"), "missing field `body`");
    }

    #[test]
    fn json_content_types() {
        for (value, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("application/+json", false),
            ("text/json", false),
            ("application/jsonx", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), ok, "{value}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
