//! Node roles and account administration: admins and moderators, the
//! admin API and `spaces admin users`, and what a suspension does at once:
//! every session ended, WebSockets closed, and no sign-in by any method
//! (password, refresh, passkey) until an admin or moderator reactivates.

use std::process::Stdio;

use serde_json::{Value, json};

use webauthn_authenticator_rs::prelude::WebauthnAuthenticator;

use crate::passkeys::{Device, add_passkey, begin_sign_in, finish, origin};
use crate::support::{BIN, Node, PASSWORD, User, Ws, data_dir, node};

/// `spaces admin users ...` against a running node's API.
async fn cli_online(node: &Node, token: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("admin")
        .arg("users")
        .args(args)
        .arg("--url")
        .arg(&node.base)
        .env("SPACES_ADMIN_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("SPACES__") {
            command.env_remove(key);
        }
    }
    let output = command.output().await.expect("running spaces");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn login_reply(node: &Node, username: &str) -> crate::support::Reply {
    node.post(
        "/api/v1/auth/login",
        None,
        json!({ "username": username, "password": PASSWORD }),
    )
    .await
}

fn status_of(users: &Value, username: &str) -> (String, String) {
    let user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} not listed: {users}"));
    (
        user["role"].as_str().unwrap().to_owned(),
        user["status"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn roles_suspend_reactivate_deactivate() {
    let (_dir, node) = node(&[]).await;
    let root = node.register("root").await; // the first account: admin
    let moe = node.register("moe").await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;

    // Plain users see nothing here; the admin makes moe a moderator.
    node.get("/api/v1/admin/users", Some(&alice.access))
        .await
        .error(403, "not_admin");
    node.put(
        "/api/v1/admin/users/moe/role",
        Some(&alice.access),
        json!({ "role": "moderator" }),
    )
    .await
    .error(403, "not_admin");
    let moe_info = node
        .put(
            "/api/v1/admin/users/moe/role",
            Some(&root.access),
            json!({ "role": "moderator" }),
        )
        .await
        .expect(200);
    assert_eq!(moe_info["role"], "moderator");
    let users = node
        .get("/api/v1/admin/users", Some(&moe.access))
        .await
        .expect(200);
    assert_eq!(status_of(&users, "root"), ("admin".into(), "active".into()));
    assert_eq!(status_of(&users, "alice"), ("user".into(), "active".into()));

    // Alice, signed in twice with a WebSocket open, is suspended by the
    // moderator: the sockets close at once, the tokens die, and no way of
    // signing in works.
    let alice_phone = node.login("alice", PASSWORD).await;
    let mut key = Device::new();
    add_passkey(&node, &alice, &mut key, "key").await;
    let (mut ws, _) = Ws::auth(&node, &alice.access, 0).await;
    let (mut phone_ws, _) = Ws::auth(&node, &alice_phone.access, 0).await;
    let suspended = node
        .post(
            "/api/v1/admin/users/alice/suspend",
            Some(&moe.access),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(ws.closed().await, Some(4001));
    assert_eq!(phone_ws.closed().await, Some(4001));
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .error(401, "session_revoked");
    node.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": alice_phone.refresh }),
    )
    .await
    .error(401, "bad_refresh_token");
    login_reply(&node, "alice")
        .await
        .error(403, "account_suspended");
    let (ceremony, options) = begin_sign_in(&node).await;
    let answer = key.do_authentication(origin(&node), options).unwrap();
    finish(&node, &ceremony, &answer)
        .await
        .error(403, "account_suspended");

    // A moderator acts on plain users only, and never deactivates.
    node.post(
        "/api/v1/admin/users/root/suspend",
        Some(&moe.access),
        json!({}),
    )
    .await
    .error(403, "not_admin");
    node.post(
        "/api/v1/admin/users/bob/deactivate",
        Some(&moe.access),
        json!({}),
    )
    .await
    .error(403, "not_admin");
    node.post(
        "/api/v1/admin/users/root/suspend",
        Some(&root.access),
        json!({}),
    )
    .await
    .error(403, "own_account");
    node.post(
        "/api/v1/admin/users/nobody/suspend",
        Some(&root.access),
        json!({}),
    )
    .await
    .error(404, "unknown_user");

    // Reactivated: the password works again.
    let back = node
        .post(
            "/api/v1/admin/users/alice/reactivate",
            Some(&moe.access),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(back["status"], "active");
    node.login("alice", PASSWORD).await;

    // Deactivated: for good.
    let gone = node
        .post(
            "/api/v1/admin/users/bob/deactivate",
            Some(&root.access),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(gone["status"], "deactivated");
    node.get("/api/v1/me", Some(&bob.access))
        .await
        .error(401, "session_revoked");
    login_reply(&node, "bob")
        .await
        .error(403, "account_disabled");
    node.post(
        "/api/v1/admin/users/bob/reactivate",
        Some(&root.access),
        json!({}),
    )
    .await
    .error(409, "account_deactivated");

    // Demoted, moe loses the admin API at once (read from the account).
    node.put(
        "/api/v1/admin/users/moe/role",
        Some(&root.access),
        json!({ "role": "user" }),
    )
    .await
    .expect(200);
    node.get("/api/v1/admin/users", Some(&moe.access))
        .await
        .error(403, "not_admin");
}

/// `spaces admin users` on a running node: the same at once, WebSockets
/// included; and on a stopped node's data directory.
#[tokio::test]
async fn the_cli_lists_and_suspends() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), &[]).await;
    let root = node.register("root").await;
    let alice: User = node.register("alice").await;
    let (mut ws, _) = Ws::auth(&node, &alice.access, 0).await;

    let (ok, listed, err) = cli_online(&node, &root.access, &["list"]).await;
    assert!(ok, "{err}");
    assert!(
        listed.contains("@root:") && listed.contains("  admin  active"),
        "{listed}"
    );
    assert!(
        listed.contains("@alice:") && listed.contains("  user  active"),
        "{listed}"
    );

    let (ok, out, err) = cli_online(&node, &root.access, &["suspend", "alice"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("suspended"), "{out}");
    assert_eq!(ws.closed().await, Some(4001));
    login_reply(&node, "alice")
        .await
        .error(403, "account_suspended");
    // A plain user's token is refused, and says why.
    let bob = node.register("bob").await;
    let (ok, _, err) = cli_online(&node, &bob.access, &["suspend", "root"]).await;
    assert!(!ok);
    assert!(err.contains("not_admin"), "{err}");

    // Stopped: the data directory directly.
    node.terminate().await;
    let out = crate::support::admin(dir.path(), &["users", "reactivate", "alice"], "").await;
    assert!(out.contains("active"), "{out}");
    let out = crate::support::admin(dir.path(), &["users", "deactivate", "bob"], "").await;
    assert!(out.contains("deactivated"), "{out}");
    let listed = crate::support::admin(dir.path(), &["users", "list"], "").await;
    assert!(listed.contains("  user  deactivated"), "{listed}");
    let node = Node::start(dir.path(), &[]).await;
    node.login("alice", PASSWORD).await;
    login_reply(&node, "bob")
        .await
        .error(403, "account_disabled");
}
