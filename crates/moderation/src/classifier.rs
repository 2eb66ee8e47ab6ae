//! One ONNX Runtime session of the toxicity model: features in, scores out.
//! Blocking and single-threaded (one core per session): callers on an async
//! runtime go through [`crate::Moderator`], which runs sessions on threads
//! of its own.

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::features::{self, FEATURE_VERSION, HASH_DIM};
use crate::labels::{LABELS, Scores};
use crate::{Error, Runtime};

/// The toxicity model, compiled in (about 2 MB; rebuilt by
/// models/toxicity/train.py).
pub const MODEL: &[u8] = include_bytes!("../../../models/toxicity/toxicity.onnx");

/// A session of the toxicity model.
pub struct Classifier {
    session: Session,
    /// Reused between calls: padded ids and weights of a batch.
    ids: Vec<i64>,
    weights: Vec<f32>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").finish_non_exhaustive()
    }
}

impl Classifier {
    /// A session of [`MODEL`] in `runtime`, checked against what this code
    /// feeds it (labels, feature scheme, hash size).
    pub fn new(runtime: &Runtime) -> Result<Classifier, Error> {
        Classifier::from_bytes(runtime, MODEL)
    }

    pub fn from_bytes(runtime: &Runtime, model: &[u8]) -> Result<Classifier, Error> {
        let model_err = |e: ort::Error| Error::Model(e.to_string());
        let session = Session::builder(&runtime.env)
            .map_err(model_err)?
            // One core per session: the node runs as many sessions as it
            // wants cores for moderation, and a tiny graph gains nothing
            // from intra-op threads but their wake-up cost.
            .with_intra_threads(1)
            .map_err(|e| model_err(e.into()))?
            .with_inter_threads(1)
            .map_err(|e| model_err(e.into()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| model_err(e.into()))?
            .commit_from_memory(model)
            .map_err(model_err)?;
        let metadata = session.metadata().map_err(model_err)?;
        let want_labels = LABELS.map(|l| l.name()).join(",");
        let checks = [
            ("labels", want_labels),
            ("feature_version", FEATURE_VERSION.to_string()),
            ("hash_dim", HASH_DIM.to_string()),
        ];
        for (key, want) in checks {
            let got = metadata.custom(key);
            if got.as_deref() != Some(want.as_str()) {
                return Err(Error::Model(format!(
                    "metadata {key} is {got:?}, this code reads {want:?}"
                )));
            }
        }
        drop(metadata);
        Ok(Classifier {
            session,
            ids: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// Scores of one message.
    pub fn score(&mut self, text: &str) -> Result<Scores, Error> {
        Ok(self.score_batch(&[text])?[0])
    }

    /// Scores of several messages in one run of the model (their features
    /// padded to the longest with id 0 at weight 0).
    pub fn score_batch(&mut self, texts: &[&str]) -> Result<Vec<Scores>, Error> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let all: Vec<features::Features> = texts.iter().map(|t| features::features(t)).collect();
        self.score_features(&all)
    }

    /// Scores of messages whose features are already computed.
    pub fn score_features(&mut self, all: &[features::Features]) -> Result<Vec<Scores>, Error> {
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let width = all.iter().map(|f| f.ids.len()).max().unwrap_or(0).max(1);
        self.ids.clear();
        self.weights.clear();
        for f in all {
            self.ids.extend_from_slice(&f.ids);
            self.weights
                .extend(std::iter::repeat_n(f.weight, f.ids.len()));
            let pad = width - f.ids.len();
            self.ids.extend(std::iter::repeat_n(0, pad));
            self.weights.extend(std::iter::repeat_n(0.0, pad));
        }
        let shape = [all.len(), width];
        let ids = TensorRef::from_array_view((shape, &self.ids[..]))?;
        let weights = TensorRef::from_array_view((shape, &self.weights[..]))?;
        let outputs = self
            .session
            .run(ort::inputs!["ids" => ids, "weights" => weights])?;
        let (out_shape, data) = outputs["scores"].try_extract_tensor::<f32>()?;
        if out_shape.len() != 2
            || out_shape[0] != all.len() as i64
            || out_shape[1] != LABELS.len() as i64
        {
            return Err(Error::Inference(format!(
                "scores of shape {out_shape:?} for {} messages",
                all.len()
            )));
        }
        Ok(data
            .chunks_exact(LABELS.len())
            .map(|row| {
                let mut scores = [0.0; 5];
                scores.copy_from_slice(row);
                Scores(scores)
            })
            .collect())
    }
}
