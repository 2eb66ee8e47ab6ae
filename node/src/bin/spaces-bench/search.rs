//! The `search` benchmark: the index at a million messages, and how soon a
//! sent message is found.
//!
//! `search [--messages 1000000] [--rooms 100] [--queries 1000] [--visibility 100]`
//!
//! 1. **Indexing.** Builds an index of `--messages` synthetic messages with
//!    the node's own index code (`spaces-search`: its schema, tokenizer,
//!    writer and commit policy — one indexing thread, commits by count and
//!    time) in a temporary directory, on this thread: msg/s (wall clock and
//!    CPU), and bytes on disk per message once merges have settled. The
//!    bodies come from a word-frequency model ([`Corpus`]): a Zipf law
//!    (s = 1.07, as in English) over [`VOCABULARY`] words, the top ones
//!    real English function words, the rest pronounceable made-up words; 1
//!    to 40 words a message (mean ~11); senders, rooms and times spread.
//! 2. **Queries** against that index, one at a time, `--queries` of each
//!    kind, within the 20 rooms a user is in (of `--rooms`): a common word,
//!    a rare word, three words of one message, a two-word phrase taken from
//!    a message, and a filtered query (`from:` and a word); p50/p99/max and
//!    mean matches.
//! 3. **Visibility.** A real node (the `spaces` next to this binary): a
//!    user sends `--visibility` messages, each with a word of its own, one
//!    at a time, and searches for it every [`POLL`] from the moment the
//!    send is acknowledged: p50/p99/max of that delay.
//!
//! Every loop is bounded in count, and the polls in time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use spaces_search::{Doc, Options, Order, Request, SearchIndex};

use crate::{NodeProcess, cpu_secs_of, create_room, flags, get, percentile, post, register_users};

/// Words in the model's vocabulary.
const VOCABULARY: usize = 50_000;
/// The Zipf exponent of word frequencies (English: about 1).
const ZIPF_S: f64 = 1.07;
/// Rooms one searching user is in: the scope of every query.
const SCOPE_ROOMS: usize = 20;
/// Senders the messages are spread over.
const SENDERS: usize = 1000;
/// How often the visibility run searches for its message.
const POLL: Duration = Duration::from_millis(10);
/// The longest a sent message may stay unfound before the run fails.
const VISIBLE_LIMIT: Duration = Duration::from_secs(30);

/// English function and common words, most frequent first: the top of the
/// vocabulary.
const COMMON: &[&str] = &[
    "the", "to", "i", "a", "and", "it", "you", "is", "that", "of", "in", "for", "on", "this", "we",
    "be", "with", "have", "but", "not", "so", "do", "are", "just", "can", "if", "my", "was", "at",
    "what", "me", "all", "like", "no", "there", "will", "get", "think", "yeah", "one", "about",
    "or", "they", "up", "out", "know", "from", "an", "now", "how", "good", "would", "time", "ok",
    "then", "when", "more", "here", "see", "need", "some", "your", "should", "thanks", "work",
    "also", "it's", "going", "right", "use", "make", "build", "release", "test", "today",
    "tomorrow", "meeting", "node", "room", "server", "issue", "fix", "merge", "deploy", "lunch",
    "coffee", "weekend", "monday", "friday", "please", "sure", "nice", "cool", "sorry", "maybe",
    "still", "already", "again", "problem",
];

pub struct SearchArgs {
    messages: usize,
    rooms: usize,
    queries: usize,
    visibility: usize,
}

impl SearchArgs {
    pub fn parse(argv: &[String]) -> anyhow::Result<SearchArgs> {
        let mut args = SearchArgs {
            messages: 1_000_000,
            rooms: 100,
            queries: 1000,
            visibility: 100,
        };
        for (flag, value) in flags(argv)? {
            match flag {
                "--messages" => args.messages = value.parse()?,
                "--rooms" => args.rooms = value.parse()?,
                "--queries" => args.queries = value.parse()?,
                "--visibility" => args.visibility = value.parse()?,
                _ => bail!("unknown flag {flag}"),
            }
        }
        if args.messages == 0
            || args.messages > 10_000_000
            || args.rooms < SCOPE_ROOMS
            || args.rooms > 10_000
            || args.queries == 0
            || args.queries > 100_000
            || args.visibility > 10_000
        {
            bail!(
                "bounds: 1 ≤ messages ≤ 10000000, {SCOPE_ROOMS} ≤ rooms ≤ 10000, \
                 1 ≤ queries ≤ 100000, visibility ≤ 10000"
            );
        }
        Ok(args)
    }
}

/// splitmix64: a small deterministic generator, so every run indexes the
/// same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The word-frequency model.
struct Corpus {
    words: Vec<String>,
    /// Cumulative Zipf weights, normalised to end at 1.
    cdf: Vec<f64>,
}

impl Corpus {
    fn new() -> Corpus {
        let onsets = [
            "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
            "z", "br", "ch", "cl", "dr", "fl", "gr", "pl", "sh", "st", "th", "tr",
        ];
        let vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou"];
        let codas = ["", "", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "st"];
        let mut words: Vec<String> = COMMON.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        let mut rng = Rng(7);
        while words.len() < VOCABULARY {
            let syllables = 1 + rng.below(3);
            let mut word = String::new();
            for _ in 0..syllables {
                word.push_str(onsets[rng.below(onsets.len())]);
                word.push_str(vowels[rng.below(vowels.len())]);
            }
            word.push_str(codas[rng.below(codas.len())]);
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut cdf = Vec::with_capacity(VOCABULARY);
        let mut sum = 0.0;
        for rank in 1..=VOCABULARY {
            sum += 1.0 / (rank as f64).powf(ZIPF_S);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Corpus { words, cdf }
    }

    /// A word's rank drawn from the Zipf law (0: the most frequent).
    fn rank(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(VOCABULARY - 1)
    }

    fn message(&self, rng: &mut Rng) -> String {
        // 1–40 words, most messages short: mean about 11.
        let u = rng.unit();
        let len = 1 + (u * u * 30.0) as usize + rng.below(5);
        let mut body = String::new();
        for i in 0..len.min(40) {
            if i > 0 {
                body.push(' ');
            }
            body.push_str(&self.words[self.rank(rng)]);
        }
        body
    }

    /// A word with a rank in `ranks`, uniformly.
    fn word_in(&self, rng: &mut Rng, ranks: std::ops::Range<usize>) -> &str {
        &self.words[ranks.start + rng.below(ranks.len())]
    }
}

fn room_id(i: usize) -> String {
    format!("{i:064x}")
}

fn sender(i: usize) -> String {
    format!("@user{i}:~bench")
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn process_cpu_secs() -> f64 {
    cpu_secs_of("/proc/self/stat")
}

/// The `search` benchmark.
pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let corpus = Corpus::new();
    let dir = std::env::temp_dir().join(format!("spaces-bench-{}-search", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = index_and_query(&args, &corpus, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if args.visibility > 0 {
        visibility(args.visibility).await?;
    }
    Ok(())
}

fn index_and_query(
    args: &SearchArgs,
    corpus: &Corpus,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    // The corpus first, so the timing is the index's alone.
    let mut rng = Rng(1);
    let t0_ms: u64 = 1_767_225_600_000; // 2026-01-01
    let docs: Vec<Doc> = (0..args.messages)
        .map(|n| Doc {
            event_id: format!("{:064x}", n as u64 ^ 0x5eed_0000_0000),
            room_id: room_id(rng.below(args.rooms)),
            sender: sender(rng.below(SENDERS)),
            origin_ts: t0_ms + n as u64 * 30_000,
            seq: n as u64 + 1,
            body: corpus.message(&mut rng),
            has: Vec::new(),
            mentions: Vec::new(),
        })
        .collect();
    // Messages the phrase and three-word queries are taken from: in the
    // searching user's rooms, so they match at least that message.
    let scope: Vec<String> = (0..SCOPE_ROOMS).map(room_id).collect();
    let samples: Vec<String> = docs
        .iter()
        .filter(|d| scope.contains(&d.room_id))
        .step_by(20)
        .map(|d| d.body.clone())
        .collect();
    let body_bytes: usize = docs.iter().map(|d| d.body.len()).sum();

    let (index, mut writer, _) = SearchIndex::open(Options::new(dir))?;
    let (started, cpu_0) = (Instant::now(), process_cpu_secs());
    for (n, doc) in docs.into_iter().enumerate() {
        writer.put(doc)?;
        writer.applied(n as u64 + 1);
        if writer.due(Instant::now()) {
            writer.commit()?;
        }
        if n > 0 && n % 200_000 == 0 {
            eprintln!(
                "  indexed {n} messages, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    writer.commit()?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu_0;
    writer.wait_for_merges()?;
    let settled = started.elapsed().as_secs_f64();
    // Reopen, as a node does after a restart: what a search sees.
    drop(index);
    let (index, writer, seq) = SearchIndex::open(Options::new(dir))?;
    drop(writer);
    ensure!(seq == args.messages as u64, "the index holds seq {seq}");
    ensure!(
        index.n_docs() == args.messages as u64,
        "{} documents",
        index.n_docs()
    );
    let bytes = dir_bytes(dir);
    let n = args.messages as f64;
    println!(
        "search benchmark: {} messages in {} rooms, {:.0} bytes of text a message",
        args.messages,
        args.rooms,
        body_bytes as f64 / n
    );
    println!(
        "  indexing: {:.0} msg/s ({elapsed:.1} s), {:.1} µs CPU/msg (every thread); \
         merges settled after {settled:.1} s",
        n / elapsed,
        cpu / n * 1e6,
    );
    println!(
        "  index on disk: {:.1} MiB, {:.0} bytes/msg",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / n
    );

    let mut rng = Rng(2);
    type Make<'a> = Box<dyn Fn(&mut Rng) -> Request + 'a>;
    let parse = |text: String| Request::parse(&text).expect("the benchmark's queries parse");
    let kinds: Vec<(&str, Make)> = vec![
        (
            "one common word",
            Box::new(|rng: &mut Rng| parse(corpus.word_in(rng, 20..500).to_owned())),
        ),
        (
            "one rare word",
            Box::new(|rng: &mut Rng| parse(corpus.word_in(rng, 5_000..VOCABULARY).to_owned())),
        ),
        (
            "three words",
            // Three words of one message, in any order: what someone
            // remembers of it.
            Box::new(|rng: &mut Rng| {
                let words: Vec<&str> = loop {
                    let sample = &samples[rng.below(samples.len())];
                    let mut words: Vec<&str> = sample.split(' ').collect();
                    words.sort_unstable();
                    words.dedup();
                    if words.len() >= 3 {
                        break words;
                    }
                };
                let first = rng.below(words.len() - 2);
                parse(format!(
                    "{} {} {}",
                    words[first + 2],
                    words[first],
                    words[first + 1]
                ))
            }),
        ),
        (
            "phrase",
            Box::new(|rng: &mut Rng| {
                let words: Vec<&str> = loop {
                    let sample = &samples[rng.below(samples.len())];
                    let words: Vec<&str> = sample.split(' ').collect();
                    if words.len() >= 2 {
                        break words;
                    }
                };
                let at = rng.below(words.len() - 1);
                parse(format!("\"{} {}\"", words[at], words[at + 1]))
            }),
        ),
        (
            "from: + word",
            Box::new(|rng: &mut Rng| {
                parse(format!(
                    "from:{} {}",
                    sender(rng.below(SENDERS)),
                    corpus.word_in(rng, 20..2_000)
                ))
            }),
        ),
    ];
    println!(
        "  queries ({} each, one at a time, relevance order, a page of 20, within {SCOPE_ROOMS} rooms):",
        args.queries
    );
    for (name, make) in &kinds {
        let mut times = Vec::with_capacity(args.queries);
        let mut hits = 0usize;
        for _ in 0..args.queries {
            let request = make(&mut rng);
            let start = Instant::now();
            let page = index.search(&request, &scope, Order::Relevance, 0, 20)?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            hits += page.total;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "    {name:<16} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (mean matches {:.0})",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or(f64::NAN),
            hits as f64 / args.queries as f64
        );
    }
    Ok(())
}

/// Sends `n` messages to a real node, one at a time, and measures how long
/// after each acknowledgment a search first finds it.
async fn visibility(n: usize) -> anyhow::Result<()> {
    let node = NodeProcess::start(
        "search",
        &[
            ("SPACES__SEARCH__SEARCHES_PER_SEC", "1000000"),
            ("SPACES__SEARCH__SEARCH_BURST", "1000000"),
        ],
    )?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = node.base.clone();
    let user = register_users(&client, &base, 1)
        .await?
        .pop()
        .context("no user")?;
    let room = create_room(&client, &base, &user.token, "search").await?;
    let mut delays = Vec::with_capacity(n);
    for i in 0..n {
        let word = format!("needle{i}x{}", std::process::id());
        let sent = post(
            &client,
            format!("{base}/api/v1/rooms/{room}/messages"),
            Some(&user.token),
            json!({ "body": format!("looking for the {word} in the haystack") }),
        )
        .await?;
        let acked = Instant::now();
        let id = sent["event_id"].as_str().context("event_id")?.to_owned();
        loop {
            let page = get(
                &client,
                format!("{base}/api/v1/search?q={word}&limit=1"),
                &user.token,
            )
            .await?;
            if page["results"][0]["event_id"] == id.as_str() {
                delays.push(acked.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            ensure!(
                acked.elapsed() < VISIBLE_LIMIT,
                "message {i} not found {VISIBLE_LIMIT:?} after its acknowledgment"
            );
            tokio::time::sleep(POLL).await;
        }
    }
    delays.sort_by(f64::total_cmp);
    println!(
        "  visible after the acknowledgment ({n} sends, polling every {} ms): \
         p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        POLL.as_millis(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    drop(node);
    Ok(())
}
