//! Federation benchmarks: real `spaces` processes on loopback, joined by
//! libp2p, sharing one public room created on the first node, A.
//!
//! `federation [--nodes 3] [--rate 100] [--seconds 10] [--topology star|chain]`
//! measures cross-node delivery. Each node has one user (its first, so a
//! node admin) who is a member of the room and holds a WebSocket open. A's
//! member sends over HTTP at a fixed rate; each message is timed from
//! issuing the send to its arrival on every member's socket. A's own
//! member is the local baseline; the other nodes give the cross-node
//! figures. In a star every node bootstraps from A and joins via A; in a
//! chain node i bootstraps from node i−1 and joins via it.
//!
//! `join [--history 10000] [--joiners 3]` measures joining a room with
//! history: A's room is filled with `--history` messages by concurrent
//! HTTP sends, then each joiner — a fresh node bootstrapped from A, one at
//! a time — has its user join via A, timed until the join returns and
//! until the user reads the room's latest message on their own node.
//!
//! Nodes run with their default sync interval (30 s): delivery is gossip
//! and push, as in production, with sync only as the safety net. Every
//! wait is bounded by [`DEADLINE`]; every load loop by count and time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{
    NodeProcess, PASSWORD, cpu_secs_of, flags, get, latency_body, machine_busy_secs, percentile,
    post,
};

/// The longest any one wait may take: a node listening, a WebSocket
/// catching up, a message crossing during warm-up, a join. Generous, since
/// ten nodes and the load generator share two cores.
const DEADLINE: Duration = Duration::from_secs(60);

/// Warm-up messages sent before measuring, one per [`WARM_UP_GAP`]: long
/// enough (2 s) for gossipsub's meshes to form (heartbeat 700 ms), so the
/// figures are the steady state rather than the first seconds of a room.
const WARM_UP_MESSAGES: usize = 20;
const WARM_UP_GAP: Duration = Duration::from_millis(100);

/// How long a member's socket may stay silent, once the sends are done,
/// before its receiver gives up on messages that have not arrived.
const IDLE: Duration = Duration::from_secs(10);

/// Senders filling a room for `join`: enough to keep the node's group
/// commit full, few enough not to starve it of its two cores.
const FILL_CONCURRENCY: usize = 32;

/// How often a joiner polls for the latest message: the "usable" figure is
/// at most this late.
const USABLE_POLL: Duration = Duration::from_millis(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Every node bootstraps from A and joins the room via A.
    Star,
    /// Node i bootstraps from node i−1 and joins via it.
    Chain,
}

pub struct LatencyArgs {
    nodes: usize,
    rate: u64,
    seconds: u64,
    topology: Topology,
}

impl LatencyArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<LatencyArgs> {
        let mut args = LatencyArgs {
            nodes: 3,
            rate: 100,
            seconds: 10,
            topology: Topology::Star,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--nodes" => args.nodes = value.parse()?,
                "--rate" => args.rate = value.parse()?,
                "--seconds" => args.seconds = value.parse()?,
                "--topology" => {
                    args.topology = match value {
                        "star" => Topology::Star,
                        "chain" => Topology::Chain,
                        _ => bail!("--topology is star or chain"),
                    }
                }
                _ => bail!("unknown flag {flag}"),
            }
        }
        if !(2..=20).contains(&args.nodes)
            || !(1..=120).contains(&args.seconds)
            || !(1..=5_000).contains(&args.rate)
        {
            bail!("bounds: 2 ≤ nodes ≤ 20, 1 ≤ seconds ≤ 120, 1 ≤ rate ≤ 5000");
        }
        Ok(args)
    }
}

pub struct JoinArgs {
    history: usize,
    joiners: usize,
}

impl JoinArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<JoinArgs> {
        let mut args = JoinArgs {
            history: 10_000,
            joiners: 3,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--history" => args.history = value.parse()?,
                "--joiners" => args.joiners = value.parse()?,
                _ => bail!("unknown flag {flag}"),
            }
        }
        if args.history > 100_000 || !(1..=10).contains(&args.joiners) {
            bail!("bounds: history ≤ 100000, 1 ≤ joiners ≤ 10");
        }
        Ok(args)
    }
}

/// One node of the federation with its first user: a node admin, and the
/// room's member on this node.
pub(crate) struct Peer {
    pub(crate) node: NodeProcess,
    pub(crate) token: String,
    /// Its federation address, `/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>`.
    pub(crate) addr: String,
}

impl Peer {
    async fn start(
        client: &reqwest::Client,
        name: &str,
        bootstrap: &[String],
    ) -> anyhow::Result<Peer> {
        Peer::start_with(client, name, bootstrap, &[]).await
    }

    /// [`Peer::start`] with more settings.
    pub(crate) async fn start_with(
        client: &reqwest::Client,
        name: &str,
        bootstrap: &[String],
        more: &[(&str, &str)],
    ) -> anyhow::Result<Peer> {
        let bootstrap = serde_json::to_string(bootstrap)?;
        let mut env = vec![
            ("SPACES__P2P__LISTEN", "[\"/ip4/127.0.0.1/tcp/0\"]"),
            ("SPACES__P2P__BOOTSTRAP", bootstrap.as_str()),
        ];
        env.extend_from_slice(more);
        let node = NodeProcess::start(name, &env)?;
        let tokens = post(
            client,
            format!("{}/api/v1/auth/register", node.base),
            None,
            json!({ "username": "admin", "password": PASSWORD }),
        )
        .await?;
        let token = tokens["access_token"]
            .as_str()
            .context("access token")?
            .to_owned();
        let status_url = format!("{}/api/v1/admin/federation", node.base);
        let addr = until(&format!("{name} listens for federation"), || async {
            let status = get(client, status_url.clone(), &token).await?;
            Ok(status["addresses"][0].as_str().map(str::to_owned))
        })
        .await?;
        Ok(Peer { node, token, addr })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.base)
    }

    /// The node ids this node has a live connection to.
    async fn connected(&self, client: &reqwest::Client) -> anyhow::Result<Vec<String>> {
        let status = get(client, self.url("/api/v1/admin/federation"), &self.token).await?;
        Ok(status["peers"]
            .as_array()
            .context("peers")?
            .iter()
            .filter(|p| p["connected"] == true)
            .filter_map(|p| p["node_id"].as_str().map(str::to_owned))
            .collect())
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most
/// [`DEADLINE`].
pub(crate) async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket authenticated as `token`, past its (small) backlog.
async fn subscribe(peer: &Peer, token: &str) -> anyhow::Result<Ws> {
    let url = peer.node.base.replacen("http", "ws", 1) + "/ws";
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let auth = json!({ "type": "auth", "token": token, "since": 0 });
    ws.send(Message::Text(auth.to_string().into())).await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(message))) = tokio::time::timeout(left, ws.next()).await else {
            bail!("{}: the WebSocket did not catch up", peer.node.base);
        };
        if let Message::Text(text) = message
            && text.contains("\"type\":\"caught_up\"")
        {
            return Ok(ws);
        }
    }
}

/// Reads `ws` until a message with body `body` arrives.
async fn until_body(ws: &mut Ws, body: &str) -> anyhow::Result<()> {
    let needle = format!("\"body\":\"{body}\"");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(message))) = tokio::time::timeout(left, ws.next()).await else {
            bail!("{body:?} did not arrive");
        };
        if let Message::Text(text) = message
            && text.contains(&needle)
        {
            return Ok(());
        }
    }
}

/// What one member's socket saw of the measured run.
#[derive(Default)]
struct Received {
    /// Milliseconds from send to arrival, one per distinct message.
    latencies: Vec<f64>,
    duplicates: usize,
}

fn summary(sorted: &[f64]) -> String {
    format!(
        "{:.2} / {:.2} / {:.2}",
        percentile(sorted, 0.5),
        percentile(sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN)
    )
}

/// The `federation` benchmark: cross-node delivery latency.
pub async fn latency(args: LatencyArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut peers: Vec<Peer> = Vec::with_capacity(args.nodes);
    for i in 0..args.nodes {
        let bootstrap = match (args.topology, peers.last()) {
            (_, None) => Vec::new(),
            (Topology::Star, Some(_)) => vec![peers[0].addr.clone()],
            (Topology::Chain, Some(last)) => vec![last.addr.clone()],
        };
        let name = format!("node{i}");
        peers.push(Peer::start(&client, &name, &bootstrap).await?);
    }
    let a = &peers[0];
    let room = post(
        &client,
        a.url("/api/v1/rooms"),
        Some(&a.token),
        json!({ "name": "bench", "visibility": "public" }),
    )
    .await?;
    let room_id = room["room_id"].as_str().context("room id")?.to_owned();
    let join_started = Instant::now();
    for i in 1..peers.len() {
        let via = match args.topology {
            Topology::Star => &peers[0].node.node_id,
            Topology::Chain => &peers[i - 1].node.node_id,
        };
        post(
            &client,
            peers[i].url(&format!("/api/v1/rooms/{room_id}/join")),
            Some(&peers[i].token),
            json!({ "via": [via] }),
        )
        .await
        .with_context(|| format!("node{i} joining"))?;
    }
    let joins = join_started.elapsed();

    let mut sockets = Vec::with_capacity(peers.len());
    for peer in &peers {
        sockets.push(subscribe(peer, &peer.token).await?);
    }
    let send_url = a.url(&format!("/api/v1/rooms/{room_id}/messages"));
    for k in 0..WARM_UP_MESSAGES {
        let body = json!({ "body": format!("warmup {k}") });
        post(&client, send_url.clone(), Some(&a.token), body).await?;
        tokio::time::sleep(WARM_UP_GAP).await;
    }
    let last_warm_up = format!("warmup {}", WARM_UP_MESSAGES - 1);
    for ws in &mut sockets {
        until_body(ws, &last_warm_up).await?;
    }

    let total = (args.rate * args.seconds) as usize;
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let stop = Instant::now() + Duration::from_secs(args.seconds) + DEADLINE;
    let mut receivers = Vec::with_capacity(sockets.len());
    for mut ws in sockets {
        let sent_at = sent_at.clone();
        receivers.push(tokio::spawn(async move {
            let mut received = Received::default();
            let mut seen = vec![false; total];
            while received.latencies.len() < total && Instant::now() < stop {
                let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(IDLE, ws.next()).await
                else {
                    break;
                };
                let now = Instant::now();
                let Some(i) = latency_body(&text)
                    .and_then(|b| b.strip_prefix("latency ")?.parse::<usize>().ok())
                    .filter(|i| *i < total)
                else {
                    continue;
                };
                let at = sent_at.lock().unwrap_or_else(|p| p.into_inner())[i];
                match at {
                    Some(_) if seen[i] => received.duplicates += 1,
                    Some(at) => {
                        seen[i] = true;
                        received
                            .latencies
                            .push(now.duration_since(at).as_secs_f64() * 1000.0);
                    }
                    None => {}
                }
            }
            received
        }));
    }

    let cpu_before: Vec<f64> = peers.iter().map(|p| p.node.cpu_secs()).collect();
    let bench_cpu_before = cpu_secs_of("/proc/self/stat");
    let machine_before = machine_busy_secs();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        ticker.tick().await;
        let issued = Instant::now();
        sent_at.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(issued);
        let (client, url, token) = (client.clone(), send_url.clone(), a.token.clone());
        sends.spawn(async move {
            let body = json!({ "body": format!("latency {i}") });
            let acked = post(&client, url, Some(&token), body).await.is_ok();
            acked.then(|| issued.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut acks = Vec::with_capacity(total);
    while let Some(ack) = sends.join_next().await {
        acks.extend(ack.ok().flatten());
    }
    let sending = started.elapsed();
    let mut received = Vec::with_capacity(receivers.len());
    for r in receivers {
        received.push(r.await?);
    }
    let cpu_after: Vec<f64> = peers.iter().map(|p| p.node.cpu_secs()).collect();
    let bench_cpu = cpu_secs_of("/proc/self/stat") - bench_cpu_before;
    let machine = machine_busy_secs() - machine_before;
    let measured = started.elapsed();
    // The graph the messages actually crossed: bootstrap is only where a
    // node starts; kademlia and joins add connections.
    let mut n_connected = Vec::with_capacity(peers.len());
    let mut to_a = Vec::with_capacity(peers.len());
    for peer in &peers {
        let connected = peer.connected(&client).await?;
        to_a.push(connected.contains(&peers[0].node.node_id));
        n_connected.push(connected.len());
    }
    acks.sort_by(f64::total_cmp);

    let topology = match args.topology {
        Topology::Star => "star: every node bootstraps from A and joins via A",
        Topology::Chain => "chain: node i bootstraps from node i−1 and joins via it",
    };
    println!(
        "{} nodes ({topology}); {} of {total} sends acked at {} msg/s in {:.2} s; \
         {} joins took {:.2} s",
        args.nodes,
        acks.len(),
        args.rate,
        sending.as_secs_f64(),
        args.nodes - 1,
        joins.as_secs_f64()
    );
    println!();
    println!(
        "| member's node | connected peers (to A?) | received | duplicates | \
         p50 / p99 / max (ms) | node CPU s |"
    );
    println!("|---|---|---:|---:|---|---:|");
    let mut remote = Vec::new();
    let mut worst_p99 = (f64::NEG_INFINITY, 0);
    for (i, r) in received.iter_mut().enumerate() {
        r.latencies.sort_by(f64::total_cmp);
        let name = if i == 0 {
            "A (sender's own node)".to_owned()
        } else {
            format!("node{i}")
        };
        let link = match (i, to_a[i]) {
            (0, _) => "",
            (_, true) => " (yes)",
            (_, false) => " (no)",
        };
        println!(
            "| {name} | {}{link} | {}/{total} | {} | {} | {:.2} |",
            n_connected[i],
            r.latencies.len(),
            r.duplicates,
            summary(&r.latencies),
            cpu_after[i] - cpu_before[i]
        );
        if i > 0 {
            remote.extend_from_slice(&r.latencies);
            let p99 = percentile(&r.latencies, 0.99);
            if p99 > worst_p99.0 {
                worst_p99 = (p99, i);
            }
        }
    }
    remote.sort_by(f64::total_cmp);
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| **cross-node delivery p50 / p99 / max, all {} remote members (ms)** | **{}** |",
        args.nodes - 1,
        summary(&remote)
    );
    println!(
        "| worst remote node's p99 (ms) | {:.2} (node{}) |",
        worst_p99.0, worst_p99.1
    );
    println!(
        "| send acknowledged on A p50 / p99 / max (ms) | {} |",
        summary(&acks)
    );
    let nodes_cpu = cpu_after.iter().sum::<f64>() - cpu_before.iter().sum::<f64>();
    println!(
        "| CPU seconds: all nodes / load generator / anything else on the machine \
         (of {:.2} s wall × 2 cores) | {nodes_cpu:.2} / {bench_cpu:.2} / {:.2} |",
        measured.as_secs_f64(),
        // Per-process and machine counters are read a moment apart: a
        // quiet machine can come out a few tenths below zero.
        (machine - nodes_cpu - bench_cpu).max(0.0)
    );
    Ok(())
}

/// The `join` benchmark: joining a room with history held on another node.
pub async fn join(args: JoinArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(FILL_CONCURRENCY)
        .build()?;
    let a = Peer::start(&client, "holder", &[]).await?;
    let room = post(
        &client,
        a.url("/api/v1/rooms"),
        Some(&a.token),
        json!({ "name": "history", "visibility": "public" }),
    )
    .await?;
    let room_id = room["room_id"].as_str().context("room id")?.to_owned();
    let send_url = a.url(&format!("/api/v1/rooms/{room_id}/messages"));

    // Fill: concurrent senders, each bounded by its share and a deadline.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut fillers = tokio::task::JoinSet::new();
    for w in 0..FILL_CONCURRENCY {
        let (client, url, token) = (client.clone(), send_url.clone(), a.token.clone());
        let n = args.history;
        fillers.spawn(async move {
            let mut acked = 0usize;
            for i in (w..n).step_by(FILL_CONCURRENCY) {
                if Instant::now() > deadline {
                    break;
                }
                let body = json!({ "body": format!("history {i}") });
                acked += usize::from(post(&client, url.clone(), Some(&token), body).await.is_ok());
            }
            acked
        });
    }
    let mut filled = 0;
    while let Some(acked) = fillers.join_next().await {
        filled += acked?;
    }
    let fill = started.elapsed();
    let latest = post(
        &client,
        send_url.clone(),
        Some(&a.token),
        json!({ "body": "the latest" }),
    )
    .await?;
    let latest_id = latest["event_id"].as_str().context("event id")?.to_owned();
    let held_on_a = count_events(&client, &a, &room_id).await?;
    println!(
        "A holds {held_on_a} timeline events: {filled} of {} history messages acked in {:.2} s, \
         then the latest",
        args.history,
        fill.as_secs_f64()
    );
    println!();
    println!(
        "| joiner | join returns (ms) | joined and usable (ms) | events on the joiner | \
         CPU s: A / joiner / anything else |"
    );
    println!("|---|---:|---:|---:|---|");

    let mut returns = Vec::new();
    let mut usable = Vec::new();
    for j in 0..args.joiners {
        let b = Peer::start(
            &client,
            &format!("joiner{j}"),
            std::slice::from_ref(&a.addr),
        )
        .await?;
        until("the joiner is connected to A", || async {
            let connected = b.connected(&client).await?;
            Ok(connected.contains(&a.node.node_id).then_some(()))
        })
        .await?;
        let (a_cpu, b_cpu) = (a.node.cpu_secs(), b.node.cpu_secs());
        let (bench_cpu, machine) = (cpu_secs_of("/proc/self/stat"), machine_busy_secs());
        let messages_url = b.url(&format!("/api/v1/rooms/{room_id}/messages?dir=b&limit=10"));
        let started = Instant::now();
        post(
            &client,
            b.url(&format!("/api/v1/rooms/{room_id}/join")),
            Some(&b.token),
            json!({ "via": [a.node.node_id] }),
        )
        .await
        .context("joining via A")?;
        let returned = started.elapsed();
        // The join event is B's newest; the latest message is just before.
        let stop = started + DEADLINE;
        loop {
            let page = get(&client, messages_url.clone(), &b.token).await?;
            let events = page["events"].as_array().context("events")?;
            if events.iter().any(|e| e["event_id"] == latest_id.as_str()) {
                break;
            }
            if Instant::now() > stop {
                bail!("joiner{j}: the latest message did not become readable");
            }
            tokio::time::sleep(USABLE_POLL).await;
        }
        let ready = started.elapsed();
        let cpu = (a.node.cpu_secs() - a_cpu, b.node.cpu_secs() - b_cpu);
        let bench_cpu = cpu_secs_of("/proc/self/stat") - bench_cpu;
        let others = (machine_busy_secs() - machine - cpu.0 - cpu.1 - bench_cpu).max(0.0);
        let held = count_events(&client, &b, &room_id).await?;
        println!(
            "| joiner{j} | {:.0} | {:.0} | {held} | {:.2} / {:.2} / {others:.2} |",
            returned.as_secs_f64() * 1000.0,
            ready.as_secs_f64() * 1000.0,
            cpu.0,
            cpu.1
        );
        returns.push(returned.as_secs_f64() * 1000.0);
        usable.push(ready.as_secs_f64() * 1000.0);
    }
    returns.sort_by(f64::total_cmp);
    usable.sort_by(f64::total_cmp);
    println!();
    println!(
        "median of {}: join returns in {:.0} ms, joined and usable in {:.0} ms",
        args.joiners,
        percentile(&returns, 0.5),
        percentile(&usable, 0.5)
    );
    Ok(())
}

/// How many timeline events `peer`'s user can read in `room`, paging back
/// from the newest (bounded: at most a million events).
async fn count_events(client: &reqwest::Client, peer: &Peer, room: &str) -> anyhow::Result<usize> {
    const PAGE: usize = 200;
    let mut n = 0;
    let mut from: Option<String> = None;
    for _ in 0..1_000_000 / PAGE {
        let mut path = format!("/api/v1/rooms/{room}/messages?dir=b&limit={PAGE}");
        if let Some(from) = &from {
            path.push_str(&format!("&from={from}"));
        }
        let page = get(client, peer.url(&path), &peer.token).await?;
        let events = page["events"].as_array().context("events")?;
        n += events.len();
        if page["has_more"] != true {
            return Ok(n);
        }
        from = events
            .first()
            .and_then(|e| e["event_id"].as_str())
            .map(str::to_owned);
    }
    bail!("{room} has more than a million events")
}
