//! Accounts and sessions: registration in every mode, log-in, refresh
//! rotation and reuse detection, log-out, sessions, profiles, settings,
//! contacts.

use serde_json::json;

use crate::support::{Node, PASSWORD, User, admin, data_dir, node};

#[tokio::test]
async fn open_registration_validates_input_and_makes_the_first_user_admin() {
    let (_dir, node) = node(&[]).await;
    let register = |username: &str, password: &str| {
        node.post(
            "/api/v1/auth/register",
            None,
            json!({ "username": username, "password": password }),
        )
    };
    let first = register("alice", PASSWORD).await.expect(201);
    assert_eq!(
        first["is_admin"], true,
        "the first account administers the node"
    );
    assert_eq!(first["token_type"], "Bearer");
    let alice = User::from_tokens("alice", &first);
    assert_eq!(alice.id, format!("@alice:{}", node.node_id));
    let second = register("bob", PASSWORD).await.expect(201);
    assert_eq!(second["is_admin"], false);

    // Usernames are case-folded, so "ALICE" is alice.
    register("alice", PASSWORD)
        .await
        .error(409, "username_taken");
    register("ALICE", PASSWORD)
        .await
        .error(409, "username_taken");
    for bad in ["", "has space", "semi;colon", "émile", &"x".repeat(33)] {
        register(bad, PASSWORD).await.error(400, "bad_username");
    }
    register("carol", "short").await.error(400, "weak_password");
    register("carol", &"p".repeat(2000))
        .await
        .error(400, "weak_password");
    node.post(
        "/api/v1/auth/register",
        None,
        json!({ "username": "carol", "password": PASSWORD, "surprise": 1 }),
    )
    .await
    .error(400, "bad_field");

    let me = node
        .get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(me["user_id"], alice.id.as_str());
    assert_eq!(me["username"], "alice");
    assert_eq!(me["node_id"], node.node_id.as_str());
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["session_id"], alice.session.as_str());
}

#[tokio::test]
async fn login_checks_the_password_and_rate_limits_guessing() {
    let (_dir, node) = node(&[]).await;
    node.register("alice").await;
    let login = |username: &str, password: &str| {
        node.post(
            "/api/v1/auth/login",
            None,
            json!({ "username": username, "password": password }),
        )
    };
    login("alice", "wrong password")
        .await
        .error(401, "bad_credentials");
    // An unknown user gets the same answer: no username oracle.
    login("nobody", PASSWORD)
        .await
        .error(401, "bad_credentials");
    let alice = node.login("ALICE", PASSWORD).await;
    assert!(alice.id.starts_with("@alice:"));

    // Twenty guesses at once from one address: its back-off on this username
    // (after 5 failures) lets some through and refuses the rest, whatever the
    // password. hardening_auth.rs has the rest of the sign-in limits.
    let guesses: Vec<_> = (0..20).map(|_| login("bob", "guess guess")).collect();
    let replies = futures_util::future::join_all(guesses).await;
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert!(
        limited > 0 && limited < 20,
        "some guesses are refused: {limited} of 20"
    );
    for reply in replies {
        match reply.status {
            429 => reply.error(429, "rate_limited"),
            _ => reply.error(401, "bad_credentials"),
        }
    }
    // Another username has its own bucket.
    login("alice", "wrong again")
        .await
        .error(401, "bad_credentials");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let (_dir, node) = node(&[]).await;
    let first = node.register("alice").await;
    let refresh = |token: &str| {
        node.post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token }),
        )
    };
    let rotated = refresh(&first.refresh).await.expect(200);
    let second = User::from_tokens("alice", &rotated);
    assert_eq!(second.session, first.session, "refresh keeps the session");
    assert_ne!(second.refresh, first.refresh, "refresh rotates the token");
    node.get("/api/v1/me", Some(&second.access))
        .await
        .expect(200);

    // The old refresh token again: someone holds a copy. The session ends
    // for both holders.
    refresh(&first.refresh)
        .await
        .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&second.access))
        .await
        .error(401, "session_revoked");
    node.get("/api/v1/me", Some(&first.access))
        .await
        .error(401, "session_revoked");
    refresh(&second.refresh)
        .await
        .error(401, "bad_refresh_token");

    refresh("no-dot-in-here")
        .await
        .error(401, "bad_refresh_token");
    refresh("unknown.session")
        .await
        .error(401, "bad_refresh_token");
    // A fresh log-in works again.
    let third = node.login("alice", PASSWORD).await;
    node.get("/api/v1/me", Some(&third.access))
        .await
        .expect(200);
}

#[tokio::test]
async fn sessions_are_listed_revoked_and_ended_by_logout() {
    let (_dir, node) = node(&[]).await;
    let phone = node.register("alice").await;
    let laptop_tokens = node
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "username": "alice", "password": PASSWORD, "device": "laptop" }),
        )
        .await
        .expect(200);
    let laptop = User::from_tokens("alice", &laptop_tokens);
    let bob = node.register("bob").await;

    let sessions = node
        .get("/api/v1/sessions", Some(&laptop.access))
        .await
        .expect(200);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["session_id"], laptop.session.as_str());
    assert_eq!(current[0]["device"], "laptop");

    // Bob cannot end Alice's session, nor can anyone end one that is not there.
    node.delete(
        &format!("/api/v1/sessions/{}", phone.session),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_session");
    node.delete("/api/v1/sessions/nope", Some(&laptop.access))
        .await
        .error(404, "unknown_session");
    node.get("/api/v1/me", Some(&phone.access))
        .await
        .expect(200);

    // From the laptop, end the phone's session: its token dies at once.
    node.delete(
        &format!("/api/v1/sessions/{}", phone.session),
        Some(&laptop.access),
    )
    .await
    .expect(204);
    node.get("/api/v1/me", Some(&phone.access))
        .await
        .error(401, "session_revoked");
    let left = node
        .get("/api/v1/sessions", Some(&laptop.access))
        .await
        .expect(200);
    assert_eq!(left.as_array().unwrap().len(), 1);

    // Log out: the access token and the refresh token are both done.
    node.post("/api/v1/auth/logout", Some(&laptop.access), json!({}))
        .await
        .expect(204);
    node.get("/api/v1/me", Some(&laptop.access))
        .await
        .error(401, "session_revoked");
    node.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": laptop.refresh }),
    )
    .await
    .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&bob.access)).await.expect(200);
}

#[tokio::test]
async fn profile_settings_and_contacts_belong_to_their_user() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let token = Some(alice.access.as_str());

    let empty = node.get("/api/v1/profile", token).await.expect(200);
    assert_eq!(empty["display_name"], serde_json::Value::Null);
    // An avatar is the hash of an uploaded image (tests/integration/avatars.rs).
    node.put("/api/v1/profile", token, json!({ "avatar": "blob:abc" }))
        .await
        .error(400, "bad_hash");
    let profile =
        json!({ "display_name": "Alice A.", "bio": "line one\nline two", "avatar": null });
    assert_eq!(
        node.put("/api/v1/profile", token, profile.clone())
            .await
            .expect(200),
        profile
    );
    assert_eq!(
        node.get("/api/v1/profile", token).await.expect(200),
        profile
    );
    // Others read it by user id.
    let seen = node
        .get(
            &format!("/api/v1/users/{}/profile", alice.id),
            Some(&bob.access),
        )
        .await
        .expect(200);
    assert_eq!(seen["display_name"], "Alice A.");
    node.get(
        &format!("/api/v1/users/@ghost:{}/profile", node.node_id),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_user");
    node.get("/api/v1/users/not-a-user/profile", Some(&bob.access))
        .await
        .error(400, "bad_user_id");
    node.put(
        "/api/v1/profile",
        token,
        json!({ "display_name": "x".repeat(65) }),
    )
    .await
    .error(400, "too_long");
    node.put(
        "/api/v1/profile",
        token,
        json!({ "display_name": "bell\u{7}" }),
    )
    .await
    .error(400, "bad_text");
    assert_eq!(
        node.get("/api/v1/profile", token).await.expect(200),
        profile,
        "a refused update changes nothing"
    );

    // Settings: any JSON object, kept as sent, private to the user.
    assert_eq!(
        node.get("/api/v1/settings", token).await.expect(200),
        json!({})
    );
    let settings = json!({ "theme": "dark", "notify": { "dm": true, "mentions": false } });
    node.put("/api/v1/settings", token, settings.clone())
        .await
        .expect(200);
    assert_eq!(
        node.get("/api/v1/settings", token).await.expect(200),
        settings
    );
    assert_eq!(
        node.get("/api/v1/settings", Some(&bob.access))
            .await
            .expect(200),
        json!({})
    );
    node.put("/api/v1/settings", token, json!(["not", "an", "object"]))
        .await
        .error(400, "bad_field");
    // Settings are capped at 64 KiB: preferences, not storage.
    node.put(
        "/api/v1/settings",
        token,
        json!({ "big": "x".repeat(70 * 1024) }),
    )
    .await
    .error(400, "too_long");

    // Contacts.
    let contact = format!("/api/v1/contacts/{}", bob.id);
    node.put(&contact, token, json!({})).await.expect(204);
    assert_eq!(
        node.get("/api/v1/contacts", token).await.expect(200),
        json!([bob.id])
    );
    assert_eq!(
        node.get("/api/v1/contacts", Some(&bob.access))
            .await
            .expect(200),
        json!([])
    );
    node.put(&format!("/api/v1/contacts/{}", alice.id), token, json!({}))
        .await
        .error(400, "bad_value");
    node.put("/api/v1/contacts/bob", token, json!({}))
        .await
        .error(400, "bad_user_id");
    node.delete(&contact, token).await.expect(204);
    node.delete(&contact, token)
        .await
        .error(404, "unknown_contact");
    assert_eq!(
        node.get("/api/v1/contacts", token).await.expect(200),
        json!([])
    );
}

#[tokio::test]
async fn invite_mode_needs_a_token_from_the_cli_or_an_admin() {
    let dir = data_dir();
    // Minted on the stopped node's data directory, before the first start.
    let cli_token = admin(dir.path(), &["invite-token"], "").await;
    let cli_token = cli_token.trim();
    assert!(!cli_token.is_empty());
    let node = Node::start(dir.path(), &[("SPACES__REGISTRATION__MODE", "invite")]).await;
    let register = |username: &str, token: Option<&str>| {
        let mut body = json!({ "username": username, "password": PASSWORD });
        if let Some(token) = token {
            body["invite_token"] = json!(token);
        }
        node.post("/api/v1/auth/register", None, body)
    };
    register("alice", None).await.error(403, "bad_invite_token");
    register("alice", Some("made-up"))
        .await
        .error(403, "bad_invite_token");
    let first = register("alice", Some(cli_token)).await.expect(201);
    assert_eq!(first["is_admin"], true);
    let alice = User::from_tokens("alice", &first);
    // One use only.
    register("bob", Some(cli_token))
        .await
        .error(403, "bad_invite_token");

    // The admin mints a two-use token over HTTP.
    let minted = node
        .post(
            "/api/v1/admin/invite-tokens",
            Some(&alice.access),
            json!({ "uses": 2 }),
        )
        .await
        .expect(201);
    assert_eq!(minted["uses"], 2);
    let token = minted["token"].as_str().unwrap().to_owned();
    node.post(
        "/api/v1/admin/invite-tokens",
        Some(&alice.access),
        json!({ "uses": 0 }),
    )
    .await
    .error(400, "bad_value");
    let bob = User::from_tokens("bob", &register("bob", Some(&token)).await.expect(201));
    // Bob is no admin: he cannot mint.
    node.post("/api/v1/admin/invite-tokens", Some(&bob.access), json!({}))
        .await
        .error(403, "not_admin");
    register("carol", Some(&token)).await.expect(201);
    register("dave", Some(&token))
        .await
        .error(403, "bad_invite_token");
}

#[tokio::test]
async fn closed_mode_refuses_sign_ups_but_admin_made_users_log_in() {
    let dir = data_dir();
    let created = admin(dir.path(), &["create-user", "alice"], PASSWORD).await;
    assert!(created.contains("@alice:"), "{created}");
    let node = Node::start(dir.path(), &[("SPACES__REGISTRATION__MODE", "closed")]).await;
    node.post(
        "/api/v1/auth/register",
        None,
        json!({ "username": "bob", "password": PASSWORD }),
    )
    .await
    .error(403, "registration_closed");
    let alice = node.login("alice", PASSWORD).await;
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
}
