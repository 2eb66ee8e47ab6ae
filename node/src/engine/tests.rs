//! The receive path (`ingest`), which federation will drive: events
//! signed by another node's key, on a real store.

use super::*;
use spaces_protocol::EventId;
use spaces_protocol::content::{Edit, Member, Membership, Message};

fn open_with_writer(dir: &std::path::Path) -> (Engine, std::thread::JoinHandle<()>) {
    let store = Store::open(dir, &spaces_store::Options::default()).unwrap();
    let key = NodeKey::from_seed([1; 32]);
    Engine::open(
        store,
        key,
        Arc::new(Metrics::default()),
        64,
        PresenceOptions::default(),
    )
    .unwrap()
}

fn is_stored(engine: &Engine, event_id: &EventId) -> bool {
    engine
        .store()
        .events()
        .any(|stored| stored.unwrap().event_id == event_id.0)
}

fn open(dir: &std::path::Path) -> Engine {
    open_with_writer(dir).0
}

async fn public_room(engine: &Engine, owner: &UserId) -> RoomId {
    let options = NewRoom {
        kind: RoomKind::Room,
        join_rule: JoinRule::Public,
        history_visibility: HistoryVisibility::Shared,
        name: Some("lobby".into()),
        topic: None,
        invite: Vec::new(),
    };
    engine.create_room(owner, options).await.unwrap()
}

/// An engine on `dir` with a public room created by a local owner, and
/// a second node's key with its user bob.
async fn fixture(
    dir: &std::path::Path,
) -> (Engine, std::thread::JoinHandle<()>, RoomId, NodeKey, UserId) {
    let (engine, writer) = open_with_writer(dir);
    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let room_id = public_room(&engine, &owner).await;
    let far = NodeKey::from_seed([2; 32]);
    let bob = UserId::new("bob", far.node_id()).unwrap();
    (engine, writer, room_id, far, bob)
}

fn join_of(user: &UserId) -> Content {
    member_of(user, Membership::Join)
}

fn member_of(user: &UserId, membership: Membership) -> Content {
    Content::Member(Member {
        target: user.clone(),
        membership,
        reason: None,
    })
}

fn said(body: &str) -> Content {
    Content::Message(Message {
        body: body.into(),
        ..Default::default()
    })
}

/// The owner's ban of `target` on the room's current heads, signed with
/// this node's key but not inserted: as if it came back from a partition.
async fn owners_ban(engine: &Engine, room_id: &RoomId, target: &UserId) -> Event {
    let ban = member_of(target, Membership::Ban);
    let key = NodeKey::from_seed([1; 32]);
    remote(engine, room_id, &key, "owner", now_ms(), ban).await
}

/// A body by `sender` on the room's current heads, signed by `key`.
async fn remote(
    engine: &Engine,
    room_id: &RoomId,
    key: &NodeKey,
    sender: &str,
    ts: u64,
    content: Content,
) -> Event {
    let slot = engine.room(room_id).unwrap();
    let view = slot.lock().await;
    view.room
        .draft(key.node_id(), sender, ts, content)
        .sign(key)
        .unwrap()
}

#[tokio::test]
async fn remote_events_are_admitted_resolved_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, writer, room_id, far, bob) = fixture(dir.path()).await;
    let join = join_of(&bob);
    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join).await;
    assert_eq!(
        engine.ingest(join.clone()).await.unwrap(),
        Ingested::New { accepted: true }
    );
    assert_eq!(engine.ingest(join).await.unwrap(), Ingested::Duplicate);
    let hello = remote(
        &engine,
        &room_id,
        &far,
        "bob",
        now_ms(),
        said("hi from afar"),
    )
    .await;
    assert_eq!(
        engine.ingest(hello.clone()).await.unwrap(),
        Ingested::New { accepted: true }
    );
    // Stored durably: a reopened engine has both, in the room's state.
    // The writer holds the store until the last engine handle is gone.
    drop(engine);
    writer.join().unwrap();
    let engine = open(dir.path());
    let slot = engine.room(&room_id).unwrap();
    let view = slot.lock().await;
    assert!(view.room.state().is_joined(&bob));
    assert!(view.room.is_accepted(&hello.id()));
}

#[tokio::test]
async fn an_event_left_out_at_load_and_sent_again_is_not_stored_twice() {
    // Node A holds bob's join and message.
    let dir_a = tempfile::tempdir().unwrap();
    let (a, _writer, room_id, far, bob) = fixture(dir_a.path()).await;
    let join = remote(&a, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
    a.ingest(join.clone()).await.unwrap();
    let hello = remote(&a, &room_id, &far, "bob", now_ms(), said("hi")).await;
    a.ingest(hello.clone()).await.unwrap();
    // Node B's store has everything but the join: loading leaves the
    // message out of the replica for want of its parent.
    let dir_b = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir_b.path(), &spaces_store::Options::default()).unwrap();
        let stored: Vec<_> = a
            .store()
            .events()
            .map(Result::unwrap)
            .filter(|e| e.event_id != join.id().0)
            .collect();
        let new: Vec<spaces_store::NewEvent<'_>> = stored
            .iter()
            .map(|e| spaces_store::NewEvent {
                room_id: e.room_id,
                event_id: e.event_id,
                bytes: &e.bytes,
                flips: &[],
            })
            .collect();
        store.append_events(&new).unwrap();
        store.flush().unwrap();
    }
    let b = open(dir_b.path());
    let copies = |engine: &Engine| {
        engine
            .store()
            .events()
            .filter(|e| e.as_ref().unwrap().event_id == hello.id().0)
            .count()
    };
    assert_eq!(copies(&b), 1);
    {
        let slot = b.room(&room_id).unwrap();
        assert!(!slot.lock().await.room.contains(&hello.id()));
    }
    // A sync brings both: the message joins the replica, with the seq
    // it already had, and is not stored again.
    assert_eq!(
        b.ingest_batch(vec![join, hello.clone()])
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        [
            Ingested::New { accepted: true },
            Ingested::New { accepted: true }
        ]
    );
    assert_eq!(copies(&b), 1);
    let slot = b.room(&room_id).unwrap();
    let view = slot.lock().await;
    assert!(view.room.is_accepted(&hello.id()));
    assert!(view.seq(&hello.id()).is_some());
}

/// The reach federation publishes by follows every membership and join
/// rule change, local or remote, and is rebuilt at start.
#[tokio::test]
async fn reach_follows_memberships_and_the_join_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, writer, room_id, far, bob) = fixture(dir.path()).await;
    let reach = |public, nodes: Vec<NodeId>| {
        Some(Reach {
            public,
            nodes,
            local: true,
        })
    };
    assert_eq!(engine.reach(&room_id), reach(true, vec![]));

    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
    engine.ingest(join).await.unwrap();
    assert_eq!(engine.reach(&room_id), reach(true, vec![far.node_id()]));

    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let private = Content::JoinRule(JoinRule::Invite);
    engine.send(&owner, &room_id, private).await.unwrap();
    assert_eq!(engine.reach(&room_id), reach(false, vec![far.node_id()]));

    let leave = Content::Member(Member {
        target: bob.clone(),
        membership: Membership::Leave,
        reason: None,
    });
    let leave = remote(&engine, &room_id, &far, "bob", now_ms(), leave).await;
    engine.ingest(leave).await.unwrap();
    assert_eq!(engine.reach(&room_id), reach(false, vec![]));

    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
    assert!(engine.ingest(join).await.is_err(), "invite only now");
    drop(engine);
    writer.join().unwrap();
    let engine = open(dir.path());
    assert_eq!(engine.reach(&room_id), reach(false, vec![]));
    assert_eq!(engine.reach(&RoomId([9; 32])), None);
}

#[tokio::test]
async fn unknown_parents_are_asked_for_and_unauthorized_events_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
    let join = join_of(&bob);
    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join).await;
    // A child of the (not yet delivered) join: its parent is missing.
    let mut body = remote(
        &engine,
        &room_id,
        &far,
        "bob",
        now_ms(),
        Content::Name("x".into()),
    )
    .await
    .body()
    .clone();
    body.parents = vec![join.id()];
    body.depth = join.depth() + 1;
    body.content = Content::Message(Message {
        body: "early".into(),
        ..Default::default()
    });
    let child = body.sign(&far).unwrap();
    assert_eq!(
        engine.ingest(child.clone()).await.unwrap(),
        Ingested::MissingParents(vec![join.id()])
    );
    // Bob, not a member, renaming the room: refused, not stored.
    let rename = remote(
        &engine,
        &room_id,
        &far,
        "bob",
        now_ms(),
        Content::Name("mine".into()),
    )
    .await;
    match engine.ingest(rename.clone()).await {
        Err(EngineError::Invalid(Rejection::Unauthorized(AuthError::NotMember))) => {}
        other => panic!("expected not_member, got {other:?}"),
    }
    assert!(!is_stored(&engine, &rename.id()));
    // Delivered in order, both are admitted.
    assert_eq!(
        engine.ingest(join).await.unwrap(),
        Ingested::New { accepted: true }
    );
    assert_eq!(
        engine.ingest(child).await.unwrap(),
        Ingested::New { accepted: true }
    );
}

/// A ban that raced a message refuses it once both are in (revocation):
/// a message already shown is taken back through the ban's stream item,
/// and one arriving after the ban is shown to no one.
#[tokio::test]
async fn a_ban_merged_late_refuses_what_it_raced_and_clients_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
    engine.ingest(join).await.unwrap();
    // Drafted on the same heads: the owner's ban and two messages by bob.
    let ban = owners_ban(&engine, &room_id, &bob).await;
    let first = remote(&engine, &room_id, &far, "bob", now_ms(), said("first")).await;
    let second = remote(&engine, &room_id, &far, "bob", now_ms(), said("second")).await;
    let mut live = engine.subscribe();

    assert_eq!(
        engine.ingest(first.clone()).await.unwrap(),
        Ingested::New { accepted: true }
    );
    let item = live.recv().await.unwrap();
    assert_eq!((item.event.id(), item.accepted), (first.id(), true));
    assert!(engine.delivers_to(&owner, &item));

    assert_eq!(
        engine.ingest(ban.clone()).await.unwrap(),
        Ingested::New { accepted: true }
    );
    let ban_item = live.recv().await.unwrap();
    assert_eq!(ban_item.event.id(), ban.id());
    assert_eq!(ban_item.flips, vec![(first.id(), false)]);
    let flipped = || ban_item.flips.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        engine.acceptance_for(&owner, &room_id, flipped()).await,
        Some((vec![first.id()], Vec::new()))
    );
    // Someone not in the room hears nothing of it.
    let stranger = UserId::new("stranger", engine.node_id()).unwrap();
    assert_eq!(
        engine.acceptance_for(&stranger, &room_id, flipped()).await,
        None
    );
    // And the store has it, for clients that resume from before it.
    let stored = engine.store().flips_after(0, u64::MAX).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].seq, &stored[0].flips),
        (ban_item.seq, &vec![(first.id().0, false)])
    );

    assert_eq!(
        engine.ingest(second.clone()).await.unwrap(),
        Ingested::New { accepted: false }
    );
    let item = live.recv().await.unwrap();
    assert_eq!((item.event.id(), item.accepted), (second.id(), false));
    assert!(!engine.delivers_to(&owner, &item));
    assert!(is_stored(&engine, &second.id()), "stored all the same");

    // A client resuming from before all this gets neither message.
    let backlog: Vec<StreamItem> = [&first, &ban, &second]
        .into_iter()
        .enumerate()
        .map(|(i, e)| StreamItem::from_store(100 + i as u64, e.clone()))
        .collect();
    assert_eq!(
        engine.backlog_filter(&owner, &backlog).await,
        vec![false, true, false]
    );
}

/// Someone whose history starts after a flipped event hears nothing of
/// it, not even its id (invariant 4).
#[tokio::test]
async fn acceptance_tells_nothing_from_before_the_users_floor() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _writer) = open_with_writer(dir.path());
    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let options = NewRoom {
        kind: RoomKind::Room,
        join_rule: JoinRule::Public,
        history_visibility: HistoryVisibility::Joined,
        name: None,
        topic: None,
        invite: Vec::new(),
    };
    let room_id = engine.create_room(&owner, options).await.unwrap();
    let far = NodeKey::from_seed([2; 32]);
    let bob = UserId::new("bob", far.node_id()).unwrap();
    let join = remote(&engine, &room_id, &far, "bob", now_ms(), join_of(&bob)).await;
    engine.ingest(join).await.unwrap();
    let ban = owners_ban(&engine, &room_id, &bob).await;
    let earlier = said("before you came");
    let earlier = remote(&engine, &room_id, &far, "bob", now_ms(), earlier).await;
    engine.ingest(earlier.clone()).await.unwrap();
    // A local user joins after bob's message, under `joined` visibility.
    let late = UserId::new("late", engine.node_id()).unwrap();
    engine.send(&late, &room_id, join_of(&late)).await.unwrap();
    engine.ingest(ban).await.unwrap();
    let flipped = vec![earlier.id()];
    assert_eq!(
        engine
            .acceptance_for(&owner, &room_id, flipped.clone())
            .await,
        Some((vec![earlier.id()], Vec::new()))
    );
    assert_eq!(engine.acceptance_for(&late, &room_id, flipped).await, None);
}

#[tokio::test]
async fn a_clock_far_ahead_is_deferred_not_admitted() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _writer, room_id, far, bob) = fixture(dir.path()).await;
    let year_3000 = 32_503_680_000_000;
    let join = join_of(&bob);
    let join = remote(&engine, &room_id, &far, "bob", year_3000, join).await;
    assert_eq!(
        engine.ingest(join.clone()).await.unwrap(),
        Ingested::Deferred {
            until_ms: year_3000 - MAX_CLOCK_AHEAD_MS
        }
    );
    assert!(!is_stored(&engine, &join.id()));
    // Within the tolerated skew it is admitted.
    let soon = now_ms() + MAX_CLOCK_AHEAD_MS / 2;
    let far_user = UserId::new("carol", far.node_id()).unwrap();
    let join = join_of(&far_user);
    let join = remote(&engine, &room_id, &far, "carol", soon, join).await;
    assert_eq!(
        engine.ingest(join).await.unwrap(),
        Ingested::New { accepted: true }
    );
}

/// The replica holds no text of a message or an edit, live or after a
/// restart; history reads both back whole from the store.
#[tokio::test]
async fn text_lives_in_the_store_and_history_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, writer) = open_with_writer(dir.path());
    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let room_id = public_room(&engine, &owner).await;
    let long = "x".repeat(16_000);
    let message = engine.send(&owner, &room_id, said(&long)).await.unwrap();
    let edit = Content::Edit(Edit {
        target: message.id(),
        body: "short now".into(),
        mentions: Default::default(),
    });
    let edit = engine.send(&owner, &room_id, edit).await.unwrap();

    let check = |engine: Engine| {
        let (long, message, edit) = (long.clone(), message.clone(), edit.clone());
        let owner = owner.clone();
        async move {
            {
                let slot = engine.room(&room_id).unwrap();
                let view = slot.lock().await;
                for id in [message.id(), edit.id()] {
                    let held = view.room.event(&id).unwrap();
                    assert!(held.bytes().is_empty());
                    assert_eq!(held.content(), &held.content().skeleton());
                    assert!(
                        matches!(held.content(),
                    Content::Message(m) if m.body.is_empty())
                            || matches!(held.content(), Content::Edit(e) if e.body.is_empty())
                    );
                }
            }
            let page = engine
                .history(&room_id, &owner, PageAt::Before(None), 10)
                .await
                .unwrap();
            let shown = page.events.last().unwrap();
            assert_eq!(shown.event.id(), message.id());
            assert!(matches!(shown.event.content(), Content::Message(m) if m.body == long));
            let notes = shown.notes.as_ref().unwrap();
            assert_eq!(notes.edited, Some((edit.id(), "short now".to_string())));
            engine
        }
    };
    let engine = check(engine).await;
    drop(engine);
    writer.join().unwrap();
    check(open(dir.path())).await;
}

/// What a failed creation undoes: the room map and every index.
#[tokio::test]
async fn a_forgotten_new_room_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let owner = UserId::new("owner", engine.node_id()).unwrap();
    let kept = public_room(&engine, &owner).await;
    let room_id = public_room(&engine, &owner).await;
    assert!(engine.reach(&room_id).is_some());
    engine.forget_new_room(&room_id);
    assert!(matches!(
        engine.room(&room_id),
        Err(EngineError::UnknownRoom)
    ));
    assert_eq!(engine.rooms_of(&owner), [kept]);
    assert!(engine.reach(&room_id).is_none());
    assert!(engine.reach(&kept).is_some());
}
