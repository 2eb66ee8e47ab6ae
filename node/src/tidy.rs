//! Tidy checks: rules about the shape of `node/src`, kept as tests so a
//! review does not have to (rust-analyzer's `tidy.rs`). They read the
//! sources as text: comments and `#[cfg(test)] mod tests` blocks are
//! dropped first, so only code that ships is judged.
//!
//! - The import graph (every `crate::…`, `super::…` and `self::…` path)
//!   has no cycle, between top-level modules or between files.
//! - `engine/`, `peering.rs` and `services/` do not import `crate::api`.
//! - JSON is made in `api/` only (and in `http_server.rs`, for refusals
//!   before any route runs); in `api/`, the WebSocket's frames are made in
//!   `api/render.rs`, never in `api/ws.rs`, which only drives the socket.
//! - `api/` makes no store write and owns no shared state — no lock, atomic
//!   or static, and no task of its own (the rate limiter's buckets aside):
//!   handlers call services.
//! - A store method that flushes (an fsync) is called only inside
//!   `spawn_blocking(…)` or `services::on_disk(…)`, except on the threads
//!   that exist to block (the engine's writer, the operator CLI).
//! - The repository's documents ([`docs`]): links resolve, named paths
//!   exist, nothing cites a file outside the repository.

mod docs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file: its module path (`["api", "rooms"]`) and its code.
struct Source {
    module: Vec<String>,
    file: String,
    code: String,
}

fn node_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code without comments and without the trailing unit-test module.
fn shipped_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The library's modules (`bin/`, the binary's `main.rs` and this file
/// left out).
fn sources() -> Vec<Source> {
    let root = node_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).expect("under src");
            let file = relative.to_string_lossy().replace('\\', "/");
            // Not shipped: the binaries, these checks, and test modules kept
            // in files of their own (`#[cfg(test)] mod tests;`).
            if file.starts_with("bin/")
                || file == "main.rs"
                || file == "tidy.rs"
                || file.ends_with("/tests.rs")
            {
                return None;
            }
            let mut module: Vec<String> = file
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            Some(Source {
                module,
                file,
                code: shipped_code(&text),
            })
        })
        .collect()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The paths of a use tree starting at `at` (just after `crate::` or
/// `super::`): `a::b::{c, d::e}` gives `[a,b,c]` and `[a,b,d,e]`.
fn use_tree(code: &[u8], mut at: usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        while at < code.len() && code[at].is_ascii_whitespace() {
            at += 1;
        }
        if code.get(at) == Some(&b'{') {
            let mut paths = Vec::new();
            let mut depth = 0;
            let mut start = at + 1;
            for i in at..code.len() {
                match code[i] {
                    b'{' => depth += 1,
                    b'}' | b',' if depth == 1 => {
                        for mut path in use_tree(&code[..i], start) {
                            let mut full = prefix.clone();
                            full.append(&mut path);
                            paths.push(full);
                        }
                        start = i + 1;
                        if code[i] == b'}' {
                            return paths;
                        }
                    }
                    b'}' => depth -= 1,
                    _ => {}
                }
            }
            return paths;
        }
        let start = at;
        while at < code.len() && is_ident_byte(code[at]) {
            at += 1;
        }
        if start == at {
            return if prefix.is_empty() {
                Vec::new()
            } else {
                vec![prefix]
            };
        }
        prefix.push(String::from_utf8_lossy(&code[start..at]).into_owned());
        if code[at..].starts_with(b"::") {
            at += 2;
        } else {
            return vec![prefix];
        }
    }
}

/// Every module path `source` names through `crate::`, `super::` or
/// `self::`, made absolute.
fn named_paths(source: &Source) -> Vec<Vec<String>> {
    let code = source.code.as_bytes();
    let mut paths = Vec::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        (
            "super::",
            source.module[..source.module.len().saturating_sub(1)].to_vec(),
        ),
        ("self::", source.module.clone()),
    ] {
        for (at, _) in source.code.match_indices(anchor) {
            // `super::` inside `crate::a::super::`? Not Rust; but skip
            // matches that are the tail of a longer identifier.
            if at > 0 && is_ident_byte(code[at - 1]) {
                continue;
            }
            for path in use_tree(code, at + anchor.len()) {
                let mut full = base.clone();
                full.extend(path);
                paths.push(full);
            }
        }
    }
    paths
}

/// Module → modules it imports, at file granularity: a path resolves to
/// the longest module that is a file. A module reaching its own ancestors
/// (`super::AppState`) is not an edge: a parent and its children are one
/// unit.
fn file_graph(sources: &[Source]) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for source in sources {
        let edges: &mut BTreeSet<Vec<String>> = graph.entry(source.module.clone()).or_default();
        for path in named_paths(source) {
            let Some(target) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains(prefix))
            else {
                continue;
            };
            if !source.module.starts_with(&target) {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle of `graph`, as the path around it.
fn find_cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        node: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        done: &mut BTreeSet<N>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn the_import_graph_has_no_cycle() {
    let sources = sources();
    let files = file_graph(&sources);
    assert!(
        files.contains_key(&vec!["api".to_owned(), "rooms".to_owned()])
            && files.values().map(BTreeSet::len).sum::<usize>() > 20,
        "the tidy walker found too little: {files:?}"
    );
    if let Some(cycle) = find_cycle(&files) {
        let cycle: Vec<String> = cycle.iter().map(|m| show(m)).collect();
        panic!("import cycle between files: {}", cycle.join(" → "));
    }
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &files {
        let from = show(&from[..from.len().min(1)]);
        let edges = top.entry(from.clone()).or_default();
        for target in targets {
            let target = show(&target[..target.len().min(1)]);
            if target != from && target != "crate" {
                edges.insert(target);
            }
        }
    }
    if let Some(cycle) = find_cycle(&top) {
        panic!("import cycle between modules: {}", cycle.join(" → "));
    }
}

#[test]
fn engine_peering_and_services_do_not_import_the_api() {
    let sources = sources();
    let graph = file_graph(&sources);
    let below_the_api = |module: &[String]| {
        matches!(
            module.first().map(String::as_str),
            Some("engine" | "peering" | "services")
        )
    };
    let offenders: Vec<String> = graph
        .iter()
        .filter(|(from, _)| below_the_api(from))
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|t| t.first().map(String::as_str) == Some("api"))
                .map(move |t| format!("{} → {}", show(from), show(t)))
        })
        .collect();
    assert!(offenders.is_empty(), "imports of crate::api: {offenders:?}");
}

/// Outside the API, where JSON may be made, none of it for clients' views:
/// the HTTP server answers the connections it refuses before any route runs
/// (over capacity, a request hyper cannot parse) with `{code, message}`
/// itself; the admin CLI calls the node's HTTP API; a backup archive's
/// manifest and JSON log lines are formats for operators' tools.
const JSON_OUTSIDE_THE_API: &[&str] = &["http_server.rs", "admin.rs", "archive.rs", "logging.rs"];

/// Whether code builds JSON: it uses `json!`, or names `serde_json` for
/// anything but `serde_json::from_…`, which only reads. A `Value` or `Map`
/// made by hand, or serializing, needs `serde_json` named (in a `use` if
/// not in place).
fn builds_json(code: &str) -> bool {
    code.contains("json!(")
        || code
            .match_indices("serde_json")
            .any(|(at, _)| !code[at..].starts_with("serde_json::from_"))
}

/// The engine emits typed stream items; `api/render.rs` alone makes JSON
/// of them. Federation, the services and the rest of the node speak in
/// types too.
#[test]
fn outside_the_api_nothing_builds_json() {
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|s| s.module.first().map(String::as_str) != Some("api"))
        .filter(|s| !JSON_OUTSIDE_THE_API.contains(&s.file.as_str()))
        .filter(|s| builds_json(&s.code))
        .map(|s| s.file)
        .collect();
    assert!(
        offenders.is_empty(),
        "JSON built outside the API: {offenders:?}"
    );
}

/// `api/ws.rs` drives the socket; every frame it sends is made in
/// `api/render.rs`. Reading the client's messages is its own.
#[test]
fn the_websocket_builds_no_frame_of_its_own() {
    let ws = sources()
        .into_iter()
        .find(|s| s.file == "api/ws.rs")
        .expect("api/ws.rs");
    assert!(
        !builds_json(&ws.code),
        "api/ws.rs builds JSON; make the frame in api/render.rs"
    );
}

#[test]
fn the_json_check_tells_building_from_reading() {
    for code in [
        r#"let v = serde_json::json!({"a": 1});"#,
        r#"let v = json!({"a": 1});"#,
        "let text = serde_json::to_string(&x)?;",
        "let m = serde_json::Map::new();",
        "use serde_json::Value;",
        "use serde_json::{Value, json};",
    ] {
        assert!(builds_json(code), "{code}");
    }
    for code in [
        "let message: ClientMessage = serde_json::from_str(&text)?;",
        "let v = serde_json::from_slice::<Thing>(&bytes);",
        "let x = 1;",
        "let m = HashMap::new();",
        "let v = toml::Value::String(raw);",
    ] {
        assert!(!builds_json(code), "{code}");
    }
}

/// The public `Store` methods that flush, read from `crates/store/src`: a
/// method flushes if its body calls `flush(` or another method that does.
fn flushing_store_methods() -> BTreeSet<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/store/src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    // name → (public, body)
    let mut fns: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for path in files {
        let code = shipped_code(&std::fs::read_to_string(&path).expect("reading store source"));
        let bytes = code.as_bytes();
        for (at, _) in code.match_indices("fn ") {
            if at > 0 && is_ident_byte(bytes[at - 1]) {
                continue;
            }
            let name: String = code[at + 3..]
                .bytes()
                .take_while(|b| is_ident_byte(*b))
                .map(char::from)
                .collect();
            let public = code[..at].trim_end().ends_with("pub");
            let Some(open) = code[at..].find('{').map(|o| at + o) else {
                continue;
            };
            // A declaration without a body (`fn x();`) ends before its brace.
            if code[at..open].contains(';') {
                continue;
            }
            let mut depth = 0;
            let mut end = open;
            for (i, b) in bytes.iter().enumerate().skip(open) {
                match b {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let body = code[open..=end].to_owned();
            let entry = fns.entry(name).or_insert((false, String::new()));
            entry.0 |= public;
            entry.1.push_str(&body);
        }
    }
    let mut flushing: BTreeSet<String> = fns
        .iter()
        .filter(|(_, (_, body))| body.contains("flush("))
        .map(|(name, _)| name.clone())
        .collect();
    loop {
        let more: Vec<String> = fns
            .iter()
            .filter(|(name, (_, body))| {
                !flushing.contains(*name)
                    && flushing
                        .iter()
                        .any(|f| body.contains(&format!("self.{f}(")))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        flushing.extend(more);
    }
    flushing.retain(|name| fns[name].0);
    flushing
}

/// Calls of `methods` in `code` that are neither awaited (an async method
/// of the same name: a service's wrapper, a socket's `flush`) nor inside
/// the arguments of one of `blocking_entries` (`spawn_blocking(`).
fn calls_on_the_runtime(
    code: &str,
    methods: &BTreeSet<String>,
    blocking_entries: &[&str],
) -> Vec<String> {
    let bytes = code.as_bytes();
    let closing = |open: usize| {
        let mut depth = 0;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
        }
        bytes.len()
    };
    let off_runtime: Vec<(usize, usize)> = blocking_entries
        .iter()
        .flat_map(|entry| code.match_indices(entry).map(|(at, m)| at + m.len() - 1))
        .map(|open| (open, closing(open)))
        .collect();
    let mut found = Vec::new();
    for method in methods {
        for (at, m) in code.match_indices(&format!(".{method}(")) {
            let open = at + m.len() - 1;
            let close = closing(open);
            let awaited = code[(close + 1).min(code.len())..]
                .trim_start()
                .starts_with(".await");
            let inside = off_runtime.iter().any(|(o, c)| *o < at && at < *c);
            if !awaited && !inside {
                let line = code[..at].matches('\n').count() + 1;
                found.push(format!("line {line}: .{method}("));
            }
        }
    }
    found
}

/// Where blocking is the point: the engine's writer thread (group commit),
/// the operator CLI (no runtime at all) and the backup archive's reader and
/// writer (run by the CLI, or on a blocking thread by `services::backup`).
const BLOCKING_THREADS: [&str; 3] = ["engine/writer.rs", "admin.rs", "archive.rs"];
const BLOCKING_ENTRIES: [&str; 2] = ["spawn_blocking(", "on_disk("];

#[test]
fn flushing_store_methods_are_found() {
    let methods = flushing_store_methods();
    for known in [
        "flush",
        "append_events",
        "put_session",
        "create_account",
        "create_account_first_admin",
        "consume_invite_token",
        "use_invite_link",
        "set_read_marker",
        "put_meta",
    ] {
        assert!(methods.contains(known), "{known} not in {methods:?}");
    }
    for reader in ["account", "session", "invite_link", "events", "meta"] {
        assert!(!methods.contains(reader), "{reader} reads only");
    }
}

/// The checker itself, on code that breaks the rule once.
#[test]
fn the_blocking_check_catches_a_flush_on_the_runtime() {
    let methods = flushing_store_methods();
    let fixture = r#"
        async fn handler(state: &AppState, session: Session) -> ApiResult<()> {
            on_disk(&state.store, move |store| store.put_session(&session)).await?;
            tokio::task::spawn_blocking(move || store.flush()).await??;
            state.accounts.put_session(session).await?;
            socket.flush().await?;
            state.store.put_session(&session)?;
            Ok(())
        }
    "#;
    let found = calls_on_the_runtime(fixture, &methods, &BLOCKING_ENTRIES);
    assert_eq!(found, ["line 7: .put_session("]);
}

#[test]
fn blocking_store_calls_stay_off_the_runtime() {
    let methods = flushing_store_methods();
    let mut offenders = Vec::new();
    for source in sources() {
        if BLOCKING_THREADS.contains(&source.file.as_str()) {
            continue;
        }
        for call in calls_on_the_runtime(&source.code, &methods, &BLOCKING_ENTRIES) {
            offenders.push(format!("{}: {call}", source.file));
        }
    }
    assert!(
        offenders.is_empty(),
        "store calls that fsync on an async thread (use services::on_disk): {offenders:?}"
    );
}

#[test]
fn the_api_makes_no_store_write_and_owns_no_lock() {
    let methods = flushing_store_methods();
    let mut offenders = Vec::new();
    for source in sources() {
        if source.module.first().map(String::as_str) != Some("api") {
            continue;
        }
        // Every write, even one off the runtime: handlers call a service.
        for call in calls_on_the_runtime(&source.code, &methods, &[]) {
            offenders.push(format!("{}: store write {call}", source.file));
        }
        // The gateway's rate-limit buckets are its own; domain rules are not.
        if source.file == "api/ratelimit.rs" {
            continue;
        }
        // Shared state (locks, atomics, statics) and work that outlives a
        // request belong to a service with a handle.
        for owned in [
            "Mutex",
            "RwLock",
            "Semaphore",
            "Atomic",
            "OnceLock",
            "LazyLock",
            "static mut",
            "thread_local!",
            "tokio::spawn",
            "thread::spawn",
        ] {
            if source.code.contains(owned) {
                offenders.push(format!("{}: {owned}", source.file));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
