//! Password hashing off the async threads, on a fixed pool of OS threads.
//!
//! argon2id needs 19 MiB and ~50 ms per hash. Run on tokio's blocking pool,
//! a burst of sign-ups spreads over many short-lived threads, and the
//! allocator keeps a 19 MiB block per thread arena: hundreds of MiB of
//! resident memory after one busy minute. A pool of one thread per core
//! bounds both the CPU a log-in flood can take and the memory it leaves.

use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the pool; cheap to clone. Threads stop when every handle is dropped.
#[derive(Clone, Debug)]
pub struct Hasher {
    jobs: mpsc::SyncSender<Job>,
}

/// Jobs waiting for a thread. Beyond this, callers wait: a bounded queue.
const QUEUE: usize = 256;

impl Hasher {
    pub fn new(threads: usize) -> Hasher {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("spaces-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a hashing thread");
            }
        }
        Hasher { jobs }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let jobs = self.jobs.clone();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        // `send` blocks only while the queue is full: do that off the runtime.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .ok()?
            .ok()?;
        rx.await.ok()
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: String) -> Option<Result<String, spaces_auth::Error>> {
        self.run(move || spaces_auth::hash_password(&password, &mut rand::rng()))
            .await
    }

    /// Whether `password` matches `phc`; false for an unparsable hash. With
    /// no hash (an unknown user) it checks against a hash of a password
    /// nobody knows, so the answer takes as long either way and response
    /// time does not tell which usernames exist.
    pub async fn verify(&self, phc: Option<String>, password: String) -> bool {
        self.run(move || {
            let known = phc.is_some();
            let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
            spaces_auth::verify_password(&phc, &password).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false)
    }
}

/// argon2id of a random password, with the real parameters, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret: [u8; 16] = rand::random();
        let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        spaces_auth::hash_password(&password, &mut rand::rng()).unwrap_or_default()
    })
}
