//! What reading a whole store costs in resident memory: opens the store at
//! `DIR` (a node's `<data_dir>/store`, node stopped) with a page cache of
//! `CACHE_BYTES` (default: the node's 32 MiB), reads every event once, and
//! prints the process's RSS after opening, after the read, after a second
//! read, and after closing. A bounded cache keeps the second figure near
//! the cache size whatever the store's size (vendor/sled/PATCHES.md, 3–4).
//!
//! `cargo run --release -p spaces-store --example scan_rss -- DIR [CACHE_BYTES]`
//!
//! Freed memory that glibc keeps for reuse also counts in RSS; run with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4096` to see live memory only.

use std::path::Path;

use spaces_store::{Options, Store};

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: scan_rss DIR [CACHE_BYTES]")?;
    let cache_capacity_bytes = match args.next() {
        Some(bytes) => bytes.parse()?,
        None => Options::default().cache_capacity_bytes,
    };
    let store = Store::open(
        Path::new(&dir),
        &Options {
            cache_capacity_bytes,
        },
    )?;
    println!("opened: {} MiB", rss_mib());
    let (mut n, mut bytes) = (0usize, 0usize);
    for event in store.events() {
        n += 1;
        bytes += event?.bytes.len();
    }
    println!("read {n} events ({} MiB): {} MiB", bytes >> 20, rss_mib());
    for event in store.events() {
        event?;
    }
    println!("read again: {} MiB", rss_mib());
    drop(store);
    println!("closed: {} MiB", rss_mib());
    Ok(())
}
