//! Rooms: creation, the directory, joining, invites, leaving, moderation
//! with roles and ranks, settings, and direct conversations.

use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Node, User, node};

/// The room as `user` sees it in `GET /rooms`, if listed.
async fn listed(node: &Node, user: &User, room_id: &str) -> Option<Value> {
    let rooms = node
        .get("/api/v1/rooms", Some(&user.access))
        .await
        .expect(200);
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room_id)
        .cloned()
}

/// `user_id` → membership in the room's member list.
async fn membership(node: &Node, viewer: &User, room_id: &str, user_id: &str) -> Option<String> {
    let members = node
        .get(
            &format!("/api/v1/rooms/{room_id}/members"),
            Some(&viewer.access),
        )
        .await
        .expect(200);
    members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user_id)
        .map(|m| m["membership"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn public_and_private_rooms_directory_join_invite_and_decline() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;

    let lobby = node
        .post(
            "/api/v1/rooms",
            Some(&alice.access),
            json!({ "name": "Lobby", "topic": "say hi", "visibility": "public" }),
        )
        .await
        .expect(201);
    assert_eq!(lobby["join_rule"], "public");
    assert_eq!(lobby["name"], "Lobby");
    assert_eq!(lobby["topic"], "say hi");
    assert_eq!(lobby["membership"], "join");
    assert_eq!(lobby["is_owner"], true);
    assert_eq!(lobby["creator"], alice.id.as_str());
    let lobby = lobby["room_id"].as_str().unwrap().to_owned();
    let secret = node.create_room(&alice, json!({ "name": "Secret" })).await;
    node.post(
        "/api/v1/rooms",
        Some(&alice.access),
        json!({ "visibility": "everyone" }),
    )
    .await
    .error(400, "bad_value");

    // The directory lists public rooms only.
    let directory = node
        .get("/api/v1/directory", Some(&bob.access))
        .await
        .expect(200);
    let listed_ids: Vec<&str> = directory
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room_id"].as_str().unwrap())
        .collect();
    assert!(listed_ids.contains(&lobby.as_str()), "{directory}");
    assert!(!listed_ids.contains(&secret.as_str()), "{directory}");

    // An outsider sees a public room's card but not a private room at all.
    let card = node
        .get(&format!("/api/v1/rooms/{lobby}"), Some(&bob.access))
        .await
        .expect(200);
    assert_eq!(card["name"], "Lobby");
    assert_eq!(card["membership"], Value::Null);
    node.get(&format!("/api/v1/rooms/{secret}"), Some(&bob.access))
        .await
        .error(404, "unknown_room");
    // To someone never in it, a private room does not exist (invariant 4).
    node.get(
        &format!("/api/v1/rooms/{secret}/messages"),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_room");
    node.get(
        &format!("/api/v1/rooms/{secret}/members"),
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_room");

    // Join the public room; a private one needs an invite.
    node.join(&bob, &lobby).await;
    assert_eq!(
        listed(&node, &bob, &lobby).await.unwrap()["membership"],
        "join"
    );
    assert_eq!(
        membership(&node, &alice, &lobby, &bob.id).await.as_deref(),
        Some("join")
    );
    node.post(
        &format!("/api/v1/rooms/{lobby}/join"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .error(403, "no_change");
    node.post(
        &format!("/api/v1/rooms/{secret}/join"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .error(403, "join_rule");

    // Invite, then accept by joining.
    node.invite(&alice, &secret, &bob).await;
    let invited = listed(&node, &bob, &secret)
        .await
        .expect("invite is listed");
    assert_eq!(invited["membership"], "invite");
    node.get(&format!("/api/v1/rooms/{secret}"), Some(&bob.access))
        .await
        .expect(200);
    node.join(&bob, &secret).await;
    let joined = node
        .get(&format!("/api/v1/rooms/{secret}"), Some(&bob.access))
        .await
        .expect(200);
    assert_eq!(joined["membership"], "join");
    assert_eq!(joined["n_members"], 2);

    // Invite, then decline by leaving: the room is gone for carol again.
    node.invite(&alice, &secret, &carol).await;
    assert!(listed(&node, &carol, &secret).await.is_some());
    node.post(
        &format!("/api/v1/rooms/{secret}/leave"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .expect(200);
    assert!(listed(&node, &carol, &secret).await.is_none());
    node.get(&format!("/api/v1/rooms/{secret}"), Some(&carol.access))
        .await
        .error(404, "unknown_room");
    node.post(
        &format!("/api/v1/rooms/{secret}/join"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .error(403, "join_rule");
    assert_eq!(
        membership(&node, &alice, &secret, &carol.id).await,
        None,
        "members lists who is in, not who left"
    );

    // Invites name real users.
    node.post(
        &format!("/api/v1/rooms/{secret}/invite"),
        Some(&alice.access),
        json!({ "user_id": format!("@ghost:{}", node.node_id) }),
    )
    .await
    .error(404, "unknown_user");
    node.post(
        &format!("/api/v1/rooms/{secret}/invite"),
        Some(&alice.access),
        json!({ "user_id": "ghost" }),
    )
    .await
    .error(400, "bad_user_id");

    // Leaving twice: the second time there is nothing to leave.
    node.post(
        &format!("/api/v1/rooms/{lobby}/leave"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .expect(200);
    assert!(listed(&node, &bob, &lobby).await.is_none());
    node.post(
        &format!("/api/v1/rooms/{lobby}/leave"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .error(403, "not_member");

    // Invitees named at creation are invited in the same breath.
    let party = node
        .create_room(&alice, json!({ "name": "Party", "invite": [carol.id] }))
        .await;
    assert_eq!(
        listed(&node, &carol, &party).await.unwrap()["membership"],
        "invite"
    );
}

#[tokio::test]
async fn kick_ban_unban_and_timeout_need_permission_and_rank() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let dave = node.register("dave").await;
    let room = node
        .create_room(&alice, json!({ "name": "Mod", "visibility": "public" }))
        .await;
    for user in [&bob, &carol, &dave] {
        node.join(user, &room).await;
    }
    let act = |actor: &User, action: &str, target: &User| {
        node.post(
            &format!("/api/v1/rooms/{room}/{action}"),
            Some(&actor.access),
            json!({ "user_id": target.id, "reason": "test" }),
        )
    };

    // A plain member moderates nobody.
    act(&bob, "kick", &carol)
        .await
        .error(403, "missing_permission");
    act(&bob, "ban", &carol)
        .await
        .error(403, "missing_permission");

    // A moderator role: rank 10, kick and ban.
    let role = node
        .put(
            &format!("/api/v1/rooms/{room}/roles/1"),
            Some(&alice.access),
            json!({ "name": "mod", "rank": 10, "permissions": ["kick", "ban"] }),
        )
        .await
        .expect(200);
    assert_eq!(role["type"], "role");
    node.put(
        &format!("/api/v1/rooms/{room}/members/{}/roles", bob.id),
        Some(&alice.access),
        json!({ "roles": [1] }),
    )
    .await
    .expect(200);
    let members = node
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&bob.access))
        .await
        .expect(200);
    let bob_row = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bob_row["roles"], json!([1]));
    assert_eq!(bob_row["rank"], 10);
    assert!(
        members["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["role"] == 1 && r["name"] == "mod")
    );

    // The moderator cannot touch the owner, nor an equal.
    act(&bob, "kick", &alice).await.error(403, "rank");
    act(&bob, "ban", &alice).await.error(403, "rank");
    node.put(
        &format!("/api/v1/rooms/{room}/members/{}/roles", dave.id),
        Some(&alice.access),
        json!({ "roles": [1] }),
    )
    .await
    .expect(200);
    act(&bob, "kick", &dave).await.error(403, "rank");

    // Kick: carol is out, and may come back to a public room.
    let kicked = act(&bob, "kick", &carol).await.expect(200);
    assert_eq!(kicked["content"]["membership"], "leave");
    assert_eq!(kicked["content"]["target"], carol.id.as_str());
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&carol.access),
        json!({ "body": "still here?" }),
    )
    .await
    .error(403, "not_member");
    node.join(&carol, &room).await;

    // Ban: carol cannot come back until unbanned.
    act(&bob, "ban", &carol).await.expect(200);
    node.post(
        &format!("/api/v1/rooms/{room}/join"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .error(403, "banned");
    act(&bob, "unban", &dave).await.error(400, "not_banned");
    // The banned cannot lift their own ban.
    act(&carol, "unban", &carol).await.error(403, "banned");
    act(&bob, "unban", &carol).await.expect(200);
    node.join(&carol, &room).await;

    // Timeout needs its own permission; a timed-out member cannot talk.
    let timeout = |actor: &User, seconds: u64| {
        node.put(
            &format!("/api/v1/rooms/{room}/members/{}/timeout", carol.id),
            Some(&actor.access),
            json!({ "seconds": seconds, "reason": "cool down" }),
        )
    };
    timeout(&bob, 60).await.error(403, "missing_permission");
    timeout(&alice, 60).await.expect(200);
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&carol.access),
        json!({ "body": "let me speak" }),
    )
    .await
    .error(403, "timed_out");
    timeout(&alice, 0).await.expect(200);
    node.send(&carol, &room, "thank you").await;

    // Deleting the role takes its powers away.
    node.delete(&format!("/api/v1/rooms/{room}/roles/1"), Some(&bob.access))
        .await
        .error(403, "missing_permission");
    node.delete(
        &format!("/api/v1/rooms/{room}/roles/1"),
        Some(&alice.access),
    )
    .await
    .expect(204);
    act(&bob, "kick", &carol)
        .await
        .error(403, "missing_permission");
    node.delete(
        &format!("/api/v1/rooms/{room}/roles/9"),
        Some(&alice.access),
    )
    .await
    .error(404, "unknown_role");
    node.delete(
        &format!("/api/v1/rooms/{room}/roles/moderator"),
        Some(&alice.access),
    )
    .await
    .error(400, "bad_role_id");
    node.put(
        &format!("/api/v1/rooms/{room}/roles/2"),
        Some(&alice.access),
        json!({ "name": "x", "rank": 5, "permissions": ["fly"] }),
    )
    .await
    .error(400, "bad_permission");
}

#[tokio::test]
async fn nobody_grants_themselves_or_others_more_than_they_hold() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(&alice, json!({ "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    node.join(&carol, &room).await;
    let define = |actor: &User, role: u32, rank: u32, permissions: Value| {
        node.put(
            &format!("/api/v1/rooms/{room}/roles/{role}"),
            Some(&actor.access),
            json!({ "name": format!("role{role}"), "rank": rank, "permissions": permissions }),
        )
    };
    let assign = |actor: &User, target: &User, roles: Value| {
        node.put(
            &format!("/api/v1/rooms/{room}/members/{}/roles", target.id),
            Some(&actor.access),
            json!({ "roles": roles }),
        )
    };
    define(&alice, 1, 10, json!(["kick", "manage_roles"]))
        .await
        .expect(200);
    define(
        &alice,
        2,
        50,
        json!(["kick", "ban", "manage_roles", "manage_room"]),
    )
    .await
    .expect(200);

    // A plain member can neither hand out roles nor define them.
    assign(&carol, &carol, json!([2]))
        .await
        .error(403, "missing_permission");
    define(&carol, 3, 1, json!([]))
        .await
        .error(403, "missing_permission");

    assign(&alice, &bob, json!([1])).await.expect(200);
    // Bob (rank 10) cannot promote himself: nobody outranks themselves.
    assign(&bob, &bob, json!([1, 2])).await.error(403, "rank");
    // Nor hand a higher role to someone else.
    assign(&bob, &carol, json!([2]))
        .await
        .error(403, "cannot_grant");
    // Nor rewrite a role at or above his rank, nor create one above him.
    define(&bob, 2, 5, json!(["kick"])).await.error(403, "rank");
    define(&bob, 1, 9, json!(["kick", "manage_roles"]))
        .await
        .error(403, "rank");
    define(&bob, 3, 100, json!(["kick"]))
        .await
        .error(403, "rank");
    // Nor grant a permission he lacks.
    define(&bob, 3, 5, json!(["manage_room"]))
        .await
        .error(403, "cannot_grant");
    // Within his powers, he may.
    define(&bob, 3, 5, json!(["kick"])).await.expect(200);
    assign(&bob, &carol, json!([3])).await.expect(200);

    let seen = node
        .get(&format!("/api/v1/rooms/{room}"), Some(&bob.access))
        .await
        .expect(200);
    assert_eq!(seen["rank"], 10);
    let permissions: Vec<&str> = seen["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(permissions.contains(&"kick"), "{permissions:?}");
    assert!(!permissions.contains(&"manage_room"), "{permissions:?}");
    node.patch(
        &format!("/api/v1/rooms/{room}"),
        Some(&bob.access),
        json!({ "name": "Bob's now" }),
    )
    .await
    .error(403, "missing_permission");
}

#[tokio::test]
async fn room_settings_are_changed_by_the_owner_only() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let room = node
        .create_room(&alice, json!({ "name": "Before", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    let path = format!("/api/v1/rooms/{room}");

    let changed = node
        .patch(
            &path,
            Some(&alice.access),
            json!({ "name": "After", "topic": "new topic", "history_visibility": "joined" }),
        )
        .await
        .expect(200);
    assert_eq!(changed["name"], "After");
    assert_eq!(changed["topic"], "new topic");
    assert_eq!(changed["history_visibility"], "joined");
    node.patch(&path, Some(&bob.access), json!({ "name": "Mine" }))
        .await
        .error(403, "missing_permission");
    assert_eq!(
        node.get(&path, Some(&bob.access)).await.expect(200)["name"],
        "After"
    );
    node.patch(&path, Some(&alice.access), json!({}))
        .await
        .error(400, "bad_value");
    node.patch(&path, Some(&alice.access), json!({ "join_rule": "anyone" }))
        .await
        .error(400, "bad_value");

    // Slowmode binds members, not the owner.
    node.patch(
        &path,
        Some(&alice.access),
        json!({ "slowmode_seconds": 3600 }),
    )
    .await
    .expect(200);
    node.send(&bob, &room, "first").await;
    node.post(
        &format!("{path}/messages"),
        Some(&bob.access),
        json!({ "body": "second" }),
    )
    .await
    .error(403, "slowmode");
    node.send(&alice, &room, "owner one").await;
    node.send(&alice, &room, "owner two").await;

    // Closing the room: out of the directory, no more walk-ins.
    node.patch(&path, Some(&alice.access), json!({ "join_rule": "invite" }))
        .await
        .expect(200);
    let directory = node
        .get("/api/v1/directory", Some(&carol.access))
        .await
        .expect(200);
    assert!(
        !directory
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room_id"] == room.as_str())
    );
    node.post(&format!("{path}/join"), Some(&carol.access), json!({}))
        .await
        .error(403, "join_rule");
}

#[tokio::test]
async fn direct_conversations_are_one_room_per_pair() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let dm = |from: &User, to: &str| {
        node.post("/api/v1/dms", Some(&from.access), json!({ "user_id": to }))
    };

    let first = dm(&alice, &bob.id).await.expect(201);
    assert_eq!(first["kind"], "direct");
    let room = first["room_id"].as_str().unwrap().to_owned();
    let again = dm(&alice, &bob.id).await.expect(200);
    assert_eq!(again["room_id"], room.as_str(), "the same conversation");

    let for_bob = listed(&node, &bob, &room).await.expect("bob is invited");
    assert_eq!(for_bob["membership"], "invite");
    assert_eq!(for_bob["kind"], "direct");
    node.join(&bob, &room).await;
    let from_bob = dm(&bob, &alice.id).await.expect(200);
    assert_eq!(from_bob["room_id"], room.as_str(), "either side finds it");

    // Two people, no more.
    node.post(
        &format!("/api/v1/rooms/{room}/invite"),
        Some(&alice.access),
        json!({ "user_id": carol.id }),
    )
    .await
    .error(403, "bad_value");
    // A conversation with someone else is another room.
    let other = dm(&alice, &carol.id).await.expect(201);
    assert_ne!(other["room_id"], room.as_str());

    dm(&alice, &alice.id).await.error(400, "bad_value");
    dm(&alice, &format!("@ghost:{}", node.node_id))
        .await
        .error(404, "unknown_user");
    dm(&alice, "bob").await.error(400, "bad_user_id");
    let directory = node
        .get("/api/v1/directory", Some(&carol.access))
        .await
        .expect(200);
    assert_eq!(directory, json!([]), "direct rooms are never listed");
}

#[tokio::test]
async fn invite_links_open_private_rooms_within_their_creators_rights() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let dave = node.register("dave").await;
    let room = node.create_room(&alice, json!({ "name": "Secret" })).await;
    node.send(&alice, &room, "for members only").await;

    // Carol, never invited, cannot join a private room by its id.
    node.post(
        &format!("/api/v1/rooms/{room}/join"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .error(403, "join_rule");

    // Alice makes a two-use link; carol previews and redeems it.
    let link = node
        .post(
            &format!("/api/v1/rooms/{room}/invite-links"),
            Some(&alice.access),
            json!({ "uses": 2 }),
        )
        .await
        .expect(201);
    let code = link["code"].as_str().unwrap().to_owned();
    assert_eq!(link["path"], format!("/join/{code}"));
    assert_eq!(link["uses_left"], 2);
    let preview = node
        .get(&format!("/api/v1/invite-links/{code}"), Some(&carol.access))
        .await
        .expect(200);
    assert_eq!(preview["name"], "Secret");
    assert_eq!(preview["inviter"], alice.id.as_str());
    let join = format!("/api/v1/invite-links/{code}/join");
    let joined = node
        .post(&join, Some(&carol.access), json!({}))
        .await
        .expect(200);
    assert_eq!(joined["content"]["membership"], "join");
    let history = node.history(&carol, &room, 50).await;
    assert!(
        history
            .iter()
            .any(|e| e["content"]["body"] == "for members only")
    );
    // Redeeming again: already in, and no use is spent.
    node.post(&join, Some(&carol.access), json!({}))
        .await
        .error(403, "no_change");

    // Without `invite`, a member cannot make links.
    node.put(
        &format!("/api/v1/rooms/{room}/roles/0"),
        Some(&alice.access),
        json!({ "name": "everyone", "rank": 0, "permissions": ["send_messages"] }),
    )
    .await
    .expect(200);
    node.post(
        &format!("/api/v1/rooms/{room}/invite-links"),
        Some(&carol.access),
        json!({}),
    )
    .await
    .error(403, "missing_permission");

    // Bob takes the second and last use; dave finds it used up.
    node.post(&join, Some(&bob.access), json!({}))
        .await
        .expect(200);
    node.post(&join, Some(&dave.access), json!({}))
        .await
        .error(404, "unknown_invite_link");

    // A banned user cannot come back through a fresh link: the creator's
    // invite is refused by the auth rules.
    node.post(
        &format!("/api/v1/rooms/{room}/ban"),
        Some(&alice.access),
        json!({ "user_id": bob.id }),
    )
    .await
    .expect(200);
    let fresh = node
        .post(
            &format!("/api/v1/rooms/{room}/invite-links"),
            Some(&alice.access),
            json!({}),
        )
        .await
        .expect(201);
    let fresh = fresh["code"].as_str().unwrap();
    node.post(
        &format!("/api/v1/invite-links/{fresh}/join"),
        Some(&bob.access),
        json!({}),
    )
    .await
    .error(403, "banned");

    // Garbage codes are 404, never a crash.
    for bad in ["nope", "a.b", &"x".repeat(80)] {
        node.get(&format!("/api/v1/invite-links/{bad}"), Some(&dave.access))
            .await
            .error(404, "unknown_invite_link");
    }
}

#[tokio::test]
async fn a_room_settings_change_is_all_or_nothing() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "Before" })).await;
    let path = format!("/api/v1/rooms/{room}");
    let events_before = node.get(&path, Some(&alice.access)).await.expect(200)["n_events"].clone();
    // A valid name with a slowmode beyond 6 hours: refused as a whole.
    node.patch(
        &path,
        Some(&alice.access),
        json!({ "name": "After", "slowmode_seconds": 100_000 }),
    )
    .await
    .error(403, "bad_value");
    let room_now = node.get(&path, Some(&alice.access)).await.expect(200);
    assert_eq!(
        room_now["name"], "Before",
        "the valid field was not applied alone"
    );
    assert_eq!(room_now["n_events"], events_before, "nothing was stored");
    // Both valid: both applied.
    let changed = node
        .patch(
            &path,
            Some(&alice.access),
            json!({ "name": "After", "slowmode_seconds": 30 }),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            changed["name"].as_str(),
            changed["slowmode_seconds"].as_u64()
        ),
        (Some("After"), Some(30))
    );
}
