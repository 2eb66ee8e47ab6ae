//! Media between nodes (issue 14): an attachment posted on one node is
//! fetched by another node for its reader, verified against its BLAKE3
//! hash; nodes outside the room get nothing; a holder that sends other
//! bytes is refused, charged, and nothing is stored
//! (docs/spec/federation.md#blobs).

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};
use spaces_federation::wire::{Request, Response};

use crate::federation::{Peer, Raw, until, until_history_has};
use crate::media::{fetch, text, upload};
use crate::support::User;

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A private room on `a` with `alice`, joined by `bob` of `b`.
async fn shared_room(a: &Peer, alice: &User, b: &Peer, bob: &User) -> String {
    let room = a
        .node
        .create_room(alice, json!({ "name": "photos", "visibility": "private" }))
        .await;
    a.node.invite(alice, &room, bob).await;
    until("bob sees the invite on his node", || async {
        let rooms = b
            .node
            .get("/api/v1/rooms", Some(&bob.access))
            .await
            .expect(200);
        rooms
            .as_array()?
            .iter()
            .any(|r| r["room_id"] == room.as_str() && r["membership"] == "invite")
            .then_some(())
    })
    .await;
    b.node.join(bob, &room).await;
    room
}

/// Waits until `node` answers `path` for `user` with something other than
/// 404: B tags a remote message's attachments just after storing it, so a
/// reader may be a moment early.
async fn until_known(node: &crate::support::Node, user: &User, path: &str) {
    until("the node knows the attachment", || async {
        let reply = node.get(path, Some(&user.access)).await;
        (reply.status != 404).then_some(())
    })
    .await;
}

/// Sends a message carrying `hashes` and waits until `b` holds it.
async fn post(a: &Peer, alice: &User, room: &str, hashes: &[&str], b: &Peer, bob: &User) -> String {
    let attachments: Vec<Value> = hashes.iter().map(|h| json!({ "hash": h })).collect();
    let event = a
        .node
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.access),
            json!({ "body": "look", "attachments": attachments }),
        )
        .await
        .expect(201);
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    until_history_has(b, bob, room, std::slice::from_ref(&event_id)).await;
    event_id
}

#[tokio::test]
async fn an_attachment_posted_on_one_node_is_fetched_verified_by_another() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = shared_room(&a, &alice, &b, &bob).await;

    // A file of several 1 MiB chunks, and an image with its thumbnails.
    let data = text(2_500_000, 7);
    let file = upload(&a.node, &alice, "notes.txt", data.clone())
        .await
        .expect(201);
    let file_hash = file["hash"].as_str().unwrap().to_owned();
    let jpeg = spaces_blobs::fixtures::jpeg_with_exif(300, 200);
    let image = upload(&a.node, &alice, "cat.jpg", jpeg).await.expect(201);
    let image_hash = image["hash"].as_str().unwrap().to_owned();
    let event_id = post(&a, &alice, &room, &[&file_hash, &image_hash], &b, &bob).await;

    // Bob reads both through his own node, which fetched them from A.
    until_known(&b.node, &bob, &format!("/api/v1/media/{file_hash}")).await;
    let got = fetch(
        &b.node,
        Method::GET,
        &format!("/api/v1/media/{file_hash}"),
        Some(&bob.access),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, data, "the bytes B serves are the bytes A holds");
    assert_eq!(got.header("content-type"), "application/octet-stream");
    let on_a = fetch(
        &a.node,
        Method::GET,
        &format!("/api/v1/media/{image_hash}"),
        Some(&alice.access),
        &[],
    )
    .await;
    let on_b = fetch(
        &b.node,
        Method::GET,
        &format!("/api/v1/media/{image_hash}"),
        Some(&bob.access),
        &[],
    )
    .await;
    assert_eq!((on_b.status, &on_b.bytes), (200, &on_a.bytes));
    assert_eq!(on_b.header("content-type"), "image/jpeg");
    let thumb = fetch(
        &b.node,
        Method::GET,
        &format!("/api/v1/media/{image_hash}/thumbnail?size=128"),
        Some(&bob.access),
        &[],
    )
    .await;
    assert_eq!(thumb.status, 200);
    assert_eq!(thumb.header("content-type"), "image/jpeg");
    // B now holds it: its own store, then a range of it.
    let part = fetch(
        &b.node,
        Method::GET,
        &format!("/api/v1/media/{file_hash}"),
        Some(&bob.access),
        &[("range", "bytes=1048570-1048579")],
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, &data[1_048_570..1_048_580]);

    // A user of B who is not in the room gets what a missing hash gets.
    let dave = b.node.register("dave").await;
    b.node
        .get(&format!("/api/v1/media/{file_hash}"), Some(&dave.access))
        .await
        .error(404, "unknown_media");
    // A node with no member in the room is not served, whatever it names.
    let spy = Raw::start(&a.addr).await;
    let asks = [
        (room.parse().unwrap(), event_id.parse().unwrap()),
        // A real reference, named with another room: still nothing.
        (
            b.node
                .create_room(&bob, json!({ "name": "other" }))
                .await
                .parse()
                .unwrap(),
            event_id.parse().unwrap(),
        ),
    ];
    for (room, event) in asks {
        let hash: spaces_blobs::Hash = file_hash.parse().unwrap();
        let request = Request::Blob {
            room,
            event,
            hash: *hash.as_bytes(),
            offset: 0,
            len: 1024,
        };
        match spy.ask(a.id(), request).await {
            Response::Refused { code, .. } => assert_eq!(code, "unknown_blob"),
            other => panic!("a node outside the room was answered: {other:?}"),
        }
    }
    // A user of a third node that is not in the room neither.
    let c = Peer::start(std::slice::from_ref(&a.addr)).await;
    let carol = c.node.register("carol").await;
    c.node
        .get(&format!("/api/v1/media/{file_hash}"), Some(&carol.access))
        .await
        .error(404, "unknown_media");
}

#[tokio::test]
async fn a_holder_that_sends_other_bytes_is_refused_charged_and_nothing_is_stored() {
    let a = Peer::start(&[]).await;
    let b = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = shared_room(&a, &alice, &b, &bob).await;
    let data = text(1_500_000, 3);
    let up = upload(&a.node, &alice, "doc.txt", data.clone())
        .await
        .expect(201);
    let hash = up["hash"].as_str().unwrap().to_owned();
    post(&a, &alice, &room, &[&hash], &b, &bob).await;

    // A's copy rots on disk (one byte in its second chunk): A now serves
    // bytes that are not the blob, as a hostile node would.
    let held: Vec<PathBuf> = files(&a.dir.path().join("blobs"))
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|bytes| bytes == data))
        .collect();
    assert_eq!(held.len(), 1, "A holds the file once: {held:?}");
    let mut rotten = data.clone();
    rotten[1_200_000] ^= 0x01;
    std::fs::write(&held[0], &rotten).unwrap();

    let path = format!("/api/v1/media/{hash}");
    until_known(&b.node, &bob, &path).await;
    b.node
        .get(&path, Some(&bob.access))
        .await
        .error(502, "media_unavailable");
    // Nothing of it stayed on B: no staged file, no stored copy.
    let kept: Vec<PathBuf> = files(&b.dir.path().join("blobs"))
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 1_000_000))
        .collect();
    assert!(
        kept.is_empty(),
        "B kept bytes of a refused transfer: {kept:?}"
    );
    // B charged A for it.
    let status = b.status().await;
    let charged = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == a.id())
        .map(|p| p["rejected"].as_u64().unwrap_or(0));
    assert!(
        charged.is_some_and(|n| n >= 1),
        "A was not charged: {status}"
    );

    // Repaired, A serves it again and B takes it.
    std::fs::write(&held[0], &data).unwrap();
    let got = fetch(&b.node, Method::GET, &path, Some(&bob.access), &[]).await;
    assert_eq!((got.status, got.bytes == data), (200, true));
}
