//! The `history` benchmark: one node holding a lot of history.
//!
//! `history [--messages 1000000] [--rooms 1] [--body-bytes 0]` fills
//! `--rooms` public rooms with `--messages` messages each through the HTTP
//! API — [`FILL_CONNECTIONS`] keep-alive connections on one load-generator
//! thread, each sending as soon as its last send is acknowledged, spread
//! over the rooms in turn — then restarts the node on its data directory
//! and measures:
//!
//! 1. the time until it serves again, and its resident memory when fresh
//!    (idle, before anything), after the fill and after the restart: the
//!    resident bytes per stored message are (after restart − idle) / the
//!    messages stored;
//! 2. history page latency, one request at a time, [`PAGE_LIMIT`] events a
//!    page: the newest page; deep pages, paging back [`DEEP_CHAIN`] pages
//!    at a time from old events; and windows `around` old events — p50
//!    and p99 over [`PAGES`] requests each;
//! 3. resident memory after paging through those [`PAGES`] deep pages, and
//!    after the windows;
//! 4. the load run's throughput measurement (100 senders × 200 messages)
//!    into the first room, on top of its history.
//!
//! The benchmark never holds every event id: the fill keeps about
//! [`ANCHORS`] ids, evenly spread over the history, as the old events the
//! reads start from. The fill is bounded by [`FILL_LIMIT`], each read by
//! the client's timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{
    NodeProcess, Sender, Throughput, cpu_secs_of, create_room, flags, join_room, machine_busy_secs,
    measure_throughput, node_metric, percentile, register_users,
};

/// Concurrent fill connections: as many as the load run's senders, which
/// keep the node's group commit full (up to 64 events a commit).
const FILL_CONNECTIONS: usize = 100;

/// The longest the fill may take: a million messages at ~15,000 msg/s is
/// ~70 s, so an hour only stops a node that has stalled.
const FILL_LIMIT: Duration = Duration::from_secs(3600);

/// How often the fill reports its progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Old events the fill remembers, evenly spread over the history: enough
/// distinct starting points for [`PAGES`] reads, few enough to hold.
const ANCHORS: usize = 1000;

/// Requests per latency figure, and deep pages before the RSS reading.
const PAGES: usize = 1000;

/// Deep pages read one after another from each old event (`from` = the
/// first event of the page before), before starting from the next one:
/// a reader scrolling back, in many places of the history.
const DEEP_CHAIN: usize = 10;

/// Events per page: the API's default `limit`.
const PAGE_LIMIT: usize = 50;

/// Users of the closing throughput run, and messages each: the load run's
/// defaults, so the figure compares with its own.
const THROUGHPUT_USERS: usize = 100;
const THROUGHPUT_MESSAGES: usize = 200;

pub struct HistoryArgs {
    messages: usize,
    rooms: usize,
    body_bytes: usize,
}

impl HistoryArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<HistoryArgs> {
        let mut args = HistoryArgs {
            messages: 1_000_000,
            rooms: 1,
            body_bytes: 0,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--messages" => args.messages = value.parse()?,
                "--rooms" => args.rooms = value.parse()?,
                "--body-bytes" => args.body_bytes = value.parse()?,
                _ => bail!("unknown flag {flag}"),
            }
        }
        if args.messages == 0
            || args.rooms == 0
            || args.rooms > 10_000
            || args.messages.saturating_mul(args.rooms) > 10_000_000
            || args.body_bytes > spaces_protocol::limits::MAX_BODY_BYTES
        {
            bail!(
                "bounds: messages ≥ 1, 1 ≤ rooms ≤ 10000, rooms × messages ≤ 10000000, \
                 body-bytes ≤ {}",
                spaces_protocol::limits::MAX_BODY_BYTES
            );
        }
        Ok(args)
    }
}

/// An old event the reads start from.
struct Anchor {
    /// Index into the rooms.
    room: usize,
    /// The fill's message number, 0 first: the older half is `< total / 2`.
    n: usize,
    event_id: String,
}

/// What the fill did.
struct Fill {
    acked: usize,
    elapsed: f64,
    node_cpu: f64,
    bench_cpu: f64,
    /// Sorted by `n`.
    anchors: Vec<Anchor>,
}

/// The `history` benchmark.
pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let mut node = NodeProcess::start("history", &[])?;
    let (started, busy_0) = (Instant::now(), machine_busy_secs());
    // Let start-up allocation settle before reading idle memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = node.rss_kib();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = node.base.clone();

    let users = register_users(&client, &base, THROUGHPUT_USERS).await?;
    let mut room_ids = Vec::with_capacity(args.rooms);
    for r in 0..args.rooms {
        room_ids.push(create_room(&client, &base, &users[0].token, &format!("history {r}")).await?);
    }
    join_room(&client, &base, &room_ids[0], &users[1..]).await?;

    let fill = fill(&node, &room_ids, &users[0].token, &args)?;
    let total = args.messages * args.rooms;
    ensure!(fill.acked > 0, "the fill stored nothing");
    if fill.acked < total {
        eprintln!(
            "the fill stopped at {} of {total} messages: the figures are for those",
            fill.acked
        );
    }
    let rss_filled = node.rss_kib();
    let n_stored = node_metric(&client, &base, "spaces_events_stored_total").await?;
    let disk = disk_bytes(&node.dir);

    let node_cpu_first = node.cpu_secs();
    let restart = node.restart()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_restart = node.rss_kib();
    let base = node.base.clone();
    let token = &users[0].token;
    let messages_url = |r: usize| format!("{base}/api/v1/rooms/{}/messages", room_ids[r]);

    // The first read after the restart, on its own: what a client waits.
    let (first_page, _) = page(
        &client,
        &format!("{}?limit={PAGE_LIMIT}", messages_url(0)),
        token,
    )
    .await?;

    let mut newest = Vec::with_capacity(PAGES);
    for k in 0..PAGES {
        let url = format!("{}?limit={PAGE_LIMIT}", messages_url(k % args.rooms));
        let (ms, value) = page(&client, &url, token).await?;
        ensure!(!events(&value)?.is_empty(), "an empty newest page");
        newest.push(ms);
    }

    // Deep pages: from old events (the older half of the history), paging
    // back a few pages from each.
    let old: Vec<&Anchor> = fill.anchors.iter().filter(|a| a.n < total / 2).collect();
    ensure!(!old.is_empty(), "no old events sampled");
    let mut deep = Vec::with_capacity(PAGES);
    let mut n_starts = 0;
    'pages: for anchor in old.iter().cycle() {
        n_starts += 1;
        let mut from = anchor.event_id.clone();
        for _ in 0..DEEP_CHAIN {
            let url = format!(
                "{}?from={from}&dir=b&limit={PAGE_LIMIT}",
                messages_url(anchor.room)
            );
            let (ms, value) = page(&client, &url, token).await?;
            deep.push(ms);
            if deep.len() == PAGES {
                break 'pages;
            }
            let first = events(&value)?.first().and_then(|e| e["event_id"].as_str());
            match (value["has_more"].as_bool(), first) {
                (Some(true), Some(first)) => from = first.to_owned(),
                _ => break,
            }
        }
    }
    let rss_paged = node.rss_kib();

    let mut around = Vec::with_capacity(PAGES);
    for anchor in fill.anchors.iter().cycle().take(PAGES) {
        let url = format!(
            "{}?around={}&limit={PAGE_LIMIT}",
            messages_url(anchor.room),
            anchor.event_id
        );
        let (ms, value) = page(&client, &url, token).await?;
        ensure!(
            events(&value)?
                .iter()
                .any(|e| e["event_id"].as_str() == Some(anchor.event_id.as_str())),
            "a window without its event"
        );
        around.push(ms);
    }
    let rss_around = node.rss_kib();

    let after =
        measure_throughput(&node, &client, &room_ids[0], &users, THROUGHPUT_MESSAGES).await?;
    let rss_end = node.rss_kib();
    // Both node processes, before and after the restart.
    let elsewhere = machine_busy_secs()
        - busy_0
        - cpu_secs_of("/proc/self/stat")
        - node_cpu_first
        - node.cpu_secs();
    let wall = started.elapsed().as_secs_f64();

    for latencies in [&mut newest, &mut deep, &mut around] {
        latencies.sort_by(f64::total_cmp);
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    let p50_p99 = |sorted: &[f64]| {
        format!(
            "{:.2} / {:.2}",
            percentile(sorted, 0.5),
            percentile(sorted, 0.99)
        )
    };
    let Throughput {
        acked,
        elapsed,
        node_cpu,
        commits,
        ..
    } = after;
    let body = if args.body_bytes == 0 {
        "`history <n>`".to_owned()
    } else {
        format!("{} bytes", args.body_bytes)
    };
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| history | {} room(s) × {} messages (body {body}) |",
        args.rooms, args.messages
    );
    println!(
        "| fill: messages acknowledged | {} in {:.1} s ({:.0} msg/s; node {:.0} µs CPU each, load generator {:.0}) |",
        fill.acked,
        fill.elapsed,
        fill.acked as f64 / fill.elapsed,
        fill.node_cpu / fill.acked as f64 * 1e6,
        fill.bench_cpu / fill.acked as f64 * 1e6
    );
    println!(
        "| store on disk after the fill | {:.1} MiB, {:.0} bytes per message |",
        disk as f64 / (1024.0 * 1024.0),
        disk as f64 / fill.acked as f64
    );
    println!(
        "| node RSS idle (fresh) / after the fill | {:.1} / {:.1} MiB |",
        mib(rss_idle),
        mib(rss_filled)
    );
    println!(
        "| **restart on {n_stored} events: serving after** | **{:.2} s** |",
        restart.as_secs_f64()
    );
    println!(
        "| **node RSS after the restart** | **{:.1} MiB** |",
        mib(rss_restart)
    );
    println!(
        "| **resident bytes per stored message** (after restart − idle) / messages | **{:.0}** |",
        (rss_restart as f64 - rss_idle as f64) * 1024.0 / fill.acked as f64
    );
    println!("| first newest page after the restart (ms) | {first_page:.2} |");
    println!(
        "| **newest page p50 / p99 (ms)** ({PAGES} requests, {PAGE_LIMIT} events) | **{}** |",
        p50_p99(&newest)
    );
    println!(
        "| **deep page p50 / p99 (ms)** ({PAGES} pages back, ≤ {DEEP_CHAIN} each from {n_starts} old events) | **{}** |",
        p50_p99(&deep)
    );
    println!(
        "| **`around` an old event p50 / p99 (ms)** ({PAGES} windows of {PAGE_LIMIT}) | **{}** |",
        p50_p99(&around)
    );
    println!(
        "| **node RSS after paging through {PAGES} pages** / after the windows too | **{:.1}** / {:.1} MiB |",
        mib(rss_paged),
        mib(rss_around)
    );
    println!(
        "| **throughput afterwards (acked msg/s, first room)** | **{:.0}** ({acked} in {elapsed:.2} s, {THROUGHPUT_USERS} senders, {commits} commits, node {node_cpu:.2} CPU s) |",
        after.per_sec()
    );
    println!("| node RSS at the end | {:.1} MiB |", mib(rss_end));
    println!(
        "| CPU seconds used by anything else on the machine, whole run | {elsewhere:.0} (of {wall:.0} wall × 2 cores) |"
    );
    Ok(())
}

/// Fills `rooms` with `args.messages` messages each, message `n` into room
/// `n % rooms`, on [`FILL_CONNECTIONS`] connections run by one thread of its
/// own (the load generator then takes at most one of the two cores).
fn fill(
    node: &NodeProcess,
    room_ids: &[String],
    token: &str,
    args: &HistoryArgs,
) -> anyhow::Result<Fill> {
    let addr = node.base.trim_start_matches("http://").to_owned();
    let uris = room_ids
        .iter()
        .map(|room_id| format!("http://{addr}/api/v1/rooms/{room_id}/messages").parse())
        .collect::<Result<Vec<hyper::Uri>, _>>()?;
    let (token, total, body_bytes) = (
        token.to_owned(),
        args.messages * room_ids.len(),
        args.body_bytes,
    );
    let stride = total.div_ceil(ANCHORS);
    let node_stat = format!("/proc/{}/stat", node.child.id());
    let run = std::thread::spawn(move || -> anyhow::Result<Fill> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let uris = Arc::new(uris);
            let acked = Arc::new(AtomicUsize::new(0));
            let cpu_0 = (cpu_secs_of(&node_stat), cpu_secs_of("/proc/self/stat"));
            let started = Instant::now();
            let deadline = started + FILL_LIMIT;
            let mut senders = tokio::task::JoinSet::new();
            for c in 0..FILL_CONNECTIONS.min(total) {
                let mut sender = Sender::connect(&addr, "/", &token).await?;
                let (uris, acked) = (uris.clone(), acked.clone());
                senders.spawn(async move {
                    let mut anchors = Vec::new();
                    let mut body = String::with_capacity(body_bytes.max(32));
                    for n in (c..total).step_by(FILL_CONNECTIONS) {
                        if Instant::now() > deadline {
                            eprintln!("fill: stopped by its time limit");
                            break;
                        }
                        let room = n % uris.len();
                        body.clear();
                        body.push_str(&format!("history {n}"));
                        while body.len() < body_bytes {
                            body.push('x');
                        }
                        let ack = match sender.send_to(&uris[room], &body).await {
                            Ok(ack) => ack,
                            Err(e) => {
                                eprintln!("fill: {e:#}");
                                break;
                            }
                        };
                        acked.fetch_add(1, Ordering::Relaxed);
                        if n % stride == 0 {
                            let event_id = event_id_of(&ack).context("an ack without an id")?;
                            anchors.push(Anchor { room, n, event_id });
                        }
                    }
                    anyhow::Ok(anchors)
                });
            }
            let progress = {
                let acked = acked.clone();
                tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
                    ticker.tick().await;
                    loop {
                        ticker.tick().await;
                        let n = acked.load(Ordering::Relaxed);
                        let secs = started.elapsed().as_secs_f64();
                        eprintln!(
                            "fill: {n} of {total} in {secs:.0} s ({:.0} msg/s)",
                            n as f64 / secs
                        );
                    }
                })
            };
            let mut anchors = Vec::new();
            while let Some(sent) = senders.join_next().await {
                anchors.extend(sent??);
            }
            progress.abort();
            let elapsed = started.elapsed().as_secs_f64();
            let cpu_1 = (cpu_secs_of(&node_stat), cpu_secs_of("/proc/self/stat"));
            anchors.sort_by_key(|a| a.n);
            Ok(Fill {
                acked: acked.load(Ordering::Relaxed),
                elapsed,
                node_cpu: cpu_1.0 - cpu_0.0,
                bench_cpu: cpu_1.1 - cpu_0.1,
                anchors,
            })
        })
    });
    run.join()
        .map_err(|_| anyhow::anyhow!("the fill panicked"))?
}

/// The `"event_id"` of an acknowledgement, found without parsing the rest.
fn event_id_of(ack: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"event_id\":\"";
    let start = ack.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = ack[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(ack[start..start + len].to_vec()).ok()
}

/// GETs one page; the milliseconds until its last byte, and the page.
async fn page(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(f64, Value)> {
    let started = Instant::now();
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    ensure!(
        status.is_success(),
        "{url}: {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok((ms, serde_json::from_slice(&bytes)?))
}

fn events(page: &Value) -> anyhow::Result<&Vec<Value>> {
    page["events"].as_array().context("a page without events")
}

/// Bytes the files under `dir` take on disk.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
