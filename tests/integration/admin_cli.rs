//! The `spaces` command line: help, and the admin commands that work on a
//! stopped node's data directory.

use serde_json::json;

use crate::support::{Node, PASSWORD, admin, data_dir, run_cli};

#[tokio::test]
async fn help_names_the_commands() {
    let help = run_cli(&["--help"], "").await;
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("serve") && text.contains("admin"), "{text}");

    let admin_help = run_cli(&["admin", "--help"], "").await;
    assert!(admin_help.status.success());
    let text = String::from_utf8_lossy(&admin_help.stdout);
    for command in [
        "create-user",
        "reset-password",
        "list-users",
        "list-rooms",
        "invite-token",
        "backup",
        "restore",
        "check",
    ] {
        assert!(
            text.contains(command),
            "admin --help lacks {command}: {text}"
        );
    }

    let wrong = run_cli(&["fly"], "").await;
    assert!(!wrong.status.success());
    assert!(!wrong.stderr.is_empty(), "a usage error says why");
}

#[tokio::test]
async fn admin_commands_manage_users_and_list_rooms() {
    let dir = data_dir();
    let path = dir.path();
    let created = admin(path, &["create-user", "alice"], &format!("{PASSWORD}\n")).await;
    assert!(created.starts_with("created @alice:~"), "{created}");
    admin(path, &["create-user", "root", "--admin"], PASSWORD).await;

    // Refusals: weak password, taken name, bad name.
    let dir_arg = path.to_str().unwrap();
    for (args, stdin) in [
        (vec!["create-user", "weak"], "short\n"),
        (vec!["create-user", "alice"], PASSWORD),
        (vec!["create-user", "Bad Name!"], PASSWORD),
        (vec!["reset-password", "nobody"], PASSWORD),
    ] {
        let mut full = vec!["admin", "--data-dir", dir_arg];
        full.extend(args.iter().copied());
        let output = run_cli(&full, stdin).await;
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(!output.stderr.is_empty(), "{args:?} says why");
    }

    let users = admin(path, &["list-users"], "").await;
    let lines: Vec<&str> = users.lines().collect();
    assert_eq!(lines.len(), 2, "{users}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("@alice:") && !l.contains("admin"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("@root:") && l.contains("admin"))
    );

    let mut node = Node::start(path, &[]).await;
    let alice = node.login("alice", PASSWORD).await;
    let me = node
        .get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(me["is_admin"], false);
    let root = node.login("root", PASSWORD).await;
    assert_eq!(
        node.get("/api/v1/me", Some(&root.access)).await.expect(200)["is_admin"],
        true
    );
    let room = node
        .create_room(&alice, json!({ "name": "From the CLI" }))
        .await;
    node.send(&alice, &room, "hello").await;

    // The store belongs to the running node: admin commands refuse politely.
    let busy = run_cli(&["admin", "--data-dir", dir_arg, "list-users"], "").await;
    assert!(!busy.status.success(), "sled allows one process at a time");
    assert!(!busy.stderr.is_empty());

    assert!(node.terminate().await.success());
    let rooms = admin(path, &["list-rooms"], "").await;
    let line = rooms
        .lines()
        .find(|l| l.starts_with(&room))
        .unwrap_or_else(|| panic!("{room} not listed: {rooms}"));
    // create, name, message
    assert!(
        line.contains("3 events") && line.contains("From the CLI"),
        "{line}"
    );

    let new_password = "a brand new password";
    let reset = admin(path, &["reset-password", "alice"], new_password).await;
    assert!(reset.contains("sessions ended"), "{reset}");

    let node = Node::start(path, &[]).await;
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .error(401, "session_revoked");
    node.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": alice.refresh }),
    )
    .await
    .error(401, "bad_refresh_token");
    node.post(
        "/api/v1/auth/login",
        None,
        json!({ "username": "alice", "password": PASSWORD }),
    )
    .await
    .error(401, "bad_credentials");
    let alice = node.login("alice", new_password).await;
    let rooms = node
        .get("/api/v1/rooms", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(rooms[0]["room_id"], room.as_str());
    // Root's session was not touched.
    node.get("/api/v1/me", Some(&root.access)).await.expect(200);
}
