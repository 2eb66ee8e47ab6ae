//! Media (issue 14): uploads streamed to the blob store, limits and types,
//! decompression bombs, metadata stripping, safe serving, who may fetch
//! what, a SIGKILL mid-upload, and garbage collection.
//!
//! Every fixture is made by code (`spaces_blobs::fixtures`): a JPEG with a
//! GPS EXIF segment, a PNG that declares a huge canvas.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::openapi::{DOCUMENT, Exchange};
use crate::support::{FAST_SENDS, Node, User, data_dir, node};

/// A file response: status, headers (lower-case names) and raw bytes,
/// checked against docs/spec/openapi.json like every other reply.
pub(crate) struct Fetched {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

pub(crate) async fn fetch(
    node: &Node,
    method: Method,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Fetched {
    spaces_node::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.request(method.clone(), node.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers: BTreeMap<String, String> = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let bytes = response.bytes().await.unwrap().to_vec();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let exchange = Exchange {
        method: method.as_str(),
        path,
        status,
        headers: &headers,
        text: &text,
    };
    if let Err(report) = DOCUMENT.check(&exchange) {
        panic!("{method} {path}: the reply disagrees with docs/spec/openapi.json:\n  {report}");
    }
    Fetched {
        status,
        headers,
        bytes,
    }
}

pub(crate) async fn upload(
    node: &Node,
    user: &User,
    name: &str,
    bytes: Vec<u8>,
) -> crate::support::Reply {
    node.raw(
        Method::POST,
        &format!("/api/v1/media?name={name}"),
        Some(&user.access),
        Some("application/octet-stream"),
        bytes,
    )
    .await
}

/// Uploads `n_chunks` chunks of `chunk` bytes with chunked transfer
/// encoding (no `Content-Length`), ending the body if `end`; returns the
/// status.
async fn chunked_upload_status(
    node: &Node,
    user: &User,
    n_chunks: usize,
    chunk: usize,
    end: bool,
) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut socket = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        user.access
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    for i in 0..n_chunks {
        let data = text(chunk, i as u8);
        let framed = [format!("{chunk:x}\r\n").as_bytes(), &data, b"\r\n"].concat();
        socket.write_all(&framed).await.unwrap();
    }
    if end {
        socket.write_all(b"0\r\n\r\n").await.unwrap();
    }
    // The status line is all we need: read until it is complete.
    let mut reply = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

pub(crate) fn text(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_file_round_trips_with_safe_headers_ranges_and_etags() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let data = text(100_000, 3);
    let up = upload(&node, &alice, "notes%20(1).txt", data.clone())
        .await
        .expect(201);
    let hash = up["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash, blake3::hash(&data).to_hex().as_str());
    assert_eq!(up["size"], 100_000);
    assert_eq!(up["mime"], "application/octet-stream");
    assert_eq!(up["name"], "notes (1).txt");
    assert_eq!(
        (up["width"].clone(), up["thumbnail"].clone()),
        (Value::Null, Value::Null)
    );

    let path = format!("/api/v1/media/{hash}?name=notes.txt");
    let got = fetch(&node, Method::GET, &path, Some(&alice.access), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, data);
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(
        got.header("content-security-policy"),
        "sandbox; default-src 'none'"
    );
    assert!(
        got.header("content-disposition")
            .starts_with("attachment; filename=\"notes.txt\"")
    );
    assert_eq!(
        got.header("cache-control"),
        "private, max-age=31536000, immutable"
    );
    assert_eq!(got.header("etag"), format!("\"{hash}\""));

    let part = fetch(
        &node,
        Method::GET,
        &path,
        Some(&alice.access),
        &[("range", "bytes=10-19")],
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, &data[10..20]);
    assert_eq!(part.header("content-range"), "bytes 10-19/100000");
    let tail = fetch(
        &node,
        Method::GET,
        &path,
        Some(&alice.access),
        &[("range", "bytes=-5")],
    )
    .await;
    assert_eq!(tail.bytes, &data[99_995..]);
    let past = fetch(
        &node,
        Method::GET,
        &path,
        Some(&alice.access),
        &[("range", "bytes=100000-")],
    )
    .await;
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), "bytes */100000");
    let etag = format!("\"{hash}\"");
    let cached = fetch(
        &node,
        Method::GET,
        &path,
        Some(&alice.access),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(cached.status, 304);
    let head = fetch(&node, Method::HEAD, &path, Some(&alice.access), &[]).await;
    assert_eq!((head.status, head.bytes.len()), (200, 0));
    assert_eq!(head.header("content-length"), "100000");

    node.get(&format!("/api/v1/media/{hash}"), None)
        .await
        .error(401, "missing_token");
    node.get("/api/v1/media/xyz", Some(&alice.access))
        .await
        .error(400, "bad_hash");
    node.get(
        &format!("/api/v1/media/{hash}/thumbnail"),
        Some(&alice.access),
    )
    .await
    .error(404, "no_thumbnail");
}

#[tokio::test]
async fn limits_types_and_bombs_are_refused_and_the_node_stays_up() {
    let (_dir, node) = node(&[
        ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
        ("SPACES__LIMITS__SEND_BURST", "100000"),
        ("SPACES__MEDIA__MAX_FILE_BYTES", "200000"),
        ("SPACES__MEDIA__QUOTA_BYTES", "300000"),
    ])
    .await;
    let alice = node.register("alice").await;
    upload(&node, &alice, "big", text(200_001, 0))
        .await
        .error(413, "too_large");
    // Without a Content-Length (chunked): counted while streaming.
    // 21 chunks pass the limit: the node answers without waiting for the end.
    assert_eq!(
        chunked_upload_status(&node, &alice, 21, 10_000, false).await,
        413
    );
    assert_eq!(
        chunked_upload_status(&node, &alice, 3, 10_000, true).await,
        201
    );

    let elf = [
        &b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0"[..],
        &[0u8; 64],
    ]
    .concat();
    upload(&node, &alice, "a.out", elf)
        .await
        .error(415, "unsupported_type");
    let script = b"#!/bin/sh\nrm -rf /\n".to_vec();
    upload(&node, &alice, "x.sh", script)
        .await
        .error(415, "unsupported_type");

    let bomb = spaces_blobs::fixtures::png_bomb(100_000, 100_000);
    assert!(bomb.len() < 200, "a small file");
    upload(&node, &alice, "bomb.png", bomb)
        .await
        .error(413, "image_too_large");
    // Under the canvas limit but with no pixel data behind its header.
    upload(
        &node,
        &alice,
        "liar.png",
        spaces_blobs::fixtures::png_bomb(3000, 3000),
    )
    .await
    .error(400, "bad_image");
    // A polyglot: a JPEG's magic number in front of HTML.
    let polyglot = [
        &b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"[..],
        b"<html><script>alert(1)</script>",
    ]
    .concat();
    upload(&node, &alice, "poly.jpg", polyglot)
        .await
        .error(400, "bad_image");
    node.get("/healthz", None).await.expect(200);

    // 30 000 bytes are kept from the chunked upload above.
    upload(&node, &alice, "one", text(100_000, 1))
        .await
        .expect(201);
    // The same file again counts once.
    upload(&node, &alice, "one-again", text(100_000, 1))
        .await
        .expect(201);
    upload(&node, &alice, "two", text(100_000, 2))
        .await
        .expect(201);
    upload(&node, &alice, "three", text(100_000, 3))
        .await
        .error(413, "quota_exceeded");
    let bob = node.register("bob").await;
    upload(&node, &bob, "bobs", text(10, 3)).await.expect(201);
}

#[tokio::test]
async fn images_lose_their_metadata_and_markup_is_an_attachment() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let jpeg = spaces_blobs::fixtures::jpeg_with_exif(640, 480);
    assert!(contains(&jpeg, b"GPSLatitude"));
    let up = upload(&node, &alice, "photo.jpg", jpeg).await.expect(201);
    assert_eq!(up["mime"], "image/jpeg");
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(640), Some(480))
    );
    let hash = up["hash"].as_str().unwrap();
    assert_eq!(up["thumbnail"], format!("/api/v1/media/{hash}/thumbnail"));
    let got = fetch(
        &node,
        Method::GET,
        &format!("/api/v1/media/{hash}"),
        Some(&alice.access),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(!contains(&got.bytes, b"GPSLatitude"), "EXIF is gone");
    assert!(
        !contains(&got.bytes, b"secret comment"),
        "comments are gone"
    );
    assert_eq!(got.header("content-type"), "image/jpeg");
    assert!(got.header("content-disposition").starts_with("inline"));
    let small = fetch(
        &node,
        Method::GET,
        &format!("/api/v1/media/{hash}/thumbnail?size=100"),
        Some(&alice.access),
        &[],
    )
    .await;
    assert_eq!(
        (small.status, small.header("content-type")),
        (200, "image/jpeg")
    );
    assert_eq!(&small.bytes[..3], b"\xFF\xD8\xFF");
    let large = fetch(
        &node,
        Method::GET,
        &format!("/api/v1/media/{hash}/thumbnail"),
        Some(&alice.access),
        &[],
    )
    .await;
    assert!(large.bytes.len() > small.bytes.len());

    let png = spaces_blobs::fixtures::png_with_text(32, 32);
    assert!(contains(&png, b"tEXt"));
    let up = upload(&node, &alice, "p.png", png).await.expect(201);
    let got = fetch(
        &node,
        Method::GET,
        &format!("/api/v1/media/{}", up["hash"].as_str().unwrap()),
        Some(&alice.access),
        &[],
    )
    .await;
    assert!(!contains(&got.bytes, b"tEXt"));

    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    for (name, bytes, mime) in [
        ("x.svg", svg, "application/octet-stream"),
        ("x.html", html, "text/html"),
    ] {
        let up = upload(&node, &alice, name, bytes).await.expect(201);
        assert_eq!(up["mime"], mime, "{name}");
        let got = fetch(
            &node,
            Method::GET,
            &format!("/api/v1/media/{}", up["hash"].as_str().unwrap()),
            Some(&alice.access),
            &[],
        )
        .await;
        assert_eq!(got.header("content-type"), mime);
        assert!(
            got.header("content-disposition").starts_with("attachment"),
            "{name}"
        );
        assert_eq!(
            got.header("content-security-policy"),
            "sandbox; default-src 'none'"
        );
        assert_eq!(got.header("x-content-type-options"), "nosniff");
    }
}

/// Downloads are allowed exactly when the history shows the referencing
/// message (or to the uploader); everyone else gets the 404 of a hash the
/// node does not hold.
#[tokio::test]
async fn only_the_uploader_and_readers_of_a_referencing_message_may_fetch() {
    let (_dir, node) = node(FAST_SENDS).await;
    let alice = node.register("alice").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    let dave = node.register("dave").await;
    let jpeg = spaces_blobs::fixtures::jpeg_with_exif(64, 48);
    let up = upload(&node, &alice, "cat.jpg", jpeg).await.expect(201);
    let hash = up["hash"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/media/{hash}");
    let thumb = format!("/api/v1/media/{hash}/thumbnail");
    let unknown = format!("/api/v1/media/{}", "ab".repeat(32));

    // Nobody but alice, before any message.
    for user in [&bob, &carol] {
        node.get(&path, Some(&user.access))
            .await
            .error(404, "unknown_media");
        node.get(&thumb, Some(&user.access))
            .await
            .error(404, "unknown_media");
    }
    node.get(&unknown, Some(&alice.access))
        .await
        .error(404, "unknown_media");
    // Bob cannot attach what he cannot fetch.
    let room = node.create_room(&alice, json!({ "name": "Cats" })).await;
    node.invite(&alice, &room, &bob).await;
    node.invite(&alice, &room, &dave).await;
    node.join(&bob, &room).await;
    node.join(&dave, &room).await;
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&bob.access),
        json!({ "body": "mine now", "attachments": [{ "hash": hash }] }),
    )
    .await
    .error(400, "unknown_attachment");

    let event = node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            json!({ "body": "", "attachments": [{ "hash": hash, "name": "../cat.jpg" }] }),
        )
        .await
        .expect(201);
    let attachment = &event["content"]["attachments"][0];
    assert_eq!(attachment["hash"], hash);
    assert_eq!(attachment["name"], "cat.jpg");
    assert_eq!(attachment["mime"], "image/jpeg");
    assert_eq!(
        (attachment["width"].as_u64(), attachment["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(attachment["node"], node.node_id);
    let history = node.history(&bob, &room, 50).await;
    assert!(
        history
            .iter()
            .any(|e| e["content"]["attachments"][0]["hash"] == hash)
    );

    assert_eq!(
        fetch(&node, Method::GET, &path, Some(&bob.access), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        fetch(&node, Method::GET, &thumb, Some(&bob.access), &[])
            .await
            .status,
        200
    );
    // Bob may now forward it: he can read it.
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&bob.access),
        json!({ "body": "look", "attachments": [{ "hash": hash }] }),
    )
    .await
    .expect(201);
    // Carol never was a member: no leak, not even a 403.
    node.get(&path, Some(&carol.access))
        .await
        .error(404, "unknown_media");
    node.get(&thumb, Some(&carol.access))
        .await
        .error(404, "unknown_media");

    // Dave is banned: he may fetch it exactly when his history shows it.
    node.post(
        &format!("/api/v1/rooms/{room}/ban"),
        Some(&alice.access),
        json!({ "user_id": dave.id }),
    )
    .await
    .expect(200);
    let sees = node
        .get(
            &format!("/api/v1/rooms/{room}/messages?limit=50"),
            Some(&dave.access),
        )
        .await;
    let shown = sees.status == 200
        && sees.body["events"].as_array().is_some_and(|events| {
            events
                .iter()
                .any(|e| e["content"]["attachments"][0]["hash"] == hash)
        });
    let status = fetch(&node, Method::GET, &path, Some(&dave.access), &[])
        .await
        .status;
    assert_eq!(
        status == 200,
        shown,
        "download {status} vs history {}",
        sees.status
    );
    if !shown {
        assert_eq!(status, 404);
    }
}

/// A SIGKILL halfway through an upload leaves nothing visible, and its
/// staging file is gone after the restart; the same file uploads fine.
#[tokio::test]
async fn a_crash_mid_upload_leaves_nothing() {
    let dir = data_dir();
    let mut node = Node::start(dir.path(), FAST_SENDS).await;
    let alice = node.register("alice").await;
    let incoming = dir.path().join("blobs/incoming");
    let data = text(4_000_000, 7);
    let mut socket = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        alice.access,
        data.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&data[..1_000_000]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let staged: u64 = std::fs::read_dir(&incoming)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if staged > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload never reached the disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill();
    drop(socket);
    let node = Node::start(dir.path(), FAST_SENDS).await;
    assert_eq!(
        std::fs::read_dir(&incoming).unwrap().count(),
        0,
        "staging emptied at start"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/store/temp"))
            .unwrap()
            .count(),
        0
    );
    let partial = blake3::hash(&data[..1_000_000]).to_hex().to_string();
    let alice = node.login("alice", crate::support::PASSWORD).await;
    node.get(&format!("/api/v1/media/{partial}"), Some(&alice.access))
        .await
        .error(404, "unknown_media");
    let full = blake3::hash(&data).to_hex().to_string();
    node.get(&format!("/api/v1/media/{full}"), Some(&alice.access))
        .await
        .error(404, "unknown_media");
    let up = upload(&node, &alice, "again", data).await.expect(201);
    assert_eq!(up["hash"], full);
}

/// An upload nothing references is collected after the grace period, its
/// data file deleted; a referenced one stays.
#[tokio::test]
async fn unreferenced_uploads_are_collected() {
    let dir = data_dir();
    let node = Node::start(
        dir.path(),
        &[
            ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
            ("SPACES__LIMITS__SEND_BURST", "100000"),
            ("SPACES__MEDIA__GRACE_SECS", "3"),
            ("SPACES__MEDIA__GC_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let alice = node.register("alice").await;
    // Larger than the store's 16 KiB inline limit: each is a file on disk.
    let dropped = upload(&node, &alice, "dropped", text(50_000, 1))
        .await
        .expect(201);
    let kept = upload(&node, &alice, "kept", text(50_000, 2))
        .await
        .expect(201);
    let dropped = dropped["hash"].as_str().unwrap().to_owned();
    let kept = kept["hash"].as_str().unwrap().to_owned();
    let room = node.create_room(&alice, json!({ "name": "Files" })).await;
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&alice.access),
        json!({ "body": "keep this", "attachments": [{ "hash": kept }] }),
    )
    .await
    .expect(201);
    let data_file = |hash: &str| dir.path().join(format!("blobs/store/data/{hash}.data"));
    assert!(data_file(&dropped).exists() && data_file(&kept).exists());
    let deadline = Instant::now() + Duration::from_secs(30);
    while data_file(&dropped).exists() {
        assert!(
            Instant::now() < deadline,
            "the unreferenced upload was never collected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.get(&format!("/api/v1/media/{dropped}"), Some(&alice.access))
        .await
        .error(404, "unknown_media");
    assert!(data_file(&kept).exists());
    let got = fetch(
        &node,
        Method::GET,
        &format!("/api/v1/media/{kept}"),
        Some(&alice.access),
        &[],
    )
    .await;
    assert_eq!(got.bytes, text(50_000, 2));
}

/// Redacting the only message that references a file ends its reference:
/// past the grace period the file is collected and nobody can fetch it.
#[tokio::test]
async fn a_redacted_messages_file_is_collected() {
    let dir = data_dir();
    let node = Node::start(
        dir.path(),
        &[
            ("SPACES__LIMITS__SENDS_PER_SEC", "100000"),
            ("SPACES__LIMITS__SEND_BURST", "100000"),
            ("SPACES__MEDIA__GRACE_SECS", "1"),
            ("SPACES__MEDIA__GC_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let alice = node.register("alice").await;
    let room = node.create_room(&alice, json!({ "name": "Oops" })).await;
    let up = upload(&node, &alice, "oops", text(50_000, 5))
        .await
        .expect(201);
    let hash = up["hash"].as_str().unwrap().to_owned();
    let event = node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            json!({ "body": "wrong file", "attachments": [{ "hash": hash }] }),
        )
        .await
        .expect(201);
    let event_id = event["event_id"].as_str().unwrap();
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{event_id}"),
        Some(&alice.access),
    )
    .await
    .expect(204);
    let data_file = dir.path().join(format!("blobs/store/data/{hash}.data"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while data_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the redacted message's file was never collected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.get(&format!("/api/v1/media/{hash}"), Some(&alice.access))
        .await
        .error(404, "unknown_media");
}

/// Writes `head` and then each chunk of `chunks` after its pause, as a
/// chunked body, ending it; the status of the answer (it may come before
/// the body is done).
async fn paced_status(node: &Node, head: &str, chunks: &[(Duration, Vec<u8>)]) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut socket = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    for (pause, data) in chunks {
        tokio::time::sleep(*pause).await;
        let framed = [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
        if socket.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut reply = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let reply = String::from_utf8_lossy(&reply);
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

/// An upload may take longer than any other body (a slow link) as long as
/// bytes keep coming; a stalled upload, and any other slow body, is still
/// cut off (docs/spec/api.md, "Connection limits").
#[tokio::test]
async fn uploads_get_longer_than_other_bodies_but_may_not_stall() {
    let (_dir, node) = node(&[
        ("SPACES__HTTP__BODY_READ_TIMEOUT_SECS", "2"),
        ("SPACES__MEDIA__UPLOAD_TIMEOUT_SECS", "60"),
    ])
    .await;
    let alice = node.register("alice").await;
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n",
            alice.access
        )
    };
    let second = Duration::from_secs(1);
    // Five seconds in all, a chunk every second: more than the 2 s other
    // bodies get, never a 2 s gap.
    let steady: Vec<(Duration, Vec<u8>)> = (0..5).map(|i| (second, text(10_000, i))).collect();
    assert_eq!(
        paced_status(&node, &head("/api/v1/media"), &steady).await,
        201
    );
    // The same upload stalling for 4 s is cut off.
    let stalled = vec![
        (Duration::ZERO, text(10_000, 1)),
        (Duration::from_secs(4), text(10_000, 2)),
    ];
    assert_eq!(
        paced_status(&node, &head("/api/v1/media"), &stalled).await,
        408
    );
    // Any other route keeps its 2 s in all, however steady the body.
    let json_head = head("/api/v1/rooms").replace("application/octet-stream", "application/json");
    let steady_json: Vec<(Duration, Vec<u8>)> = (0..5).map(|_| (second, b" ".to_vec())).collect();
    assert_eq!(paced_status(&node, &json_head, &steady_json).await, 408);
}
