//! Bad input gets a clear JSON error (invariant 5); the route table is the
//! router; health, metrics and the API description are served.

use reqwest::Method;
use serde_json::{Value, json};
use spaces_node::api::ROUTES;

use crate::support::{FAST_SENDS, node};

/// A well-formed id that names nothing: 32 zero bytes in base32.
fn absent(prefix: char) -> String {
    format!("{prefix}{}", "a".repeat(52))
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_codes() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let token = Some(alice.access.as_str());
    let room = node.create_room(&alice, json!({ "name": "Errors" })).await;
    let messages = format!("/api/v1/rooms/{room}/messages");

    // Bodies.
    node.raw(
        Method::POST,
        &messages,
        token,
        Some("application/json"),
        b"{\"body\": \"unterminated".to_vec(),
    )
    .await
    .error(400, "bad_json");
    node.post(&messages, token, json!({ "body": 5 }))
        .await
        .error(400, "bad_field");
    node.post(&messages, token, json!({}))
        .await
        .error(400, "bad_field");
    node.post("/api/v1/rooms", token, json!({ "name": ["a"] }))
        .await
        .error(400, "bad_field");
    node.post(&messages, token, json!("body"))
        .await
        .error(400, "bad_field");
    node.raw(
        Method::POST,
        &messages,
        token,
        None,
        b"{\"body\":\"hi\"}".to_vec(),
    )
    .await
    .error(415, "bad_content_type");
    // Over the body limit (256 KiB by default).
    let huge = json!({ "body": "x".repeat(300 * 1024) }).to_string();
    node.raw(
        Method::POST,
        &messages,
        token,
        Some("application/json"),
        huge.into_bytes(),
    )
    .await
    .error(413, "too_large");
    // Under the body limit but over the 64 KiB event limit.
    let reply = node
        .post(&messages, token, json!({ "body": "y".repeat(100 * 1024) }))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.code().is_some(), "{}", reply.text);

    // Ids.
    let unknown_room = absent('!');
    node.get(&format!("/api/v1/rooms/{unknown_room}"), token)
        .await
        .error(404, "unknown_room");
    node.get(&format!("/api/v1/rooms/{unknown_room}/messages"), token)
        .await
        .error(404, "unknown_room");
    node.post(
        &format!("/api/v1/rooms/{unknown_room}/messages"),
        token,
        json!({ "body": "into the void" }),
    )
    .await
    .error(404, "unknown_room");
    node.post(
        &format!("/api/v1/rooms/{unknown_room}/join"),
        token,
        json!({}),
    )
    .await
    .error(404, "unknown_room");
    for bad in ["general", "!short", "$aaaa", &absent('!').to_uppercase()] {
        node.get(&format!("/api/v1/rooms/{bad}"), token)
            .await
            .error(400, "bad_room_id");
    }
    node.post(
        "/api/v1/rooms/general/messages",
        token,
        json!({ "body": "x" }),
    )
    .await
    .error(400, "bad_room_id");
    node.patch(
        &format!("{messages}/{}", absent('$')),
        token,
        json!({ "body": "edit nothing" }),
    )
    .await
    .error(400, "unknown_reference");
    node.patch(&format!("{messages}/nope"), token, json!({ "body": "x" }))
        .await
        .error(400, "bad_event_id");
    // Query strings are checked like bodies.
    node.get(&format!("{messages}?limit=many"), token)
        .await
        .error(400, "bad_query");
    node.get(&format!("{messages}?colour=blue"), token)
        .await
        .error(400, "bad_query");

    // Tokens.
    node.get("/api/v1/me", None)
        .await
        .error(401, "missing_token");
    node.raw(Method::GET, "/api/v1/rooms", None, None, Vec::new())
        .await
        .error(401, "missing_token");
    let basic = reqwest::Client::new()
        .get(node.url("/api/v1/me"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let body: Value = basic.json().await.unwrap();
    assert_eq!(body["code"], "missing_token");
    node.get("/api/v1/me", Some("not.a.jwt"))
        .await
        .error(401, "bad_token");
    // A token from another node (same shape, other key) is not valid here.
    let (_other_dir, other) = crate::support::node(&[]).await;
    let stranger = other.register("alice").await;
    node.get("/api/v1/me", Some(&stranger.access))
        .await
        .error(401, "bad_token");

    // Routes and methods.
    let unknown = node.get("/api/v1/nothing/here", token).await;
    assert!(unknown.content_type.starts_with("application/json"));
    unknown.error(404, "unknown_route");
    node.delete("/api/v1/rooms", token)
        .await
        .error(405, "method_not_allowed");
    let ws = node.get("/ws", None).await;
    assert_eq!(ws.status / 100, 4, "a plain GET of /ws is refused");
    assert!(ws.code().is_some(), "as JSON: {}", ws.text);

    // Nothing above hurt the room.
    let history = node.history(&alice, &room, 50).await;
    assert_eq!(history.len(), 2, "create and name only: {history:?}");
}

#[tokio::test]
async fn sends_beyond_the_budget_are_rate_limited() {
    let (_dir, node) = node(&[
        ("SPACES__LIMITS__SENDS_PER_SEC", "1"),
        ("SPACES__LIMITS__SEND_BURST", "3"),
    ])
    .await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    // Creating the room takes one token of alice's three.
    let room = node
        .create_room(&alice, json!({ "visibility": "public" }))
        .await;
    let path = format!("/api/v1/rooms/{room}/messages");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let reply = node
            .post(
                &path,
                Some(&alice.access),
                json!({ "body": format!("{i}") }),
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert!(reply.text.contains("retry in"), "{}", reply.text);
            reply.error(429, "rate_limited");
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the burst is bounded: {statuses:?}"
    );
    // Budgets are per user.
    node.join(&bob, &room).await;
    node.send(&bob, &room, "my own budget").await;
}

#[tokio::test]
async fn health_metrics_and_openapi_are_served() {
    let (_dir, node) = node(&[]).await;
    let health = node.get("/healthz", None).await.expect(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["node_id"], node.node_id.as_str());

    let requests = node.metric("spaces_http_requests_total").await;
    let client_errors = node.metric("spaces_http_client_errors_total").await;
    let stored = node.metric("spaces_events_stored_total").await;
    let commits = node.metric("spaces_store_commits_total").await;
    assert_eq!(node.metric("spaces_rooms").await, 0);

    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "Counted" })).await;
    node.send(&alice, &room, "one").await;
    node.get("/api/v1/me", None)
        .await
        .error(401, "missing_token");

    assert!(node.metric("spaces_http_requests_total").await >= requests + 4);
    assert!(node.metric("spaces_http_client_errors_total").await > client_errors);
    // Create, name, message.
    assert_eq!(node.metric("spaces_events_stored_total").await, stored + 3);
    assert!(node.metric("spaces_store_commits_total").await >= commits + 2);
    assert_eq!(node.metric("spaces_rooms").await, 1);
    let text = node.get("/metrics", None).await;
    assert!(text.content_type.starts_with("text/plain"));
    assert!(
        text.text
            .contains("# TYPE spaces_http_requests_total counter")
    );

    let openapi = node.get("/api/openapi.json", None).await;
    assert_eq!(openapi.status, 200);
    assert!(openapi.content_type.starts_with("application/json"));
    assert!(
        openapi.body["openapi"].is_string(),
        "an OpenAPI document: {}",
        openapi.text
    );
    assert!(openapi.body["paths"].is_object());
}

#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let (_dir, node) = node(&[]).await;
    let fill = |path: &str| {
        path.replace("{room_id}", &absent('!'))
            .replace("{event_id}", &absent('$'))
            .replace("{user_id}", &format!("@someone:{}", node.node_id))
            .replace("{session_id}", "s")
            .replace("{role_id}", "1")
            .replace("{key}", "k")
    };
    for (method, path) in ROUTES {
        let method: Method = method.parse().unwrap();
        let reply = node
            .raw(method.clone(), &fill(path), None, None, Vec::new())
            .await;
        assert!(
            reply.status != 405 && reply.code() != Some("unknown_route"),
            "{method} {path} is in ROUTES but not served: {} {}",
            reply.status,
            reply.text
        );
        // Without a token, everything but sign-up, log-in, refresh, the
        // WebSocket (which authenticates in-band) and the meta routes says so.
        let open = (path.starts_with("/api/v1/auth/") && !path.ends_with("logout"))
            || matches!(*path, "/ws" | "/healthz" | "/metrics" | "/api/openapi.json")
            // The OAuth provider's public endpoints: clients authenticate
            // with their own credentials there, not a user's token.
            || *path == "/.well-known/openid-configuration"
            || matches!(*path, "/oauth2/jwks" | "/oauth2/authorize" | "/oauth2/token" | "/oauth2/revoke")
            // Mailed links and the password reset: the link or the mailed
            // token is the credential.
            || path.starts_with("/api/v1/account/email/verify")
            || path.starts_with("/api/v1/account/email/unsubscribe")
            || path.starts_with("/api/v1/account/password/reset");
        if !open {
            reply.error(401, "missing_token");
        }
    }
}
