//! The index end to end: writes, commits and their seq, reopening, and
//! searches with every filter.

use std::time::{Duration, Instant};

use crate::{Doc, Has, Options, Order, Request, SearchIndex, Writer};

fn doc(n: u64, room: &str, sender: &str, body: &str) -> Doc {
    Doc {
        event_id: format!("e{n}"),
        room_id: room.to_owned(),
        sender: sender.to_owned(),
        origin_ts: 1_000 * n,
        seq: n,
        body: body.to_owned(),
        has: Vec::new(),
        mentions: Vec::new(),
    }
}

fn open(dir: &std::path::Path) -> (SearchIndex, Writer, u64) {
    SearchIndex::open(Options::new(dir.join("search"))).unwrap()
}

fn ids(index: &SearchIndex, q: &str, scope: &[&str], order: Order) -> Vec<String> {
    let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
    let request = Request::parse(q).unwrap();
    let page = index.search(&request, &scope, order, 0, 50).unwrap();
    page.hits.into_iter().map(|h| h.event_id).collect()
}

#[test]
fn a_message_is_found_once_after_replays_and_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (index, mut writer, seq) = open(dir.path());
    assert_eq!(seq, 0);
    writer.put(doc(1, "r", "a@n", "hello world")).unwrap();
    // The same event again (a replay after a crash) and an edit: still one doc.
    writer.put(doc(1, "r", "a@n", "hello world")).unwrap();
    writer.applied(1);
    writer.commit().unwrap();
    writer.put(doc(1, "r", "a@n", "goodbye world")).unwrap();
    writer.applied(2);
    writer.commit().unwrap();
    assert_eq!(ids(&index, "world", &["r"], Order::Relevance), ["e1"]);
    assert!(ids(&index, "hello", &["r"], Order::Relevance).is_empty());
    assert_eq!(index.n_docs(), 1);
    writer.remove("e1");
    writer.applied(3);
    writer.commit().unwrap();
    assert!(ids(&index, "world", &["r"], Order::Relevance).is_empty());
}

#[test]
fn reopening_resumes_after_the_last_commit_only() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, mut writer, _) = open(dir.path());
        writer.put(doc(1, "r", "a@n", "kept")).unwrap();
        writer.applied(1);
        writer.commit().unwrap();
        // Not committed: as if the process died here.
        writer.put(doc(2, "r", "a@n", "lost")).unwrap();
        writer.applied(2);
    }
    let (index, _, seq) = open(dir.path());
    assert_eq!(seq, 1, "resume after the committed seq");
    assert_eq!(ids(&index, "kept", &["r"], Order::Relevance), ["e1"]);
    assert!(ids(&index, "lost", &["r"], Order::Relevance).is_empty());
}

#[test]
fn an_unreadable_index_is_rebuilt_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, mut writer, _) = open(dir.path());
        writer.put(doc(1, "r", "a@n", "x")).unwrap();
        writer.applied(1);
        writer.commit().unwrap();
    }
    std::fs::write(dir.path().join("search/meta.json"), b"not json").unwrap();
    let (index, _, seq) = open(dir.path());
    assert_eq!(seq, 0);
    assert_eq!(index.n_docs(), 0);
}

#[test]
fn commits_are_due_by_count_or_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path().join("search"));
    options.commit_docs = 3;
    options.commit_interval = Duration::from_secs(3600);
    let (_, mut writer, _) = SearchIndex::open(options).unwrap();
    assert_eq!(writer.deadline(), None, "nothing pending");
    writer.put(doc(1, "r", "a@n", "x")).unwrap();
    assert!(!writer.due(Instant::now()));
    assert!(writer.due(Instant::now() + Duration::from_secs(3600)));
    writer.put(doc(2, "r", "a@n", "x")).unwrap();
    writer.remove("e9");
    assert!(writer.due(Instant::now()), "count reached");
    writer.commit().unwrap();
    assert_eq!(writer.deadline(), None);
    // A newer seq alone is worth a commit: a restart need not replay it.
    writer.applied(7);
    assert!(writer.deadline().is_some());
    writer.commit().unwrap();
    assert_eq!(writer.committed_seq(), 7);
}

#[test]
fn filters_scope_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let (index, mut writer, _) = open(dir.path());
    let mut file = doc(3, "r1", "b@n", "the report, attached");
    file.has = vec![Has::File];
    file.mentions = vec!["a@n".to_owned()];
    for doc in [
        doc(1, "r1", "a@n", "the quarterly report"),
        doc(2, "r2", "a@n", "report for the other room"),
        file,
        doc(4, "r1", "a@n", "report report report"),
        doc(5, "r1", "a@n", "quarterly numbers, then the report"),
        doc(6, "r1", "a@n", "東京都に行く"),
    ] {
        writer.put(doc).unwrap();
    }
    writer.commit().unwrap();
    let all = ["r1", "r2"];
    // Scope is a hard limit, `in:` only narrows it.
    assert_eq!(
        ids(&index, "report", &["r1"], Order::Recent),
        ["e5", "e4", "e3", "e1"]
    );
    assert_eq!(
        ids(&index, "report in:r2", &["r1"], Order::Recent),
        Vec::<String>::new()
    );
    assert_eq!(ids(&index, "report in:r2", &all, Order::Recent), ["e2"]);
    assert_eq!(ids(&index, "report from:b@n", &all, Order::Recent), ["e3"]);
    assert_eq!(ids(&index, "has:file", &all, Order::Recent), ["e3"]);
    assert_eq!(ids(&index, "mentions:a@n", &all, Order::Recent), ["e3"]);
    assert!(ids(&index, "mentions:b@n", &all, Order::Recent).is_empty());
    // Relevance: three mentions beat one.
    assert_eq!(ids(&index, "report", &["r1"], Order::Relevance)[0], "e4");
    // Phrases keep order; words do not.
    assert_eq!(
        ids(&index, "\"quarterly report\"", &all, Order::Recent),
        ["e1"]
    );
    assert_eq!(
        ids(&index, "quarterly report", &all, Order::Recent),
        ["e5", "e1"]
    );
    // A CJK word inside a longer run.
    assert_eq!(ids(&index, "京都", &all, Order::Recent), ["e6"]);
    assert!(ids(&index, "都京", &all, Order::Recent).is_empty());
    // Time bounds are exclusive.
    let mut request = Request::parse("report").unwrap();
    request.after_ms = Some(1_000);
    request.before_ms = Some(5_000);
    let scope: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    let page = index
        .search(&request, &scope, Order::Recent, 0, 50)
        .unwrap();
    let found: Vec<_> = page.hits.iter().map(|h| h.event_id.as_str()).collect();
    assert_eq!(found, ["e4", "e3", "e2"]);
    assert_eq!(page.total, 3);
    // Pages.
    let page = index.search(&request, &scope, Order::Recent, 1, 1).unwrap();
    assert_eq!(page.hits[0].event_id, "e3");
    assert_eq!(page.hits[0].highlights, [(4, 10)]);
}
