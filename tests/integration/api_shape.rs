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

/// A `via` entry that parses as a node id but is not an ed25519 public key
/// (y = 2 is on no point of the curve) names a node that cannot exist: the
/// caller's mistake, 400 `bad_value`, not a 502 `federation_failed`.
#[tokio::test]
async fn a_join_via_a_node_id_that_is_no_key_is_a_bad_request() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let room = format!("!{}", "a".repeat(52));
    let not_a_key = format!("~ai{}", "a".repeat(50));
    node.post(
        &format!("/api/v1/rooms/{room}/join"),
        Some(&alice.access),
        json!({ "via": [not_a_key] }),
    )
    .await
    .error(400, "bad_value");
}
