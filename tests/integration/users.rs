//! User search: `GET /api/v1/users?q=`.

use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Node, User, node};

async fn found(node: &Node, user: &User, query: &str) -> Vec<(String, Value)> {
    let body = node
        .get(&format!("/api/v1/users?{query}"), Some(&user.access))
        .await
        .expect(200);
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().unwrap().to_owned(),
                u["display_name"].clone(),
            )
        })
        .collect()
}

/// Local users by username prefix, then by display name; a full id of
/// another node as given; bounded and validated.
#[tokio::test]
async fn users_by_username_display_name_and_full_id() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let alfred = node.register("alfred").await;
    let bob = node.register("bob").await;
    node.put(
        "/api/v1/profile",
        Some(&bob.access),
        json!({ "display_name": "Bob the Allotment Keeper" }),
    )
    .await
    .expect(200);

    let ids = |list: Vec<(String, Value)>| list.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(
        ids(found(&node, &alice, "q=AL").await),
        [alfred.id.clone(), alice.id.clone(), bob.id.clone()]
    );
    assert_eq!(
        ids(found(&node, &alice, "q=%40al&limit=1").await),
        [alfred.id.as_str()]
    );
    let by_name = found(&node, &alice, "q=allotment").await;
    assert_eq!(
        by_name,
        [(bob.id.clone(), json!("Bob the Allotment Keeper"))]
    );
    assert_eq!(
        ids(found(&node, &alice, "q=nobody").await),
        Vec::<String>::new()
    );

    // A full id: of this node if the account exists; of another as given.
    let full = found(&node, &alice, &format!("q={}", urlencode(&bob.id))).await;
    assert_eq!(ids(full), [bob.id.as_str()]);
    let missing = bob.id.replace("bob", "nobody");
    assert_eq!(
        ids(found(&node, &alice, &format!("q={}", urlencode(&missing))).await),
        Vec::<String>::new()
    );
    // Another node's id: 32 zero bytes in base32.
    let remote = format!("@carol:~{}", "a".repeat(52));
    let other = node
        .get(
            &format!("/api/v1/users?q={}", urlencode(&remote)),
            Some(&alice.access),
        )
        .await
        .expect(200);
    assert_eq!(
        other["users"],
        json!([{ "user_id": remote, "display_name": null, "local": false }])
    );

    for bad in [
        "q=",
        "q=%20",
        &format!("q={}", "a".repeat(101)),
        "q=a&limit=0",
        "q=a&limit=21",
    ] {
        node.get(&format!("/api/v1/users?{bad}"), Some(&alice.access))
            .await
            .error(400, "bad_value");
    }
    node.get("/api/v1/users?q=a&page=2", Some(&alice.access))
        .await
        .error(400, "bad_query");
    node.get("/api/v1/users?q=a", None)
        .await
        .error(401, "missing_token");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
