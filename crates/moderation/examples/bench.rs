//! µs per message of the toxicity model on one core: features alone, one
//! message per run, and batches of 32, over the evaluation set's lines.
//!
//!     scripts/install-onnxruntime.sh
//!     cargo run --release -p spaces-moderation --example bench

use std::path::PathBuf;
use std::time::Instant;

use spaces_moderation::{Classifier, Runtime, default_library_path, features};

fn main() {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend(default_library_path(&std::env::current_exe().unwrap()));
    let runtime = Runtime::load(&candidates).unwrap_or_else(|e| panic!("ONNX Runtime: {e}"));
    let mut classifier = Classifier::new(&runtime).unwrap();
    let eval = include_str!("../../../models/toxicity/data/eval.tsv");
    let lines: Vec<&str> = eval
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    let rounds = 20;
    let n = (lines.len() * rounds) as f64;

    let start = Instant::now();
    let mut total = 0usize;
    for _ in 0..rounds {
        for line in &lines {
            total += features::features(line).ids.len();
        }
    }
    let features_us = start.elapsed().as_secs_f64() * 1e6 / n;

    // Warm-up, then one message per run.
    for line in &lines {
        classifier.score(line).unwrap();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        for line in &lines {
            classifier.score(line).unwrap();
        }
    }
    let single_us = start.elapsed().as_secs_f64() * 1e6 / n;

    let start = Instant::now();
    for _ in 0..rounds {
        for chunk in lines.chunks(32) {
            classifier.score_batch(chunk).unwrap();
        }
    }
    let batch_us = start.elapsed().as_secs_f64() * 1e6 / n;

    println!(
        "{} lines x {rounds}: features {features_us:.1} µs/message ({:.0} ids on average), \
         one per run {single_us:.1} µs/message, batches of 32 {batch_us:.1} µs/message",
        lines.len(),
        total as f64 / n
    );
}
