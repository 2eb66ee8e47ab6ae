//! Authentication that cannot be turned against its users: a forged refresh
//! token does not end the session it names; sign-in limits throttle the
//! address that guesses, not the account's owner; sign-up limits are per
//! address before they are node-wide.

use serde_json::json;

use crate::support::{User, node};

/// `<victim's session id>.<anything>` is refused and leaves the session
/// working; an earlier refresh token the session really issued, presented
/// again, still ends it.
#[tokio::test]
async fn a_forged_refresh_token_leaves_the_victims_session_working() {
    let (_dir, node) = node(&[]).await;
    let victim = node.register("alice").await;
    let refresh = |token: &str| {
        node.post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token }),
        )
    };
    // The session id is public (it is in every access token): forge tokens
    // for it, before and after the session has rotated.
    let forged = |secret: &str| format!("{}.{secret}", victim.session);
    refresh(&forged("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .await
        .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&victim.access))
        .await
        .expect(200);
    let rotated = User::from_tokens("alice", &refresh(&victim.refresh).await.expect(200));
    for secret in ["x", "", "not-a-token-at-all", &"z".repeat(43)] {
        refresh(&forged(secret))
            .await
            .error(401, "bad_refresh_token");
    }
    node.get("/api/v1/me", Some(&rotated.access))
        .await
        .expect(200);
    // The owner's current token still rotates.
    let again = User::from_tokens("alice", &refresh(&rotated.refresh).await.expect(200));
    assert_eq!(again.session, victim.session);

    // Real reuse: a refresh token this session issued before. Both holders
    // are logged out.
    refresh(&victim.refresh)
        .await
        .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&again.access))
        .await
        .error(401, "session_revoked");
    refresh(&again.refresh)
        .await
        .error(401, "bad_refresh_token");
}
