//! [`Moderator`]: the async face of the classifier. Inference runs on a few
//! threads of its own, never on the async runtime's workers; a bounded queue
//! feeds them, and a full queue is an answer ([`Error::Busy`]), not a wait.
//!
//! Each thread owns one [`Classifier`] session and takes jobs from the one
//! queue; when several are waiting it scores them in one batch (up to
//! [`MAX_BATCH`] messages), which is cheaper per message than one run each.
//! The threads end when the last handle is dropped. Nothing is durable: a
//! job lost in a crash was never answered.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::features::{self, Features};
use crate::{Classifier, Error, Runtime, Scores};

/// At most this many messages in one run of the model: past it, batching
/// saves little and a message waits for the others.
pub const MAX_BATCH: usize = 32;

/// How the moderator runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Inference threads (each one session, one core).
    pub threads: usize,
    /// Jobs waiting for a thread before [`Error::Busy`].
    pub queue: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            // One core: at ~20 µs a message that is tens of thousands of
            // messages a second, far above what a node receives.
            threads: 1,
            // A burst of a few seconds of a busy room's traffic.
            queue: 1024,
        }
    }
}

struct Job {
    features: Features,
    reply: oneshot::Sender<Result<Scores, Error>>,
}

/// A cheap-to-clone handle to the inference threads.
#[derive(Clone, Debug)]
pub struct Moderator {
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Moderator {
    /// Starts `options.threads` threads, each with its own session. Fails if
    /// the model does not load (checked on this thread first, so a bad model
    /// is an error here and not a dead worker later).
    pub fn start(runtime: &Runtime, options: &Options) -> Result<Moderator, Error> {
        let (jobs, queue) = sync_channel::<Job>(options.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..options.threads.max(1) {
            let classifier = Classifier::new(runtime)?;
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("moderation-{n}"))
                .spawn(move || work(classifier, &queue))
                .map_err(|e| Error::Model(format!("starting a moderation thread: {e}")))?;
        }
        Ok(Moderator { jobs })
    }

    /// Scores of one message. The features are computed here (a few
    /// microseconds); the model runs on a moderation thread.
    pub async fn score(&self, text: &str) -> Result<Scores, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            features: features::features(text),
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Error::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(Error::Stopped),
        }
        answer.await.map_err(|_| Error::Stopped)?
    }
}

fn work(mut classifier: Classifier, queue: &Mutex<Receiver<Job>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let all: Vec<Features> = batch.iter().map(|j| j.features.clone()).collect();
        match classifier.score_features(&all) {
            Ok(scores) => {
                for (job, scores) in batch.drain(..).zip(scores) {
                    let _ = job.reply.send(Ok(scores));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, n = batch.len(), "moderation inference failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(Error::Inference(e.to_string())));
                }
            }
        }
    }
}
