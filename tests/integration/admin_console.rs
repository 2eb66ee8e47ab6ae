//! What the web client's admin console and review queue call, on a real
//! node: the node at a glance (registration mode, storage sizes), rooms
//! with their size and members, shutting a room down for this node's
//! users, resetting a password (every session ends), and a room's review
//! queue of reported messages resolved by its moderators.

use serde_json::json;

use crate::support::{Node, PASSWORD, Ws, node};

#[tokio::test]
async fn admins_see_the_node_and_its_rooms_and_shut_a_room_down() {
    let (_dir, node) = node(&[("SPACES__REGISTRATION__MODE", "open")]).await;
    let root = node.register("root").await; // the first account: admin
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "general", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    for i in 0..5 {
        node.send(&alice, &room, &format!("line {i}")).await;
    }
    let quiet = node
        .create_room(&bob, json!({ "name": "quiet", "visibility": "private" }))
        .await;

    // Plain users are refused everything here.
    for path in [
        "/api/v1/admin/node".to_owned(),
        "/api/v1/admin/rooms".to_owned(),
        format!("/api/v1/admin/rooms/{room}/members"),
    ] {
        node.get(&path, Some(&alice.access))
            .await
            .error(403, "not_admin");
    }
    node.post(
        &format!("/api/v1/admin/rooms/{room}/shutdown"),
        Some(&alice.access),
        json!({}),
    )
    .await
    .error(403, "not_admin");

    let glance = node
        .get("/api/v1/admin/node", Some(&root.access))
        .await
        .expect(200);
    assert_eq!(glance["registration_mode"], "open");
    assert_eq!(glance["rooms"], 2);
    let storage = &glance["storage"];
    let bytes = |key: &str| storage[key].as_u64().unwrap();
    assert!(bytes("store_bytes") > 0, "{glance}");
    assert!(
        bytes("total_bytes") >= bytes("store_bytes") + bytes("search_bytes") + bytes("blobs_bytes"),
        "{glance}"
    );

    // Largest first, with sizes and member counts.
    let rooms = node
        .get("/api/v1/admin/rooms", Some(&root.access))
        .await
        .expect(200);
    let listed = rooms["rooms"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{rooms}");
    assert_eq!(listed[0]["room_id"], room.as_str());
    assert_eq!(listed[0]["name"], "general");
    assert_eq!(listed[0]["public"], true);
    assert_eq!(listed[0]["joined"], 2);
    assert_eq!(listed[0]["local_joined"], 2);
    assert_eq!(listed[0]["nodes"], 1);
    assert!(
        listed[0]["events"].as_u64().unwrap() > listed[1]["events"].as_u64().unwrap(),
        "{rooms}"
    );
    assert_eq!(listed[1]["room_id"], quiet.as_str());
    assert_eq!(listed[1]["public"], false);

    // An admin who is not in the room sees its members.
    let members = node
        .get(
            &format!("/api/v1/admin/rooms/{room}/members"),
            Some(&root.access),
        )
        .await
        .expect(200);
    let mut ids: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![alice.id.as_str(), bob.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    node.get("/api/v1/admin/rooms/!nope/members", Some(&root.access))
        .await
        .error(400, "bad_room_id");

    // Shut down: both local members leave, and bob's open WebSocket is
    // told like any leave.
    let (mut bob_ws, _) = Ws::auth(&node, &bob.access, 0).await;
    let shut = node
        .post(
            &format!("/api/v1/admin/rooms/{room}/shutdown"),
            Some(&root.access),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(shut["left"], 2);
    let mut saw_leave = false;
    while !saw_leave {
        let event = bob_ws.next_event().await;
        saw_leave = event["event"]["type"] == "member"
            && event["event"]["content"]["target"] == bob.id.as_str()
            && event["event"]["content"]["membership"] == "leave";
    }
    for user in [&alice, &bob] {
        let mine = node
            .get("/api/v1/rooms", Some(&user.access))
            .await
            .expect(200);
        assert!(
            !mine
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["room_id"] == room.as_str()),
            "{} still in the room: {mine}",
            user.name
        );
    }
    let rooms = node
        .get("/api/v1/admin/rooms", Some(&root.access))
        .await
        .expect(200);
    let general = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room.as_str())
        .unwrap()
        .clone();
    assert_eq!(general["local_joined"], 0, "{rooms}");
    // Nobody is left to leave: a second shutdown changes nothing.
    let again = node
        .post(
            &format!("/api/v1/admin/rooms/{room}/shutdown"),
            Some(&root.access),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(again["left"], 0);
}

#[tokio::test]
async fn an_admin_resets_a_password_and_every_session_ends() {
    let (_dir, node) = node(&[]).await;
    let root = node.register("root").await;
    let alice = node.register("alice").await;
    let (mut ws, _) = Ws::auth(&node, &alice.access, 0).await;

    node.put(
        "/api/v1/admin/users/root/password",
        Some(&alice.access),
        json!({ "password": "a brand new passphrase" }),
    )
    .await
    .error(403, "not_admin");
    node.put(
        "/api/v1/admin/users/alice/password",
        Some(&root.access),
        json!({ "password": "short" }),
    )
    .await
    .error(400, "weak_password");
    node.put(
        "/api/v1/admin/users/root/password",
        Some(&root.access),
        json!({ "password": "a brand new passphrase" }),
    )
    .await
    .error(403, "own_account");
    node.put(
        "/api/v1/admin/users/nobody/password",
        Some(&root.access),
        json!({ "password": "a brand new passphrase" }),
    )
    .await
    .error(404, "unknown_user");
    // The refused attempts changed nothing.
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);

    let reset = node
        .put(
            "/api/v1/admin/users/alice/password",
            Some(&root.access),
            json!({ "password": "a brand new passphrase" }),
        )
        .await
        .expect(200);
    assert_eq!(reset["username"], "alice");
    assert_eq!(ws.closed().await, Some(4001));
    node.get("/api/v1/me", Some(&alice.access))
        .await
        .error(401, "session_revoked");
    node.post(
        "/api/v1/auth/login",
        None,
        json!({ "username": "alice", "password": PASSWORD }),
    )
    .await
    .error(401, "bad_credentials");
    node.login("alice", "a brand new passphrase").await;
}

/// A report reaches the room's review queue with the message; a member
/// with `manage_messages` and a joined node admin see it, others do not;
/// resolving takes it off, once.
#[tokio::test]
async fn reported_messages_are_queued_with_the_message_and_resolved() {
    let (_dir, node) = node(&[]).await;
    let root = node.register("root").await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(&alice, json!({ "name": "reports", "visibility": "public" }))
        .await;
    for user in [&bob, &carol, &root] {
        node.join(user, &room).await;
    }
    node.put(
        &format!("/api/v1/rooms/{room}/roles/1"),
        Some(&alice.access),
        json!({ "name": "mod", "rank": 10, "permissions": ["manage_messages"] }),
    )
    .await
    .expect(200);
    node.put(
        &format!("/api/v1/rooms/{room}/members/{}/roles", carol.id),
        Some(&alice.access),
        json!({ "roles": [1] }),
    )
    .await
    .expect(200);
    let rude = node.send(&bob, &room, "a line someone objects to").await;
    let fine = node.send(&bob, &room, "a line nobody minds").await;
    let queue_path = format!("/api/v1/rooms/{room}/moderation/queue");

    node.post(
        &format!("/api/v1/rooms/{room}/messages/{rude}/report"),
        Some(&alice.access),
        json!({}),
    )
    .await
    .expect(204);
    for moderator in [&carol, &root] {
        let queue = node
            .get(&queue_path, Some(&moderator.access))
            .await
            .expect(200);
        let items = queue["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{queue}");
        assert_eq!(items[0]["event_id"], rude.as_str());
        assert_eq!(items[0]["reported_by"], json!([alice.id]));
        assert_eq!(items[0]["event"]["sender"], bob.id.as_str());
        assert_eq!(
            items[0]["event"]["content"]["body"],
            "a line someone objects to"
        );
    }
    node.get(&queue_path, Some(&bob.access))
        .await
        .error(403, "not_room_moderator");
    node.delete(&format!("{queue_path}/{rude}"), Some(&bob.access))
        .await
        .error(403, "not_room_moderator");
    node.delete(&format!("{queue_path}/{fine}"), Some(&carol.access))
        .await
        .error(404, "not_queued");
    node.delete(&format!("{queue_path}/not-an-id"), Some(&carol.access))
        .await
        .error(400, "bad_event_id");

    node.delete(&format!("{queue_path}/{rude}"), Some(&carol.access))
        .await
        .expect(204);
    let queue = node.get(&queue_path, Some(&carol.access)).await.expect(200);
    assert_eq!(queue["items"], json!([]));
    node.delete(&format!("{queue_path}/{rude}"), Some(&carol.access))
        .await
        .error(404, "not_queued");

    // A deleted message leaves the queue without being resolved.
    node.post(
        &format!("/api/v1/rooms/{room}/messages/{fine}/report"),
        Some(&alice.access),
        json!({}),
    )
    .await
    .expect(204);
    let queue = node.get(&queue_path, Some(&carol.access)).await.expect(200);
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{fine}"),
        Some(&carol.access),
    )
    .await
    .expect(204);
    let queue = node.get(&queue_path, Some(&carol.access)).await.expect(200);
    assert_eq!(queue["items"], json!([]));
}

/// The registration mode set from the console: in force at once, kept
/// across a restart, and cleared back to the config's.
#[tokio::test]
async fn admins_set_the_registration_mode_at_run_time() {
    let (dir, mut node) = node(&[]).await;
    let root = node.register("root").await;
    let alice = node.register("alice").await;
    let set = |node: &Node, token: &str, mode: serde_json::Value| {
        node.put(
            "/api/v1/admin/registration",
            Some(token),
            json!({ "mode": mode }),
        )
    };
    set(&node, &alice.access, json!("closed"))
        .await
        .error(403, "not_admin");
    set(&node, &root.access, json!("members-only"))
        .await
        .error(400, "bad_value");
    let now = set(&node, &root.access, json!("closed")).await.expect(200);
    assert_eq!(now["registration_mode"], "closed");
    assert_eq!(now["registration_mode_config"], "open");
    let sign_up = |node: &Node, username: &str| {
        node.post(
            "/api/v1/auth/register",
            None,
            json!({ "username": username, "password": PASSWORD }),
        )
    };
    sign_up(&node, "bob")
        .await
        .error(403, "registration_closed");

    // Kept across a restart.
    assert!(node.terminate().await.success());
    let node = Node::start(dir.path(), &[]).await;
    let root = node.login("root", PASSWORD).await;
    let glance = node
        .get("/api/v1/admin/node", Some(&root.access))
        .await
        .expect(200);
    assert_eq!(glance["registration_mode"], "closed");
    sign_up(&node, "bob")
        .await
        .error(403, "registration_closed");

    // Invite only: a token from the console's endpoint lets one in.
    set(&node, &root.access, json!("invite")).await.expect(200);
    sign_up(&node, "bob").await.error(403, "bad_invite_token");
    let token = node
        .post(
            "/api/v1/admin/invite-tokens",
            Some(&root.access),
            json!({ "uses": 1 }),
        )
        .await
        .expect(201);
    node.post(
        "/api/v1/auth/register",
        None,
        json!({ "username": "bob", "password": PASSWORD, "invite_token": token["token"] }),
    )
    .await
    .expect(201);

    // Back to the config's.
    let now = set(&node, &root.access, serde_json::Value::Null)
        .await
        .expect(200);
    assert_eq!(now["registration_mode"], "open");
    sign_up(&node, "carol").await.expect(201);
}
