//! Avatars in the media store (issue 14): a profile's avatar is the hash
//! of an image its user uploaded, checked, kept from garbage collection
//! while the profile names it and readable by every signed-in user; a
//! room's avatar likewise, readable by everyone who can see the room.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::media::{text, upload};
use crate::support::{Node, User, data_dir};

async fn image(node: &Node, user: &User, seed: u32) -> String {
    let jpeg = spaces_blobs::fixtures::jpeg_with_exif(64 + seed, 48);
    let up = upload(node, user, "me.jpg", jpeg).await.expect(201);
    up["hash"].as_str().unwrap().to_owned()
}

async fn put_avatar(node: &Node, user: &User, avatar: Value) -> crate::support::Reply {
    node.put(
        "/api/v1/profile",
        Some(&user.access),
        json!({ "display_name": "Me", "avatar": avatar }),
    )
    .await
}

/// Waits until `check` holds, polling; fails the test after 30 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_profile_avatar_is_a_checked_pinned_image_every_user_can_see() {
    let dir = data_dir();
    let node = Node::start(
        dir.path(),
        &[
            ("SPACES__MEDIA__GRACE_SECS", "1"),
            ("SPACES__MEDIA__GC_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let avatar = image(&node, &alice, 0).await;
    let loose = image(&node, &alice, 1).await;
    let thumbnail = |hash: &str| format!("/api/v1/media/{hash}/thumbnail");

    // Bad avatars change nothing.
    put_avatar(&node, &alice, json!("blob:abc"))
        .await
        .error(400, "bad_hash");
    put_avatar(&node, &alice, json!("ab".repeat(32)))
        .await
        .error(400, "bad_avatar");
    let file = upload(&node, &alice, "notes.txt", text(1000, 1))
        .await
        .expect(201);
    put_avatar(&node, &alice, file["hash"].clone())
        .await
        .error(400, "bad_avatar");
    // Someone else's upload is not yours to show.
    put_avatar(&node, &bob, json!(avatar))
        .await
        .error(400, "bad_avatar");
    let profile = node
        .get("/api/v1/profile", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(profile["avatar"], Value::Null);
    // Bob shares no room with alice: her upload is not his to read yet.
    node.get(&thumbnail(&avatar), Some(&bob.access))
        .await
        .error(404, "unknown_media");

    let stored = put_avatar(&node, &alice, json!(avatar.to_uppercase()))
        .await
        .expect(200);
    assert_eq!(stored["avatar"], avatar.as_str());
    let seen = node
        .get(
            &format!("/api/v1/users/{}/profile", alice.id),
            Some(&bob.access),
        )
        .await
        .expect(200);
    assert_eq!(seen["avatar"], avatar.as_str());
    let reply = node.get(&thumbnail(&avatar), Some(&bob.access)).await;
    assert_eq!(
        (reply.status, reply.content_type.as_str()),
        (200, "image/jpeg")
    );

    // Past the grace period the loose upload is collected; the avatar is
    // pinned by the profile.
    until("the unreferenced upload is collected", async || {
        node.get(&format!("/api/v1/media/{loose}"), Some(&alice.access))
            .await
            .status
            == 404
    })
    .await;
    node.get(&thumbnail(&avatar), Some(&bob.access))
        .await
        .expect(200);
    node.get(&format!("/api/v1/media/{avatar}"), Some(&alice.access))
        .await
        .expect(200);

    // Cleared, it is nobody's to read and is collected in turn.
    let cleared = put_avatar(&node, &alice, Value::Null).await.expect(200);
    assert_eq!(cleared["avatar"], Value::Null);
    until("the old avatar is collected", async || {
        node.get(&format!("/api/v1/media/{avatar}"), Some(&alice.access))
            .await
            .status
            == 404
    })
    .await;
    node.get(&thumbnail(&avatar), Some(&bob.access))
        .await
        .error(404, "unknown_media");
}

#[tokio::test]
async fn a_room_avatar_is_readable_by_whoever_sees_the_room() {
    let dir = data_dir();
    let node = Node::start(
        dir.path(),
        &[
            ("SPACES__MEDIA__GRACE_SECS", "1"),
            ("SPACES__MEDIA__GC_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let eve = node.register("eve").await;
    let room = node
        .create_room(&alice, json!({ "name": "club", "visibility": "private" }))
        .await;
    node.patch(
        &format!("/api/v1/rooms/{room}"),
        Some(&alice.access),
        json!({ "history_visibility": "joined" }),
    )
    .await
    .expect(200);
    let avatar = image(&node, &alice, 2).await;
    let path = format!("/api/v1/rooms/{room}");
    node.patch(&path, Some(&alice.access), json!({ "avatar": "x" }))
        .await
        .error(400, "bad_hash");
    let updated = node
        .patch(&path, Some(&alice.access), json!({ "avatar": avatar }))
        .await
        .expect(200);
    assert_eq!(updated["avatar"], avatar.as_str());

    // Bob joins after the avatar was set, and sees no history from before
    // his join: the room's avatar he sees all the same.
    node.invite(&alice, &room, &bob).await;
    node.join(&bob, &room).await;
    let thumbnail = format!("/api/v1/media/{avatar}/thumbnail");
    node.get(&thumbnail, Some(&bob.access)).await.expect(200);
    node.get(&thumbnail, Some(&eve.access))
        .await
        .error(404, "unknown_media");
    // Pinned by the room past the grace period of its upload.
    let loose = image(&node, &alice, 3).await;
    until("the unreferenced upload is collected", async || {
        node.get(&format!("/api/v1/media/{loose}"), Some(&alice.access))
            .await
            .status
            == 404
    })
    .await;
    node.get(&thumbnail, Some(&bob.access)).await.expect(200);
    let cleared = node
        .patch(&path, Some(&alice.access), json!({ "avatar": null }))
        .await
        .expect(200);
    assert_eq!(cleared["avatar"], Value::Null);
}
