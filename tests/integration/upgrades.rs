//! A data directory written by an older build: what the node carries over
//! when it starts on it.

use serde_json::json;
use spaces_store::{Options, Store};

use crate::support::{Node, data_dir};

/// Invite links of builds before the `invite_links` tree (JSON under
/// `invite_link/<code>` in `meta`) keep working: moved at start, with their
/// uses; a record that is no such link is dropped.
#[tokio::test]
async fn invite_links_of_an_older_build_still_admit() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), &[]).await;
    let alice = node.register("alice").await;
    let room = node
        .create_room(&alice, json!({ "name": "old club" }))
        .await;
    assert!(node.terminate().await.success());

    // As the older build wrote them (its `api/links.rs`).
    {
        let store = Store::open(&dir.path().join("store"), &Options::default()).expect("store");
        let legacy = json!({
            "room_id": room, "creator": alice.id, "uses_left": 1, "expires_at_ms": null,
        });
        store
            .put_meta(
                "invite_link/oldcode0123456789abcdef",
                legacy.to_string().as_bytes(),
            )
            .unwrap();
        store
            .put_meta("invite_link/brokencode0123456789ab", b"{\"room_id\":7}")
            .unwrap();
    }

    let mut node = Node::start(dir.path(), &[]).await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let preview = node
        .get(
            "/api/v1/invite-links/oldcode0123456789abcdef",
            Some(&bob.access),
        )
        .await
        .expect(200);
    assert_eq!(preview["room_id"], room.as_str(), "{preview}");
    node.post(
        "/api/v1/invite-links/oldcode0123456789abcdef/join",
        Some(&bob.access),
        json!({}),
    )
    .await
    .expect(200);
    // Its one use is spent.
    node.post(
        "/api/v1/invite-links/oldcode0123456789abcdef/join",
        Some(&carol.access),
        json!({}),
    )
    .await
    .error(404, "unknown_invite_link");
    node.get(
        "/api/v1/invite-links/brokencode0123456789ab",
        Some(&bob.access),
    )
    .await
    .error(404, "unknown_invite_link");
    assert!(node.terminate().await.success());
    let store = Store::open(&dir.path().join("store"), &Options::default()).expect("store");
    assert!(store.legacy_invite_links().unwrap().is_empty());
    let moved = store
        .invite_link("oldcode0123456789abcdef")
        .unwrap()
        .expect("moved");
    assert_eq!(moved.uses_left, 0);
    assert_eq!(store.invite_link("brokencode0123456789ab").unwrap(), None);
}
