//! `spaces-bench`: benchmarks against real `spaces` processes.
//!
//! `spaces-bench [--users 100] [--messages-per-sender 200] [--rate 500] [--seconds 10]
//! [--search on|off]` is the single-node load benchmark. It starts the node binary (next to
//! this one) on a temporary data directory, registers users, puts them all
//! in one room, and measures:
//!
//! 1. throughput — acknowledged (durable) messages per second from N
//!    concurrent senders;
//! 2. delivery latency — at a fixed send rate, the time from issuing a send
//!    to its arrival on every member's WebSocket (p50/p99/max);
//! 3. the node's resident memory (VmRSS from /proc) idle, after setup and
//!    after load;
//! 4. after a restart on the same data directory, the time until it serves
//!    again and its memory with every stored event loaded.
//!
//! `spaces-bench federation ...` and `spaces-bench join ...` measure
//! several nodes joined by libp2p on loopback: see [`federation`].
//! `spaces-bench history ...` measures one node holding a lot of history:
//! see [`history`]. `spaces-bench search ...` measures the search index at
//! a million messages and how soon a sent message is found: see [`search`].
//! `spaces-bench media ...` measures uploads and downloads of large files:
//! see [`media`].
//! `spaces-bench notify ...` measures what notifications cost: see
//! [`notify`].
//!
//! Every loop is bounded in count and time.

mod federation;
mod history;
mod media;
mod notify;
mod search;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// The password of every user the benchmarks register.
const PASSWORD: &str = "benchmark password";

struct Args {
    users: usize,
    messages_per_sender: usize,
    rate: u64,
    seconds: u64,
    /// Whether the node keeps its search index (`search.enabled`): the
    /// send path's cost of indexing is the difference of two runs.
    search: bool,
}

/// `--flag value` pairs, in order.
fn flags(args: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    let mut pairs = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        pairs.push((flag.as_str(), value.as_str()));
    }
    Ok(pairs)
}

fn parse_args(argv: &[String]) -> anyhow::Result<Args> {
    let mut args = Args {
        users: 100,
        messages_per_sender: 200,
        rate: 500,
        seconds: 10,
        search: true,
    };
    for (flag, value) in flags(argv)? {
        match flag {
            "--users" => args.users = value.parse()?,
            "--messages-per-sender" => args.messages_per_sender = value.parse()?,
            "--rate" => args.rate = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--search" => {
                args.search = match value {
                    "on" => true,
                    "off" => false,
                    _ => bail!("--search takes on or off"),
                }
            }
            _ => bail!("unknown flag {flag}"),
        }
    }
    if args.users == 0
        || args.users > 1000
        || args.seconds == 0
        || args.seconds > 120
        || args.rate == 0
        || args.rate > 50_000
    {
        bail!("bounds: 1 ≤ users ≤ 1000, 1 ≤ seconds ≤ 120, 1 ≤ rate ≤ 50000");
    }
    Ok(args)
}

/// The node process; killed when dropped.
struct NodeProcess {
    child: Child,
    /// `http://<addr>`.
    base: String,
    /// `~...`, as printed on start.
    node_id: String,
    dir: std::path::PathBuf,
    /// The settings it was started with on top of the benchmark's own.
    env: Vec<(String, String)>,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl NodeProcess {
    /// Starts `spaces serve` on a fresh data directory named after `name`,
    /// with the benchmark's limits and no federation, then `env` on top.
    fn start(name: &str, env: &[(&str, &str)]) -> anyhow::Result<NodeProcess> {
        let dir = std::env::temp_dir().join(format!("spaces-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let (child, stdout) = Self::spawn(&dir, env)?;
        // From here on, dropping `node` kills the child.
        let mut node = NodeProcess {
            child,
            base: String::new(),
            node_id: String::new(),
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        node.read_start_line(stdout)?;
        Ok(node)
    }

    /// Stops the node (SIGTERM: it shuts down gracefully) and starts it
    /// again on the same data directory and settings; the time until it
    /// serves.
    fn restart(&mut self) -> anyhow::Result<Duration> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        self.child.wait()?;
        let started = Instant::now();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (child, stdout) = Self::spawn(&self.dir, &env)?;
        self.child = child;
        self.read_start_line(stdout)?;
        Ok(started.elapsed())
    }

    fn spawn(
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<(Child, std::process::ChildStdout)> {
        let exe = std::env::current_exe()?.with_file_name("spaces");
        let mut command = Command::new(&exe);
        command
            .args(["serve", "--http-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // The benchmark states every setting it runs with.
        for (key, _) in std::env::vars() {
            if key.starts_with("SPACES__") {
                command.env_remove(key);
            }
        }
        command
            .env("RUST_LOG", "warn")
            // The benchmark measures the node, not its per-user rate limit.
            .env("SPACES__LIMITS__SENDS_PER_SEC", "1000000")
            .env("SPACES__LIMITS__SEND_BURST", "1000000")
            .env("SPACES__LIMITS__REGISTRATIONS_PER_SEC", "1000000")
            .env("SPACES__LIMITS__REGISTRATION_BURST", "1000000")
            .env("SPACES__LIMITS__REGISTRATIONS_PER_IP_PER_HOUR", "1000000")
            .env("SPACES__LIMITS__REGISTRATION_IP_BURST", "1000000")
            .env("SPACES__LIMITS__WS_LAG_EVENTS", "65536")
            // Every client connects from loopback: one address.
            .env("SPACES__HTTP__MAX_CONNECTIONS_PER_IP", "0")
            // No federation unless asked: the default would bind port 4040.
            .env("SPACES__P2P__LISTEN", "[]");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} (build it: cargo build --release -p spaces-node --bins)",
                exe.display()
            )
        })?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok((child, stdout))
    }

    /// Reads `Spaces node <id> on http://<addr>` (printed once the node
    /// serves), then drains the rest.
    fn read_start_line(&mut self, stdout: std::process::ChildStdout) -> anyhow::Result<()> {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // Keep draining, so the node never blocks on (or dies writing to)
        // its stdout.
        std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
        // `Spaces node <id> on http://<addr>`
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["Spaces", "node", node_id, "on", base] = words[..] else {
            bail!("unexpected start line {line:?}");
        };
        self.node_id = node_id.to_owned();
        self.base = base.to_owned();
        Ok(())
    }

    /// CPU seconds (user + system) the node has used so far.
    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&format!("/proc/{}/stat", self.child.id()))
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15, in
/// clock ticks; Linux uses 100 ticks per second on every platform it ships).
fn cpu_secs_of(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return f64::NAN;
    };
    // The command name (field 2) may hold spaces: fields count from its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the whole machine has been busy so far (every core, every
/// process): the `cpu` line of /proc/stat less idle and iowait. Against a
/// benchmark's own processes it shows how much else was running.
fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    // cpu user nice system idle iowait irq softirq steal (guest time is
    // already counted in user)
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().unwrap_or(f64::NAN))
        .collect();
    if ticks.len() < 8 {
        return f64::NAN;
    }
    (ticks.iter().sum::<f64>() - ticks[3] - ticks[4]) / 100.0
}

struct User {
    token: String,
}

/// One sender of the throughput run: a keep-alive HTTP/1.1 connection of
/// its own, driven by hyper's client directly. The load generator shares
/// the node's two cores, so it skips what reqwest adds per request (pool,
/// URL parsing, JSON values) and only checks that each send was
/// acknowledged with the event's id.
struct Sender {
    conn: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    uri: hyper::Uri,
    authorization: hyper::header::HeaderValue,
}

impl Sender {
    async fn connect(addr: &str, path: &str, token: &str) -> anyhow::Result<Sender> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (conn, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Sender {
            conn,
            uri: format!("http://{addr}{path}").parse()?,
            authorization: format!("Bearer {token}").parse()?,
        })
    }

    async fn send(&mut self, body: &str) -> anyhow::Result<()> {
        let uri = self.uri.clone();
        self.send_to(&uri, body).await.map(drop)
    }

    /// Sends `body` to `uri` (on this connection's node) instead; the
    /// acknowledgement's bytes.
    async fn send_to(&mut self, uri: &hyper::Uri, body: &str) -> anyhow::Result<bytes::Bytes> {
        use http_body_util::BodyExt;
        let request = hyper::Request::post(uri.clone())
            .header(
                hyper::header::HOST,
                uri.authority().map_or("", |a| a.as_str()),
            )
            .header(hyper::header::AUTHORIZATION, self.authorization.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::to_vec(&json!({ "body": body }))?,
            )))?;
        self.conn.ready().await?;
        let response = self.conn.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() || !body.windows(10).any(|w| w == b"\"event_id\"") {
            bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> anyhow::Result<Value> {
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}

/// The `latency N` body of an event frame, if it is one of ours.
fn latency_body(frame: &str) -> Option<&str> {
    let start = frame.find("\"body\":\"latency ")? + "\"body\":\"".len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

const USAGE: &str = "\
spaces-bench: benchmarks against real `spaces` processes (release build)

  spaces-bench [--users N] [--messages-per-sender N] [--rate MSG/S] [--seconds S] [--search on|off]
      one node: durable send throughput from N concurrent senders into one
      room, then delivery latency to N WebSocket members at a fixed rate,
      then a restart: time to serve and memory with all events loaded
      (defaults: 100 users, 200 messages each, 500 msg/s for 10 s, search on)
  spaces-bench federation [--nodes N] [--rate MSG/S] [--seconds S] [--topology star|chain]
      cross-node delivery latency in a public room spanning N nodes
  spaces-bench join [--history N] [--joiners N]
      time for fresh nodes to join a room holding N messages
  spaces-bench history [--messages N] [--rooms R] [--body-bytes B]
      R rooms filled with N messages each (default 1 × 1000000), then a
      restart: time to serve, resident bytes per stored message, history
      page latency (newest, deep, around) and send throughput afterwards
  spaces-bench search [--messages N] [--rooms R] [--queries Q] [--visibility V]
      the search index at N synthetic messages (default 1000000, Zipf word
      frequencies): indexing msg/s, bytes on disk a message, query p50/p99
      (a word, a rare word, three words, a phrase, from: + a word); then on
      a real node, the delay from a send's acknowledgment to its first hit
  spaces-bench media [--uploads N] [--size-mib S] [--fetch-mib F] [--photo-mpx P]
      N uploads of S MiB (default 3 × 100): upload and download MB/s against
      the disk's own write + fsync, and the node's peak RSS during each
      upload beside its peak in a 1 MiB upload (streaming: no growth by S);
      thumbnails of a P-megapixel JPEG (default 12), in process and through
      an upload; a cross-node fetch of F MiB (default 100) between two real
      nodes (verified streaming), MB/s and the fetching node's peak RSS
  spaces-bench notify [--members N] [--mentions N] [--users N] [--messages-per-sender N] [--runs N]
      @room in an N-member room: time and CPU until every member's
      notification is written; send throughput with notifications on and off

Results are printed as Markdown tables (README.md keeps the latest).";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spaces_node::install_crypto_provider();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    match argv.first().map(String::as_str) {
        Some("federation") => {
            federation::latency(federation::LatencyArgs::parse(&argv[1..])?).await
        }
        Some("join") => federation::join(federation::JoinArgs::parse(&argv[1..])?).await,
        Some("history") => history::history(history::HistoryArgs::parse(&argv[1..])?).await,
        Some("search") => search::search(search::SearchArgs::parse(&argv[1..])?).await,
        Some("media") => media::media(media::MediaArgs::parse(&argv[1..])?).await,
        Some("notify") => notify::notify(notify::NotifyArgs::parse(&argv[1..])?).await,
        _ => load(parse_args(&argv)?).await,
    }
}

/// The single-node load benchmark.
async fn load(args: Args) -> anyhow::Result<()> {
    let search = if args.search { "true" } else { "false" };
    let mut node = NodeProcess::start("load", &[("SPACES__SEARCH__ENABLED", search)])?;
    // Let start-up allocation settle before reading idle memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = node.rss_kib();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.users)
        .build()?;
    let base = node.base.clone();

    let users = register_users(&client, &base, args.users).await?;
    let room_id = create_room(&client, &base, &users[0].token, "bench").await?;
    join_room(&client, &base, &room_id, &users[1..]).await?;
    let rss_setup = node.rss_kib();

    // 1. Throughput: every user sends as fast as acknowledgements come back.
    let run =
        measure_throughput(&node, &client, &room_id, &users, args.messages_per_sender).await?;
    let Throughput {
        acked,
        elapsed,
        node_cpu,
        bench_cpu,
        commits,
    } = run;
    let throughput = run.per_sec();
    let (node_cpu_1, bench_cpu_1) = (node.cpu_secs(), cpu_secs_of("/proc/self/stat"));

    // 2. Latency: every member on a WebSocket; one sender at a fixed rate.
    let ws_url = base.replacen("http", "ws", 1) + "/ws";
    let sent_at: Arc<Mutex<std::collections::HashMap<String, Instant>>> = Arc::default();
    let total = (args.rate * args.seconds) as usize;
    let mut receivers = Vec::new();
    for user in &users {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
        let since = node_last_seq(&client, &base).await?;
        ws.send(Message::Text(
            json!({ "type": "auth", "token": user.token, "since": since })
                .to_string()
                .into(),
        ))
        .await?;
        let sent_at = sent_at.clone();
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total);
            let stop = Instant::now() + Duration::from_secs(args.seconds + 30);
            while latencies.len() < total && Instant::now() < stop {
                let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(Duration::from_secs(5), ws.next()).await
                else {
                    break;
                };
                let now = Instant::now();
                // The load generator shares the node's two cores: find the
                // body by substring rather than parse 500,000 frames.
                let Some(body) = latency_body(&text) else {
                    continue;
                };
                if let Some(at) = sent_at.lock().await.get(body) {
                    latencies.push(now.duration_since(*at).as_secs_f64() * 1000.0);
                }
            }
            latencies
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let url = format!("{base}/api/v1/rooms/{room_id}/messages");
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        ticker.tick().await;
        let body = format!("latency {i}");
        sent_at.lock().await.insert(body.clone(), Instant::now());
        let (client, url, token) = (
            client.clone(),
            url.clone(),
            users[i % users.len()].token.clone(),
        );
        sends.spawn(async move {
            post(&client, url, Some(&token), json!({ "body": body }))
                .await
                .is_ok()
        });
    }
    let mut n_ok = 0;
    while let Some(ok) = sends.join_next().await {
        n_ok += usize::from(ok.unwrap_or(false));
    }
    let mut latencies = Vec::new();
    for r in receivers {
        latencies.extend(r.await?);
    }
    latencies.sort_by(f64::total_cmp);
    let rss_load = node.rss_kib();
    let (node_cpu_2, bench_cpu_2) = (node.cpu_secs(), cpu_secs_of("/proc/self/stat"));
    // 3. Restart: every stored event is loaded back into memory.
    let n_stored = node_metric(&client, &base, "spaces_events_stored_total").await?;
    let restart = node.restart()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_restart = node.rss_kib();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| users (senders, WebSocket members) | {} |", args.users);
    println!("| durable messages acknowledged | {acked} in {elapsed:.2} s |");
    println!("| **throughput (acked msg/s, one room)** | **{throughput:.0}** |");
    println!(
        "| group commits (one fsync each), throughput run | {commits}, {:.1} messages each |",
        acked as f64 / commits.max(1) as f64
    );
    println!(
        "| latency run | {n_ok}/{total} sends at {} msg/s, {} deliveries |",
        args.rate,
        latencies.len()
    );
    println!(
        "| **delivery latency p50 / p99 / max (ms)** | **{:.2} / {:.2} / {:.2}** |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| CPU seconds, throughput run: node / load generator | {:.2} / {:.2} (of {:.2} wall × 2 cores) |",
        node_cpu, bench_cpu, elapsed
    );
    println!(
        "| CPU seconds, latency run: node / load generator | {:.2} / {:.2} |",
        node_cpu_2 - node_cpu_1,
        bench_cpu_2 - bench_cpu_1
    );
    println!(
        "| **node RSS idle** | **{:.1} MiB** |",
        rss_idle as f64 / 1024.0
    );
    println!(
        "| node RSS after setup / after load | {:.1} / {:.1} MiB |",
        rss_setup as f64 / 1024.0,
        rss_load as f64 / 1024.0
    );
    println!(
        "| node restarted on its {n_stored} events: serving after / RSS | {:.2} s / {:.1} MiB |",
        restart.as_secs_f64(),
        rss_restart as f64 / 1024.0
    );
    Ok(())
}

/// Registers `n` users `user0`, `user1`, … concurrently (argon2 dominates).
async fn register_users(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Vec<User>> {
    let mut handles = Vec::new();
    for i in 0..n {
        let (client, base) = (client.clone(), base.to_owned());
        handles.push(tokio::spawn(async move {
            let body = json!({ "username": format!("user{i}"), "password": PASSWORD });
            let v = post(&client, format!("{base}/api/v1/auth/register"), None, body).await?;
            anyhow::Ok(User {
                token: v["access_token"].as_str().context("token")?.to_owned(),
            })
        }));
    }
    let mut users = Vec::new();
    for h in handles {
        users.push(h.await??);
    }
    Ok(users)
}

/// Creates a public room; its id.
async fn create_room(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> anyhow::Result<String> {
    let room = post(
        client,
        format!("{base}/api/v1/rooms"),
        Some(token),
        json!({ "name": name, "visibility": "public" }),
    )
    .await?;
    Ok(room["room_id"].as_str().context("room id")?.to_owned())
}

/// Has each of `users` join `room_id`, one after another.
async fn join_room(
    client: &reqwest::Client,
    base: &str,
    room_id: &str,
    users: &[User],
) -> anyhow::Result<()> {
    for user in users {
        post(
            client,
            format!("{base}/api/v1/rooms/{room_id}/join"),
            Some(&user.token),
            json!({}),
        )
        .await?;
    }
    Ok(())
}

/// What one throughput run measured.
#[derive(Clone, Copy)]
struct Throughput {
    acked: usize,
    /// Wall seconds.
    elapsed: f64,
    /// CPU seconds of the node and of the load generator.
    node_cpu: f64,
    bench_cpu: f64,
    /// Group commits (one fsync each) during the run.
    commits: u64,
}

impl Throughput {
    fn per_sec(&self) -> f64 {
        self.acked as f64 / self.elapsed
    }
}

/// The throughput measurement: each of `users`, members of `room_id`,
/// sends `n` messages into it as fast as acknowledgements come back, on a
/// keep-alive connection of its own; bounded by 60 s.
async fn measure_throughput(
    node: &NodeProcess,
    client: &reqwest::Client,
    room_id: &str,
    users: &[User],
    n: usize,
) -> anyhow::Result<Throughput> {
    let base = &node.base;
    let commits_0 = node_metric(client, base, "spaces_store_commits_total").await?;
    // The senders run on a runtime of their own, one thread: the load
    // generator then takes at most one of the cores it shares with the node.
    let (addr, path) = (
        base.trim_start_matches("http://").to_owned(),
        format!("/api/v1/rooms/{room_id}/messages"),
    );
    let tokens: Vec<String> = users.iter().map(|u| u.token.clone()).collect();
    let node_stat = format!("/proc/{}/stat", node.child.id());
    let run = std::thread::spawn(move || -> anyhow::Result<_> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let mut senders = Vec::new();
            for token in &tokens {
                senders.push(Sender::connect(&addr, &path, token).await?);
            }
            let cpu_0 = (cpu_secs_of(&node_stat), cpu_secs_of("/proc/self/stat"));
            let started = Instant::now();
            let deadline = started + Duration::from_secs(60);
            let handles: Vec<_> = senders
                .into_iter()
                .map(|mut sender| {
                    tokio::spawn(async move {
                        let mut acked = 0usize;
                        for i in 0..n {
                            if Instant::now() > deadline {
                                break;
                            }
                            if let Err(e) = sender.send(&format!("throughput {i}")).await {
                                eprintln!("send: {e:#}");
                                break;
                            }
                            acked += 1;
                        }
                        acked
                    })
                })
                .collect();
            let mut acked = 0;
            for h in handles {
                acked += h.await?;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cpu_1 = (cpu_secs_of(&node_stat), cpu_secs_of("/proc/self/stat"));
            Ok((acked, elapsed, cpu_1.0 - cpu_0.0, cpu_1.1 - cpu_0.1))
        })
    });
    let (acked, elapsed, node_cpu, bench_cpu) = run
        .join()
        .map_err(|_| anyhow::anyhow!("the throughput run panicked"))??;
    let commits = node_metric(client, base, "spaces_store_commits_total").await? - commits_0;
    Ok(Throughput {
        acked,
        elapsed,
        node_cpu,
        bench_cpu,
        commits,
    })
}

async fn node_last_seq(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    // The live run only needs frames from now on: start from the stream's
    // end, read from the metrics' stored-events counter.
    node_metric(client, base, "spaces_events_stored_total").await
}

/// A counter from the node's `/metrics`; 0 when absent.
async fn node_metric(client: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0))
}
