//! What the OpenAPI fuzzer (scripts/openapi-fuzz.sh) found, kept as
//! regression tests. Every reply here is also checked against
//! docs/spec/openapi.json by the harness.

use serde_json::json;

use crate::support::node;

/// A room whose creation fails part-way (the second invite names the
/// creator) is not listed afterwards: listing rooms used to answer 404
/// `unknown_room`, a status `GET /rooms` does not have.
#[tokio::test]
async fn a_failed_room_creation_leaves_the_room_list_working() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    node.post(
        "/api/v1/rooms",
        Some(&alice.access),
        json!({ "name": "Half made", "invite": [bob.id, alice.id] }),
    )
    .await
    .error(403, "bad_target");
    let rooms = node
        .get("/api/v1/rooms", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(rooms, json!([]), "no room was made");
    let room = node.create_room(&alice, json!({ "name": "Whole" })).await;
    let rooms = node
        .get("/api/v1/rooms", Some(&alice.access))
        .await
        .expect(200);
    let listed: Vec<&str> = rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [room.as_str()]);
}
