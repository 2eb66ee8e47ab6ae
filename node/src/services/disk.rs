//! Store writes off the async runtime.
//!
//! Every writing method of [`Store`] flushes (an fsync) before it returns,
//! which takes from tens of microseconds to tens of milliseconds: on a
//! tokio worker that stalls every task queued behind it. [`on_disk`] runs
//! the write on tokio's blocking pool instead (bounded by the runtime's
//! `max_blocking_threads`, 512 by default) and awaits it; services use it
//! for blocking reads as well. The engine's
//! events take another road: the writer thread's group commit.

use spaces_store::Store;

/// Runs `work` on a clone of `store` on the blocking pool and returns its
/// result. A panic in `work` is resumed here, as if it had run inline.
pub async fn on_disk<T, F>(store: &Store, work: F) -> Result<T, spaces_store::Error>
where
    F: FnOnce(&Store) -> Result<T, spaces_store::Error> + Send + 'static,
    T: Send + 'static,
{
    let store = store.clone();
    match tokio::task::spawn_blocking(move || work(&store)).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Only when the runtime shuts down before the task starts, and then
        // nobody is left to await this future.
        Err(error) => panic!("store work cancelled by runtime shutdown: {error}"),
    }
}
