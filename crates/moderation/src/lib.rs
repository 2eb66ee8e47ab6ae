//! `spaces-moderation`: moderation at the edge. A toxicity classifier (five
//! labels: insult, threat, self-harm, sexual, hate) runs on each node through
//! ONNX Runtime, which is loaded at run time (ort's `load-dynamic`): a node
//! without the library serves chat and reports moderation as unavailable.
//!
//! The model is `models/toxicity/toxicity.onnx`, compiled in; its README
//! says how it is built, from what, and how well it does.
//!
//! - `features`: the text normaliser and hashed n-grams (mirrors
//!   `models/toxicity/features.py`, tested against its vectors).
//! - `runtime`: finding and loading `libonnxruntime.so` ([`Runtime`]).
//! - `classifier`: one session of the model ([`Classifier`], blocking).
//! - `pool`: [`Moderator`], inference threads behind a bounded queue.
//! - `labels`: [`Label`], [`Scores`], [`Thresholds`].
//!
//! What it does not know: rooms, users, policies, HTTP. The node decides
//! what to score and what a score means for a message.

mod classifier;
mod error;
pub mod features;
mod labels;
mod pool;
mod runtime;

pub use classifier::{Classifier, MODEL};
pub use error::Error;
pub use labels::{LABELS, Label, Scores, Thresholds};
pub use pool::{MAX_BATCH, Moderator, Options};
pub use runtime::{LIBRARY_FILE_NAME, NotFound, Runtime, default_library_path};
