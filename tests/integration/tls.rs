//! HTTPS and WSS on the node's own listener (`http.tls`), with
//! certificates each test makes (rcgen): the API and the WebSocket over
//! TLS, a plain-HTTP request to the TLS port answered `tls_required` and
//! closed, and SIGHUP loading a new certificate while connections made
//! under the old one go on.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Node, PASSWORD, WS_TIMEOUT, data_dir};

/// A new self-signed certificate for `localhost`, written to
/// `dir/cert.pem` and `dir/key.pem`; its DER, for the client to trust.
fn make_certificate(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    // Written beside and renamed into place: a reload never reads half a file.
    for (name, pem) in [
        ("cert.pem", made.cert.pem()),
        ("key.pem", made.key_pair.serialize_pem()),
    ] {
        let staging = dir.join(format!("{name}.new"));
        std::fs::write(&staging, pem).unwrap();
        std::fs::rename(&staging, dir.join(name)).unwrap();
    }
    made.cert.der().clone()
}

/// A client that trusts only `cert`.
fn connector(cert: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection a full handshake: a resumed session shows no
    // certificate, and these tests look at which one the node presents.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

/// One request on an open HTTPS connection (kept alive); status and JSON body.
async fn request(
    stream: &mut TlsStream<TcpStream>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // Read the head, then exactly content-length bytes: the connection stays open.
    let mut raw = Vec::new();
    let end = loop {
        let mut byte = [0; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed mid-head"
        );
        raw.push(byte[0]);
        if raw.ends_with(b"\r\n\r\n") {
            break raw.len();
        }
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn start(dir: &Path) -> (tempfile::TempDir, Node) {
    let data = data_dir();
    let cert = dir.join("cert.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let node = Node::start(
        data.path(),
        &[
            ("SPACES__HTTP__TLS__CERT_FILE", cert.as_str()),
            ("SPACES__HTTP__TLS__KEY_FILE", key.as_str()),
        ],
    )
    .await;
    (data, node)
}

/// A WebSocket over TLS, signed in with `token`: its `ready` frame read.
async fn wss(
    node: &Node,
    connector: &TlsConnector,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>> {
    let stream = tls_connect(node.addr, connector).await.unwrap();
    let url = format!("wss://localhost:{}/ws", node.addr.port());
    let (mut ws, _) =
        tokio::time::timeout(WS_TIMEOUT, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("WSS handshake timed out")
            .expect("WSS handshake");
    ws.send(Message::text(
        json!({ "type": "auth", "token": token, "since": 0 }).to_string(),
    ))
    .await
    .unwrap();
    let ready = tokio::time::timeout(WS_TIMEOUT, ws.next())
        .await
        .expect("no frame")
        .expect("closed")
        .unwrap();
    let ready: Value = serde_json::from_str(ready.to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready", "{ready}");
    ws
}

/// Sends a ping and waits for its pong: the connection is alive.
async fn ping(ws: &mut tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>) {
    ws.send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .unwrap();
    tokio::time::timeout(WS_TIMEOUT, async {
        while let Some(frame) = ws.next().await {
            if let Message::Pong(payload) = frame.unwrap() {
                assert_eq!(&payload[..], b"still there?");
                return;
            }
        }
        panic!("WebSocket closed before its pong");
    })
    .await
    .expect("no pong");
}

#[tokio::test]
async fn https_and_wss_and_plain_http_refused() {
    let certs = tempfile::tempdir().unwrap();
    let cert = make_certificate(certs.path());
    let (_data, node) = start(certs.path()).await;
    let client = connector(&cert);

    let mut https = tls_connect(node.addr, &client).await.unwrap();
    assert_eq!(https.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, _) = request(&mut https, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, tokens) = request(
        &mut https,
        "POST",
        "/api/v1/auth/register",
        Some(json!({ "username": "alice", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 201, "{tokens}");
    let mut ws = wss(&node, &client, tokens["access_token"].as_str().unwrap()).await;
    ping(&mut ws).await;

    // Plain HTTP to the TLS port: a clear answer, then the connection closes.
    let mut plain = TcpStream::connect(node.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WS_TIMEOUT, plain.read_to_string(&mut answer))
        .await
        .expect("the plain connection was not closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("\"code\":\"tls_required\""), "{answer}");

    // A client that does not trust the certificate fails its handshake, and
    // the node goes on.
    let stranger = connector(&make_certificate(tempfile::tempdir().unwrap().path()));
    assert!(tls_connect(node.addr, &stranger).await.is_err());
    let (status, _) = request(&mut https, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let certs = tempfile::tempdir().unwrap();
    let old = make_certificate(certs.path());
    let (_data, node) = start(certs.path()).await;
    let old_client = connector(&old);
    let mut https = tls_connect(node.addr, &old_client).await.unwrap();
    let (status, tokens) = request(
        &mut https,
        "POST",
        "/api/v1/auth/register",
        Some(json!({ "username": "alice", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, 201);
    let mut ws = wss(&node, &old_client, tokens["access_token"].as_str().unwrap()).await;

    // A broken pair is refused and the old one stays.
    std::fs::write(certs.path().join("key.pem"), "not a key").unwrap();
    hangup(&node);
    until(
        || async { node.log().contains("not reloaded") },
        "the refusal in the log",
    )
    .await;
    let (status, _) = request(&mut https, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    assert!(tls_connect(node.addr, &old_client).await.is_ok());

    let new = make_certificate(certs.path());
    hangup(&node);
    let new_client = connector(&new);
    until(
        || async { tls_connect(node.addr, &new_client).await.is_ok() },
        "the new certificate served after SIGHUP",
    )
    .await;
    // New handshakes present the new certificate only...
    assert!(tls_connect(node.addr, &old_client).await.is_err());
    // ...and what was connected under the old one goes on.
    let (status, _) = request(&mut https, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    ping(&mut ws).await;
}

fn hangup(node: &Node) {
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(node.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `check` until it holds; fails after [`WS_TIMEOUT`]. The node's
/// reload is a signal it handles in its own time: there is nothing to wait
/// on but its effect.
async fn until<F, Fut>(check: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WS_TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
