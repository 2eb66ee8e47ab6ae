//! The real model through the real ONNX Runtime on the repository's
//! evaluation sets (models/toxicity/data/): precision, recall and F1 per
//! label must stay at their floors, and the counts must equal those the
//! Python reference measured (models/toxicity/metrics.json), so a drift
//! between the two normalisers, a broken model or a broken ort binding
//! fails here.
//!
//! Needs ONNX Runtime: `ORT_DYLIB_PATH`, or where
//! scripts/install-onnxruntime.sh puts it beside the target directory.

use std::path::PathBuf;

use spaces_moderation::{Classifier, LABELS, Label, Runtime, Scores, default_library_path};

fn runtime() -> Runtime {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend(default_library_path(&std::env::current_exe().unwrap()));
    Runtime::load(&candidates).unwrap_or_else(|e| {
        panic!(
            "ONNX Runtime not found ({e}): run scripts/install-onnxruntime.sh or set ORT_DYLIB_PATH"
        )
    })
}

struct Line {
    labels: Vec<Label>,
    text: String,
}

fn load(path: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(format!(
        "{}/../../models/toxicity/data/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let labels = if cols[0] == "clean" {
                vec![]
            } else {
                cols[0]
                    .split(',')
                    .map(|n| Label::from_name(n).unwrap())
                    .collect()
            };
            Line {
                labels,
                text: cols[2].to_owned(),
            }
        })
        .collect()
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }
    fn f1(&self) -> f64 {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Counts per label (in LABELS order) and for "any label".
fn evaluate(classifier: &mut Classifier, lines: &[Line]) -> (Vec<Counts>, Counts) {
    let mut per_label: Vec<Counts> = LABELS.iter().map(|_| Counts::default()).collect();
    let mut any = Counts::default();
    // In batches, as the node's moderation threads run it.
    for chunk in lines.chunks(16) {
        let texts: Vec<&str> = chunk.iter().map(|l| l.text.as_str()).collect();
        let scores: Vec<Scores> = classifier.score_batch(&texts).unwrap();
        for (line, scores) in chunk.iter().zip(scores) {
            let flagged = scores.over(&Default::default());
            for (i, label) in LABELS.iter().enumerate() {
                per_label[i].add(line.labels.contains(label), flagged.contains(label));
            }
            any.add(!line.labels.is_empty(), !flagged.is_empty());
        }
    }
    (per_label, any)
}

fn python_counts(set: Option<&str>, key: &str) -> Counts {
    let metrics: serde_json::Value =
        serde_json::from_str(include_str!("../../../models/toxicity/metrics.json")).unwrap();
    let m = match set {
        Some(s) => &metrics[s][key],
        None => &metrics[key],
    };
    Counts {
        tp: m["tp"].as_u64().unwrap(),
        fp: m["fp"].as_u64().unwrap(),
        fn_: m["fn"].as_u64().unwrap(),
    }
}

#[test]
fn evaluation_sets_meet_their_floors_and_match_the_python_reference() {
    let runtime = runtime();
    let mut classifier = Classifier::new(&runtime).unwrap();

    // The main evaluation set (403 lines; partly seen while the training
    // templates were written, see models/toxicity/README.md).
    let (per_label, any) = evaluate(&mut classifier, &load("eval.tsv"));
    let floors = [0.90, 0.90, 0.95, 0.93, 0.95];
    for ((label, counts), floor) in LABELS.iter().zip(&per_label).zip(floors) {
        assert!(
            counts.f1() >= floor,
            "{label}: F1 {:.3} below {floor} ({counts:?})",
            counts.f1()
        );
        assert_eq!(
            *counts,
            python_counts(None, label.name()),
            "{label} differs from Python"
        );
    }
    assert!(any.f1() >= 0.94, "any label: F1 {:.3}", any.f1());
    assert_eq!(any, python_counts(None, "any_toxic"));

    // The blind set (108 lines, written after training was frozen).
    let (per_label, any) = evaluate(&mut classifier, &load("eval_blind.tsv"));
    assert!(any.f1() >= 0.90, "blind, any label: F1 {:.3}", any.f1());
    for (label, counts) in LABELS.iter().zip(&per_label) {
        assert!(counts.f1() >= 0.80, "blind {label}: F1 {:.3}", counts.f1());
        assert_eq!(*counts, python_counts(Some("blind"), label.name()));
    }
}

#[test]
fn idioms_pass_and_disguised_abuse_does_not() {
    let runtime = runtime();
    let mut classifier = Classifier::new(&runtime).unwrap();
    let thresholds = Default::default();
    for text in [
        "kill the process and restart it",
        "I could murder a pizza",
        "this slaps",
        "greetings from Scunthorpe",
    ] {
        let flagged = classifier.score(text).unwrap().over(&thresholds);
        assert!(flagged.is_empty(), "{text:?} flagged {flagged:?}");
    }
    for (text, label) in [
        ("f u c k you, idiot", Label::Insult),
        ("you're an 1d1ot", Label::Insult),
        ("i know where you live", Label::Threat),
        ("k y s", Label::SelfHarm),
    ] {
        let flagged = classifier.score(text).unwrap().over(&thresholds);
        assert!(flagged.contains(&label), "{text:?} gave {flagged:?}");
    }
}

#[tokio::test]
async fn moderator_scores_on_its_own_threads_in_batches() {
    let runtime = runtime();
    let moderator = spaces_moderation::Moderator::start(&runtime, &Default::default()).unwrap();
    let mut handles = Vec::new();
    for i in 0..64 {
        let moderator = moderator.clone();
        handles.push(tokio::spawn(async move {
            let text = if i % 2 == 0 {
                "go kill yourself"
            } else {
                "see you at lunch"
            };
            (i, moderator.score(text).await.unwrap())
        }));
    }
    for handle in handles {
        let (i, scores) = handle.await.unwrap();
        assert_eq!(
            i % 2 == 0,
            scores.get(Label::SelfHarm) >= 0.5,
            "message {i}"
        );
    }

    // Once loaded, the process's runtime is the answer whatever the paths.
    let missing = PathBuf::from("/nonexistent/libonnxruntime.so");
    let again = Runtime::load(std::slice::from_ref(&missing)).unwrap();
    assert_eq!(again.path(), runtime.path());
}
