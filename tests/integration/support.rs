//! The harness: a running `spaces` process ([`Node`]), its HTTP API as
//! JSON in and out ([`Reply`]), users ([`User`]), the WebSocket ([`Ws`]) and
//! the admin CLI ([`admin`]).
//!
//! Every [`Reply`] is checked against docs/spec/openapi.json as it arrives
//! ([`openapi`]): a status the operation does not list, or a body its schema
//! refuses, fails the test that received it.
//!
//! A [`Node`] owns its child process and kills it on drop, so a failing
//! test leaks nothing; when the test is panicking, the node's log (stderr,
//! `RUST_LOG=warn`) is printed so the failure shows the node's side too.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod openapi;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_spaces");

/// A password that passes the policy (8 characters or more).
pub const PASSWORD: &str = "correct horse battery staple";

/// How long a node may take to print its address: a debug binary on a
/// loaded two-core machine opens sled and loads every room first.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Any single HTTP request. Generous for argon2 under parallel tests; a
/// hung request fails the test instead of hanging the suite.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for one WebSocket frame that should come promptly.
pub const WS_TIMEOUT: Duration = Duration::from_secs(15);
/// Waiting for a signalled process to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Send limits for tests that send more than a person would: the default
/// (10/s, burst 50) would turn them into rate-limit tests.
pub const FAST_SENDS: &[(&str, &str)] = &[
    ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
    ("SPACES__LIMITS__SEND_BURST", "100000"),
];

/// A running `spaces serve` process.
#[derive(Debug)]
pub struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// The node id it printed on start (`~...`).
    pub node_id: String,
    http: reqwest::Client,
    log: Arc<Mutex<String>>,
}

impl Node {
    /// Starts `spaces serve` on `data_dir` with an ephemeral port and the
    /// given extra environment, and waits until it prints its address.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        spaces_node::install_crypto_provider();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        clean_env(&mut command);
        // No federation listener unless a test asks for one: parallel tests
        // must not all bind the default port 4040.
        command.env("SPACES__P2P__LISTEN", "[]");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawning spaces serve");

        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = stderr_log.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        // The node prints `Spaces node <id> on http://<addr>` once it listens.
        // The reader keeps draining stdout afterwards so the child never
        // blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Spaces node ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(line)) => line,
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                // Let the stderr reader finish the child's last words.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "node did not announce its address ({}; exit {status:?}); log:\n{}",
                    if outcome.is_err() {
                        "timed out"
                    } else {
                        "stdout closed"
                    },
                    log.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (node_id, url) = match words[..] {
            ["Spaces", "node", id, "on", url] => (id.to_owned(), url),
            _ => panic!("unexpected start line {line:?}"),
        };
        // `https://` when the node serves TLS (tests/integration/tls.rs has
        // its own clients for it; `base` stays plain HTTP).
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        assert_ne!(addr.port(), 0, "the node must report the bound port");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("building the HTTP client");
        Node {
            child: Some(child),
            addr,
            base: format!("http://{addr}"),
            node_id,
            http,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// SIGKILL: no shutdown code runs, like a power cut for the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping the node");
        }
    }

    /// SIGTERM, then waits (with a deadline) for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let child = self.child.as_mut().expect("node is running");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("polling the node") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node did not exit within {EXIT_TIMEOUT:?} of SIGTERM"
            );
            // Polling a child's exit: there is no async wait on a std Child.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node's stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Any request with an optional JSON body. The future owns what it
    /// needs, so helpers may build paths and tokens on the fly.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> impl Future<Output = Reply> + use<> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::send(method, path, request)
    }

    /// A request with a raw body (bad JSON, wrong content type, huge bodies).
    pub fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> impl Future<Output = Reply> + use<> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        Reply::send(method, path, request.body(body))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> impl Future<Output = Reply> + use<> {
        self.request(Method::GET, path, token, None)
    }
    pub fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Reply> + use<> {
        self.request(Method::POST, path, token, Some(body))
    }
    pub fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Reply> + use<> {
        self.request(Method::PUT, path, token, Some(body))
    }
    pub fn patch(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> impl Future<Output = Reply> + use<> {
        self.request(Method::PATCH, path, token, Some(body))
    }
    pub fn delete(&self, path: &str, token: Option<&str>) -> impl Future<Output = Reply> + use<> {
        self.request(Method::DELETE, path, token, None)
    }

    /// Registers `username` with [`PASSWORD`] (open registration).
    pub async fn register(&self, username: &str) -> User {
        let body = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "username": username, "password": PASSWORD }),
            )
            .await
            .expect(201);
        User::from_tokens(username, &body)
    }

    pub async fn login(&self, username: &str, password: &str) -> User {
        let body = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "username": username, "password": password }),
            )
            .await
            .expect(200);
        User::from_tokens(username, &body)
    }

    /// Creates a room; returns its id.
    pub async fn create_room(&self, owner: &User, body: Value) -> String {
        let room = self
            .post("/api/v1/rooms", Some(&owner.access), body)
            .await
            .expect(201);
        room["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Sends a text message; returns its event id.
    pub async fn send(&self, user: &User, room_id: &str, body: &str) -> String {
        let event = self
            .post(
                &format!("/api/v1/rooms/{room_id}/messages"),
                Some(&user.access),
                json!({ "body": body }),
            )
            .await
            .expect(201);
        event["event_id"].as_str().expect("event_id").to_owned()
    }

    pub async fn join(&self, user: &User, room_id: &str) {
        self.post(
            &format!("/api/v1/rooms/{room_id}/join"),
            Some(&user.access),
            json!({}),
        )
        .await
        .expect(200);
    }

    pub async fn invite(&self, inviter: &User, room_id: &str, invitee: &User) {
        self.post(
            &format!("/api/v1/rooms/{room_id}/invite"),
            Some(&inviter.access),
            json!({ "user_id": invitee.id }),
        )
        .await
        .expect(200);
    }

    /// Every timeline event of a room, oldest first, paged backwards from
    /// the newest with `limit` per page.
    pub async fn history(&self, user: &User, room_id: &str, limit: usize) -> Vec<Value> {
        let mut pages: Vec<Vec<Value>> = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/rooms/{room_id}/messages?dir=b&limit={limit}");
            if let Some(from) = &from {
                path.push_str(&format!("&from={from}"));
            }
            let page = self.get(&path, Some(&user.access)).await.expect(200);
            let events = page["events"].as_array().expect("events").clone();
            assert!(events.len() <= limit, "page larger than its limit");
            let has_more = page["has_more"].as_bool().expect("has_more");
            if has_more {
                assert_eq!(events.len(), limit, "a page with more after it is full");
            }
            from = events
                .first()
                .map(|e| e["event_id"].as_str().unwrap().to_owned());
            pages.push(events);
            if !has_more {
                break;
            }
        }
        pages.into_iter().rev().flatten().collect()
    }

    /// Reads one counter from `/metrics`.
    /// `user`'s `presence` in `room`'s member list, as `viewer` sees it.
    pub async fn presence_in(&self, viewer: &User, room: &str, user: &User) -> Value {
        let members = self
            .get(
                &format!("/api/v1/rooms/{room}/members"),
                Some(&viewer.access),
            )
            .await
            .expect(200);
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == user.id.as_str())
            .map(|m| m["presence"].clone())
            .unwrap_or_else(|| panic!("{} is not listed in {room}", user.id))
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let reply = self.get("/metrics", None).await;
        assert_eq!(reply.status, 200);
        reply
            .text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no metric {name} in:\n{}", reply.text))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("metric {name}: {e}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- log of node {} ---\n{}", self.node_id, self.log());
        }
    }
}

/// Removes any `SPACES__*` the test process inherited: each test states the
/// configuration it runs with.
fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("SPACES__") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
}

/// An HTTP response: its status and its body as JSON (`Null` if it is not
/// JSON; the text is kept).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
    what: String,
}

impl Reply {
    /// Sends the request and checks the reply against the OpenAPI document.
    fn send(
        method: Method,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> impl Future<Output = Reply> + use<> {
        let path = path.to_owned();
        async move {
            let what = format!("{method} {path}");
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let status = response.status().as_u16();
            let headers: std::collections::BTreeMap<String, String> = response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            let content_type = headers.get("content-type").cloned().unwrap_or_default();
            let text = response
                .text()
                .await
                .unwrap_or_else(|e| panic!("{what}: reading body: {e}"));
            let exchange = openapi::Exchange {
                method: method.as_str(),
                path: &path,
                status,
                headers: &headers,
                text: &text,
            };
            if let Err(report) = openapi::DOCUMENT.check(&exchange) {
                panic!("{what}: the reply disagrees with docs/spec/openapi.json:\n  {report}");
            }
            Reply::new(what, status, content_type, text)
        }
    }

    fn new(what: String, status: u16, content_type: String, text: String) -> Reply {
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            content_type,
            what,
        }
    }

    /// Asserts the status; returns the JSON body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} {}",
            self.what, self.status, self.text
        );
        self.body
    }

    /// Asserts an API error: the status, the machine-readable code and a
    /// human message.
    #[track_caller]
    pub fn error(self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{}: expected {status} {code}, got {} {}",
            self.what,
            self.status,
            self.text
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: an error carries a message: {}",
            self.what,
            self.text
        );
    }

    /// The error code, if the body is an API error.
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }
}

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// `@name:~node`
    pub id: String,
    pub access: String,
    pub refresh: String,
    pub session: String,
}

impl User {
    pub fn from_tokens(name: &str, tokens: &Value) -> User {
        let field = |key: &str| {
            tokens[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {tokens}"))
                .to_owned()
        };
        User {
            name: name.to_owned(),
            id: field("user_id"),
            access: field("access_token"),
            refresh: field("refresh_token"),
            session: field("session_id"),
        }
    }
}

/// A WebSocket client of `/ws`.
#[derive(Debug)]
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Backlog frames read while waiting for `caught_up`, not yet taken.
    pending: std::collections::VecDeque<Value>,
}

/// What the server did with a connection: sent a frame or closed it.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub async fn connect(node: &Node) -> Ws {
        let url = format!("ws://{}/ws", node.addr);
        let (stream, _) = tokio::time::timeout(WS_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket connect timed out")
            .expect("WebSocket connect");
        Ws {
            stream,
            pending: Default::default(),
        }
    }

    /// Connects, authenticates with `since`, waits until the server has sent
    /// the whole backlog (`caught_up`), and returns the `ready` frame. The
    /// backlog's frames are returned by the next reads, in order.
    pub async fn auth(node: &Node, token: &str, since: u64) -> (Ws, Value) {
        let mut ws = Ws::connect(node).await;
        ws.send_text(&json!({ "type": "auth", "token": token, "since": since }).to_string())
            .await;
        let ready = ws.next_json().await;
        assert_eq!(ready["type"], "ready", "first server frame: {ready}");
        let mut backlog = std::collections::VecDeque::new();
        loop {
            let frame = ws.next_json().await;
            if frame["type"] == "caught_up" {
                break;
            }
            backlog.push_back(frame);
        }
        ws.pending = backlog;
        (ws, ready)
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("WebSocket send");
    }

    /// The next text frame or close, skipping pings and pongs.
    pub async fn next_frame(&mut self) -> Frame {
        if let Some(frame) = self.pending.pop_front() {
            return Frame::Json(frame);
        }
        loop {
            let message = tokio::time::timeout(WS_TIMEOUT, self.stream.next())
                .await
                .expect("no WebSocket frame in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).expect("frame is JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Err(_)) | None => return Frame::Closed(None),
            }
        }
    }

    pub async fn next_json(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(value) => value,
            Frame::Closed(code) => panic!("WebSocket closed ({code:?}) while a frame was due"),
        }
    }

    /// The next `event` frame, skipping ephemeral frames (typing, receipts,
    /// presence) and `notification` frames, which may come between events at
    /// any time, and `acceptance` frames (see [`Ws::until_refused`]).
    pub async fn next_event(&mut self) -> Value {
        loop {
            let frame = self.next_json().await;
            if !matches!(
                frame["type"].as_str(),
                Some("typing" | "receipt" | "presence" | "acceptance" | "notification")
            ) {
                assert_eq!(frame["type"], "event", "expected an event frame: {frame}");
                return frame;
            }
        }
    }

    /// Waits for a `presence` frame saying `user_id` is `state`, skipping
    /// everything else.
    pub async fn presence_of(&mut self, user_id: &str, state: &str) {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == "presence" && frame["user_id"] == user_id && frame["state"] == state
            {
                return;
            }
        }
    }

    /// Event frames up to and including the one carrying `event_id`.
    pub async fn events_until(&mut self, event_id: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_event().await;
            let done = frame["event"]["event_id"] == event_id;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Frames up to and including an `acceptance` frame that refuses
    /// `event_id`.
    pub async fn until_refused(&mut self, event_id: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_json().await;
            let done = frame["type"] == "acceptance"
                && frame["refused"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|id| id == event_id));
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Waits for the server to close the connection; its close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Frame::Closed(code) = self.next_frame().await {
                return code;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Runs `spaces <args>` to completion with `stdin` fed in.
pub async fn run_cli(args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("SPACES__") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    let mut child = command.spawn().expect("spawning spaces");
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("writing stdin");
    drop(input);
    tokio::time::timeout(EXIT_TIMEOUT, child.wait_with_output())
        .await
        .expect("spaces command timed out")
        .expect("running spaces")
}

/// `spaces admin --data-dir <dir> <args>`; asserts success, returns stdout.
pub async fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let dir = data_dir.to_str().expect("utf-8 temp path");
    let mut full = vec!["admin", "--data-dir", dir];
    full.extend_from_slice(args);
    let output = run_cli(&full, stdin).await;
    assert!(
        output.status.success(),
        "spaces {full:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A fresh temporary data directory.
pub fn data_dir() -> tempfile::TempDir {
    // Every test makes a data directory before its first HTTP client.
    spaces_node::install_crypto_provider();
    tempfile::Builder::new()
        .prefix("spaces-it-")
        .tempdir()
        .expect("creating a temp dir")
}

/// A started node on a fresh data dir (kept alive by the returned guard).
pub async fn node(env: &[(&str, &str)]) -> (tempfile::TempDir, Node) {
    let dir = data_dir();
    let node = Node::start(dir.path(), env).await;
    (dir, node)
}

/// The event ids of a list of rendered events.
pub fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}
