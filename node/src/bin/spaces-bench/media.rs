//! The `media` benchmark: uploads and downloads through one node.
//!
//! `media [--uploads 3] [--size-mib 100]` starts a node whose file limit
//! admits the size, registers one user, and measures:
//!
//! 1. the disk's own write rate: `--size-mib` MiB written to the node's
//!    data directory and synced (what `dd … conv=fsync` reports);
//! 2. upload throughput: `--uploads` files of `--size-mib` MiB of
//!    incompressible bytes, one after another, each streamed from the
//!    benchmark in 256 KiB chunks, from the first byte sent to the 201;
//! 3. the node's resident memory: before, and its peak during each upload
//!    (sampled every 5 ms), and the same for a 1 MiB upload first, so the
//!    streaming claim is a figure: the peak must not grow by the file's
//!    size;
//! 4. download throughput of each file (a whole `GET`, bytes counted).
//!
//! 5. thumbnails of a `--photo-mpx` (12) megapixel JPEG: the image work
//!    alone, in this process (`picture::process`: canvas check, metadata
//!    stripped, decoded, two thumbnails), and its upload through the node
//!    (the same work on the node's image pool, plus storing);
//! 6. cross-node fetch: a second node, B, joins a room on the first, A; a
//!    `--fetch-mib` (100) MiB file attached there is read by B's user from
//!    B, which fetches it from A by verified streaming (`BlobBao`, each
//!    16 KiB group checked against the hash) and serves it: from the
//!    request to the last byte, B's peak RSS during it, and a second read
//!    from B's own store.
//!
//! Each upload is bounded by the client's timeout; sizes by 1..=1024 MiB.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures_util::StreamExt;

use crate::{NodeProcess, flags, register_users};

/// The chunk the benchmark streams an upload in.
const CHUNK: usize = 256 * 1024;
/// How often the node's resident memory is sampled during an upload.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// The longest one upload or download may take: 1 GiB at 2 MB/s.
const REQUEST_LIMIT: Duration = Duration::from_secs(600);

pub struct MediaArgs {
    uploads: usize,
    size_mib: u64,
    fetch_mib: u64,
    photo_mpx: u32,
}

impl MediaArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<MediaArgs> {
        let mut args = MediaArgs {
            uploads: 3,
            size_mib: 100,
            fetch_mib: 100,
            photo_mpx: 12,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--uploads" => args.uploads = value.parse()?,
                "--size-mib" => args.size_mib = value.parse()?,
                "--fetch-mib" => args.fetch_mib = value.parse()?,
                "--photo-mpx" => args.photo_mpx = value.parse()?,
                _ => bail!("unknown flag {flag}"),
            }
        }
        ensure!(
            (1..=20).contains(&args.uploads)
                && (1..=1024).contains(&args.size_mib)
                && (1..=1024).contains(&args.fetch_mib)
                && (1..=40).contains(&args.photo_mpx),
            "bounds: 1 ≤ uploads ≤ 20, 1 ≤ size-mib ≤ 1024, 1 ≤ fetch-mib ≤ 1024, \
             1 ≤ photo-mpx ≤ 40"
        );
        Ok(args)
    }
}

/// Incompressible bytes, `seed` making each file distinct (the store
/// keeps one copy of equal files).
fn chunk(seed: u64, index: u64) -> bytes::Bytes {
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03))
        | 1;
    let mut out = Vec::with_capacity(CHUNK);
    while out.len() < CHUNK {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes::Bytes::from(out)
}

/// Samples the node's VmRSS until dropped; `peak()` is the largest seen.
struct RssSampler {
    running: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let running = Arc::new(AtomicBool::new(true));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (running, peak) = (running.clone(), peak.clone());
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        RssSampler {
            running,
            peak,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One HTTP/1.1 connection to the node, driven by hyper directly: the
/// body is streamed from a generator, never held whole here either.
async fn connect(base: &str) -> anyhow::Result<hyper::client::conn::http1::SendRequest<BoxBody>> {
    let addr = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (conn, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(conn)
}

type BoxBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// Streams `size` bytes of file `seed` to `POST /api/v1/media`; the hash.
async fn upload(base: &str, token: &str, seed: u64, size: u64) -> anyhow::Result<String> {
    let n_chunks = size.div_ceil(CHUNK as u64);
    let frames = futures_util::stream::iter(0..n_chunks).map(move |i| {
        let mut bytes = chunk(seed, i);
        let left = size - i * CHUNK as u64;
        if left < CHUNK as u64 {
            bytes.truncate(left as usize);
        }
        Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes))
    });
    upload_body(base, token, seed, size, frames).await
}

/// `POST /api/v1/media` of `size` bytes from `frames`; the hash.
async fn upload_body<S>(
    base: &str,
    token: &str,
    seed: u64,
    size: u64,
    frames: S,
) -> anyhow::Result<String>
where
    S: futures_util::Stream<Item = Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>
        + Send
        + Sync
        + 'static,
{
    use http_body_util::BodyExt;
    let body: BoxBody = BodyExt::boxed(http_body_util::StreamBody::new(frames));
    let request = hyper::Request::post(format!("{base}/api/v1/media?name=bench-{seed}.bin"))
        .header(hyper::header::HOST, base.trim_start_matches("http://"))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_LENGTH, size)
        .body(body)?;
    let mut conn = connect(base).await?;
    let exchange = async {
        conn.ready().await?;
        let response = conn.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .context("the upload timed out")??;
    let value: serde_json::Value = serde_json::from_slice(&bytes)?;
    ensure!(status.as_u16() == 201, "{status}: {value}");
    ensure!(
        value["size"] == size,
        "stored {} of {size} bytes",
        value["size"]
    );
    Ok(value["hash"].as_str().context("hash")?.to_owned())
}

/// Downloads a whole file; the bytes received.
async fn download(base: &str, token: &str, hash: &str) -> anyhow::Result<u64> {
    match try_download(base, token, hash).await? {
        Ok(n) => Ok(n),
        Err(status) => bail!("{status}"),
    }
}

/// Downloads a whole file: the bytes received, or the status of a refusal.
async fn try_download(
    base: &str,
    token: &str,
    hash: &str,
) -> anyhow::Result<Result<u64, hyper::StatusCode>> {
    use http_body_util::BodyExt;
    let empty: BoxBody = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed();
    let request = hyper::Request::get(format!("{base}/api/v1/media/{hash}"))
        .header(hyper::header::HOST, base.trim_start_matches("http://"))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(empty)?;
    let mut conn = connect(base).await?;
    let exchange = async {
        conn.ready().await?;
        let response = conn.send_request(request).await?;
        if !response.status().is_success() {
            return anyhow::Ok(Err(response.status()));
        }
        let mut body = response.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                n += data.len() as u64;
            }
        }
        anyhow::Ok(Ok(n))
    };
    tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .context("the download timed out")?
}

/// Writes `size` bytes to a file in `dir` and syncs it: the disk's rate.
fn disk_write_secs(dir: &std::path::Path, size: u64) -> anyhow::Result<f64> {
    let path = dir.join("bench-disk.bin");
    let started = Instant::now();
    {
        let mut file = std::fs::File::create(&path)?;
        let n_chunks = size.div_ceil(CHUNK as u64);
        for i in 0..n_chunks {
            file.write_all(&chunk(u64::MAX, i))?;
        }
        file.sync_all()?;
    }
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(secs)
}

fn mb_per_sec(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

pub async fn media(args: MediaArgs) -> anyhow::Result<()> {
    let size = args.size_mib << 20;
    // Room for the photo too, whatever --size-mib says.
    let limit = (size + (1 << 20)).max(64 << 20).to_string();
    let quota = (size * (args.uploads as u64 + 2) + (64 << 20)).to_string();
    let node = NodeProcess::start(
        "media",
        &[
            ("SPACES__MEDIA__MAX_FILE_BYTES", &limit),
            ("SPACES__MEDIA__QUOTA_BYTES", &quota),
        ],
    )?;
    let pid = node.child.id();
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = node.base.clone();
    let user = register_users(&client, &base, 1)
        .await?
        .pop()
        .context("a user")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(pid);

    let disk_secs = disk_write_secs(&node.dir, size)?;

    // A small upload first: the peak any upload reaches when its size does
    // not matter.
    let sampler = RssSampler::start(pid);
    upload(&base, &user.token, 0, 1 << 20).await?;
    let rss_small_peak = sampler.stop();

    let mut rows = Vec::new();
    let mut hashes = Vec::new();
    for i in 0..args.uploads {
        let before = rss_kib(pid);
        let sampler = RssSampler::start(pid);
        let started = Instant::now();
        let hash = upload(&base, &user.token, i as u64 + 1, size).await?;
        let secs = started.elapsed().as_secs_f64();
        let peak = sampler.stop();
        rows.push((secs, before, peak));
        hashes.push(hash);
    }
    let mut downloads = Vec::new();
    for hash in &hashes {
        let started = Instant::now();
        let n = download(&base, &user.token, hash).await?;
        ensure!(n == size, "downloaded {n} of {size} bytes");
        downloads.push(started.elapsed().as_secs_f64());
    }
    let rss_after = rss_kib(pid);
    let photo = photo(&base, &user.token, args.photo_mpx).await?;
    drop(node);
    let fetched = cross_node(args.fetch_mib).await?;

    println!(
        "### spaces-bench media: {} × {} MiB",
        args.uploads, args.size_mib
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| disk write + fsync, {} MiB | {:.0} MB/s |",
        args.size_mib,
        mb_per_sec(size, disk_secs)
    );
    for (i, (secs, before, peak)) in rows.iter().enumerate() {
        println!(
            "| upload {} ({} MiB) | {:.2} s, {:.0} MB/s; RSS {} → peak {} MiB |",
            i + 1,
            args.size_mib,
            secs,
            mb_per_sec(size, *secs),
            before / 1024,
            peak / 1024
        );
    }
    for (i, secs) in downloads.iter().enumerate() {
        println!(
            "| download {} | {:.2} s, {:.0} MB/s |",
            i + 1,
            secs,
            mb_per_sec(size, *secs)
        );
    }
    let worst_peak = rows.iter().map(|r| r.2).max().unwrap_or(0);
    println!(
        "| node RSS: idle / peak in a 1 MiB upload / peak in a {} MiB upload / after | {} / {} / {} / {} MiB |",
        args.size_mib,
        rss_idle / 1024,
        rss_small_peak / 1024,
        worst_peak / 1024,
        rss_after / 1024
    );
    println!(
        "| peak RSS growth beyond the 1 MiB upload's | {} MiB for a {} MiB file |",
        worst_peak.saturating_sub(rss_small_peak) / 1024,
        args.size_mib
    );
    println!(
        "| {} Mpx JPEG ({}x{}, {:.1} MB): strip + decode + 2 thumbnails in process | {:.2} s |",
        args.photo_mpx,
        photo.width,
        photo.height,
        photo.bytes as f64 / 1e6,
        photo.process_secs
    );
    println!(
        "| the same JPEG uploaded (thumbnails on the node's image pool, stored) | {:.2} s |",
        photo.upload_secs
    );
    println!(
        "| cross-node fetch, {} MiB (B reads a file A holds; verified streaming) | {:.2} s, {:.0} MB/s; B's RSS {} → peak {} MiB |",
        args.fetch_mib,
        fetched.secs,
        mb_per_sec(fetched.bytes, fetched.secs),
        fetched.rss_before / 1024,
        fetched.rss_peak / 1024
    );
    println!(
        "| the same file read again from B's own store | {:.2} s, {:.0} MB/s |",
        fetched.local_secs,
        mb_per_sec(fetched.bytes, fetched.local_secs)
    );
    Ok(())
}

/// What the photo phase measured.
struct Photo {
    width: u32,
    height: u32,
    bytes: usize,
    process_secs: f64,
    upload_secs: f64,
}

/// Times thumbnails of a `mpx` megapixel photo (4:3): in this process,
/// then through the node's upload.
async fn photo(base: &str, token: &str, mpx: u32) -> anyhow::Result<Photo> {
    use spaces_blobs::picture;
    use spaces_blobs::sniff::ImageKind;
    let height = ((f64::from(mpx) * 1e6 * 3.0 / 4.0).sqrt()) as u32;
    let width = height * 4 / 3;
    let jpeg = tokio::task::spawn_blocking(move || picture::photo_jpeg(width, height)).await?;
    let bytes = jpeg.len();
    let input = jpeg.clone();
    let started = Instant::now();
    let processed = tokio::task::spawn_blocking(move || {
        picture::process(ImageKind::Jpeg, input, u64::from(width) * u64::from(height))
    })
    .await??;
    let process_secs = started.elapsed().as_secs_f64();
    ensure!(processed.thumbs.len() == picture::THUMB_SIZES.len());
    let body = bytes::Bytes::from(jpeg);
    let frames = futures_util::stream::iter(
        (0..bytes.div_ceil(CHUNK))
            .map(move |i| {
                let end = ((i + 1) * CHUNK).min(body.len());
                Ok::<_, std::io::Error>(hyper::body::Frame::data(body.slice(i * CHUNK..end)))
            })
            .collect::<Vec<_>>(),
    );
    let started = Instant::now();
    upload_body(base, token, u64::MAX, bytes as u64, frames).await?;
    Ok(Photo {
        width,
        height,
        bytes,
        process_secs,
        upload_secs: started.elapsed().as_secs_f64(),
    })
}

/// What the cross-node phase measured.
struct Fetched {
    bytes: u64,
    secs: f64,
    local_secs: f64,
    rss_before: u64,
    rss_peak: u64,
}

/// Two nodes, A and B: a file attached on A, read on B (see the module
/// doc).
async fn cross_node(fetch_mib: u64) -> anyhow::Result<Fetched> {
    use crate::federation::{Peer, until};
    use serde_json::json;
    let size = fetch_mib << 20;
    let limit = (size + (1 << 20)).to_string();
    let env = [
        ("SPACES__MEDIA__MAX_FILE_BYTES", limit.as_str()),
        ("SPACES__MEDIA__QUOTA_BYTES", limit.as_str()),
        // Fetched when read, so the read is what is timed.
        ("SPACES__MEDIA__EAGER_FETCH_BYTES", "0"),
        ("SPACES__MEDIA__FETCH_TIMEOUT_SECS", "3600"),
    ];
    let client = reqwest::Client::builder().no_proxy().build()?;
    let a = Peer::start_with(&client, "media-a", &[], &env).await?;
    let b = Peer::start_with(&client, "media-b", std::slice::from_ref(&a.addr), &env).await?;
    let room = crate::post(
        &client,
        a.url("/api/v1/rooms"),
        Some(&a.token),
        json!({ "name": "files", "visibility": "public" }),
    )
    .await?;
    let room = room["room_id"].as_str().context("room id")?.to_owned();
    until("B joins A's room", || async {
        let joined = client
            .post(b.url(&format!("/api/v1/rooms/{room}/join")))
            .bearer_auth(&b.token)
            .json(&json!({ "via": [a.node.node_id] }))
            .send()
            .await?;
        Ok(joined.status().is_success().then_some(()))
    })
    .await?;
    let hash = upload(&a.node.base, &a.token, 7, size).await?;
    let sent = crate::post(
        &client,
        a.url(&format!("/api/v1/rooms/{room}/messages")),
        Some(&a.token),
        json!({ "body": "the file", "attachments": [{ "hash": hash }] }),
    )
    .await?;
    let event = sent["event_id"].as_str().context("event id")?.to_owned();
    until("B holds the message", || async {
        let page = crate::get(
            &client,
            b.url(&format!("/api/v1/rooms/{room}/messages?dir=b&limit=20")),
            &b.token,
        )
        .await?;
        let held = page.to_string().contains(&event);
        Ok(held.then_some(()))
    })
    .await?;
    // B answers 404 until it has tagged the message's attachment, without
    // fetching anything; the first other answer is the fetch, timed.
    let pid = b.node.child.id();
    let rss_before = rss_kib(pid);
    let (secs, rss_peak) = until("B serves the file", || async {
        let sampler = RssSampler::start(pid);
        let started = Instant::now();
        let got = try_download(&b.node.base, &b.token, &hash).await?;
        let secs = started.elapsed().as_secs_f64();
        let peak = sampler.stop();
        match got {
            Ok(n) => {
                ensure!(n == size, "B served {n} of {size} bytes");
                Ok(Some((secs, peak)))
            }
            Err(status) if status == hyper::StatusCode::NOT_FOUND => Ok(None),
            Err(status) => bail!("B answered {status}"),
        }
    })
    .await?;
    let started = Instant::now();
    ensure!(download(&b.node.base, &b.token, &hash).await? == size);
    Ok(Fetched {
        bytes: size,
        secs,
        local_secs: started.elapsed().as_secs_f64(),
        rss_before,
        rss_peak,
    })
}
