//! What a third-party OAuth client's token may do: the scope each route
//! needs, checked by the `Authed` extractor for every authenticated route
//! (first-party sessions have no scopes and are not checked).
//!
//! - Account-level routes are first-party only, whatever the scopes:
//!   sessions, passkeys, sign-in policy, account export and deletion, push
//!   subscriptions, node administration, sign-out, and the consent API
//!   itself (a client must not approve its own requests).
//! - `GET /api/v1/me` and `GET /api/v1/profile`: `profile` or `read`.
//! - `/oauth2/userinfo`: `openid`.
//! - Any other `GET` or `HEAD`: `read`; any other method: `send`.
//!
//! The WebSocket (`ws.rs`) asks for `read` to connect and `send` to report
//! presence.

use axum::http::{Method, StatusCode};
use spaces_oidc::{Scope, Scopes};

use super::ApiError;

/// Path prefixes (whole segments) no OAuth client's token may use.
const FIRST_PARTY_ONLY: &[&str] = &[
    "/api/v1/admin",
    "/api/v1/auth",
    "/api/v1/sessions",
    "/api/v1/passkeys",
    "/api/v1/sign-in-policy",
    "/api/v1/account",
    "/api/v1/push",
    "/api/v1/oauth2",
];

/// What a route needs of an OAuth token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    FirstParty,
    /// Any one of these.
    AnyOf(&'static [Scope]),
}

pub fn need(method: &Method, path: &str) -> Need {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if FIRST_PARTY_ONLY.iter().any(|prefix| under(prefix)) {
        return Need::FirstParty;
    }
    let reads = *method == Method::GET || *method == Method::HEAD;
    if path.starts_with("/oauth2/") {
        return Need::AnyOf(&[Scope::Openid]);
    }
    if reads && (path == "/api/v1/me" || path == "/api/v1/profile") {
        return Need::AnyOf(&[Scope::Profile, Scope::Read]);
    }
    if reads {
        Need::AnyOf(&[Scope::Read])
    } else {
        Need::AnyOf(&[Scope::Send])
    }
}

/// Refuses a route `scopes` do not reach: 403 `insufficient_scope`.
pub fn check(method: &Method, path: &str, scopes: Scopes) -> Result<(), ApiError> {
    match need(method, path) {
        Need::FirstParty => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "a third-party client's token cannot use this route",
        )),
        Need::AnyOf(any) if any.iter().any(|scope| scopes.has(*scope)) => Ok(()),
        Need::AnyOf(any) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!(
                "this token's scopes ({scopes}) do not include {}",
                any.iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_table() {
        let read = Need::AnyOf(&[Scope::Read]);
        let send = Need::AnyOf(&[Scope::Send]);
        let cases = [
            (Method::GET, "/api/v1/rooms", read),
            (Method::GET, "/api/v1/rooms/x/messages", read),
            (Method::POST, "/api/v1/rooms/x/messages", send),
            (Method::PUT, "/api/v1/profile", send),
            (
                Method::GET,
                "/api/v1/profile",
                Need::AnyOf(&[Scope::Profile, Scope::Read]),
            ),
            (
                Method::GET,
                "/api/v1/me",
                Need::AnyOf(&[Scope::Profile, Scope::Read]),
            ),
            (
                Method::GET,
                "/oauth2/userinfo",
                Need::AnyOf(&[Scope::Openid]),
            ),
            (Method::GET, "/api/v1/sessions", Need::FirstParty),
            (Method::DELETE, "/api/v1/sessions/abc", Need::FirstParty),
            (Method::GET, "/api/v1/account/export", Need::FirstParty),
            (Method::DELETE, "/api/v1/account", Need::FirstParty),
            (Method::POST, "/api/v1/admin/backup", Need::FirstParty),
            (Method::POST, "/api/v1/auth/logout", Need::FirstParty),
            (
                Method::POST,
                "/api/v1/oauth2/authorization",
                Need::FirstParty,
            ),
            (Method::GET, "/api/v1/passkeys", Need::FirstParty),
            (Method::GET, "/api/v1/push/subscriptions", Need::FirstParty),
            // Whole segments only.
            (Method::GET, "/api/v1/adminx", read),
        ];
        for (method, path, expected) in cases {
            assert_eq!(need(&method, path), expected, "{method} {path}");
        }
        let read_only = Scopes::parse("openid read").unwrap();
        assert!(check(&Method::GET, "/api/v1/rooms", read_only).is_ok());
        assert!(check(&Method::POST, "/api/v1/rooms/x/messages", read_only).is_err());
        assert!(check(&Method::GET, "/api/v1/sessions", Scopes::ALL).is_err());
    }
}
