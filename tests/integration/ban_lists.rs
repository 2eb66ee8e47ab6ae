//! Shared ban lists on two real nodes: a list room on A, a room on B that
//! follows it, and an entry published on A that makes B ban and hide a
//! member; a pattern that refuses a local join on B.

use serde_json::{Value, json};

use crate::federation::{Peer, join_via, until, until_history_has};
use crate::support::{User, ids};

async fn membership(peer: &Peer, viewer: &User, room: &str, user: &str) -> Option<String> {
    let members = peer
        .node
        .get(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&viewer.access),
        )
        .await
        .expect(200);
    members["members"]
        .as_array()?
        .iter()
        .find(|m| m["user_id"] == user)
        .and_then(|m| m["membership"].as_str())
        .map(str::to_owned)
}

/// alice keeps a ban list on A; bob owns a room on B that follows it;
/// mallory (of A) and carol (of B) are members. An entry for mallory
/// published on A makes B ban her (bob signs it: he may ban) and hide what
/// she wrote from carol; the ban reaches A. A pattern entry refuses a
/// matching user of B at the join, before anything is signed.
#[tokio::test]
async fn a_ban_list_entry_published_on_a_makes_b_ban_and_hide_a_member() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let mallory = a.node.register("mallory").await;
    let bob = b.node.register("bob").await;
    let carol = b.node.register("carol").await;
    let spambot = b.node.register("spambot7").await;

    // The list room, on A; bob's node holds it because bob joins it.
    let list = a
        .node
        .create_room(
            &alice,
            json!({ "name": "community ban list", "visibility": "public" }),
        )
        .await;
    join_via(&b, &bob, &list, &[a.id()]).await;

    // Bob's room on B, with mallory (of A) and carol.
    let room = b
        .node
        .create_room(&bob, json!({ "name": "lounge", "visibility": "public" }))
        .await;
    join_via(&a, &mallory, &room, &[b.id()]).await;
    b.node.join(&carol, &room).await;
    let spam = a.node.send(&mallory, &room, "buy cheap watches").await;
    until_history_has(&b, &carol, &room, std::slice::from_ref(&spam)).await;

    // Following a list: a room setting, `ban` needed, ids checked.
    b.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&carol.access),
            json!({ "ban_lists": [list] }),
        )
        .await
        .error(403, "missing_permission");
    b.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&bob.access),
            json!({ "ban_lists": ["!nope"] }),
        )
        .await
        .error(400, "bad_value");
    let followed = b
        .node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&bob.access),
            json!({ "ban_lists": [list] }),
        )
        .await
        .expect(200);
    assert_eq!(followed["ban_lists"], json!([list]));

    // Only members of the list room with `ban` post entries; shapes are checked.
    let entry_path = format!("/api/v1/rooms/{list}/ban_list");
    b.node
        .post(
            &entry_path,
            Some(&bob.access),
            json!({ "kind": "user", "target": mallory.id, "reason": "spam" }),
        )
        .await
        .error(403, "missing_permission");
    a.node
        .post(
            &entry_path,
            Some(&alice.access),
            json!({ "kind": "pattern", "target": "", "reason": "nothing" }),
        )
        .await
        .error(400, "bad_value");
    a.node
        .post(
            &entry_path,
            Some(&alice.access),
            json!({ "kind": "planet", "target": "x" }),
        )
        .await
        .error(400, "bad_value");
    let posted = a
        .node
        .post(
            &entry_path,
            Some(&alice.access),
            json!({ "kind": "user", "target": mallory.id, "reason": "spam" }),
        )
        .await
        .expect(200);
    assert_eq!(posted["type"], "ban_entry");

    // B bans her in bob's name, and the ban travels to A.
    until("B bans mallory", || async {
        (membership(&b, &bob, &room, &mallory.id).await.as_deref() == Some("ban")).then_some(())
    })
    .await;
    until("A holds the ban", || async {
        let seen = a
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&mallory.access))
            .await
            .expect(200);
        (seen["membership"] == "ban").then_some(())
    })
    .await;
    let history = b.node.history(&bob, &room, 50).await;
    let ban = history
        .iter()
        .find(|e| {
            e["type"] == "member"
                && e["content"]["membership"] == "ban"
                && e["content"]["target"] == mallory.id.as_str()
        })
        .unwrap_or_else(|| panic!("no ban in {history:?}"));
    assert_eq!(ban["sender"], bob.id.as_str());
    assert!(
        ban["content"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&list) && r.ends_with("spam")),
        "{ban}"
    );
    // Her message is hidden from carol on B, listed for bob's review.
    assert!(!ids(&b.node.history(&carol, &room, 50).await).contains(&spam));
    let queue = b
        .node
        .get(
            &format!("/api/v1/rooms/{room}/moderation/queue"),
            Some(&bob.access),
        )
        .await
        .expect(200);
    let item: &Value = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["event_id"] == spam.as_str())
        .unwrap_or_else(|| panic!("not queued: {queue}"));
    assert_eq!(item["hidden"], true);
    assert_eq!(item["labels"], json!(["ban_list"]));
    // She can no longer write there.
    let refused = a
        .node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&mallory.access),
            json!({ "body": "let me back in" }),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    // A pattern: B refuses a matching local user's join before signing.
    a.node
        .post(
            &entry_path,
            Some(&alice.access),
            json!({ "kind": "pattern", "target": "@spambot*", "reason": "bots" }),
        )
        .await
        .expect(200);
    until("B holds both entries", || async {
        let listed = b.node.get(&entry_path, Some(&bob.access)).await.expect(200);
        (listed["entries"].as_array()?.len() == 2).then_some(())
    })
    .await;
    let refused = b
        .node
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&spambot.access),
            json!({}),
        )
        .await;
    assert_eq!(refused.code(), Some("banned_by_list"));
    let message = refused.body["message"].as_str().unwrap_or("").to_owned();
    refused.error(403, "banned_by_list");
    assert!(message.contains("bots"), "{message}");
    assert_eq!(membership(&b, &bob, &room, &spambot.id).await, None);

    // Removing the entry lets a matching user in again.
    a.node
        .post(
            &entry_path,
            Some(&alice.access),
            json!({ "kind": "pattern", "target": "@spambot*", "present": false }),
        )
        .await
        .expect(200);
    until("B lets spambot7 join", || async {
        let reply = b
            .node
            .post(
                &format!("/api/v1/rooms/{room}/join"),
                Some(&spambot.access),
                json!({}),
            )
            .await;
        (reply.status == 200).then_some(())
    })
    .await;
}
