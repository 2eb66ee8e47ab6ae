//! The OAuth2 / OpenID Connect provider's HTTP side (docs/spec/api.md,
//! "OAuth2 and OpenID Connect"): discovery, the JWKS, the authorization
//! endpoint, the consent API the web client's consent page calls, the
//! token, userinfo and revocation endpoints.
//!
//! The endpoints under `/oauth2/` speak OAuth's own error shape
//! (`{"error": "...", "error_description": "..."}`, RFC 6749 §5.2), since
//! the clients that call them are OAuth libraries; the consent API under
//! `/api/v1/oauth2/` is the web client's and speaks ours. The rules live in
//! `services::oidc`; the tokens are ordinary sessions' (`session`), held by
//! the client within the granted scopes.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use spaces_oidc::{IdTokenClaims, Scope, Scopes};
use spaces_store::{OAuthGrant, SignInMethod};

use super::AppState;
use super::error::{ApiError, ApiResult, Json};
use super::session::{self, Authed, UserAgent};
use crate::engine::now_ms;
use crate::services::oidc::{Authorization, AuthorizeError, AuthorizeParams, TokenError};

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<TokenError> for OAuthError {
    fn from(error: TokenError) -> OAuthError {
        match error {
            TokenError::InvalidClient => OAuthError::new("invalid_client", error.to_string()),
            TokenError::InvalidGrant(why) => OAuthError::new("invalid_grant", why),
            TokenError::InvalidRequest(why) => OAuthError::new("invalid_request", why),
            TokenError::Store(e) => OAuthError::from(ApiError::from(e)),
        }
    }
}

impl From<spaces_store::Error> for OAuthError {
    fn from(error: spaces_store::Error) -> OAuthError {
        OAuthError::from(ApiError::from(error))
    }
}

/// Only a 500 reaches here through `?` on the store: its cause is logged
/// by `ApiError`, the client hears `server_error`.
impl From<ApiError> for OAuthError {
    fn from(error: ApiError) -> OAuthError {
        OAuthError {
            status: error.status,
            error: if error.status.is_server_error() {
                "server_error"
            } else {
                "invalid_request"
            },
            description: error.message,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"spaces\""),
            );
        }
        no_store(response)
    }
}

/// Token responses and errors must not be cached (RFC 6749 §5.1).
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
pub async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = state.oidc.issuer();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name"],
    }))
    .into_response()
}

/// `GET /oauth2/jwks`: the ID-token signing key.
pub async fn jwks(State(state): State<AppState>) -> Response {
    axum::Json(state.oidc.jwks()).into_response()
}

fn parse_params(query: Option<&str>) -> Result<AuthorizeParams, OAuthError> {
    serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| OAuthError::new("invalid_request", format!("bad query: {e}")))
}

/// `GET /oauth2/authorize`: checks the request and sends the browser to
/// the web client's consent page with the same query; errors a client may
/// hear go back to its redirect URI, others are shown here.
pub async fn authorize(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match parse_params(query.as_deref()) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    match state.oidc.check(&params) {
        Ok(_) => found(&format!("/consent?{}", query.unwrap_or_default())),
        Err(error) => authorize_error(error).into_response(),
    }
}

/// 302 Found, what OAuth's redirects use (RFC 6749 §4.1.2; axum's
/// `Redirect::to` is 303).
fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        // Registered URIs hold no control characters, and the query is
        // form-encoded: not reachable.
        Err(_) => OAuthError::new("invalid_request", "bad redirect URI").into_response(),
    }
}

fn authorize_error(error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Shown(why) => OAuthError::new("invalid_request", why).into_response(),
        AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(state) = state.as_deref() {
                pairs.push(("state", state));
            }
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            let separator = if redirect_uri.contains('?') { '&' } else { '?' };
            found(&format!("{redirect_uri}{separator}{query}"))
        }
    }
}

/// What the consent page shows.
#[derive(Serialize)]
pub struct ConsentView {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    scopes: Vec<&'static str>,
}

fn check_for_consent(state: &AppState, params: &AuthorizeParams) -> ApiResult<Authorization> {
    state
        .oidc
        .check(params)
        .map_err(|error| ApiError::bad_request("bad_authorization_request", error.to_string()))
}

/// `GET /api/v1/oauth2/authorization?…`: the authorization request the
/// consent page is about, checked, for the signed-in user to decide on.
pub async fn consent_view(
    State(state): State<AppState>,
    _authed: Authed,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ConsentView>> {
    let params = parse_params(query.as_deref())
        .map_err(|e| ApiError::bad_request("bad_authorization_request", e.description))?;
    let authorization = check_for_consent(&state, &params)?;
    Ok(Json(ConsentView {
        client_id: authorization.client.client_id,
        client_name: authorization.client.name,
        redirect_uri: authorization.redirect_uri,
        scopes: authorization.scopes.iter().map(Scope::as_str).collect(),
    }))
}

#[derive(Deserialize)]
pub struct Decision {
    /// The authorization request's parameters, as the consent page got them.
    #[serde(flatten)]
    params: AuthorizeParams,
    approve: bool,
}

#[derive(Serialize)]
pub struct DecisionResponse {
    /// Where the browser goes next: the client's redirect URI with a code
    /// (or `error=access_denied`) and the request's `state`.
    redirect_to: String,
}

/// `POST /api/v1/oauth2/authorization`: the signed-in user's decision.
pub async fn consent_decide(
    State(state): State<AppState>,
    authed: Authed,
    Json(decision): Json<Decision>,
) -> ApiResult<Json<DecisionResponse>> {
    let authorization = check_for_consent(&state, &decision.params)?;
    let redirect_to = if decision.approve {
        let username = authed.username;
        let account = state
            .store
            .account(&username)?
            .ok_or_else(|| ApiError::unauthorized("bad_token", "no such account"))?;
        session::may_sign_in(&account)?;
        tracing::info!(client = %authorization.client.client_id, scopes = %authorization.scopes, "OAuth consent given");
        state
            .oidc
            .approve(&authorization, &username, now_ms())
            .await?
    } else {
        state.oidc.deny(&authorization)
    };
    Ok(Json(DecisionResponse { redirect_to }))
}

/// A token request's form (RFC 6749 §4.1.3, §6). Unknown parameters are
/// ignored, as §3.2 asks.
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Revocation (RFC 7009).
    token: Option<String>,
}

/// The client's id and secret: HTTP Basic (each part form-encoded, RFC
/// 6749 §2.3.1), or the form's `client_id` and `client_secret`.
fn client_credentials(
    headers: &HeaderMap,
    form: &TokenRequest,
) -> Result<(String, Option<String>), OAuthError> {
    let bad = || OAuthError::new("invalid_client", "bad client credentials");
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| bad())?;
        let encoded = value
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("basic "))
            .map(|_| value[6..].trim())
            .ok_or_else(bad)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let unform = |part: &str| -> Result<String, OAuthError> {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&format!("v={part}")).map_err(|_| bad())?;
            Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
        };
        if form.client_secret.is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                "authenticate the client one way only",
            ));
        }
        return Ok((unform(id)?, Some(unform(secret)?)));
    }
    let id = form.client_id.clone().ok_or_else(bad)?;
    Ok((id, form.client_secret.clone()))
}

fn parse_form(body: Result<Bytes, BytesRejection>) -> Result<TokenRequest, OAuthError> {
    let body = body.map_err(|rejection| OAuthError::from(ApiError::from(rejection)))?;
    serde_urlencoded::from_bytes(&body)
        .map_err(|e| OAuthError::new("invalid_request", format!("bad form body: {e}")))
}

/// `POST /oauth2/token`: the `authorization_code` and `refresh_token` grants.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    user_agent: UserAgent,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = parse_form(body)?;
    let (client_id, secret) = client_credentials(&headers, &form)?;
    let client = state
        .oidc
        .authenticate_client(&client_id, secret.as_deref())?;
    let now = now_ms();
    match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = form
                .code
                .as_deref()
                .ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
            let session_id = spaces_auth::new_session_id(&mut rand::rng());
            let redeemed = state
                .oidc
                .redeem(
                    &client,
                    code,
                    form.redirect_uri.as_deref(),
                    form.code_verifier.as_deref(),
                    &session_id,
                    now,
                )
                .await?;
            let account = state
                .store
                .account(&redeemed.username)?
                .filter(|account| account.may_sign_in())
                .ok_or_else(|| OAuthError::new("invalid_grant", "the account cannot sign in"))?;
            let grant = OAuthGrant {
                client_id: client.client_id.clone(),
                scopes: redeemed.scopes,
            };
            let tokens = session::new_session_with(
                &state,
                &account,
                Some(client.name.clone()),
                SignInMethod::OAuthClient,
                user_agent,
                session_id,
                Some(grant),
            )
            .await
            .map_err(|_| OAuthError::new("invalid_grant", "the account cannot sign in"))?;
            let scopes = Scopes::from_bits(redeemed.scopes);
            let id_token = if scopes.has(Scope::Openid) {
                let profile = scopes.has(Scope::Profile);
                let display_name = if profile {
                    state.store.profile(&account.username)?.display_name
                } else {
                    None
                };
                let user = spaces_protocol::UserId::new(&account.username, state.engine.node_id())
                    .map_err(|_| ApiError::internal("a code names an invalid username"))?;
                let claims = IdTokenClaims {
                    iss: state.oidc.issuer().to_owned(),
                    sub: user.to_string(),
                    aud: client.client_id.clone(),
                    iat: now / 1000,
                    exp: now / 1000 + state.config.limits.access_token_secs,
                    auth_time: redeemed.auth_time_ms / 1000,
                    nonce: redeemed.nonce,
                    preferred_username: profile.then(|| account.username.clone()),
                    name: display_name,
                };
                Some(state.oidc.id_token(&claims).map_err(ApiError::internal)?)
            } else {
                None
            };
            Ok(token_response(tokens, scopes, id_token))
        }
        Some("refresh_token") => {
            let refresh_token = form
                .refresh_token
                .as_deref()
                .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is missing"))?;
            let (tokens, scopes) = session::rotate(&state, refresh_token, Some(&client.client_id))
                .await
                .map_err(|error| {
                    if error.status.is_server_error() {
                        OAuthError::from(error)
                    } else {
                        OAuthError::new("invalid_grant", error.message)
                    }
                })?;
            Ok(token_response(tokens, scopes.unwrap_or_default(), None))
        }
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is missing")),
    }
}

fn token_response(tokens: session::Tokens, scopes: Scopes, id_token: Option<String>) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
        "scope": scopes.to_string(),
    });
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    no_store(axum::Json(body).into_response())
}

/// `GET`/`POST /oauth2/userinfo` (OpenID Connect Core §5.3): needs the
/// `openid` scope (the scope table); names with `profile`.
pub async fn userinfo(State(state): State<AppState>, authed: Authed) -> ApiResult<Response> {
    let mut body = json!({ "sub": authed.user.to_string() });
    if authed
        .scopes
        .is_none_or(|scopes| scopes.has(Scope::Profile))
    {
        body["preferred_username"] = json!(authed.username);
        if let Some(name) = state.store.profile(&authed.username)?.display_name {
            body["name"] = json!(name);
        }
    }
    Ok(no_store(axum::Json(body).into_response()))
}

/// `POST /oauth2/revoke` (RFC 7009): ends the session of the access or
/// refresh token presented, if the authenticated client holds it; 200
/// whatever the token was (§2.2).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = parse_form(body)?;
    let (client_id, secret) = client_credentials(&headers, &form)?;
    let client = state
        .oidc
        .authenticate_client(&client_id, secret.as_deref())?;
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
    let found = if let Some(presented) = spaces_auth::parse_access_token(token) {
        state
            .store
            .session(presented.session_id)?
            .filter(|session| session.access_grant(&presented.hash).is_some())
    } else if let Some((session_id, _)) = token.split_once('.') {
        let hash = spaces_auth::hash_refresh_token(token);
        state
            .store
            .session(session_id)?
            .filter(|session| spaces_auth::hashes_equal(&session.refresh_hash, &hash))
    } else {
        None
    };
    if let Some(session) = found
        && session
            .oauth
            .as_ref()
            .is_some_and(|grant| grant.client_id == client.client_id)
    {
        state.accounts.delete_session(session.id).await?;
    }
    Ok(no_store(StatusCode::OK.into_response()))
}
