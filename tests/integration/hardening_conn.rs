//! Connection limits (docs/spec/api.md, "Connection limits"): slow request
//! heads and bodies, idle kept-alive connections, clients that stop reading
//! and clients that hold too many connections are cut off within the
//! configured bounds, politely where an answer can still reach them.
//!
//! Nodes run with limits of a second or two so the tests stay quick; the
//! time assertions check the documented limit with wide margins.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{FAST_SENDS, Node, WS_TIMEOUT, node};

/// Upper margin on a server-side timeout of a second or two: a debug
/// node on a loaded two-core machine.
const SLACK: Duration = Duration::from_secs(10);
/// Polling a condition that the node reaches on its own.
const POLL: Duration = Duration::from_millis(50);

/// A raw HTTP response.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// The head, lowercased.
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Connects to `addr` from `local` (any 127.x.y.z on Linux).
async fn connect_from(local: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    tokio::time::timeout(WS_TIMEOUT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Reads one response (head and `content-length` body); None if the
/// connection ends first.
async fn read_response(tcp: &mut TcpStream) -> Option<Raw> {
    let mut data = Vec::new();
    let mut chunk = [0; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |n| n.trim().parse().unwrap());
                if data.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into();
                    return Some(Raw { status, head, body });
                }
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => data.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(SLACK, read)
        .await
        .expect("no response in time")
}

/// A keep-alive `GET` on an open connection.
async fn get(tcp: &mut TcpStream, path: &str) -> Option<Raw> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: spaces\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    read_response(tcp).await
}

/// Waits until the server closes `tcp` (EOF or reset), with nothing more to
/// read; how long that took since `since`.
async fn closed_after(tcp: &mut TcpStream, since: Instant) -> Duration {
    let mut chunk = [0; 1024];
    let read = async {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => since.elapsed(),
            Ok(n) => panic!(
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
        }
    };
    tokio::time::timeout(SLACK, read)
        .await
        .expect("the server kept the connection open")
}

/// Reads a metric over a fresh connection (the harness's pooled client
/// would count against connection caps). A connection the test just
/// closed may still count against the per-address cap until the node has
/// seen it go (a moment under load): a 429 is asked again, within SLACK.
async fn metric(node: &Node, sample: &str) -> u64 {
    let deadline = Instant::now() + SLACK;
    let reply = loop {
        let mut tcp = connect_from([127, 0, 0, 1].into(), node.addr).await;
        let reply = get(&mut tcp, "/metrics").await.expect("metrics answered");
        if reply.status != 429 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(reply.status, 200);
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no metric {sample} in:\n{}", reply.body))
        .trim()
        .parse()
        .unwrap()
}

/// Polls `sample` until it reaches `at_least`.
async fn metric_reaches(node: &Node, sample: &str, at_least: u64) {
    let deadline = Instant::now() + SLACK;
    loop {
        let value = metric(node, sample).await;
        if value >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample} is {value}, not {at_least}"
        );
        tokio::time::sleep(POLL).await;
    }
}

const LOCAL: [u8; 4] = [127, 0, 0, 1];

#[tokio::test]
async fn slow_request_lines_headers_and_bodies_are_cut_off_in_time() {
    let (_dir, node) = node(&[
        ("SPACES__HTTP__HEADER_READ_TIMEOUT_SECS", "1"),
        ("SPACES__HTTP__BODY_READ_TIMEOUT_SECS", "1"),
    ])
    .await;
    let limit = Duration::from_secs(1);
    let slow_heads: [&[u8]; 3] = [
        b"",
        b"GET /healthz HT",
        b"GET /healthz HTTP/1.1\r\nhost: spaces\r\nx-slow: ",
    ];
    let heads = slow_heads.iter().map(|sent| async {
        let started = Instant::now();
        let mut tcp = connect_from(LOCAL.into(), node.addr).await;
        tcp.write_all(sent).await.unwrap();
        let took = closed_after(&mut tcp, started).await;
        assert!(
            took >= limit && took < limit + SLACK,
            "{:?}: closed after {took:?}",
            String::from_utf8_lossy(sent)
        );
    });
    let body = async {
        let started = Instant::now();
        let mut tcp = connect_from(LOCAL.into(), node.addr).await;
        // Promises 100 bytes, sends 10.
        tcp.write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: spaces\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"usernam",
        )
        .await
        .unwrap();
        let reply = read_response(&mut tcp).await.expect("a 408 answer");
        assert_eq!(reply.status, 408, "{reply:?}");
        assert_eq!(reply.json()["code"], "body_timeout");
        assert!(reply.head.contains("connection: close"), "{reply:?}");
        let took = closed_after(&mut tcp, started).await;
        assert!(
            took >= limit && took < limit + SLACK,
            "closed after {took:?}"
        );
    };
    let unread_body = async {
        let mut tcp = connect_from(LOCAL.into(), node.addr).await;
        // Refused before its body is read: answered, then closed, since
        // the rest of the body would be taken for the next request.
        tcp.write_all(
            b"POST /api/v1/rooms HTTP/1.1\r\nhost: spaces\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"name",
        )
        .await
        .unwrap();
        let reply = read_response(&mut tcp).await.expect("an answer");
        assert_eq!(reply.status, 401, "{reply:?}");
        let started = Instant::now();
        closed_after(&mut tcp, started).await;
    };
    tokio::join!(futures_util::future::join_all(heads), body, unread_body);

    // A request that keeps its times is served on the same kind of node.
    let mut tcp = connect_from(LOCAL.into(), node.addr).await;
    assert_eq!(get(&mut tcp, "/healthz").await.unwrap().status, 200);
    assert!(
        metric(
            &node,
            "spaces_http_connections_timed_out_total{timeout=\"header_read\"}"
        )
        .await
            >= 3
    );
    assert_eq!(
        metric(
            &node,
            "spaces_http_connections_timed_out_total{timeout=\"body_read\"}"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn kept_alive_connections_serve_requests_then_close_when_idle() {
    let (_dir, node) = node(&[("SPACES__HTTP__IDLE_TIMEOUT_SECS", "2")]).await;
    let mut tcp = connect_from(LOCAL.into(), node.addr).await;
    // Several requests on one connection, with pauses under the limit.
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let reply = get(&mut tcp, "/healthz").await.expect("kept alive");
        assert_eq!(reply.status, 200);
        assert!(!reply.head.contains("connection: close"), "{reply:?}");
    }
    let idle_since = Instant::now();
    let took = closed_after(&mut tcp, idle_since).await;
    // The node's clock starts as it finishes the response, a little before
    // the client has read it: a wide lower margin.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(2) + SLACK,
        "closed after {took:?}"
    );
    assert_eq!(
        metric(
            &node,
            "spaces_http_connections_timed_out_total{timeout=\"idle\"}"
        )
        .await,
        1
    );
    // The harness's pooled client still works against this node.
    node.get("/healthz", None).await.expect(200);
}

#[tokio::test]
async fn connection_caps_refuse_politely_in_total_and_per_address() {
    let (_dir, node) = node(&[
        ("SPACES__HTTP__MAX_CONNECTIONS", "4"),
        ("SPACES__HTTP__MAX_CONNECTIONS_PER_IP", "2"),
    ])
    .await;
    let a: IpAddr = [127, 0, 0, 1].into();
    let b: IpAddr = [127, 0, 0, 2].into();
    let c: IpAddr = [127, 0, 0, 3].into();
    // Each held connection is served first, so it is surely counted.
    let mut held = Vec::new();
    for from in [a, a, b, b] {
        let mut tcp = connect_from(from, node.addr).await;
        assert_eq!(get(&mut tcp, "/healthz").await.unwrap().status, 200);
        held.push(tcp);
    }

    // A fifth connection, from a third address: the total cap.
    let mut tcp = connect_from(c, node.addr).await;
    let refused = read_response(&mut tcp).await.expect("an answer");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.json()["code"], "too_many_connections");
    assert!(refused.json()["message"].as_str().is_some());
    assert!(refused.head.contains("connection: close"));
    closed_after(&mut tcp, Instant::now()).await;

    // One of `a`'s closes: `a` is under its cap, `c` too, and the total is
    // back to 3, so a new connection is served.
    drop(held.remove(0));
    let deadline = Instant::now() + SLACK;
    let mut tcp = loop {
        let mut tcp = connect_from(c, node.addr).await;
        let reply = get(&mut tcp, "/healthz").await;
        match reply {
            Some(reply) if reply.status == 200 => break tcp,
            // The node has not seen the close yet.
            _ => {
                assert!(Instant::now() < deadline, "no room after a close");
                tokio::time::sleep(POLL).await;
            }
        }
    };
    // Full again (3 held + this one): one held connection closes to make
    // room for the per-address check below.
    assert_eq!(get(&mut tcp, "/healthz").await.unwrap().status, 200);
    drop(tcp);
    let deadline = Instant::now() + SLACK;
    loop {
        // `b` holds 2: refused per address while the total has room.
        let mut tcp = connect_from(b, node.addr).await;
        let reply = read_response(&mut tcp).await;
        match reply {
            Some(reply) if reply.status == 429 => {
                assert_eq!(reply.json()["code"], "too_many_connections_from_address");
                assert!(reply.head.contains("connection: close"));
                assert!(reply.head.contains("retry-after"));
                closed_after(&mut tcp, Instant::now()).await;
                break;
            }
            // Still at the total cap until the node sees the close.
            Some(reply) if reply.status == 503 => {
                assert!(Instant::now() < deadline, "still full");
                tokio::time::sleep(POLL).await;
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // Every held connection still works.
    for tcp in &mut held {
        assert_eq!(get(tcp, "/healthz").await.unwrap().status, 200);
    }
    drop(held);
    metric_reaches(
        &node,
        "spaces_http_connections_refused_total{limit=\"per_ip\"}",
        1,
    )
    .await;
    assert!(
        metric(
            &node,
            "spaces_http_connections_refused_total{limit=\"total\"}"
        )
        .await
            >= 1
    );
}

/// A WebSocket client with a tiny receive buffer, authenticated and caught
/// up, that then stops reading.
async fn stalled_client(node: &Node, token: &str) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    // The kernel fills up after a few frames instead of megabytes.
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(node.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", node.addr), tcp)
        .await
        .expect("WebSocket handshake");
    ws.send(Message::text(
        json!({ "type": "auth", "token": token, "since": 0 }).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let message = tokio::time::timeout(WS_TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message
            && text.contains("\"caught_up\"")
        {
            return ws;
        }
    }
}

/// Reads whatever is left until the stream ends; panics if it stays open.
async fn ends(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) {
    let read = async { while let Some(Ok(_)) = ws.next().await {} };
    tokio::time::timeout(SLACK, read)
        .await
        .expect("the server kept the WebSocket open");
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_dropped() {
    let mut env = FAST_SENDS.to_vec();
    env.extend([
        ("SPACES__HTTP__WRITE_TIMEOUT_SECS", "1"),
        ("SPACES__HTTP__WS_CLOSE_TIMEOUT_SECS", "1"),
    ]);
    let (_dir, node) = node(&env).await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "Flood" })).await;
    let mut ws = stalled_client(&node, &alice.access).await;
    let open = metric(&node, "spaces_http_connections_open").await;
    let dropped = "spaces_ws_dropped_timeout_total{timeout=\"write\"}";
    let body = "x".repeat(16_000);
    // Bounded: 600 frames of 16 kB are far more than loopback buffers hold
    // for a 4 KiB receive buffer.
    let mut n_sent = 0;
    while metric(&node, dropped).await == 0 {
        assert!(n_sent < 600, "the node kept writing to a stalled client");
        for _ in 0..20 {
            node.send(&alice, &room, &body).await;
            n_sent += 1;
        }
    }
    assert!(
        metric(
            &node,
            "spaces_http_connections_timed_out_total{timeout=\"write\"}"
        )
        .await
            >= 1
    );
    // The node let go of the TCP connection, not only of the WebSocket.
    let deadline = Instant::now() + SLACK;
    while metric(&node, "spaces_http_connections_open").await >= open {
        assert!(Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(POLL).await;
    }
    // The client reads at last: what is left, then the end (a reset).
    ends(&mut ws).await;
    assert_eq!(metric(&node, "spaces_ws_clients").await, 0);
    // The node goes on serving the same user.
    let (mut fresh, _) = crate::support::Ws::auth(&node, &alice.access, 0).await;
    let id = node.send(&alice, &room, "after").await;
    fresh.events_until(&id).await;
}

#[tokio::test]
async fn a_close_handshake_the_client_never_answers_is_cut_short() {
    let (_dir, node) = node(&[("SPACES__HTTP__WS_CLOSE_TIMEOUT_SECS", "1")]).await;
    let alice = node.register("alice").await;
    let mut ws = stalled_client(&node, &alice.access).await;
    let open = metric(&node, "spaces_http_connections_open").await;
    // A binary frame is a protocol error: the server closes, and this
    // client never answers the close.
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    metric_reaches(
        &node,
        "spaces_ws_dropped_timeout_total{timeout=\"close\"}",
        1,
    )
    .await;
    // The WebSocket's connection is gone from the open count.
    let deadline = Instant::now() + SLACK;
    while metric(&node, "spaces_http_connections_open").await >= open {
        assert!(Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(POLL).await;
    }
    ends(&mut ws).await;
}
