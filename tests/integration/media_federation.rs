//! Media between nodes (issue 14): an attachment posted on one node is
//! fetched by another node for its reader, verified against its BLAKE3
//! hash group by group as it streams; nodes outside the room get nothing;
//! a holder that sends other bytes is caught at the group it spoiled,
//! charged, and nothing is stored; a node whose copy rotted refuses
//! instead of sending it; when the node the attachment names is gone,
//! other member nodes that fetched the blob serve it; small attachments
//! are fetched as they arrive; and a node that lost its tags rebuilds them
//! from its store (docs/spec/federation.md#blobs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use spaces_federation::wire::{Request, Response};

use crate::federation::{Peer, Raw, join_via, until, until_history_has};
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

/// Whether some file under `dir` holds exactly `data`: the node stores it.
fn holds(dir: &Path, data: &[u8]) -> bool {
    files(&dir.join("blobs")).into_iter().any(|p| {
        std::fs::metadata(&p).is_ok_and(|m| m.len() == data.len() as u64)
            && std::fs::read(&p).is_ok_and(|bytes| bytes == data)
    })
}

/// Files of at least 1 MB under a node's blob store (staged or stored).
fn large_files(dir: &Path) -> Vec<PathBuf> {
    files(&dir.join("blobs"))
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 1_000_000))
        .collect()
}

/// How often B's federation status says `node` was charged.
async fn rejected(peer: &Peer, node: &str) -> u64 {
    let status = peer.status().await;
    status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == node)
        .and_then(|p| p["rejected"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_holder_whose_copy_rotted_refuses_it_and_nothing_is_stored() {
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

    // A's copy rots on disk (one byte in its second megabyte). A checks
    // what it reads against the blob's tree: it refuses rather than send
    // bytes that are not the blob.
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
    // Nothing of it stayed on B: no staged file, no stored copy; and an
    // honest node that refuses is not charged.
    let kept = large_files(b.dir.path());
    assert!(
        kept.is_empty(),
        "B kept bytes of a refused transfer: {kept:?}"
    );
    assert_eq!(rejected(&b, a.id()).await, 0);

    // Repaired, A serves it again and B takes it.
    std::fs::write(&held[0], &data).unwrap();
    let got = fetch(&b.node, Method::GET, &path, Some(&bob.access), &[]).await;
    assert_eq!((got.status, got.bytes == data), (200, true));
}

/// A member node that serves a blob with one chunk group spoiled: the
/// encoding an honest node would send, one byte of group `spoiled`
/// flipped. It records the groups it was asked for.
struct Spoiler {
    data: Vec<u8>,
    spoiled: u64,
    asked: Mutex<Vec<(u64, u32)>>,
}

impl spaces_federation::Host for Spoiler {
    async fn offer(
        &self,
        _from: spaces_protocol::NodeId,
        events: Vec<Vec<u8>>,
    ) -> Vec<spaces_federation::Offer> {
        vec![spaces_federation::Offer::Duplicate; events.len()]
    }

    async fn answer(&self, _from: spaces_protocol::NodeId, request: Request) -> Response {
        let Request::BlobBao { first, groups, .. } = request else {
            return Response::refused("unknown_room", "nothing here");
        };
        self.asked.lock().unwrap().push((first, groups));
        let (_, mut encoded) = spaces_blobs::bao::encode(&self.data, first, groups);
        let group = spaces_blobs::bao::GROUP_BYTES as usize;
        if (first..first + u64::from(groups)).contains(&self.spoiled) {
            let at = self.spoiled as usize * group;
            let bytes = &self.data[at..at + group];
            let found = encoded
                .windows(group)
                .position(|w| w == bytes)
                .expect("the group is in the encoding");
            encoded[found + 10] ^= 0x01;
        }
        Response::BlobBao {
            size: self.data.len() as u64,
            encoded,
        }
    }

    async fn heads(&self, _room: spaces_protocol::RoomId) -> Vec<spaces_protocol::EventId> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_member_node_that_spoils_a_group_is_caught_there_charged_and_nothing_is_stored() {
    use spaces_protocol::content::{Content, Member, Membership};

    let a = Peer::start(&[]).await;
    // B fetches only when asked, so the fetch below is the one watched.
    let b = Peer::start_with(
        std::slice::from_ref(&a.addr),
        &[("SPACES__MEDIA__EAGER_FETCH_BYTES", "0")],
    )
    .await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = a
        .node
        .create_room(&alice, json!({ "name": "open", "visibility": "public" }))
        .await;
    join_via(&b, &bob, &room, &[a.id()]).await;
    let room_id: spaces_protocol::RoomId = room.parse().unwrap();

    // Three megabytes: groups 0..192, asked 64 at a time. Group 70 (in the
    // second answer) is spoiled.
    let data = text(3_000_000, 11);
    let spoiler = Arc::new(Spoiler {
        data: data.clone(),
        spoiled: 70,
        asked: Mutex::default(),
    });
    let key = spaces_protocol::NodeKey::from_seed(rand::random());
    let config = spaces_federation::Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![a.addr.parse().unwrap(), b.addr.parse().unwrap()],
        mdns: false,
        sync_interval: Duration::from_secs(3600),
        blocked: Vec::new(),
        max_inbound: spaces_federation::DEFAULT_MAX_INBOUND,
    };
    let (handle, _task) = spaces_federation::start(config, &key, spoiler.clone()).unwrap();
    let mallory_node = key.node_id();

    // Mallory joins the public room with an event of its own, signed by
    // its node, pushed to both nodes: it is a member node now.
    let events = match handle
        .request(
            a.id().parse().unwrap(),
            Request::Backfill {
                room: room_id,
                known: Vec::new(),
                limit: 1000,
            },
        )
        .await
        .unwrap()
    {
        Response::Events { events, .. } => events,
        other => panic!("backfill of a public room: {other:?}"),
    };
    let decoded: Vec<spaces_protocol::Event> = events
        .iter()
        .map(|e| spaces_protocol::Event::decode(e).unwrap())
        .collect();
    let mut replica = spaces_protocol::Room::new(decoded[0].clone()).unwrap();
    for event in &decoded[1..] {
        replica.insert(event.clone()).unwrap();
    }
    let mallory = spaces_protocol::UserId::new("mallory", mallory_node).unwrap();
    let join = replica
        .draft(
            mallory_node,
            "mallory",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            Content::Member(Member {
                target: mallory.clone(),
                membership: Membership::Join,
                reason: None,
            }),
        )
        .sign(&key)
        .unwrap();
    for node in [a.id(), b.id()] {
        let push = Request::Push {
            events: vec![join.bytes().to_vec()],
        };
        handle.request(node.parse().unwrap(), push).await.unwrap();
    }
    until("B sees mallory joined", || async {
        let members = b
            .node
            .get(&format!("/api/v1/rooms/{room}/members"), Some(&bob.access))
            .await
            .expect(200);
        members["members"]
            .as_array()?
            .iter()
            .any(|m| m["user_id"] == mallory.to_string().as_str() && m["membership"] == "join")
            .then_some(())
    })
    .await;

    let up = upload(&a.node, &alice, "big.txt", data.clone())
        .await
        .expect(201);
    let hash = up["hash"].as_str().unwrap().to_owned();
    post(&a, &alice, &room, &[&hash], &b, &bob).await;
    let path = format!("/api/v1/media/{hash}");

    // A, the node the attachment names, goes away: B asks the room's
    // other member node, mallory. (Asked before B tagged the message's
    // attachment, B answers 404 and asks nobody.)
    let mut a = a;
    a.node.kill();
    let reply = until("B knows the attachment", || async {
        let reply = b.node.get(&path, Some(&bob.access)).await;
        (reply.status != 404).then_some(reply)
    })
    .await;
    reply.error(502, "media_unavailable");
    // Caught at the answer that carried the spoiled group: nothing past
    // it was asked for.
    assert_eq!(*spoiler.asked.lock().unwrap(), [(0, 64), (64, 64)]);
    // Charged, and nothing of the transfer kept.
    until("B charges mallory", || async {
        (rejected(&b, &mallory_node.to_string()).await >= 1).then_some(())
    })
    .await;
    let kept = large_files(b.dir.path());
    assert!(
        kept.is_empty(),
        "B kept bytes of a refused transfer: {kept:?}"
    );
    assert!(!holds(b.dir.path(), &data));
}

#[tokio::test]
async fn small_files_come_on_arrival_and_another_member_node_serves_them_when_the_holder_is_gone() {
    let a = Peer::start(&[]).await;
    // B waits for a reader; C fetches small files as they arrive.
    let b = Peer::start_with(
        std::slice::from_ref(&a.addr),
        &[("SPACES__MEDIA__EAGER_FETCH_BYTES", "0")],
    )
    .await;
    let c = Peer::start(std::slice::from_ref(&a.addr)).await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let carol = c.node.register("carol").await;
    let room = shared_room(&a, &alice, &b, &bob).await;
    a.node.invite(&alice, &room, &carol).await;
    until("carol sees the invite on her node", || async {
        let rooms = c
            .node
            .get("/api/v1/rooms", Some(&carol.access))
            .await
            .expect(200);
        rooms
            .as_array()?
            .iter()
            .any(|r| r["room_id"] == room.as_str() && r["membership"] == "invite")
            .then_some(())
    })
    .await;
    c.node.join(&carol, &room).await;

    // A small file (eager on C) and a large one (left to readers).
    let small = text(600_000, 5);
    let large = text(1_500_000, 9);
    let small_hash = upload(&a.node, &alice, "small.txt", small.clone())
        .await
        .expect(201)["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let large_hash = upload(&a.node, &alice, "large.txt", large.clone())
        .await
        .expect(201)["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let event_id = post(&a, &alice, &room, &[&small_hash, &large_hash], &b, &bob).await;
    until_history_has(&c, &carol, &room, std::slice::from_ref(&event_id)).await;
    // C holds the small file though nobody there asked for it.
    until("C fetched the small file on arrival", || async {
        holds(c.dir.path(), &small).then_some(())
    })
    .await;

    // A goes away. Bob's node asks A, finds it gone, and gets the small
    // file from C, verified as from any holder.
    let mut a = a;
    a.node.kill();
    let got = fetch(
        &b.node,
        Method::GET,
        &format!("/api/v1/media/{small_hash}"),
        Some(&bob.access),
        &[],
    )
    .await;
    assert_eq!((got.status, got.bytes == small), (200, true));
    // Nobody holds the large one now: C left it for a reader.
    b.node
        .get(&format!("/api/v1/media/{large_hash}"), Some(&bob.access))
        .await
        .error(502, "media_unavailable");
    assert!(!holds(c.dir.path(), &large));
    // Carol reads the small one from her own node's store.
    let on_c = fetch(
        &c.node,
        Method::GET,
        &format!("/api/v1/media/{small_hash}"),
        Some(&carol.access),
        &[],
    )
    .await;
    assert_eq!((on_c.status, on_c.bytes == small), (200, true));
}

#[tokio::test]
async fn a_node_that_lost_its_tags_rebuilds_them_from_its_store() {
    let a = Peer::start(&[]).await;
    let mut b = Peer::start_with(
        std::slice::from_ref(&a.addr),
        &[("SPACES__MEDIA__EAGER_FETCH_BYTES", "0")],
    )
    .await;
    let alice = a.node.register("alice").await;
    let bob = b.node.register("bob").await;
    let room = shared_room(&a, &alice, &b, &bob).await;
    let data = text(1_200_000, 13);
    let hash = upload(&a.node, &alice, "notes.txt", data.clone())
        .await
        .expect(201)["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&a, &alice, &room, &[&hash], &b, &bob).await;
    let path = format!("/api/v1/media/{hash}");
    until_known(&b.node, &bob, &path).await;

    // B stops and loses its blob store, tags and cursor with it (a disk
    // replaced, a restore from a copy older than the events): the message
    // is in its event store, but no tag says its attachment may be read.
    b.node.terminate().await;
    std::fs::remove_dir_all(b.dir.path().join("blobs")).unwrap();
    b.restart(std::slice::from_ref(&a.addr)).await;
    let bob = b.node.login("bob", crate::support::PASSWORD).await;

    // Catching up from the store tags it again: bob reads it, fetched
    // from A.
    until_known(&b.node, &bob, &path).await;
    let got = fetch(&b.node, Method::GET, &path, Some(&bob.access), &[]).await;
    assert_eq!((got.status, got.bytes == data), (200, true));
}
