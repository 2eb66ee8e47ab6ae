//! Hostile request shapes (issue 10, items 4–6): bodies that are not JSON
//! objects, errors that would name our types, HTTP-level rejections,
//! client numbers that could wrap, and text that spoofs.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{FAST_SENDS, Node, Reply, User, node};

/// Words of Rust's vocabulary an error message must not show a client.
const RUST_WORDS: [&str; 12] = [
    "struct",
    "enum ",
    "Body",
    "Request",
    "CreateRoom",
    "NewLink",
    "Query",
    "Option<",
    "u32",
    "u64",
    "usize",
    "String",
];

/// An error with a JSON `{code, message}` body whose message names none of
/// our types.
#[track_caller]
fn clean_error(reply: Reply, status: u16, code: &str) {
    assert!(
        reply.content_type.starts_with("application/json"),
        "{status} {code}: not JSON: {} {}",
        reply.content_type,
        reply.text
    );
    let message = reply.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for word in RUST_WORDS {
        assert!(
            !message.contains(word),
            "{status} {code}: the message names {word:?}: {message}"
        );
    }
    reply.error(status, code);
}

fn raw_json(
    node: &Node,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> impl Future<Output = Reply> + use<> {
    node.raw(
        method,
        path,
        token,
        Some("application/json"),
        body.as_bytes().to_vec(),
    )
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let token = Some(alice.access.as_str());
    let room = node.create_room(&alice, json!({ "name": "Shapes" })).await;
    let messages = format!("/api/v1/rooms/{room}/messages");

    // The two reported: an array taken as a profile, and as a room.
    clean_error(
        node.put("/api/v1/profile", token, json!(["x", null, null]))
            .await,
        400,
        "bad_field",
    );
    assert_eq!(
        node.get("/api/v1/profile", token).await.expect(200)["display_name"],
        Value::Null,
        "the array set nothing"
    );
    clean_error(
        node.post("/api/v1/rooms", token, json!([null, null])).await,
        400,
        "bad_field",
    );
    let rooms = node.get("/api/v1/rooms", token).await.expect(200);
    assert_eq!(
        rooms.as_array().map(Vec::len),
        Some(1),
        "no room was made: {rooms}"
    );

    // Every other non-object on several routes.
    let routes = [
        (Method::PUT, "/api/v1/profile".to_owned()),
        (Method::POST, "/api/v1/rooms".to_owned()),
        (Method::POST, messages.clone()),
        (Method::POST, "/api/v1/auth/login".to_owned()),
        (Method::POST, "/api/v1/auth/register".to_owned()),
        (Method::PUT, "/api/v1/settings".to_owned()),
        (Method::POST, format!("/api/v1/rooms/{room}/join")),
    ];
    for (method, path) in &routes {
        for body in [
            "[\"hi\", null, null, null]",
            "[]",
            "null",
            "5",
            "\"hi\"",
            "true",
        ] {
            let reply = raw_json(&node, method.clone(), path, token, body).await;
            clean_error(reply, 400, "bad_field");
        }
        // Not JSON at all.
        for body in ["[1,", "{\"bo", "nope"] {
            let reply = raw_json(&node, method.clone(), path, token, body).await;
            clean_error(reply, 400, "bad_json");
        }
    }
    // JSON with something after the object.
    let reply = raw_json(&node, Method::PUT, "/api/v1/profile", token, "{} {}").await;
    clean_error(reply, 400, "bad_json");
    // An empty body where one is required.
    let reply = raw_json(&node, Method::POST, &messages, token, "").await;
    clean_error(reply, 400, "bad_json");

    // Inside an object: the error names the client's field, not our type.
    let reply = node.post(&messages, token, json!({ "body": 5 })).await;
    assert!(reply.text.contains("body"), "{}", reply.text);
    clean_error(reply, 400, "bad_field");
    let reply = node
        .post(
            &messages,
            token,
            json!({ "body": "hi", "mentions": [[], [], false] }),
        )
        .await;
    assert!(reply.text.contains("mentions"), "{}", reply.text);
    clean_error(reply, 400, "bad_field");
    let reply = node
        .post(
            &messages,
            token,
            json!({ "body": "hi", "mentions": { "users": [7] } }),
        )
        .await;
    assert!(reply.text.contains("mentions"), "{}", reply.text);
    clean_error(reply, 400, "bad_field");
    clean_error(
        node.post(&messages, token, json!({ "body": "hi", "colour": 1 }))
            .await,
        400,
        "bad_field",
    );
    // A null nested object is the default, like any optional field.
    node.post(&messages, token, json!({ "body": "hi", "mentions": null }))
        .await
        .expect(201);
    // The one optional body still works empty.
    let open = node
        .create_room(&alice, json!({ "name": "Open", "visibility": "public" }))
        .await;
    let bob = node.register("bob").await;
    node.raw(
        Method::POST,
        &format!("/api/v1/rooms/{open}/join"),
        Some(&bob.access),
        None,
        Vec::new(),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn http_level_rejections_carry_code_and_message() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let token = Some(alice.access.as_str());
    let room = node.create_room(&alice, json!({ "name": "Http" })).await;
    let messages = format!("/api/v1/rooms/{room}/messages");

    // Path parameters that are not UTF-8 once percent-decoded.
    clean_error(
        node.get("/api/v1/rooms/%FF%FE/messages", token).await,
        400,
        "bad_path",
    );
    clean_error(
        node.get(&format!("/api/v1/rooms/{room}/threads/%C3%28"), token)
            .await,
        400,
        "bad_path",
    );
    clean_error(
        node.delete("/api/v1/contacts/%80", token).await,
        400,
        "bad_path",
    );
    // Query strings: wrong type, too big for any integer, unknown parameter.
    for query in [
        "limit=abc",
        "limit=-1",
        "limit=99999999999999999999999",
        "bogus=1",
        "limit=1&limit=2",
    ] {
        clean_error(
            node.get(&format!("{messages}?{query}"), token).await,
            400,
            "bad_query",
        );
    }
    // Content type: missing, or not JSON.
    clean_error(
        node.raw(
            Method::POST,
            &messages,
            token,
            None,
            b"{\"body\":\"hi\"}".to_vec(),
        )
        .await,
        415,
        "bad_content_type",
    );
    clean_error(
        node.raw(
            Method::PUT,
            "/api/v1/profile",
            token,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await,
        415,
        "bad_content_type",
    );
    // Over the body limit, on an extractor that checks the content type and
    // on the one (join) that does not.
    let huge = format!("{{\"body\":\"{}\"}}", "x".repeat(300 * 1024));
    clean_error(
        raw_json(&node, Method::POST, &messages, token, &huge).await,
        413,
        "too_large",
    );
    clean_error(
        raw_json(
            &node,
            Method::POST,
            &format!("/api/v1/rooms/{room}/join"),
            token,
            &huge,
        )
        .await,
        413,
        "too_large",
    );
    // Method and WebSocket upgrade.
    clean_error(
        node.request(Method::PATCH, "/api/v1/profile", token, None)
            .await,
        405,
        "method_not_allowed",
    );
    let ws = node.get("/ws", None).await;
    assert!(
        ws.status / 100 == 4 && ws.code() == Some("not_websocket"),
        "{}",
        ws.text
    );
}

/// The admin's invite-token route with `body`.
async fn mint(node: &Node, admin: &User, body: Value) -> Reply {
    node.post("/api/v1/admin/invite-tokens", Some(&admin.access), body)
        .await
}

#[tokio::test]
async fn client_numbers_are_checked_not_wrapped() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let token = Some(alice.access.as_str());
    let room = node.create_room(&alice, json!({ "name": "Numbers" })).await;
    node.invite(&alice, &room, &bob).await;
    node.join(&bob, &room).await;

    // The reported case: u64::MAX / 1000 + 1 seconds wrapped to 1970.
    let year = 365 * 86_400u64;
    for secs in [
        json!(18_446_744_073_709_552u64),
        json!(u64::MAX),
        json!(0),
        json!(year + 1),
    ] {
        let reply = mint(&node, &alice, json!({ "expires_in_secs": secs })).await;
        assert!(reply.text.contains("expires_in_secs"), "{}", reply.text);
        clean_error(reply, 400, "bad_value");
    }
    // Beyond u64 and negative: not a number of the field's type.
    for secs in ["18446744073709551616", "-1", "1e30"] {
        let body = format!("{{\"expires_in_secs\": {secs}}}");
        clean_error(
            raw_json(
                &node,
                Method::POST,
                "/api/v1/admin/invite-tokens",
                token,
                &body,
            )
            .await,
            400,
            "bad_field",
        );
    }
    let before = now_ms();
    let minted = mint(&node, &alice, json!({ "expires_in_secs": year }))
        .await
        .expect(201);
    let at = minted["expires_at_ms"].as_u64().expect("expires_at_ms");
    assert!(
        at >= before + year * 1000 && at <= now_ms() + year * 1000,
        "a year from now: {at}"
    );
    for uses in [json!(0), json!(10_001), json!(u32::MAX)] {
        clean_error(
            mint(&node, &alice, json!({ "uses": uses })).await,
            400,
            "bad_value",
        );
    }
    clean_error(
        mint(&node, &alice, json!({ "uses": 4_294_967_296u64 })).await,
        400,
        "bad_field",
    );

    // Invite links: the same bounds.
    let links = format!("/api/v1/rooms/{room}/invite-links");
    for body in [
        json!({ "expires_in_secs": 18_446_744_073_709_552u64 }),
        json!({ "expires_in_secs": 0 }),
        json!({ "uses": 10_001 }),
    ] {
        clean_error(node.post(&links, token, body).await, 400, "bad_value");
    }
    let link = node
        .post(
            &links,
            token,
            json!({ "uses": 10_000, "expires_in_secs": 60 }),
        )
        .await
        .expect(201);
    assert_eq!(link["uses_left"], 10_000);
    assert!(link["expires_at_ms"].as_u64().unwrap() > before);

    // History page sizes.
    let messages = format!("/api/v1/rooms/{room}/messages");
    for limit in ["0", "201", "18446744073709551615"] {
        clean_error(
            node.get(&format!("{messages}?limit={limit}"), token).await,
            400,
            "bad_value",
        );
    }
    node.get(&format!("{messages}?limit=200"), token)
        .await
        .expect(200);

    // A timeout of u64::MAX seconds saturates and the auth rules refuse it:
    // it never wraps into a short or past timeout.
    let timeout = format!("/api/v1/rooms/{room}/members/{}/timeout", bob.id);
    clean_error(
        node.put(&timeout, token, json!({ "seconds": u64::MAX }))
            .await,
        403,
        "bad_value",
    );
    clean_error(
        node.put(
            &timeout,
            token,
            json!({ "seconds": 18_446_744_073_709_552u64 }),
        )
        .await,
        403,
        "bad_value",
    );
    node.send(&bob, &room, "still allowed to speak").await;

    // A role color is 0xRRGGBB.
    let role = format!("/api/v1/rooms/{room}/roles/1");
    clean_error(
        node.put(
            &role,
            token,
            json!({ "name": "mod", "rank": 5, "permissions": [], "color": 0x100_0000 }),
        )
        .await,
        400,
        "bad_value",
    );
    node.put(
        &role,
        token,
        json!({ "name": "mod", "rank": 5, "permissions": [], "color": 0xFF_FFFF }),
    )
    .await
    .expect(200);
    // A role id beyond 32 bits.
    clean_error(
        node.put(
            &format!("/api/v1/rooms/{room}/roles/4294967296"),
            token,
            json!({ "name": "x", "rank": 1, "permissions": [] }),
        )
        .await,
        400,
        "bad_role_id",
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn spoofing_text_is_refused() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let token = Some(alice.access.as_str());

    // Display names: bidi overrides and isolates, marks, invisibles, controls.
    for name in [
        "alice\u{202E}nimda",
        "\u{2067}admin",
        "admin\u{200F}",
        "ad\u{200B}min",
        "bell\u{7}",
    ] {
        clean_error(
            node.put("/api/v1/profile", token, json!({ "display_name": name }))
                .await,
            400,
            "bad_text",
        );
    }
    // Real names in other scripts, with joiners and emoji, are fine.
    let fine = "Мария مريم می\u{200C}خواهم 👩\u{200D}💻";
    let profile = node
        .put("/api/v1/profile", token, json!({ "display_name": fine }))
        .await
        .expect(200);
    assert_eq!(profile["display_name"], fine);

    // Room names, topics and role names.
    clean_error(
        node.post("/api/v1/rooms", token, json!({ "name": "\u{202E}moor" }))
            .await,
        400,
        "bad_text",
    );
    clean_error(
        node.post(
            "/api/v1/rooms",
            token,
            json!({ "name": "ok", "topic": "a\u{202D}b" }),
        )
        .await,
        400,
        "bad_text",
    );
    let rooms = node.get("/api/v1/rooms", token).await.expect(200);
    assert_eq!(rooms, json!([]), "a refused name made no room");
    let room = node
        .create_room(
            &alice,
            json!({ "name": "Lobby", "topic": "line one\nline two" }),
        )
        .await;
    let path = format!("/api/v1/rooms/{room}");
    clean_error(
        node.patch(&path, token, json!({ "name": "Lob\u{2066}by" }))
            .await,
        400,
        "bad_text",
    );
    assert_eq!(node.get(&path, token).await.expect(200)["name"], "Lobby");
    clean_error(
        node.put(
            &format!("{path}/roles/1"),
            token,
            json!({ "name": "mod\u{202E}", "rank": 5, "permissions": [] }),
        )
        .await,
        400,
        "bad_text",
    );

    // Message bodies: NUL and other controls refused; line breaks, tabs
    // and right-to-left writing with its marks kept.
    let messages = format!("{path}/messages");
    for body in ["nul\0here", "escape \u{1B}[2J", "c1\u{9B}"] {
        clean_error(
            node.post(&messages, token, json!({ "body": body })).await,
            400,
            "bad_text",
        );
    }
    let kept = "two\nlines\tand עברית \u{200F}(1)\r\n";
    let sent = node
        .post(&messages, token, json!({ "body": kept }))
        .await
        .expect(201);
    assert_eq!(sent["content"]["body"], kept, "{sent}");
    let event_id = sent["event_id"].as_str().unwrap().to_owned();
    clean_error(
        node.patch(
            &format!("{messages}/{event_id}"),
            token,
            json!({ "body": "edit\0" }),
        )
        .await,
        400,
        "bad_text",
    );
    clean_error(
        node.post(
            &format!("{messages}/{event_id}/reactions"),
            token,
            json!({ "key": "\u{202E}+1" }),
        )
        .await,
        400,
        "bad_text",
    );

    // A device label keeps a name's characters only.
    let reply = node
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "username": "alice", "password": crate::support::PASSWORD, "device": "pho\u{202E}ne\0" }),
        )
        .await
        .expect(200);
    let sessions = node
        .get("/api/v1/sessions", reply["access_token"].as_str())
        .await
        .expect(200);
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session");
    assert_eq!(current["device"], "phone");
}

/// Sends `request` on a fresh connection and reads the answer to its end
/// (the node closes after these answers).
async fn raw_exchange(node: &Node, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        tcp.read_to_end(&mut answer),
    )
    .await
    .expect("the node answers and closes")
    .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Requests hyper cannot parse, answered by hyper before the router runs,
/// still get a `{code, message}` body.
#[tokio::test]
async fn unparsable_requests_get_code_and_message() {
    let (_dir, node) = node(&[]).await;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            "HTTP/1.1 400 ",
            "bad_request",
        ),
        (
            format!(
                "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
                "a".repeat(1 << 20)
            )
            .into_bytes(),
            "HTTP/1.1 431 ",
            "headers_too_large",
        ),
    ];
    for (request, status_line, code) in cases {
        let answer = raw_exchange(&node, &request).await;
        assert!(
            answer.starts_with(status_line),
            "{status_line}: {answer:.200}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The node still serves.
    assert_eq!(node.get("/healthz", None).await.status, 200);
}
