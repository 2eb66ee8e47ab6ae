//! Operator tools: online backup during a send load, restore into a new
//! directory, and the restored node serving and accepting sends.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::{BIN, FAST_SENDS, Node, data_dir, ids, run_cli};

/// Concurrent senders during the backup: several requests per group commit,
/// so the snapshot's seq watermark falls between and inside commits.
const N_TASKS: usize = 4;
/// Upper bound per sender: the load ends even if the backup never does.
const MAX_SENDS_PER_TASK: usize = 150;
/// Acknowledgements before the backup starts.
const BACKUP_AFTER_ACKS: usize = 60;
/// History page size when reading everything back.
const PAGE: usize = 100;

/// `spaces admin backup --url <node> --to <file>` with an admin's token.
pub(crate) async fn backup_online(node: &Node, token: &str, to: &Path) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["admin", "backup", "--url", &node.base, "--to"])
        .arg(to)
        .env("SPACES_ADMIN_TOKEN", token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("SPACES__") {
            command.env_remove(key);
        }
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("backup timed out")
        .expect("running spaces admin backup")
}

/// `spaces admin restore --from <archive> --data-dir <into>`.
pub(crate) async fn restore(archive: &Path, into: &Path) -> std::process::Output {
    run_cli(
        &[
            "admin",
            "restore",
            "--from",
            archive.to_str().unwrap(),
            "--data-dir",
            into.to_str().unwrap(),
        ],
        "",
    )
    .await
}

#[tokio::test]
async fn online_backup_under_load_restores_every_acknowledged_message() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), FAST_SENDS).await;
    let admin = node.register("admin").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&admin, json!({ "name": "busy", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;

    // Only an admin takes backups.
    node.post("/api/v1/admin/backup", Some(&bob.access), json!({}))
        .await
        .error(403, "not_admin");
    node.post("/api/v1/admin/backup", None, json!({}))
        .await
        .error(401, "missing_token");

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..N_TASKS {
        let user = if task % 2 == 0 { &admin } else { &bob }.clone();
        let (acked, stop, count_tx, http) =
            (acked.clone(), stop.clone(), count_tx.clone(), http.clone());
        let url = format!("{}/api/v1/rooms/{room}/messages", node.base);
        tasks.push(tokio::spawn(async move {
            for i in 0..MAX_SENDS_PER_TASK {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let response = http
                    .post(&url)
                    .bearer_auth(&user.access)
                    .json(&json!({ "body": format!("task {task} message {i}") }))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(response.status(), 201, "a send during the backup failed");
                let event: serde_json::Value = response.json().await.unwrap();
                acked
                    .lock()
                    .unwrap()
                    .push(event["event_id"].as_str().unwrap().to_owned());
                count_tx.send_modify(|n| *n += 1);
            }
        }));
    }
    tokio::time::timeout(
        Duration::from_secs(120),
        count_rx.wait_for(|n| *n >= BACKUP_AFTER_ACKS),
    )
    .await
    .expect("the load did not start in time")
    .unwrap();

    // Everything acknowledged before the backup was asked for must be in it.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let work = data_dir();
    let archive = work.path().join("node.spaces");
    let output = backup_online(&node, &admin.access, &archive).await;
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let during = acked.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let all = acked.lock().unwrap().len();
    assert!(archive.is_file());
    assert!(
        !work.path().join("node.spaces.partial").exists(),
        "no partial file left"
    );

    // Refusals: an existing archive name, a non-empty target, a truncated archive.
    let again = backup_online(&node, &admin.access, &archive).await;
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    let into_live = restore(&archive, dir.path()).await;
    assert!(!into_live.status.success());
    assert!(String::from_utf8_lossy(&into_live.stderr).contains("not empty"));
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = work.path().join("truncated.spaces");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let cut_target = work.path().join("from-truncated");
    let cut = restore(&truncated, &cut_target).await;
    assert!(!cut.status.success());
    let why = String::from_utf8_lossy(&cut.stderr);
    assert!(
        why.contains("truncated") || why.contains("damaged"),
        "{why}"
    );
    assert!(!cut_target.exists(), "a refused archive restores nothing");

    // Restore into a new directory and serve it (the original stopped: the
    // restored node has the same identity).
    node.terminate().await;
    let unhealthy = run_cli(&["healthcheck", "--url", &node.base], "").await;
    assert!(!unhealthy.status.success(), "a stopped node is not healthy");
    let restored_dir = work.path().join("restored");
    let restored = restore(&archive, &restored_dir).await;
    assert!(
        restored.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let restored_node = Node::start(&restored_dir, FAST_SENDS).await;
    assert_eq!(restored_node.node_id, node.node_id, "same node identity");
    let admin = restored_node.login("admin", crate::support::PASSWORD).await;
    let events = restored_node.history(&admin, &room, PAGE).await;
    let history = ids(&events);
    let held: std::collections::HashSet<&String> = history.iter().collect();
    let missing: Vec<&String> = before.iter().filter(|id| !held.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} messages acknowledged before the backup are missing",
        missing.len(),
        before.len()
    );
    // And nothing that was never acknowledged: every message it holds was
    // sent by the load (acknowledged by the time the load ended).
    let acked_ids: std::collections::HashSet<String> =
        acked.lock().unwrap().iter().cloned().collect();
    let messages: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["type"] == "message").collect();
    assert!(messages.len() >= before.len() && messages.len() <= all);
    for message in messages {
        assert!(acked_ids.contains(message["event_id"].as_str().unwrap()));
    }
    eprintln!(
        "backup: {} acknowledged before, {during} when it ended, {all} in all",
        before.len()
    );

    // The container's health check: the binary asks /healthz.
    let healthy = run_cli(&["healthcheck", "--url", &restored_node.base], "").await;
    assert!(healthy.status.success());

    // The restored node accepts sends, and bob's session came with it.
    let new_id = restored_node.send(&admin, &room, "after the restore").await;
    let history = ids(&restored_node.history(&admin, &room, PAGE).await);
    assert_eq!(history.last(), Some(&new_id));
    let bob_again = restored_node.login("bob", crate::support::PASSWORD).await;
    restored_node.send(&bob_again, &room, "bob is back").await;
}

/// `spaces admin check` passes a sound data directory, finds a damaged
/// signature and a missing index entry injected into the store, and every
/// command refuses a directory of a newer format than the binary.
#[tokio::test]
async fn check_finds_injected_corruption_and_newer_formats_are_refused() {
    let dir = data_dir();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut node = Node::start(dir.path(), &[]).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "checked" })).await;
    for i in 0..5 {
        node.send(&alice, &room, &format!("message {i}")).await;
    }
    node.terminate().await;

    let args = ["admin", "--data-dir", path.as_str(), "check"];
    let check = || run_cli(&args, "");
    let sound = check().await;
    let report = String::from_utf8_lossy(&sound.stdout).into_owned();
    assert!(sound.status.success(), "{report}");
    assert!(report.lines().last() == Some("ok"), "{report}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("format"))
            .unwrap()
            .trim(),
        "1"
    );

    {
        // The store's own layout (crates/store/src/keys.rs): records keyed by
        // seq below 0xf0, event-id index entries under 0xf2.
        let db = sled::open(dir.path().join("store")).unwrap();
        let log = db.open_tree("log").unwrap();
        let (key, value) = log.range(..&[0xf0u8][..]).next_back().unwrap().unwrap();
        let mut value = value.to_vec();
        // The last byte of the last record: its last event's signature.
        *value.last_mut().unwrap() ^= 1;
        log.insert(key, value).unwrap();
        let (id_key, _) = log.scan_prefix([0xf2]).next().unwrap().unwrap();
        log.remove(id_key).unwrap();
        db.flush().unwrap();
    }
    let damaged = check().await;
    let report = String::from_utf8_lossy(&damaged.stdout).into_owned();
    assert!(!damaged.status.success(), "{report}");
    assert!(report.contains("does not verify"), "{report}");
    assert!(report.contains("no event-id index entry"), "{report}");
    assert!(report.contains("2 problems found"), "{report}");

    std::fs::write(dir.path().join("format"), "2\n").unwrap();
    let newer = check().await;
    assert!(!newer.status.success());
    let why = String::from_utf8_lossy(&newer.stderr);
    assert!(why.contains("newer than this spaces"), "{why}");
    let serve = run_cli(
        &["serve", "--data-dir", &path, "--http-listen", "127.0.0.1:0"],
        "",
    )
    .await;
    assert!(!serve.status.success());
    assert!(String::from_utf8_lossy(&serve.stderr).contains("newer than this spaces"));
}

/// `/metrics` behind `metrics.token`, and JSON log lines.
#[tokio::test]
async fn metrics_token_and_json_logs() {
    let dir = data_dir();
    let node = Node::start(
        dir.path(),
        &[
            ("SPACES__METRICS__TOKEN", "metrics-secret"),
            ("SPACES__LOG__FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    node.get("/metrics", None).await.error(401, "missing_token");
    node.get("/metrics", Some("metrics-secretX"))
        .await
        .error(401, "bad_token");
    // A user's access token is not the metrics token.
    let alice = node.register("alice").await;
    node.get("/metrics", Some(&alice.access))
        .await
        .error(401, "bad_token");
    // A room and a message: a room sample, and a store commit observed.
    let room = node.create_room(&alice, json!({ "name": "metered" })).await;
    node.send(&alice, &room, "counted").await;
    let reply = node.get("/metrics", Some("metrics-secret")).await;
    assert_eq!(reply.status, 200);
    let text = &reply.text;
    assert!(
        text.contains(&format!("spaces_room_events{{room=\"{room}\"}} ")),
        "{text}"
    );
    let commits = text
        .lines()
        .find_map(|l| l.strip_prefix("spaces_store_commit_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no commit histogram: {text}"));
    assert!(commits >= 1, "{text}");
    assert!(text.contains("spaces_federation_peers 0"), "{text}");

    // Every metric the Grafana dashboard plots is one the node exports.
    let dashboard: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/grafana/spaces.json"
    )))
    .unwrap();
    let exported: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut plotted = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if !word.starts_with("spaces_") {
                    continue;
                }
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| word.strip_suffix(suffix))
                    .filter(|family| exported.contains(family))
                    .unwrap_or(word);
                assert!(
                    exported.contains(family),
                    "panel {:?} plots {word}, which /metrics does not export",
                    panel["title"]
                );
                plotted += 1;
            }
        }
    }
    assert!(plotted >= 20, "the dashboard plots {plotted} series");

    let log = node.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "node started" && l["level"] == "INFO"),
        "{log}"
    );
}

/// The committed fixture, written by the first build with data-directory
/// format 1 (tests/integration/fixtures/README.md), restores, passes
/// `admin check`, and serves its account and messages: a later format must
/// migrate it, not refuse it.
#[tokio::test]
async fn a_format_1_fixture_still_opens() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/integration/fixtures/format-1.spaces"
    );
    let work = data_dir();
    let target = work.path().join("restored");
    let target_arg = target.to_str().unwrap();
    let restored = restore(Path::new(fixture), &target).await;
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let check = run_cli(&["admin", "--data-dir", target_arg, "check"], "").await;
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let node = Node::start(&target, &[]).await;
    let alice = node.login("alice", crate::support::PASSWORD).await;
    let me = node
        .get("/api/v1/me", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(me["is_admin"], true);
    let room = "!pl2h6t5nblvymwsvxrzgqnobd4qkpp67bup57okqvbx6tzw4kk2q";
    let bodies: Vec<String> = node
        .history(&alice, room, PAGE)
        .await
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies, ["first message", "second message", "third message"]);
    node.send(&alice, room, "fourth message").await;
}
