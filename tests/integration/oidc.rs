//! The OAuth2 / OpenID Connect provider: clients registered with the admin
//! CLI, the code flow with PKCE through the consent API (driven over HTTP
//! with the user's own token, as the web client's consent page does),
//! tokens, ID tokens, userinfo, refresh rotation, revocation, the refusals,
//! and scopes enforced across the API and the WebSocket.
//!
//! When `SPACES_OIDC_PYTHON` names a Python with authlib (scripts/oidc-e2e.sh
//! installs it from PyPI), `authlib_drives_the_provider` also runs
//! scripts/oidc-authlib.py: a client library nobody here wrote does
//! discovery, the flow, ID-token verification against the JWKS, userinfo,
//! refresh, revocation and the refusals.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Frame, Node, PASSWORD, User, Ws, admin, data_dir};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A client registered with `spaces admin oauth-client add`.
#[derive(Debug)]
struct Client {
    id: String,
    secret: String,
}

/// A stopped data directory with one confidential client allowed `scopes`,
/// then a node on it with alice signed up.
async fn provider(scopes: &str) -> (tempfile::TempDir, Node, Client, User) {
    let dir = data_dir();
    let out = admin(
        dir.path(),
        &[
            "oauth-client",
            "add",
            "--name",
            "Test app",
            "--redirect-uri",
            REDIRECT,
            "--scopes",
            scopes,
        ],
        "",
    )
    .await;
    let field = |name: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .trim()
            .to_owned()
    };
    let client = Client {
        id: field("client_id "),
        secret: field("client_secret "),
    };
    let node = Node::start(dir.path(), crate::support::FAST_SENDS).await;
    let alice = node.register("alice").await;
    (dir, node, client, alice)
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(spaces_auth::hash_refresh_token(&verifier));
    (verifier, challenge)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET /oauth2/authorize` with these parameters: the status, the
/// `Location` header and the body.
async fn authorize(node: &Node, params: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let response = no_redirects()
        .get(node.url(&format!(
            "/oauth2/authorize?{}",
            serde_urlencoded::to_string(params).unwrap()
        )))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, location, body)
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// What the client asks for and must remember.
struct Request {
    verifier: String,
    params: Vec<(&'static str, String)>,
}

fn request(client: &Client, scope: &str) -> Request {
    let (verifier, challenge) = pkce();
    Request {
        verifier,
        params: vec![
            ("response_type", "code".into()),
            ("client_id", client.id.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("scope", scope.into()),
            ("state", "st-123".into()),
            ("nonce", "n-456".into()),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256".into()),
        ],
    }
}

/// The code flow up to the code: authorize, then the user's consent over
/// the consent API with their own token.
async fn code_for(node: &Node, user: &User, request: &Request) -> String {
    let params: Vec<(&str, &str)> = request
        .params
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let (status, location, body) = authorize(node, &params).await;
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    assert!(location.starts_with("/consent?"), "{location}");
    let query = location.trim_start_matches("/consent");
    let view = node
        .get(
            &format!("/api/v1/oauth2/authorization{query}"),
            Some(&user.access),
        )
        .await
        .expect(200);
    assert_eq!(view["client_name"], "Test app");
    let mut decision: serde_json::Map<String, Value> = query_of(&location)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    decision.insert("approve".into(), json!(true));
    let redirect = node
        .post(
            "/api/v1/oauth2/authorization",
            Some(&user.access),
            Value::Object(decision),
        )
        .await
        .expect(200);
    let to = redirect["redirect_to"].as_str().unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(to, "state").as_deref(), Some("st-123"));
    param(to, "code").expect("a code")
}

/// `POST /oauth2/token` with the client's credentials in the form.
async fn token(node: &Node, client: &Client, form: &[(&str, &str)]) -> crate::support::Reply {
    let mut pairs = form.to_vec();
    pairs.push(("client_id", &client.id));
    pairs.push(("client_secret", &client.secret));
    node.raw(
        Method::POST,
        "/oauth2/token",
        None,
        Some("application/x-www-form-urlencoded"),
        serde_urlencoded::to_string(&pairs).unwrap().into_bytes(),
    )
    .await
}

async fn redeem(node: &Node, client: &Client, code: &str, verifier: &str) -> crate::support::Reply {
    token(
        node,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[track_caller]
fn oauth_error(reply: crate::support::Reply, status: u16, error: &str) {
    assert_eq!(
        (reply.status, reply.body["error"].as_str()),
        (status, Some(error)),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_read_only_token_reads_but_cannot_send() {
    let (_dir, node, client, alice) = provider("openid profile read send").await;
    let room = node.create_room(&alice, json!({ "name": "Lobby" })).await;
    node.send(&alice, &room, "before").await;

    // Discovery and the JWKS.
    let discovery = node
        .get("/.well-known/openid-configuration", None)
        .await
        .expect(200);
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let issuer = discovery["issuer"].as_str().unwrap().to_owned();
    let jwks = node.get("/oauth2/jwks", None).await.expect(200);
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();

    let request = request(&client, "openid profile read");
    let code = code_for(&node, &alice, &request).await;
    let tokens = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    assert_eq!(tokens["scope"], "openid profile read");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // The ID token: EdDSA, the JWKS's key, our claims (verified against the
    // JWKS by authlib in `authlib_drives_the_provider`).
    let id_token = tokens["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("EdDSA"), Some(kid.as_str()))
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["preferred_username"], "alice");

    // Reads: rooms, history, userinfo.
    node.get("/api/v1/rooms", Some(&access)).await.expect(200);
    node.get(&format!("/api/v1/rooms/{room}/messages"), Some(&access))
        .await
        .expect(200);
    let info = node
        .get("/oauth2/userinfo", Some(&access))
        .await
        .expect(200);
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["preferred_username"], "alice");

    // No sending, no account-level routes.
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&access),
        json!({ "body": "from the app" }),
    )
    .await
    .error(403, "insufficient_scope");
    node.post("/api/v1/rooms", Some(&access), json!({ "name": "X" }))
        .await
        .error(403, "insufficient_scope");
    node.get("/api/v1/sessions", Some(&access))
        .await
        .error(403, "insufficient_scope");
    node.get("/api/v1/account/export", Some(&access))
        .await
        .error(403, "insufficient_scope");
    // A client cannot approve its own requests.
    node.get("/api/v1/oauth2/authorization", Some(&access))
        .await
        .error(403, "insufficient_scope");
    let history = node.history(&alice, &room, 10).await;
    assert!(
        history
            .iter()
            .all(|e| e["content"]["body"] != "from the app")
    );

    // The user sees the app among their sessions.
    let sessions = node
        .get("/api/v1/sessions", Some(&alice.access))
        .await
        .expect(200);
    let app = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["method"] == "oauth_client")
        .expect("the app's session is listed");
    assert_eq!(app["device"], "Test app");

    // The WebSocket: events arrive; presence reports are not the app's to make.
    let (mut ws, _) = Ws::auth(&node, &access, 0).await;
    // The backlog: the room's events up to alice's first message.
    while ws.next_event().await["event"]["content"]["body"] != "before" {}
    let sent = node.send(&alice, &room, "live").await;
    loop {
        let frame = ws.next_event().await;
        if frame["event"]["event_id"] == sent.as_str() {
            break;
        }
    }
    ws.close().await;

    // A token with neither `read` nor `send` gets no WebSocket at all.
    let request = self::request(&client, "openid profile");
    let code = code_for(&node, &alice, &request).await;
    let profile_only = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    let profile_only = profile_only["access_token"].as_str().unwrap();
    node.get("/api/v1/me", Some(profile_only)).await.expect(200);
    node.get("/api/v1/rooms", Some(profile_only))
        .await
        .error(403, "insufficient_scope");
    let mut ws = Ws::connect(&node).await;
    ws.send_text(&json!({ "type": "auth", "token": profile_only }).to_string())
        .await;
    assert!(matches!(ws.next_frame().await, Frame::Closed(Some(4001))));

    // With `send`, the app sends.
    let request = self::request(&client, "openid read send");
    let code = code_for(&node, &alice, &request).await;
    let sender = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(sender["access_token"].as_str().unwrap()),
        json!({ "body": "from the app" }),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn refresh_rotation_revocation_and_the_refusals() {
    let (dir, mut node, client, alice) = provider("openid profile read").await;

    // A redirect URI the client did not register: shown, never redirected.
    let mut wrong = request(&client, "openid");
    wrong.params[2].1 = "http://127.0.0.1:9/callback/other".into();
    let params: Vec<(&str, &str)> = wrong.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, body) = authorize(&node, &params).await;
    assert_eq!(
        (status, location, body["error"].as_str()),
        (400, None, Some("invalid_request"))
    );
    // `plain` PKCE, a missing method, a scope the client may not ask for:
    // back to the client with the error and its state.
    for (name, value, error) in [
        ("code_challenge_method", "plain", "invalid_request"),
        ("code_challenge_method", "", "invalid_request"),
        ("scope", "openid send", "invalid_scope"),
        ("response_type", "token", "unsupported_response_type"),
    ] {
        let mut bad = request(&client, "openid");
        bad.params.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            bad.params.push((name, value.into()));
        }
        let params: Vec<(&str, &str)> = bad.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, location, _) = authorize(&node, &params).await;
        let location = location.unwrap();
        assert_eq!(status, 302);
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(
            param(&location, "error").as_deref(),
            Some(error),
            "{name}={value}"
        );
        assert_eq!(param(&location, "state").as_deref(), Some("st-123"));
    }

    // Denied: the client hears access_denied.
    let denied = request(&client, "openid");
    let mut decision: serde_json::Map<String, Value> = denied
        .params
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    decision.insert("approve".into(), json!(false));
    let to = node
        .post(
            "/api/v1/oauth2/authorization",
            Some(&alice.access),
            Value::Object(decision),
        )
        .await
        .expect(200);
    assert_eq!(
        param(to["redirect_to"].as_str().unwrap(), "error").as_deref(),
        Some("access_denied")
    );

    // A wrong verifier, a wrong secret: refused, and the code stays good.
    let request = request(&client, "openid read");
    let code = code_for(&node, &alice, &request).await;
    oauth_error(
        redeem(&node, &client, &code, &pkce().0).await,
        400,
        "invalid_grant",
    );
    let forged = Client {
        id: client.id.clone(),
        secret: "not-the-secret".into(),
    };
    oauth_error(
        redeem(&node, &forged, &code, &request.verifier).await,
        401,
        "invalid_client",
    );
    let first = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    let first_access = first["access_token"].as_str().unwrap();
    node.get("/oauth2/userinfo", Some(first_access))
        .await
        .expect(200);
    // Used again: refused, and what the first use gave is revoked.
    oauth_error(
        redeem(&node, &client, &code, &request.verifier).await,
        400,
        "invalid_grant",
    );
    node.get("/oauth2/userinfo", Some(first_access))
        .await
        .error(401, "session_revoked");

    // Refresh rotation; the old refresh token again ends the session.
    let request = self::request(&client, "openid read");
    let code = code_for(&node, &alice, &request).await;
    let tokens = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    let old = tokens["refresh_token"].as_str().unwrap();
    let renewed = token(
        &node,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", old)],
    )
    .await
    .expect(200);
    assert_eq!(renewed["scope"], "openid read");
    let new_access = renewed["access_token"].as_str().unwrap();
    node.get("/api/v1/rooms", Some(new_access))
        .await
        .expect(200);
    // The first-party refresh endpoint does not take a client's token.
    node.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": renewed["refresh_token"] }),
    )
    .await
    .error(401, "bad_refresh_token");
    oauth_error(
        token(
            &node,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", old)],
        )
        .await,
        400,
        "invalid_grant",
    );
    node.get("/api/v1/rooms", Some(new_access))
        .await
        .error(401, "session_revoked");

    // Revocation (RFC 7009): 200 for anything; the session ends.
    let request = self::request(&client, "openid read");
    let code = code_for(&node, &alice, &request).await;
    let tokens = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    let access = tokens["access_token"].as_str().unwrap();
    let revoke = |token: &str| {
        let form = serde_urlencoded::to_string([
            ("token", token),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ])
        .unwrap();
        node.raw(
            Method::POST,
            "/oauth2/revoke",
            None,
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
        )
    };
    revoke("no-such-token").await.expect(200);
    // A first-party token is not the client's to revoke.
    revoke(&alice.access).await.expect(200);
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
    revoke(access).await.expect(200);
    node.get("/api/v1/rooms", Some(access))
        .await
        .error(401, "session_revoked");

    // The CLI lists the client, and removing it ends its sessions.
    let request = self::request(&client, "openid read");
    let code = code_for(&node, &alice, &request).await;
    let kept = redeem(&node, &client, &code, &request.verifier)
        .await
        .expect(200);
    node.terminate().await;
    let listed = admin(dir.path(), &["oauth-client", "list"], "").await;
    assert!(
        listed.contains(&client.id) && listed.contains("Test app"),
        "{listed}"
    );
    let removed = admin(dir.path(), &["oauth-client", "remove", &client.id], "").await;
    assert!(removed.contains("1 sessions ended"), "{removed}");
    let node = Node::start(dir.path(), &[]).await;
    let kept_access = kept["access_token"].as_str().unwrap();
    let reply = node.get("/api/v1/rooms", Some(kept_access)).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    let alice = node.login("alice", PASSWORD).await;
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
}

/// authlib (PyPI) as the client: see the module docs. Without
/// `SPACES_OIDC_PYTHON` there is no such client here, and the test says so.
#[tokio::test]
async fn authlib_drives_the_provider() {
    let Ok(python) = std::env::var("SPACES_OIDC_PYTHON") else {
        eprintln!("SPACES_OIDC_PYTHON is not set: authlib not run (scripts/oidc-e2e.sh runs it)");
        return;
    };
    let (_dir, node, client, _alice) = provider("openid profile read send").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/oidc-authlib.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(&node.base)
        .arg(&client.id)
        .arg(&client.secret)
        .arg(REDIRECT)
        .arg("alice")
        .arg(PASSWORD)
        .output()
        .await
        .expect("running oidc-authlib.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "oidc-authlib.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
