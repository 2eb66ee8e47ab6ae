//! Email: an account's address (`/api/v1/account/email`), the links mailed
//! to it (verification, one-click unsubscribe), and password reset by mail
//! (`/api/v1/account/password/reset`). The service (`services::email`)
//! keeps, checks and sends; this parses and renders.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Json, Query};
use super::{AppState, Authed};
use crate::services::email::{AddressView, Email, EmailError};

impl From<EmailError> for ApiError {
    fn from(error: EmailError) -> ApiError {
        match error {
            EmailError::BadAddress(_) => ApiError::bad_request("bad_address", error.to_string()),
            EmailError::TooMany(_) => {
                let mut refused = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_mails",
                    error.to_string(),
                );
                refused.retry_after = Some(3600);
                refused
            }
            EmailError::NoAddress => ApiError::not_found("no_address", error.to_string()),
            EmailError::Taken => ApiError::conflict("address_taken", error.to_string()),
            EmailError::Link(_) => ApiError::bad_request("bad_link", error.to_string()),
            EmailError::BadResetToken => ApiError::bad_request("bad_token", error.to_string()),
            EmailError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "mail_busy",
                error.to_string(),
            ),
            EmailError::Store(cause) => cause.into(),
        }
    }
}

fn email(state: &AppState) -> ApiResult<&Email> {
    state.email.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "email_off",
            "this node sends no email (no SMTP relay is configured)",
        )
    })
}

fn render(view: Option<AddressView>) -> Value {
    match view {
        Some(view) => json!({
            "address": view.address,
            "verified": view.verified,
            "digests": view.digests,
        }),
        None => json!({ "address": null, "verified": false, "digests": false }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestsBody {
    digests: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: String,
}

pub async fn get(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    let view = email(&state)?.address(&authed.username).await?;
    Ok(Json(render(view)))
}

pub async fn put(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<AddressBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let view = email(&state)?
        .set_address(&authed.username, &body.address)
        .await?;
    // 202: a verification mail is on its way; 200: already verified.
    let status = match view.verified {
        true => StatusCode::OK,
        false => StatusCode::ACCEPTED,
    };
    Ok((status, Json(render(Some(view)))))
}

pub async fn patch(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<DigestsBody>,
) -> ApiResult<Json<Value>> {
    let view = email(&state)?
        .set_digests(&authed.username, body.digests)
        .await?;
    Ok(Json(render(Some(view))))
}

pub async fn delete(State(state): State<AppState>, authed: Authed) -> ApiResult<StatusCode> {
    email(&state)?.remove(&authed.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A small page for a person who opened a link from a mail.
fn page(title: &str, text: &str, form: Option<&str>) -> Html<String> {
    let form = form.map_or(String::new(), |action| {
        format!(
            "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>"
        )
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{form}<p><a href=\"/\">Open Spaces</a></p></body></html>"
    ))
}

/// `GET …/verify?token=`: the link in a verification mail.
pub async fn verify_link(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> ApiResult<Html<String>> {
    email(&state)?.verify(&query.token).await?;
    Ok(page(
        "Address confirmed",
        "Your email address is confirmed. You can close this page.",
        None,
    ))
}

/// `POST …/verify {token}`: the same, for a client.
pub async fn verify(
    State(state): State<AppState>,
    Json(body): Json<TokenBody>,
) -> ApiResult<Json<Value>> {
    let view = email(&state)?.verify(&body.token).await?;
    Ok(Json(render(Some(view))))
}

/// `GET …/unsubscribe?token=`: the link in a digest's text. It only shows a
/// button: link checkers that open every link must not unsubscribe anyone.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> ApiResult<Html<String>> {
    email(&state)?.check_unsubscribe(&query.token).await?;
    let action = format!(
        "/api/v1/account/email/unsubscribe?token={}",
        html_escape(&query.token)
    );
    Ok(page(
        "Unsubscribe from digests",
        "Stop the email digests of unread mentions and direct messages?",
        Some(&action),
    ))
}

/// `POST …/unsubscribe?token=`: RFC 8058's one-click unsubscribe (the body,
/// `List-Unsubscribe=One-Click`, is not needed: the signed token is).
pub async fn unsubscribe(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
) -> ApiResult<Html<String>> {
    email(&state)?.unsubscribe(&query.token).await?;
    Ok(page(
        "Unsubscribed",
        "You will get no more email digests. You can turn them on again in the settings.",
        None,
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Either the username or a verified address of the account.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Mails a reset token if the account exists and has a verified address;
/// answers the same either way.
pub async fn reset(
    State(state): State<AppState>,
    Json(body): Json<ResetBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let login = match (body.username, body.email) {
        (Some(login), None) | (None, Some(login)) if !login.is_empty() && login.len() <= 254 => {
            login
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_value",
                "give either username or email (at most 254 bytes)",
            ));
        }
    };
    email(&state)?.request_reset(login);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "message": "if the account has a verified email address, a reset code is on its way"
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    token: String,
    new_password: String,
}

/// Sets a new password with a mailed token, and ends every session.
pub async fn reset_confirm(
    State(state): State<AppState>,
    Json(body): Json<ConfirmBody>,
) -> ApiResult<StatusCode> {
    let email = email(&state)?;
    if body.token.len() > 64 {
        return Err(EmailError::BadResetToken.into());
    }
    spaces_auth::check_password_policy(&body.new_password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    // Checked before the costly hashing, taken after it: a made-up token
    // costs no hashing, and a failed hash does not burn a good token.
    email.peek_reset(&body.token).await?;
    let hash = state
        .hasher
        .hash(body.new_password)
        .await
        .ok_or_else(|| ApiError::internal("the hashing pool stopped"))?
        .map_err(ApiError::internal)?;
    let username = email.take_reset(&body.token).await?;
    state.accounts.reset_password(username, hash).await?;
    Ok(StatusCode::NO_CONTENT)
}
