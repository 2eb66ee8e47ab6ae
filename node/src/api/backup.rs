//! `POST /api/v1/admin/backup`: an online backup of the node, streamed as
//! the response body (`services::backup` says what it holds and its format).

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ApiResult};
use super::{AppState, Authed};
use crate::services::backup::BackupError;

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> ApiError {
        match e {
            BackupError::Busy => ApiError::conflict("backup_running", e.to_string()),
            BackupError::Store(_) | BackupError::Stopped => ApiError::internal(e),
        }
    }
}

pub async fn backup(State(state): State<AppState>, authed: Authed) -> ApiResult<Response> {
    if !authed.admin {
        return Err(ApiError::forbidden(
            "not_admin",
            "only node admins take backups",
        ));
    }
    let stream = state.backups.start().await?;
    tracing::info!(by = %authed.user, last_seq = stream.info.last_seq, "backup started");
    let chunks = futures_util::stream::unfold(stream.chunks, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"spaces-backup.spaces\"".to_owned(),
            ),
            (
                header::HeaderName::from_static("x-spaces-backup-estimate"),
                stream.size_estimate.to_string(),
            ),
            (
                header::HeaderName::from_static("x-spaces-backup-last-seq"),
                stream.info.last_seq.to_string(),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
