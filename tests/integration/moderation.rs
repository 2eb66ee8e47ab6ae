//! Moderation at the edge, on real nodes with the real ONNX Runtime
//! (scripts/install-onnxruntime.sh puts it where a debug binary looks):
//! the scoring endpoint and who may use it, and a node without the library
//! that still serves chat and says moderation is unavailable.

use serde_json::json;

use crate::support::node;

#[tokio::test]
async fn moderators_score_lines_with_the_node_model() {
    let (_dir, node) = node(&[("SPACES__MODERATION__MODERATORS", "[\"mod\"]")]).await;
    let health = node.get("/healthz", None).await.expect(200);
    assert_eq!(
        health["moderation"],
        "ready",
        "no ONNX Runtime for the node under test: run scripts/install-onnxruntime.sh\n{}",
        node.log()
    );
    let admin = node.register("admin").await;
    let moderator = node.register("mod").await;
    let member = node.register("member").await;

    let threat = node
        .post(
            "/api/v1/moderation/score",
            Some(&moderator.access),
            json!({ "text": "i know where you live, watch your back" }),
        )
        .await
        .expect(200);
    assert_eq!(threat["flagged"], true, "{threat}");
    assert_eq!(threat["labels"], json!(["threat"]), "{threat}");
    assert!(threat["scores"]["threat"].as_f64().unwrap() >= 0.5);

    for line in [
        "kill the process and restart it",
        "I could murder a pizza",
        "this slaps",
    ] {
        let clean = node
            .post(
                "/api/v1/moderation/score",
                Some(&admin.access),
                json!({ "text": line }),
            )
            .await
            .expect(200);
        assert_eq!(clean["flagged"], false, "{line}: {clean}");
        assert_eq!(clean["labels"], json!([]));
    }

    node.post(
        "/api/v1/moderation/score",
        Some(&member.access),
        json!({ "text": "hello" }),
    )
    .await
    .error(403, "not_moderator");
    node.post(
        "/api/v1/moderation/score",
        Some(&admin.access),
        json!({ "text": "x".repeat(16_385) }),
    )
    .await
    .error(400, "text_too_long");

    let status = node
        .get("/api/v1/admin/moderation", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(status["state"], "ready");
    assert!(
        status["library"]
            .as_str()
            .unwrap()
            .ends_with("libonnxruntime.so")
    );
    node.get("/api/v1/admin/moderation", Some(&moderator.access))
        .await
        .error(403, "not_admin");
}

#[tokio::test]
async fn a_node_without_onnx_runtime_serves_chat_and_says_where_it_looked() {
    let missing = "/nonexistent/spaces-test/libonnxruntime.so";
    let (_dir, node) = node(&[("SPACES__MODERATION__ONNXRUNTIME_PATH", missing)]).await;
    let health = node.get("/healthz", None).await.expect(200);
    assert_eq!(health["moderation"], "unavailable");
    // The warning was written before the node announced its address, on
    // another pipe: wait for the log reader to have it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !node.log().contains(missing) {
        assert!(
            std::time::Instant::now() < deadline,
            "the log names the path: {}",
            node.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let admin = node.register("admin").await;
    let status = node
        .get("/api/v1/admin/moderation", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(status["state"], "unavailable");
    assert_eq!(status["library"], json!(null));
    assert_eq!(
        status["looked"],
        json!([{ "path": missing, "error": "no such file" }])
    );
    node.post(
        "/api/v1/moderation/score",
        Some(&admin.access),
        json!({ "text": "hello" }),
    )
    .await
    .error(503, "moderation_unavailable");

    // Chat goes on.
    let room = node
        .create_room(
            &admin,
            json!({ "name": "still here", "visibility": "public" }),
        )
        .await;
    let sent = node
        .send(&admin, &room, "moderation or not, this arrives")
        .await;
    let history = node.history(&admin, &room, 10).await;
    assert!(history.iter().any(|e| e["event_id"] == sent.as_str()));
}

/// Room policies on two real nodes: alice's room on A has a policy (threats
/// hidden, insults flagged, hate blocked); bob (a member) and carol (given
/// `manage_messages`) are on B. A blocked local send is refused before
/// signing; alice's threat is hidden on B from WebSockets, bob's history and
/// search, listed in carol's review queue, seen by carol, and revealed by
/// her; the flagged insult is shown and queued.
#[tokio::test]
async fn room_policies_block_local_sends_and_hide_received_messages() {
    use crate::federation::{Peer, join_via, until, until_history_has};
    use crate::support::{Ws, ids};

    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    for peer in [&a, &b] {
        let health = peer.node.get("/healthz", None).await.expect(200);
        assert_eq!(
            health["moderation"], "ready",
            "run scripts/install-onnxruntime.sh"
        );
    }
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = b.node.register("carol").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "policed", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    join_via(&b, &carol, &room, &[a.id()]).await;

    // A knows both joins before alice acts on carol.
    until("A holds bob's and carol's joins", || async {
        let members = a
            .node
            .get(
                &format!("/api/v1/rooms/{room}/members"),
                Some(&alice.access),
            )
            .await
            .expect(200);
        let joined = |user: &str| {
            members["members"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m["user_id"] == user && m["membership"] == "join")
            })
        };
        (joined(&bob.id) && joined(&carol.id)).then_some(())
    })
    .await;

    // Carol moderates: a role with manage_messages.
    a.node
        .put(
            &format!("/api/v1/rooms/{room}/roles/1"),
            Some(&alice.access),
            json!({ "name": "mod", "rank": 10, "permissions": ["manage_messages"] }),
        )
        .await
        .expect(200);
    a.node
        .put(
            &format!("/api/v1/rooms/{room}/members/{}/roles", carol.id),
            Some(&alice.access),
            json!({ "roles": [1] }),
        )
        .await
        .expect(200);

    // Only manage_room sets a policy, and only known labels.
    let policy = json!({ "rules": [
        { "label": "threat", "threshold": 0.5, "action": "hide" },
        { "label": "insult", "threshold": 0.5, "action": "flag" },
        { "label": "hate", "threshold": 0.5, "action": "block" },
    ] });
    b.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&bob.access),
            json!({ "moderation_policy": policy }),
        )
        .await
        .error(403, "missing_permission");
    a.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            json!({ "moderation_policy": { "rules": [{ "label": "rudeness", "threshold": 0.5, "action": "hide" }] } }),
        )
        .await
        .error(400, "bad_value");
    let updated = a
        .node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            json!({ "moderation_policy": policy }),
        )
        .await
        .expect(200);
    assert_eq!(updated["moderation_policy"], policy);
    // B has the policy, and carol's role, before anything is sent.
    until("B holds the policy and carol's role", || async {
        let seen = b
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&carol.access))
            .await
            .expect(200);
        let moderates = seen["permissions"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "manage_messages"));
        (seen["moderation_policy"] == policy && moderates).then_some(())
    })
    .await;

    // A blocked local send: refused before signing, nothing stored.
    let refused = b
        .node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.access),
            json!({ "body": "all muslims are terrorists" }),
        )
        .await;
    assert_eq!(refused.code(), Some("moderation_blocked"));
    let message = refused.body["message"].as_str().unwrap().to_owned();
    refused.error(422, "moderation_blocked");
    assert!(message.contains("hate"), "{message}");
    let bobs_messages = b
        .node
        .history(&bob, &room, 200)
        .await
        .into_iter()
        .filter(|e| e["sender"] == bob.id.as_str() && e["type"] == "message")
        .count();
    assert_eq!(bobs_messages, 0, "the blocked message was stored");

    // Bob listens on B while alice posts on A.
    let (mut bob_ws, _) = Ws::auth(&b.node, &bob.access, 0).await;
    let threat = a
        .node
        .send(&alice, &room, "i know where you live, watch your back")
        .await;
    let insult = a.node.send(&alice, &room, "you are a pathetic moron").await;
    let clean = a
        .node
        .send(&alice, &room, "the walrus meeting is at noon")
        .await;

    // Carol's queue on B: the threat hidden, the insult flagged.
    let queue = until("B's review queue lists both", || async {
        let queue = b
            .node
            .get(
                &format!("/api/v1/rooms/{room}/moderation/queue"),
                Some(&carol.access),
            )
            .await
            .expect(200);
        (queue["items"].as_array()?.len() == 2).then_some(queue)
    })
    .await;
    let item = |id: &str| {
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["event_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {queue}"))
            .clone()
    };
    assert_eq!(item(&threat)["hidden"], true);
    assert_eq!(item(&threat)["labels"], json!(["threat"]));
    assert_eq!(
        item(&threat)["event"]["content"]["body"],
        "i know where you live, watch your back"
    );
    assert_eq!(item(&threat)["event"]["sender"], alice.id.as_str());
    assert_eq!(item(&insult)["flagged"], true);
    assert_eq!(item(&insult)["hidden"], false);
    b.node
        .get(
            &format!("/api/v1/rooms/{room}/moderation/queue"),
            Some(&bob.access),
        )
        .await
        .error(403, "not_room_moderator");

    // The moderator sees all three; bob sees the insult and the clean line.
    until_history_has(
        &b,
        &carol,
        &room,
        &[threat.clone(), insult.clone(), clean.clone()],
    )
    .await;
    // Moderators are told which of them members do not see.
    let carols = b.node.history(&carol, &room, 50).await;
    let hidden_flag = |id: &str| {
        carols
            .iter()
            .find(|e| e["event_id"] == id)
            .map(|e| e["hidden"].clone())
    };
    assert_eq!(hidden_flag(&threat), Some(json!(true)));
    assert_eq!(hidden_flag(&insult), Some(serde_json::Value::Null));
    let bob_history = until_history_has(&b, &bob, &room, &[insult.clone(), clean.clone()]).await;
    assert!(!bob_history.contains(&threat), "hidden from bob's history");
    // A gets no say: alice's own node shows it (the policy hides on receipt).
    assert!(ids(&a.node.history(&alice, &room, 50).await).contains(&threat));

    // Bob's WebSocket never carried it, live or replayed.
    let last = a.node.send(&alice, &room, "last line").await;
    let live = bob_ws.events_until(&last).await;
    let live_ids: Vec<&str> = live
        .iter()
        .filter_map(|f| f["event"]["event_id"].as_str())
        .collect();
    assert!(live_ids.contains(&insult.as_str()) && live_ids.contains(&clean.as_str()));
    assert!(
        !live_ids.contains(&threat.as_str()),
        "a hidden event went out live"
    );
    let (mut replay, _) = Ws::auth(&b.node, &bob.access, 0).await;
    let replayed = replay.events_until(&last).await;
    assert!(
        !replayed
            .iter()
            .any(|f| f["event"]["event_id"] == threat.as_str()),
        "a hidden event went out in a backlog"
    );

    // Search on B finds the clean line and never the threat.
    let search = |q: &'static str| {
        let node = &b.node;
        let token = bob.access.clone();
        let room = room.clone();
        async move {
            node.get(&format!("/api/v1/search?q={q}&room={room}"), Some(&token))
                .await
                .expect(200)
        }
    };
    until("B's index has the clean line", || async {
        let found = search("walrus").await;
        (found["results"].as_array()?.len() == 1).then_some(())
    })
    .await;
    until("B's index has the insult", || async {
        let found = search("moron").await;
        (found["results"].as_array()?.len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        search("live").await["results"],
        json!([]),
        "hidden from search"
    );

    // Bob reports the clean line: it joins carol's queue; twice counts once.
    for _ in 0..2 {
        b.node
            .post(
                &format!("/api/v1/rooms/{room}/messages/{clean}/report"),
                Some(&bob.access),
                json!({}),
            )
            .await
            .expect(204);
    }
    let queue = b
        .node
        .get(
            &format!("/api/v1/rooms/{room}/moderation/queue"),
            Some(&carol.access),
        )
        .await
        .expect(200);
    let reported = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["event_id"] == clean.as_str())
        .unwrap_or_else(|| panic!("the report is not queued: {queue}"))
        .clone();
    assert_eq!(reported["reported_by"], json!([bob.id]));
    assert_eq!(reported["hidden"], false);
    assert_eq!(reported["flagged"], false);
    // A message of another room is not reported through this one.
    let other = a
        .node
        .create_room(
            &alice,
            json!({ "name": "elsewhere", "visibility": "private" }),
        )
        .await;
    let elsewhere = a.node.send(&alice, &other, "not yours").await;
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/messages/{elsewhere}/report"),
            Some(&bob.access),
            json!({}),
        )
        .await
        .error(404, "unknown_event");

    // A hidden message stays queued until revealed or deleted.
    let resolve = format!("/api/v1/rooms/{room}/moderation/queue/{threat}");
    b.node
        .delete(&resolve, Some(&carol.access))
        .await
        .error(409, "still_hidden");

    // Carol reveals it: bob sees it.
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/messages/{threat}/reveal"),
            Some(&bob.access),
            json!({}),
        )
        .await
        .error(403, "not_room_moderator");
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/messages/{threat}/reveal"),
            Some(&carol.access),
            json!({}),
        )
        .await
        .expect(204);
    assert!(ids(&b.node.history(&bob, &room, 50).await).contains(&threat));
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/messages/{threat}/reveal"),
            Some(&carol.access),
            json!({}),
        )
        .await
        .error(404, "not_hidden");
    // Revealed, it can leave the queue.
    b.node
        .delete(&resolve, Some(&carol.access))
        .await
        .expect(204);
    let queue = b
        .node
        .get(
            &format!("/api/v1/rooms/{room}/moderation/queue"),
            Some(&carol.access),
        )
        .await
        .expect(200);
    assert!(
        !queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["event_id"] == threat.as_str()),
        "{queue}"
    );
    assert!(ids(&b.node.history(&bob, &room, 50).await).contains(&threat));
}

/// Every notification of `user` on `node` (one page is enough here).
async fn notified(node: &crate::support::Node, user: &crate::support::User) -> Vec<String> {
    let page = node
        .get("/api/v1/notifications?limit=100", Some(&user.access))
        .await
        .expect(200);
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["event_id"].as_str().map(str::to_owned))
        .collect()
}

/// Edits from another node are screened like messages: a hostile edit
/// hides the message it edits from bob's history on B and never reaches
/// his WebSocket; a hidden message that mentions bob notifies nobody,
/// while a clean mention sent after it does.
#[tokio::test]
async fn remote_edits_are_screened_and_hidden_events_notify_no_one() {
    use crate::federation::{Peer, join_via, until, until_history_has};
    use crate::support::{Ws, ids};

    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "edited", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    let policy = json!({ "rules": [{ "label": "threat", "threshold": 0.5, "action": "hide" }] });
    a.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            json!({ "moderation_policy": policy }),
        )
        .await
        .expect(200);
    until("B holds the policy", || async {
        let seen = b
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&bob.access))
            .await
            .expect(200);
        (seen["moderation_policy"] == policy).then_some(())
    })
    .await;

    let (mut bob_ws, _) = Ws::auth(&b.node, &bob.access, 0).await;
    let lunch = a.node.send(&alice, &room, "see you at lunch").await;
    until_history_has(&b, &bob, &room, std::slice::from_ref(&lunch)).await;
    let edit = a
        .node
        .patch(
            &format!("/api/v1/rooms/{room}/messages/{lunch}"),
            Some(&alice.access),
            json!({ "body": "i know where you live, watch your back" }),
        )
        .await
        .expect(200);
    let edit_id = edit["event_id"].as_str().unwrap().to_owned();
    let mention = |body: &str| json!({ "body": body, "mentions": { "users": [bob.id] } });
    let threat = a
        .node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            mention("bob, i know where you live, watch your back"),
        )
        .await
        .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let friendly = a
        .node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            mention("bob, the walrus meeting moved to noon"),
        )
        .await
        .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Notifications: the friendly mention (decided after the threat, in
    // stream order) arrives; the hidden threat never does.
    let listed = until("bob is notified of the friendly mention", || async {
        let listed = notified(&b.node, &bob).await;
        listed.contains(&friendly).then_some(listed)
    })
    .await;
    assert!(!listed.contains(&threat), "a hidden message notified bob");

    // The edited message is gone from bob's history on B; A still shows it.
    let history = until_history_has(&b, &bob, &room, std::slice::from_ref(&friendly)).await;
    assert!(
        !history.contains(&lunch),
        "the hostile edit's target is shown"
    );
    assert!(!history.contains(&threat));
    assert!(ids(&a.node.history(&alice, &room, 50).await).contains(&lunch));

    // Bob's WebSocket carried neither the edit nor the threat.
    let live = bob_ws.events_until(&friendly).await;
    let live_ids: Vec<&str> = live
        .iter()
        .filter_map(|f| f["event"]["event_id"].as_str())
        .collect();
    assert!(
        live_ids.contains(&lunch.as_str()),
        "the clean line went out"
    );
    assert!(
        !live_ids.contains(&edit_id.as_str()),
        "the hostile edit went out"
    );
    assert!(!live_ids.contains(&threat.as_str()));
}

/// Slowmode set on A holds bob of B: his node refuses a second message
/// within the interval, and A holds only his first.
#[tokio::test]
async fn slowmode_holds_a_sender_on_another_node() {
    use crate::federation::{Peer, join_via, until, until_history_has};

    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "slow", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    a.node
        .patch(
            &format!("/api/v1/rooms/{room}"),
            Some(&alice.access),
            json!({ "slowmode_seconds": 3600 }),
        )
        .await
        .expect(200);
    until("B holds the slowmode", || async {
        let seen = b
            .node
            .get(&format!("/api/v1/rooms/{room}"), Some(&bob.access))
            .await
            .expect(200);
        (seen["slowmode_seconds"] == 3600).then_some(())
    })
    .await;
    let first = b.node.send(&bob, &room, "first").await;
    b.node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&bob.access),
            json!({ "body": "too soon" }),
        )
        .await
        .error(403, "slowmode");
    // The owner bypasses slowmode; her second line orders after bob's.
    a.node.send(&alice, &room, "one").await;
    let last = a.node.send(&alice, &room, "two").await;
    until_history_has(&a, &alice, &room, &[first.clone(), last.clone()]).await;
    let bobs: Vec<_> = a
        .node
        .history(&alice, &room, 50)
        .await
        .into_iter()
        .filter(|e| e["sender"] == bob.id.as_str() && e["type"] == "message")
        .collect();
    assert_eq!(bobs.len(), 1, "{bobs:?}");
}

/// AutoMod rules on two real nodes: a local send that breaks one is
/// refused before signing with the rule named (a keyword, a regex, the
/// link and mention limits); bad rules are refused; a message from a node
/// that enforces no moderation (`moderation.enabled = false`: it signs
/// what its users send) is hidden on arrival by a node that does.
#[tokio::test]
async fn automod_refuses_local_sends_and_hides_received_messages() {
    use crate::federation::{Peer, join_via, until, until_history_has};
    use crate::support::ids;

    // A enforces nothing; B does.
    let a = Peer::start_with(&[], &[("SPACES__MODERATION__ENABLED", "false")]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = b.node.register("carol").await;
    let room = b
        .node
        .create_room(&bob, json!({ "name": "automod", "visibility": "public" }))
        .await;
    b.node.join(&carol, &room).await;
    join_via(&a, &alice, &room, &[b.id()]).await;

    let path = format!("/api/v1/rooms/{room}");
    for bad in [
        json!({ "automod": { "regexes": ["("] } }),
        json!({ "automod": { "keywords": [" "] } }),
        json!({ "automod": { "regexes": ["a{1000}{1000}"] } }),
    ] {
        b.node
            .patch(&path, Some(&bob.access), bad)
            .await
            .error(400, "bad_value");
    }
    let rules = json!({
        "keywords": ["cheap watches"],
        "regexes": ["(?i)free\\s+crypto"],
        "max_links": 1,
        "max_mentions": 1,
    });
    b.node
        .patch(&path, Some(&carol.access), json!({ "automod": rules }))
        .await
        .error(403, "missing_permission");
    let updated = b
        .node
        .patch(&path, Some(&bob.access), json!({ "automod": rules }))
        .await
        .expect(200);
    assert_eq!(updated["automod"], rules);

    let messages = format!("/api/v1/rooms/{room}/messages");
    for (body, rule) in [
        (json!({ "body": "Cheap watches, today only" }), "keyword"),
        (json!({ "body": "get FREE crypto" }), "regex 1"),
        (
            json!({ "body": "https://a.example https://b.example" }),
            "2 links",
        ),
        (
            json!({ "body": "hi", "mentions": { "users": [bob.id, carol.id] } }),
            "2 mentions",
        ),
    ] {
        let refused = b.node.post(&messages, Some(&carol.access), body).await;
        let message = refused.body["message"].as_str().unwrap_or("").to_owned();
        refused.error(422, "automod_blocked");
        assert!(message.contains(rule), "{rule}: {message}");
    }
    let fine = b.node.send(&carol, &room, "watches are cheap here").await;
    // An edit is held to the same rules.
    b.node
        .patch(
            &format!("/api/v1/rooms/{room}/messages/{fine}"),
            Some(&carol.access),
            json!({ "body": "free crypto for all" }),
        )
        .await
        .error(422, "automod_blocked");

    // A signs alice's spam (it enforces nothing); B hides it from carol.
    until("A holds the rules", || async {
        let seen = a.node.get(&path, Some(&alice.access)).await.expect(200);
        (seen["automod"] == rules).then_some(())
    })
    .await;
    let spam = a
        .node
        .send(&alice, &room, "cheap watches for everyone")
        .await;
    let clean = a.node.send(&alice, &room, "hello from A").await;
    until_history_has(&b, &carol, &room, std::slice::from_ref(&clean)).await;
    let history = ids(&b.node.history(&carol, &room, 50).await);
    assert!(
        !history.contains(&spam),
        "AutoMod's hidden message is shown"
    );
    let queue = b
        .node
        .get(
            &format!("/api/v1/rooms/{room}/moderation/queue"),
            Some(&bob.access),
        )
        .await
        .expect(200);
    let item = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["event_id"] == spam.as_str())
        .unwrap_or_else(|| panic!("not queued: {queue}"))
        .clone();
    assert_eq!(item["labels"], json!(["automod"]));
    assert_eq!(item["hidden"], true);
}
