//! Media: upload, download and thumbnails (docs/spec/api.md, "Media").
//!
//! Served so that no stored byte can act in the node's origin: the type is
//! the one sniffed at upload, `nosniff` forbids second guesses, a sandbox
//! CSP strips scripts of any power if a browser renders it anyway, and
//! everything but decoded images, audio and video is an attachment.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_blobs::{BlobError, Hash, Meta, sniff};

use super::account::parse_hash;
use super::error::{ApiError, ApiResult, Json, Path, Query};
use super::rooms::rate;
use super::{AppState, Authed};
use crate::services::media::MediaError;

impl From<MediaError> for ApiError {
    fn from(error: MediaError) -> ApiError {
        let too_large =
            |code, message: String| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message);
        match error {
            MediaError::Blob(blob) => match blob {
                BlobError::TooLarge { .. } => too_large("too_large", blob.to_string()),
                BlobError::QuotaExceeded { .. } => too_large("quota_exceeded", blob.to_string()),
                BlobError::ImageTooLarge { .. } => too_large("image_too_large", blob.to_string()),
                BlobError::Unsupported { .. } => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_type",
                    blob.to_string(),
                ),
                BlobError::BadImage(_) => ApiError::bad_request("bad_image", blob.to_string()),
                BlobError::Interrupted(_) => {
                    ApiError::bad_request("upload_interrupted", blob.to_string())
                }
                BlobError::Mismatch(_) => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "media_unavailable",
                    blob.to_string(),
                ),
                BlobError::Store(_) => ApiError::internal(blob),
            },
            MediaError::NotFound => ApiError::not_found("unknown_media", "no such media"),
            MediaError::UnknownAttachment(_) => {
                ApiError::bad_request("unknown_attachment", error.to_string())
            }
            MediaError::TooManyAttachments => {
                ApiError::bad_request("too_many_attachments", error.to_string())
            }
            MediaError::BadAvatar(_) => ApiError::bad_request("bad_avatar", error.to_string()),
            MediaError::Unavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "media_unavailable",
                error.to_string(),
            ),
            MediaError::Engine(engine) => engine.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    #[serde(default)]
    name: Option<String>,
}

fn thumbnail_url(hash: &Hash, meta: &Meta) -> Value {
    if meta.thumbs.is_empty() {
        Value::Null
    } else {
        json!(format!("/api/v1/media/{}/thumbnail", hash.to_hex()))
    }
}

pub async fn upload(
    State(state): State<AppState>,
    authed: Authed,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    rate(&state, &authed)?;
    let limit = state.config.media.max_file_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(MediaError::Blob(BlobError::TooLarge { limit }).into());
    }
    let upload = state
        .media
        .upload(&authed.user, body.into_data_stream())
        .await?;
    let name = sniff::sanitize_name(query.name.as_deref().unwrap_or(""));
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "hash": upload.hash.to_hex(),
            "size": upload.meta.size,
            "mime": upload.meta.mime,
            "name": name,
            "width": upload.meta.width,
            "height": upload.meta.height,
            "thumbnail": thumbnail_url(&upload.hash, &upload.meta),
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// The file name for `Content-Disposition` (sanitized).
    #[serde(default)]
    name: Option<String>,
}

pub async fn download(
    State(state): State<AppState>,
    authed: Authed,
    Path(hash): Path<String>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let hash = parse_hash(&hash)?;
    let meta = state.media.open(&authed.user, &hash).await?;
    let name = query
        .name
        .as_deref()
        .map(sniff::sanitize_name)
        .unwrap_or_else(|| hash.to_hex()[..16].to_owned());
    serve(&state, &headers, hash, meta.size, &meta.mime, &name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailQuery {
    /// The wanted longer side in pixels: the smallest thumbnail at least
    /// this large is served (the largest if none is).
    #[serde(default)]
    size: Option<u32>,
}

pub async fn thumbnail(
    State(state): State<AppState>,
    authed: Authed,
    Path(hash): Path<String>,
    Query(query): Query<ThumbnailQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let hash = parse_hash(&hash)?;
    let meta = state.media.open(&authed.user, &hash).await?;
    let px = query.size.unwrap_or(u32::MAX).max(1);
    let thumb = meta
        .thumb(px)
        .ok_or_else(|| ApiError::not_found("no_thumbnail", "this file has no thumbnail"))?;
    let name = format!("{}-{}", &hash.to_hex()[..16], thumb.px);
    serve(
        &state,
        &headers,
        Hash::from_bytes(thumb.hash),
        thumb.size,
        &thumb.mime,
        &name,
    )
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` of a blob of `size` bytes:
/// `Ok(None)` to serve it whole (no header, or several ranges),
/// `Err(())` when the range is outside the blob (416).
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        let n: u64 = last.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            size
        } else {
            let last: u64 = last.parse().map_err(|_| ())?;
            if last < start {
                return Err(());
            }
            last.saturating_add(1).min(size)
        };
        (start, end)
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `attachment` (or `inline`) with an ASCII `filename` and the exact name
/// as RFC 8187 `filename*`.
fn disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .map(|c| if c == '\\' || c == '"' { '_' } else { c })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

fn serve(
    state: &AppState,
    headers: &HeaderMap,
    hash: Hash,
    size: u64,
    mime: &str,
    name: &str,
) -> ApiResult<Response> {
    let etag = format!("\"{}\"", hash.to_hex());
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        }) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match range(headers, size) {
            Err(()) => {
                let mut response = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "bad_range",
                    format!("the file has {size} bytes"),
                )
                .into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return Ok(response);
            }
            Ok(None) => {
                let mut response =
                    Body::from_stream(state.media.read(hash, 0, size)).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                response
            }
            Ok(Some((start, end))) => {
                let mut response =
                    Body::from_stream(state.media.read(hash, start, end)).into_response();
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                let h = response.headers_mut();
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
                if let Ok(value) =
                    HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
                {
                    h.insert(header::CONTENT_RANGE, value);
                }
                response
            }
        }
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, value);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        disposition(sniff::inline_safe(mime), name),
    );
    // Private: the bytes are behind authentication. Immutable: a hash
    // names one content forever.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `range` answers: 416, whole, or `start..end`.
    type Want = Result<Option<(u64, u64)>, ()>;

    #[test]
    fn ranges() {
        let table: &[(&str, Want)] = &[
            ("bytes=0-9", Ok(Some((0, 10)))),
            ("bytes=90-", Ok(Some((90, 100)))),
            ("bytes=-10", Ok(Some((90, 100)))),
            ("bytes=-1000", Ok(Some((0, 100)))),
            ("bytes=50-1000", Ok(Some((50, 100)))),
            ("bytes=100-", Err(())),
            ("bytes=9-3", Err(())),
            ("bytes=-0", Err(())),
            ("bytes=x-y", Err(())),
            ("bytes=0-1,5-6", Ok(None)),
            ("items=0-1", Ok(None)),
        ];
        for (value, want) in table {
            let mut headers = HeaderMap::new();
            headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
            assert_eq!(range(&headers, 100), *want, "{value}");
        }
        assert_eq!(range(&HeaderMap::new(), 100), Ok(None));
    }

    #[test]
    fn dispositions_quote_nothing_unsafe() {
        assert_eq!(
            disposition(false, "résumé \"x\".pdf"),
            "attachment; filename=\"r_sum_ _x_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.pdf"
        );
        assert_eq!(
            disposition(true, "a.png"),
            "inline; filename=\"a.png\"; filename*=UTF-8''a.png"
        );
    }
}
