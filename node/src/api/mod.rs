//! The HTTP + WebSocket API (docs/spec/api.md, docs/spec/openapi.json).
//!
//! The gateway of the node: it authenticates, rate-limits and checks the size
//! and shape of every request, then speaks to the engine in protocol terms.
//! Everything under `/api/v1`; `/ws` is the one WebSocket; `/` serves the web
//! client when one is built.

mod account;
mod account_data;
mod admin_users;
mod backup;
mod banlists;
mod client;
mod email;
mod error;
mod federation_admin;
mod links;
mod media;
mod messages;
mod meta;
mod moderation;
mod notifications;
mod oauth;
mod operator;
mod passkeys;
mod push;
mod ranges;
mod ratelimit;
mod render;
mod rooms;
mod scopes;
mod search;
mod session;
mod users;
mod ws;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use spaces_store::Store;

pub use client::ClientAddr;
pub use error::{ApiError, ApiResult};
pub use render::push_payload;
pub use session::Authed;

use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
pub use ratelimit::RateLimiter;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub engine: Engine,
    pub store: Store,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub sends: RateLimiter,
    /// Searches per user.
    pub searches: RateLimiter,
    /// Sign-in throttling per address, account and device.
    pub signin: crate::signin::Guard,
    /// Signs and checks device tokens (see `spaces_auth::DeviceKey`).
    pub device_key: spaces_auth::DeviceKey,
    /// Sign-ups per client address, checked before the node-wide `registrations`.
    pub registrations_per_ip: RateLimiter,
    pub registrations: RateLimiter,
    pub hasher: crate::hasher::Hasher,
    pub accounts: crate::services::accounts::Accounts,
    pub links: crate::services::links::Links,
    pub search: crate::services::search::Search,
    pub notify: crate::services::notify::Notify,
    /// Web Push; `None` when `push.enabled` is off.
    pub push: Option<crate::services::push::Push>,
    /// Email; `None` when no SMTP relay is configured.
    pub email: Option<crate::services::email::Email>,
    pub backups: crate::services::backup::Backups,
    pub media: crate::services::media::Media,
    /// Exactly-once sends by client transaction id.
    pub txns: crate::services::txns::Txns,
    pub passkeys: crate::services::passkeys::Passkeys,
    /// The OAuth2 / OpenID Connect provider.
    pub oidc: crate::services::oidc::Oidc,
    pub moderation: crate::services::moderation::Moderation,
    pub ban_lists: crate::services::banlists::BanLists,
    pub federation: crate::peering::Federation,
    pub web_dir: Option<PathBuf>,
    /// Flips to true when the node stops: WebSockets close.
    pub stopped: tokio::sync::watch::Receiver<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

/// Every route. Kept in one table so the OpenAPI test can compare it with
/// docs/spec/openapi.json.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/passkey/begin"),
    ("POST", "/api/v1/auth/passkey/finish"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/{session_id}"),
    ("GET", "/api/v1/passkeys"),
    ("POST", "/api/v1/passkeys/register/begin"),
    ("POST", "/api/v1/passkeys/register/finish"),
    ("PATCH", "/api/v1/passkeys/{passkey_id}"),
    ("DELETE", "/api/v1/passkeys/{passkey_id}"),
    ("GET", "/api/v1/sign-in-policy"),
    ("PUT", "/api/v1/sign-in-policy"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/profile"),
    ("PUT", "/api/v1/profile"),
    ("GET", "/api/v1/users/{user_id}/profile"),
    ("GET", "/api/v1/settings"),
    ("PUT", "/api/v1/settings"),
    ("GET", "/api/v1/contacts"),
    ("PUT", "/api/v1/contacts/{user_id}"),
    ("DELETE", "/api/v1/contacts/{user_id}"),
    ("POST", "/api/v1/admin/invite-tokens"),
    ("GET", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users/{username}/suspend"),
    ("POST", "/api/v1/admin/users/{username}/reactivate"),
    ("POST", "/api/v1/admin/users/{username}/deactivate"),
    ("PUT", "/api/v1/admin/users/{username}/role"),
    ("PUT", "/api/v1/admin/users/{username}/password"),
    ("GET", "/api/v1/admin/node"),
    ("PUT", "/api/v1/admin/registration"),
    ("GET", "/api/v1/admin/rooms"),
    ("GET", "/api/v1/admin/rooms/{room_id}/members"),
    ("POST", "/api/v1/admin/rooms/{room_id}/shutdown"),
    ("GET", "/api/v1/admin/federation"),
    ("POST", "/api/v1/admin/backup"),
    ("POST", "/api/v1/admin/federation/dial"),
    ("PUT", "/api/v1/admin/federation/blocks/{node_id}"),
    ("DELETE", "/api/v1/admin/federation/blocks/{node_id}"),
    ("GET", "/api/v1/admin/moderation"),
    ("POST", "/api/v1/moderation/score"),
    ("GET", "/api/v1/rooms"),
    ("POST", "/api/v1/rooms"),
    ("POST", "/api/v1/dms"),
    ("GET", "/api/v1/directory"),
    ("GET", "/api/v1/search"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/notifications"),
    ("GET", "/api/v1/notifications/unread"),
    ("POST", "/api/v1/notifications/read"),
    ("POST", "/api/v1/notifications/{id}/read"),
    ("GET", "/api/v1/notifications/settings"),
    ("PUT", "/api/v1/notifications/settings"),
    ("GET", "/api/v1/push/subscriptions"),
    ("POST", "/api/v1/push/subscriptions"),
    ("DELETE", "/api/v1/push/subscriptions"),
    ("GET", "/api/v1/rooms/{room_id}"),
    ("PATCH", "/api/v1/rooms/{room_id}"),
    ("GET", "/api/v1/rooms/{room_id}/members"),
    ("POST", "/api/v1/rooms/{room_id}/join"),
    ("POST", "/api/v1/rooms/{room_id}/leave"),
    ("POST", "/api/v1/rooms/{room_id}/invite"),
    ("POST", "/api/v1/rooms/{room_id}/kick"),
    ("POST", "/api/v1/rooms/{room_id}/ban"),
    ("POST", "/api/v1/rooms/{room_id}/unban"),
    ("PUT", "/api/v1/rooms/{room_id}/roles/{role_id}"),
    ("DELETE", "/api/v1/rooms/{room_id}/roles/{role_id}"),
    ("PUT", "/api/v1/rooms/{room_id}/members/{user_id}/roles"),
    ("PUT", "/api/v1/rooms/{room_id}/members/{user_id}/timeout"),
    ("GET", "/api/v1/rooms/{room_id}/messages"),
    ("POST", "/api/v1/rooms/{room_id}/messages"),
    ("PATCH", "/api/v1/rooms/{room_id}/messages/{event_id}"),
    ("DELETE", "/api/v1/rooms/{room_id}/messages/{event_id}"),
    ("GET", "/api/v1/rooms/{room_id}/threads/{event_id}"),
    ("GET", "/api/v1/rooms/{room_id}/moderation/queue"),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/moderation/queue/{event_id}",
    ),
    ("POST", "/api/v1/rooms/{room_id}/messages/{event_id}/reveal"),
    ("POST", "/api/v1/rooms/{room_id}/messages/{event_id}/report"),
    ("GET", "/api/v1/rooms/{room_id}/ban_list"),
    ("POST", "/api/v1/rooms/{room_id}/ban_list"),
    (
        "POST",
        "/api/v1/rooms/{room_id}/messages/{event_id}/reactions",
    ),
    (
        "DELETE",
        "/api/v1/rooms/{room_id}/messages/{event_id}/reactions/{key}",
    ),
    ("POST", "/api/v1/rooms/{room_id}/read"),
    ("POST", "/api/v1/rooms/{room_id}/typing"),
    ("POST", "/api/v1/rooms/{room_id}/invite-links"),
    ("GET", "/api/v1/invite-links/{code}"),
    ("POST", "/api/v1/invite-links/{code}/join"),
    ("POST", "/api/v1/media"),
    ("GET", "/api/v1/media/{hash}"),
    ("GET", "/api/v1/media/{hash}/thumbnail"),
    ("GET", "/api/v1/account/export"),
    ("DELETE", "/api/v1/account"),
    ("GET", "/api/v1/oauth2/authorization"),
    ("POST", "/api/v1/oauth2/authorization"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oauth2/jwks"),
    ("GET", "/oauth2/authorize"),
    ("POST", "/oauth2/token"),
    ("GET", "/oauth2/userinfo"),
    ("POST", "/oauth2/userinfo"),
    ("POST", "/oauth2/revoke"),
    ("GET", "/api/v1/account/email"),
    ("PUT", "/api/v1/account/email"),
    ("PATCH", "/api/v1/account/email"),
    ("DELETE", "/api/v1/account/email"),
    ("GET", "/api/v1/account/email/verify"),
    ("POST", "/api/v1/account/email/verify"),
    ("GET", "/api/v1/account/email/unsubscribe"),
    ("POST", "/api/v1/account/email/unsubscribe"),
    ("POST", "/api/v1/account/password/reset"),
    ("POST", "/api/v1/account/password/reset/confirm"),
    ("GET", "/ws"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
];

pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let api = Router::new()
        .route("/api/v1/auth/register", post(session::register))
        .route("/api/v1/auth/login", post(session::login))
        .route("/api/v1/auth/refresh", post(session::refresh))
        .route("/api/v1/auth/logout", post(session::logout))
        .route("/api/v1/auth/passkey/begin", post(passkeys::signin_begin))
        .route("/api/v1/auth/passkey/finish", post(passkeys::signin_finish))
        .route("/api/v1/passkeys", get(passkeys::list))
        .route(
            "/api/v1/passkeys/register/begin",
            post(passkeys::register_begin),
        )
        .route(
            "/api/v1/passkeys/register/finish",
            post(passkeys::register_finish),
        )
        .route(
            "/api/v1/passkeys/{passkey_id}",
            patch(passkeys::rename).delete(passkeys::remove),
        )
        .route(
            "/api/v1/sign-in-policy",
            get(passkeys::get_policy).put(passkeys::put_policy),
        )
        .route("/api/v1/sessions", get(session::list))
        .route("/api/v1/sessions/{session_id}", delete(session::revoke))
        .route("/api/v1/me", get(account::me))
        .route(
            "/api/v1/profile",
            get(account::get_profile).put(account::put_profile),
        )
        .route(
            "/api/v1/users/{user_id}/profile",
            get(account::user_profile),
        )
        .route(
            "/api/v1/settings",
            get(account::get_settings).put(account::put_settings),
        )
        .route("/api/v1/contacts", get(account::contacts))
        .route(
            "/api/v1/contacts/{user_id}",
            put(account::add_contact).delete(account::remove_contact),
        )
        .route(
            "/api/v1/admin/invite-tokens",
            post(session::create_invite_token),
        )
        .route("/api/v1/admin/users", get(admin_users::list))
        .route(
            "/api/v1/admin/users/{username}/suspend",
            post(admin_users::suspend),
        )
        .route(
            "/api/v1/admin/users/{username}/reactivate",
            post(admin_users::reactivate),
        )
        .route(
            "/api/v1/admin/users/{username}/deactivate",
            post(admin_users::deactivate),
        )
        .route(
            "/api/v1/admin/users/{username}/role",
            put(admin_users::set_role),
        )
        .route(
            "/api/v1/admin/users/{username}/password",
            put(admin_users::reset_password),
        )
        .route("/api/v1/admin/node", get(operator::node))
        .route(
            "/api/v1/admin/registration",
            put(operator::set_registration),
        )
        .route("/api/v1/admin/rooms", get(operator::rooms))
        .route(
            "/api/v1/admin/rooms/{room_id}/members",
            get(operator::members),
        )
        .route(
            "/api/v1/admin/rooms/{room_id}/shutdown",
            post(operator::shutdown),
        )
        .route("/api/v1/admin/federation", get(federation_admin::status))
        .route("/api/v1/admin/backup", post(backup::backup))
        .route(
            "/api/v1/admin/federation/dial",
            post(federation_admin::dial),
        )
        .route(
            "/api/v1/admin/federation/blocks/{node_id}",
            put(federation_admin::block).delete(federation_admin::unblock),
        )
        .route("/api/v1/admin/moderation", get(moderation::status))
        .route("/api/v1/moderation/score", post(moderation::score))
        .route("/api/v1/rooms", get(rooms::list).post(rooms::create))
        .route("/api/v1/dms", post(rooms::create_dm))
        .route("/api/v1/directory", get(rooms::directory))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/users", get(users::search))
        .route("/api/v1/notifications", get(notifications::list))
        .route("/api/v1/notifications/unread", get(notifications::unread))
        .route(
            "/api/v1/notifications/read",
            post(notifications::mark_all_read),
        )
        .route(
            "/api/v1/notifications/{id}/read",
            post(notifications::mark_read),
        )
        .route(
            "/api/v1/notifications/settings",
            get(notifications::settings).put(notifications::put_settings),
        )
        .route(
            "/api/v1/push/subscriptions",
            get(push::list)
                .post(push::subscribe)
                .delete(push::unsubscribe),
        )
        .route(
            "/api/v1/rooms/{room_id}",
            get(rooms::get).patch(rooms::update),
        )
        .route("/api/v1/rooms/{room_id}/members", get(rooms::members))
        .route("/api/v1/rooms/{room_id}/join", post(rooms::join))
        .route("/api/v1/rooms/{room_id}/leave", post(rooms::leave))
        .route("/api/v1/rooms/{room_id}/invite", post(rooms::invite))
        .route("/api/v1/rooms/{room_id}/kick", post(rooms::kick))
        .route("/api/v1/rooms/{room_id}/ban", post(rooms::ban))
        .route("/api/v1/rooms/{room_id}/unban", post(rooms::unban))
        .route(
            "/api/v1/rooms/{room_id}/roles/{role_id}",
            put(rooms::put_role).delete(rooms::delete_role),
        )
        .route(
            "/api/v1/rooms/{room_id}/members/{user_id}/roles",
            put(rooms::set_member_roles),
        )
        .route(
            "/api/v1/rooms/{room_id}/members/{user_id}/timeout",
            put(rooms::timeout),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages",
            get(messages::history).post(messages::send),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages/{event_id}",
            patch(messages::edit).delete(messages::redact),
        )
        .route(
            "/api/v1/rooms/{room_id}/threads/{event_id}",
            get(messages::thread),
        )
        .route(
            "/api/v1/rooms/{room_id}/moderation/queue",
            get(moderation::queue),
        )
        .route(
            "/api/v1/rooms/{room_id}/moderation/queue/{event_id}",
            delete(moderation::resolve),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages/{event_id}/reveal",
            post(moderation::reveal),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages/{event_id}/report",
            post(moderation::report),
        )
        .route(
            "/api/v1/rooms/{room_id}/ban_list",
            get(banlists::list).post(banlists::put_entry),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages/{event_id}/reactions",
            post(messages::react),
        )
        .route(
            "/api/v1/rooms/{room_id}/messages/{event_id}/reactions/{key}",
            delete(messages::unreact),
        )
        .route("/api/v1/rooms/{room_id}/read", post(messages::read))
        .route("/api/v1/rooms/{room_id}/typing", post(messages::typing))
        .route("/api/v1/rooms/{room_id}/invite-links", post(links::create))
        .route("/api/v1/invite-links/{code}", get(links::preview))
        .route("/api/v1/invite-links/{code}/join", post(links::redeem))
        .route("/api/v1/media", post(media::upload))
        .route("/api/v1/media/{hash}", get(media::download))
        .route("/api/v1/media/{hash}/thumbnail", get(media::thumbnail))
        .route("/api/v1/account/export", get(account_data::export))
        .route("/api/v1/account", delete(account_data::delete))
        .route(
            "/api/v1/oauth2/authorization",
            get(oauth::consent_view).post(oauth::consent_decide),
        )
        .route("/.well-known/openid-configuration", get(oauth::discovery))
        .route("/oauth2/jwks", get(oauth::jwks))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route("/oauth2/token", post(oauth::token))
        .route(
            "/oauth2/userinfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route("/oauth2/revoke", post(oauth::revoke))
        .route(
            "/api/v1/account/email",
            get(email::get)
                .put(email::put)
                .patch(email::patch)
                .delete(email::delete),
        )
        .route(
            "/api/v1/account/email/verify",
            get(email::verify_link).post(email::verify),
        )
        .route(
            "/api/v1/account/email/unsubscribe",
            get(email::unsubscribe_page).post(email::unsubscribe),
        )
        .route("/api/v1/account/password/reset", post(email::reset))
        .route(
            "/api/v1/account/password/reset/confirm",
            post(email::reset_confirm),
        )
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/api/openapi.json", get(meta::openapi))
        .fallback(meta::fallback)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), observe));
    api.with_state(state)
}

/// Per-request span and counters.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let span =
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path());
    let response = tracing::Instrument::instrument(next.run(request), span).await;
    state.metrics.http_requests.add(1);
    if response.status().is_client_error() {
        state.metrics.http_client_errors.add(1);
    } else if response.status().is_server_error() {
        state.metrics.http_server_errors.add(1);
    }
    response
}
