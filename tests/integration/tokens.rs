//! Opaque access tokens: their shape, what a refresh does to the earlier
//! ones, expiry, tampering, and a WebSocket closed the moment its session
//! ends.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{User, Ws, node};

/// How long a node with one-second access tokens gets to refuse one.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(15);

/// `a1.<session id>.<secret>`: the session id the token set names, and 43
/// base64url characters.
#[tokio::test]
async fn access_tokens_are_opaque_and_name_their_session() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let (prefix, rest) = alice.access.split_at(3);
    assert_eq!(prefix, "a1.");
    let (session, secret) = rest.split_once('.').expect("a dot after the session id");
    assert_eq!(session, alice.session);
    assert_eq!(secret.len(), 43, "{secret}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{secret}"
    );
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);

    // One character of the secret changed: not this session's token, and
    // the session goes on.
    let mut forged = alice.access.clone();
    let last = if forged.ends_with('A') { "B" } else { "A" };
    forged.replace_range(forged.len() - 1.., last);
    node.get("/api/v1/me", Some(&forged))
        .await
        .error(401, "bad_token");
    // The refresh token is no access token, nor the reverse.
    node.get("/api/v1/me", Some(&alice.refresh))
        .await
        .error(401, "bad_token");
    node.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": alice.access }),
    )
    .await
    .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
}

/// A refresh leaves the access token before it working (a request racing
/// the refresh still passes) and ends the one before that.
#[tokio::test]
async fn a_session_honours_its_two_newest_access_tokens() {
    let (_dir, node) = node(&[]).await;
    let first = node.register("alice").await;
    let refresh = |token: &str| {
        node.post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token }),
        )
    };
    let second = User::from_tokens("alice", &refresh(&first.refresh).await.expect(200));
    assert_ne!(second.access, first.access);
    for token in [&first.access, &second.access] {
        node.get("/api/v1/me", Some(token)).await.expect(200);
    }
    let third = User::from_tokens("alice", &refresh(&second.refresh).await.expect(200));
    node.get("/api/v1/me", Some(&first.access))
        .await
        .error(401, "bad_token");
    for token in [&second.access, &third.access] {
        node.get("/api/v1/me", Some(token)).await.expect(200);
    }
}

/// Past `limits.access_token_secs` a token is `token_expired`, and a
/// refresh gives a working one.
#[tokio::test]
async fn an_expired_access_token_is_refused_and_a_refresh_renews_it() {
    let (_dir, node) = node(&[("SPACES__LIMITS__ACCESS_TOKEN_SECS", "1")]).await;
    let alice = node.register("alice").await;
    let deadline = Instant::now() + EXPIRY_DEADLINE;
    loop {
        let reply = node.get("/api/v1/me", Some(&alice.access)).await;
        if reply.status == 401 {
            reply.error(401, "token_expired");
            break;
        }
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renewed = node
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": alice.refresh }),
        )
        .await
        .expect(200);
    let renewed = User::from_tokens("alice", &renewed);
    // The node's clock may tick to the next second at once: either answer
    // shows the token is this session's and was checked.
    let reply = node.get("/api/v1/me", Some(&renewed.access)).await;
    assert!(
        reply.status == 200 || reply.code() == Some("token_expired"),
        "{reply:?}"
    );
}

/// Ending a session closes its WebSocket at once, not at the next
/// heartbeat (20 s, more than the harness waits for a frame); other
/// sessions' sockets stay open.
#[tokio::test]
async fn a_websocket_closes_when_its_session_ends() {
    let (_dir, node) = node(&[]).await;
    let phone = node.register("alice").await;
    let laptop = node.login("alice", crate::support::PASSWORD).await;
    let (mut phone_ws, _) = Ws::auth(&node, &phone.access, 0).await;
    let (mut laptop_ws, _) = Ws::auth(&node, &laptop.access, 0).await;

    node.delete(
        &format!("/api/v1/sessions/{}", phone.session),
        Some(&laptop.access),
    )
    .await
    .expect(204);
    assert_eq!(phone_ws.closed().await, Some(4001));

    laptop_ws.send_text(r#"{"type":"ping"}"#).await;
    while laptop_ws.next_json().await["type"] != "pong" {}
    node.post("/api/v1/auth/logout", Some(&laptop.access), json!({}))
        .await
        .expect(204);
    assert_eq!(laptop_ws.closed().await, Some(4001));
}
