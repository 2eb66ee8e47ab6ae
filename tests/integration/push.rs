//! Web Push (`/api/v1/push/subscriptions`): a push service on 127.0.0.1
//! receives what the node pushes. Every payload is decrypted with the
//! browser's key, and, when `SPACES_PUSH_PYTHON` names a Python with
//! `http_ece` and `cryptography` (scripts/push-e2e.sh installs them), also
//! by scripts/push-verify.py, which verifies the VAPID JWT against the
//! node's public key: implementations nobody here wrote.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use web_push_native::p256;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint as _;

use crate::federation::{Peer, join_via, until};
use crate::support::{Node, User};

/// One request the push service received.
#[derive(Clone, Debug)]
struct Captured {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A push service on 127.0.0.1: answers 410 under `/gone/`, 201 elsewhere,
/// and keeps every request.
struct PushService {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Captured>>>,
}

impl PushService {
    async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let kept = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let kept = kept.clone();
                            async move {
                                use http_body_util::BodyExt;
                                let path = request.uri().path().to_owned();
                                let headers = request
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or_default().to_owned())
                                    })
                                    .collect();
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                let status = if path.starts_with("/gone/") { 410 } else { 201 };
                                kept.lock().unwrap().push(Captured {
                                    path,
                                    headers,
                                    body: body.to_vec(),
                                });
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        PushService { addr, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<Captured> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until a request to `path` has come; all of them so far.
    async fn until_path(&self, path: &str) -> Vec<Captured> {
        until("the push service got the request", || async {
            let all = self.received();
            all.iter().any(|c| c.path == path).then_some(all)
        })
        .await
    }
}

/// A browser: its P-256 key and auth secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(seed: u8) -> Browser {
        Browser {
            secret: p256::SecretKey::from_slice(&[seed; 32]).unwrap(),
            auth: [seed.wrapping_add(1); 16],
        }
    }

    /// `PushSubscription.toJSON()` for `endpoint`.
    fn subscription(&self, endpoint: &str) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            },
        })
    }

    /// The plaintexts of `requests`, decrypted here and, with
    /// `SPACES_PUSH_PYTHON`, by http_ece, which also verifies each VAPID JWT
    /// against `vapid_public_key` and `audience`.
    fn open(&self, requests: &[Captured], vapid_public_key: &str, audience: &str) -> Vec<Value> {
        let auth = web_push_native::Auth::clone_from_slice(&self.auth);
        let ours: Vec<Value> = requests
            .iter()
            .map(|r| {
                let plain = web_push_native::decrypt(r.body.clone(), &self.secret, &auth)
                    .expect("decrypts with the browser's key");
                serde_json::from_slice(&plain).unwrap()
            })
            .collect();
        if let Ok(python) = std::env::var("SPACES_PUSH_PYTHON") {
            let spec = json!({
                "private_key": URL_SAFE_NO_PAD.encode(self.secret.to_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
                "vapid_public_key": vapid_public_key,
                "audience": audience,
                "requests": requests.iter().map(|r| json!({
                    "headers": r.headers.iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<serde_json::Map<_, _>>(),
                    "body_b64": STANDARD.encode(&r.body),
                })).collect::<Vec<_>>(),
            });
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), spec.to_string()).unwrap();
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/push-verify.py");
            let output = std::process::Command::new(python)
                .arg(script)
                .arg(file.path())
                .output()
                .expect("running push-verify.py");
            assert!(
                output.status.success(),
                "push-verify.py: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let theirs: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
            let theirs: Vec<Value> = theirs
                .iter()
                .map(|t| serde_json::from_str(t).unwrap())
                .collect();
            assert_eq!(theirs, ours, "http_ece decrypts what we do");
        }
        ours
    }
}

fn header<'a>(captured: &'a Captured, name: &str) -> &'a str {
    captured
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn subscribe(node: &Node, user: &User, subscription: Value) -> String {
    node.post(
        "/api/v1/push/subscriptions",
        Some(&user.access),
        subscription,
    )
    .await
    .expect(201)["vapid_public_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn mention(node: &Node, from: &User, room: &str, to: &User, body: &str) -> String {
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&from.access),
        json!({ "body": body, "mentions": { "users": [to.id] } }),
    )
    .await
    .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const PUSH_ENV: [(&str, &str); 2] = [
    ("SPACES__PUSH__ALLOW_LOOPBACK_HTTP", "true"),
    ("SPACES__PUSH__DELAY_MS", "300"),
];

/// A mention sent from another node reaches rita's browser through its
/// push service, encrypted for it, with the node's VAPID signature.
#[tokio::test]
async fn a_mention_from_another_node_is_pushed_encrypted_and_signed() {
    let service = PushService::start().await;
    let a = Peer::start_with(&[], &PUSH_ENV).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let rita = a.node.register("rita").await;
    let remy = b.node.register("remy").await;
    let room = a
        .node
        .create_room(&rita, json!({ "name": "lobby", "visibility": "public" }))
        .await;
    join_via(&b, &remy, &room, &[a.id()]).await;
    let browser = Browser::new(11);
    let endpoint = service.url("/send/rita");
    let vapid = subscribe(&a.node, &rita, browser.subscription(&endpoint)).await;
    let listed = a
        .node
        .get("/api/v1/push/subscriptions", Some(&rita.access))
        .await
        .expect(200);
    assert_eq!(listed["vapid_public_key"], vapid.as_str());
    assert_eq!(listed["subscriptions"][0]["endpoint"], endpoint.as_str());

    let id = mention(&b.node, &remy, &room, &rita, "are you around?").await;
    let requests = service.until_path("/send/rita").await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(header(request, "content-encoding"), "aes128gcm");
    assert_eq!(header(request, "ttl"), "86400");
    assert_eq!(header(request, "urgency"), "high");
    assert!(header(request, "authorization").starts_with("vapid t="));
    let opened = browser.open(&requests, &vapid, &format!("http://{}", service.addr));
    let note = &opened[0]["notification"];
    assert_eq!(opened[0]["type"], "notification");
    assert_eq!(note["event_id"], id.as_str());
    assert_eq!(note["reason"], "mention");
    assert_eq!(note["sender"], remy.id.as_str());
    assert_eq!(note["excerpt"], "are you around?");
}

/// Seen in time: not pushed. A 410 removes the subscription. Deliveries
/// queued when the node dies are sent after the restart. Bad subscriptions
/// are refused and change nothing.
#[tokio::test]
async fn seen_is_not_pushed_gone_is_removed_and_a_restart_loses_none() {
    let service = PushService::start().await;
    let dir = crate::support::data_dir();
    let slow = [
        ("SPACES__PUSH__ALLOW_LOOPBACK_HTTP", "true"),
        ("SPACES__PUSH__DELAY_MS", "1500"),
    ];
    let mut node = Node::start(dir.path(), &slow).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let room = node
        .create_room(&alice, json!({ "name": "r", "visibility": "public" }))
        .await;
    node.join(&bob, &room).await;
    let browser = Browser::new(21);
    let phone = service.url("/send/bob");
    let old_laptop = service.url("/gone/bob");
    let vapid = subscribe(&node, &bob, browser.subscription(&phone)).await;
    subscribe(&node, &bob, browser.subscription(&old_laptop)).await;

    // Refused: not https, another user's removal, junk keys, too many.
    node.post(
        "/api/v1/push/subscriptions",
        Some(&bob.access),
        browser.subscription("http://10.0.0.1/x"),
    )
    .await
    .error(400, "bad_subscription");
    let mut junk = browser.subscription(&service.url("/send/junk"));
    junk["keys"]["p256dh"] = json!("AAAA");
    node.post("/api/v1/push/subscriptions", Some(&bob.access), junk)
        .await
        .error(400, "bad_subscription");
    node.request(
        reqwest::Method::DELETE,
        "/api/v1/push/subscriptions",
        Some(&alice.access),
        Some(json!({ "endpoint": phone })),
    )
    .await
    .error(404, "unknown_subscription");
    // push.max_subscriptions_per_user: 10.
    for n in 0..10 {
        let endpoint = service.url(&format!("/send/extra{n}"));
        subscribe(&node, &alice, browser.subscription(&endpoint)).await;
    }
    // Registering one again replaces it.
    subscribe(
        &node,
        &alice,
        browser.subscription(&service.url("/send/extra0")),
    )
    .await;
    node.post(
        "/api/v1/push/subscriptions",
        Some(&alice.access),
        browser.subscription(&service.url("/send/one-too-many")),
    )
    .await
    .error(400, "too_many");

    // Seen: bob reads it before the delay is over. Then one he does not
    // read: pushed, to both subscriptions; the queue is in due order, so
    // by then the first was decided.
    mention(&node, &alice, &room, &bob, "seen in time").await;
    until("bob is notified", || async {
        let page = node
            .get("/api/v1/notifications/unread", Some(&bob.access))
            .await
            .expect(200);
        (page["unread"] == 1).then_some(())
    })
    .await;
    node.post("/api/v1/notifications/read", Some(&bob.access), json!({}))
        .await
        .expect(200);
    let unseen = mention(&node, &alice, &room, &bob, "not seen").await;
    let requests = service.until_path("/send/bob").await;
    let to_phone: Vec<Captured> = requests
        .iter()
        .filter(|c| c.path == "/send/bob")
        .cloned()
        .collect();
    let opened = browser.open(&to_phone, &vapid, &format!("http://{}", service.addr));
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["notification"]["event_id"], unseen.as_str());
    // The 410: the old laptop's subscription is gone.
    until("the gone subscription is removed", || async {
        let listed = node
            .get("/api/v1/push/subscriptions", Some(&bob.access))
            .await
            .expect(200);
        let endpoints: Vec<&str> = listed["subscriptions"]
            .as_array()?
            .iter()
            .filter_map(|s| s["endpoint"].as_str())
            .collect();
        (endpoints == [phone.as_str()]).then_some(())
    })
    .await;

    // Queued when the node dies (SIGKILL): sent after the restart.
    let n_before = service.received().len();
    let queued = mention(&node, &alice, &room, &bob, "while you were away").await;
    until(
        "the notification is written (and the push queued)",
        || async {
            let page = node
                .get("/api/v1/notifications/unread", Some(&bob.access))
                .await
                .expect(200);
            (page["unread"] == 2).then_some(())
        },
    )
    .await;
    node.kill();
    assert_eq!(
        service.received().len(),
        n_before,
        "not sent before its delay"
    );
    let node = Node::start(dir.path(), &slow).await;
    until("the queued push arrives after the restart", || async {
        let received = service.received();
        let n = received.iter().filter(|c| c.path == "/send/bob").count();
        (n >= 2).then_some(())
    })
    .await;
    let to_phone: Vec<Captured> = service
        .received()
        .into_iter()
        .filter(|c| c.path == "/send/bob")
        .collect();
    let opened = browser.open(&to_phone, &vapid, &format!("http://{}", service.addr));
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(opened[1]["notification"]["event_id"], queued.as_str());
    drop(node);
}
