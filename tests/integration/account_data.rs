//! A user's own data (issue 19): the export archive, read back with the
//! system's `tar` (an implementation nobody here wrote), holds the user's
//! profile, settings, rooms and every message they sent, and nothing said
//! by others; deleting an account locks it out at once, ends every session
//! and WebSocket, erases the profile and leaves every room, on other nodes
//! too, with the messages kept or redacted as the operator chose.

use std::path::Path;

use serde_json::{Value, json};

use crate::federation::{Peer, join_via, until};
use crate::support::{Node, PASSWORD, User, Ws, node};

/// The export of `user`, unpacked by `tar` into `into`.
async fn export(node: &Node, user: &User, into: &Path) -> std::path::PathBuf {
    spaces_node::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(node.url("/api/v1/account/export"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-tar"
    );
    let bytes = response.bytes().await.unwrap();
    let archive = into.join("export.tar");
    std::fs::write(&archive, &bytes).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("running tar");
    assert!(status.success(), "tar could not read the export");
    into.join("spaces-export")
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Every file under `dir`, with its text.
fn texts(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.display().to_string(), text));
            }
        }
    }
    out
}

#[tokio::test]
async fn an_export_holds_the_users_data_and_nothing_of_others() {
    let (_dir, node) = node(crate::support::FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    node.put(
        "/api/v1/profile",
        Some(&alice.access),
        json!({ "display_name": "Alice <A>", "bio": "Gardener." }),
    )
    .await
    .expect(200);
    node.put(
        "/api/v1/settings",
        Some(&alice.access),
        json!({ "theme": "dark" }),
    )
    .await
    .expect(200);
    node.request(
        reqwest::Method::PUT,
        &format!("/api/v1/contacts/{}", bob.id),
        Some(&alice.access),
        None,
    )
    .await
    .expect(204);
    let shared = node
        .create_room(&bob, json!({ "name": "Garden", "visibility": "public" }))
        .await;
    node.join(&alice, &shared).await;
    // More than one page (200 messages) of hers, interleaved with his.
    let mut mine = Vec::new();
    for i in 0..230 {
        mine.push(node.send(&alice, &shared, &format!("alice says {i}")).await);
        if i % 50 == 0 {
            node.send(&bob, &shared, &format!("bob says {i}")).await;
        }
    }
    node.send(&alice, &shared, "<b>not bold</b>").await;
    let secret = node
        .create_room(&bob, json!({ "name": "Bob only", "visibility": "private" }))
        .await;
    node.send(&bob, &secret, "bob's secret").await;

    let tmp = tempfile::tempdir().unwrap();
    let root = export(&node, &alice, tmp.path()).await;
    let account = json_file(&root.join("account.json"));
    assert_eq!(account["user_id"], alice.id.as_str());
    assert_eq!(
        json_file(&root.join("profile.json"))["display_name"],
        "Alice <A>"
    );
    assert_eq!(
        json_file(&root.join("settings.json")),
        json!({ "theme": "dark" })
    );
    assert_eq!(json_file(&root.join("contacts.json")), json!([bob.id]));
    let room = root.join("rooms").join(&shared);
    assert_eq!(json_file(&room.join("room.json"))["name"], "Garden");
    let mut exported = Vec::new();
    for page in ["messages-0001.json", "messages-0002.json"] {
        for event in json_file(&room.join(page)).as_array().unwrap() {
            assert_eq!(event["sender"], alice.id.as_str());
            exported.push(event["event_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(exported.len(), mine.len() + 1);
    assert!(mine.iter().all(|id| exported.contains(id)));
    assert!(!root.join("rooms").join(&secret).exists());
    let index = std::fs::read_to_string(root.join("index.html")).unwrap();
    assert!(index.contains("messages-0002.html") && index.contains("Alice &lt;A&gt;"));
    for (path, text) in texts(&root) {
        assert!(
            !text.contains("bob says") && !text.contains("bob's secret"),
            "{path} holds another user's words"
        );
        assert!(
            !(path.ends_with(".html") && text.contains("<b>not bold</b>")),
            "{path} has unescaped HTML"
        );
    }
    let last = json_file(&room.join("messages-0002.json"));
    assert_eq!(
        last.as_array().unwrap().last().unwrap()["content"]["body"],
        "<b>not bold</b>"
    );
    let page = std::fs::read_to_string(room.join("messages-0002.html")).unwrap();
    assert!(page.contains("&lt;b&gt;not bold&lt;/b&gt;"));
    node.get("/api/v1/account/export", None)
        .await
        .error(401, "missing_token");
}

#[tokio::test]
async fn deleting_an_account_locks_it_out_and_erases_its_profile() {
    let (_dir, node) = node(crate::support::FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let second = node.login("alice", PASSWORD).await;
    node.put(
        "/api/v1/profile",
        Some(&alice.access),
        json!({ "display_name": "Alice", "bio": "Gardener." }),
    )
    .await
    .expect(200);
    let room = node
        .create_room(&bob, json!({ "name": "Garden", "visibility": "public" }))
        .await;
    node.join(&alice, &room).await;
    let kept = node.send(&alice, &room, "still here").await;
    let (mut ws, _) = Ws::auth(&node, &second.access, 0).await;

    // The wrong password deletes nothing.
    node.request(
        reqwest::Method::DELETE,
        "/api/v1/account",
        Some(&alice.access),
        Some(json!({ "password": "not it" })),
    )
    .await
    .error(403, "bad_password");
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);

    let reply = node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/account",
            Some(&alice.access),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    // Every session ended, its WebSocket closed; no new one.
    assert_eq!(ws.closed().await, Some(4001));
    for token in [&alice.access, &second.access] {
        node.get("/api/v1/me", Some(token))
            .await
            .error(401, "session_revoked");
    }
    node.post(
        "/api/v1/auth/login",
        None,
        json!({ "username": "alice", "password": PASSWORD }),
    )
    .await
    .error(401, "bad_credentials");
    // The name stays taken: a new account would inherit the user id.
    let again = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(again.code(), Some("username_taken"));
    // The profile is gone; she left the room; her message stays (the
    // default policy).
    let profile = node
        .get(
            &format!("/api/v1/users/{}/profile", alice.id),
            Some(&bob.access),
        )
        .await
        .expect(200);
    assert_eq!(
        profile,
        json!({ "display_name": null, "avatar": null, "bio": null })
    );
    let history = node.history(&bob, &room, 50).await;
    let message = history
        .iter()
        .find(|e| e["event_id"] == kept.as_str())
        .expect("the message is kept");
    assert_eq!(message["content"]["body"], "still here");
    assert!(history.iter().any(|e| e["type"] == "member"
        && e["content"]["target"] == alice.id.as_str()
        && e["content"]["membership"] == "leave"));
}

#[tokio::test]
async fn a_deletion_reaches_other_nodes_as_a_leave_and_redactions() {
    let a = Peer::start_with(&[], &[("SPACES__ACCOUNTS__DELETED_MESSAGES", "redact")]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let bob = b.node.register("bob").await;
    let room = b
        .node
        .create_room(&bob, json!({ "name": "Garden", "visibility": "public" }))
        .await;
    let alice = a.node.register("alice").await;
    join_via(&a, &alice, &room, &[b.id()]).await;
    let said = a.node.send(&alice, &room, "soon gone").await;
    until("B holds alice's message", || async {
        let history = b.node.history(&bob, &room, 50).await;
        history
            .iter()
            .any(|e| e["event_id"] == said.as_str())
            .then_some(())
    })
    .await;

    a.node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/account",
            Some(&alice.access),
            Some(json!({ "password": PASSWORD })),
        )
        .await
        .expect(204);
    until("B sees alice leave and her message redacted", || async {
        let history = b.node.history(&bob, &room, 50).await;
        let left = history.iter().any(|e| {
            e["type"] == "member"
                && e["content"]["target"] == alice.id.as_str()
                && e["content"]["membership"] == "leave"
        });
        let redacted = history
            .iter()
            .any(|e| e["event_id"] == said.as_str() && e["redacted"] == true);
        (left && redacted).then_some(())
    })
    .await;
}
