//! Web Push: the node's seam to `spaces-push`.
//!
//! Browsers register a `PushSubscription` ([`Push::subscribe`], at most
//! [`PushOptions::max_per_user`] per user); the node's VAPID key lives in
//! the data directory (`vapid.key`, made on first start). The notifier
//! ([`crate::services::notify`]) queues a delivery for every new
//! notification of a user with a subscription, due [`PushOptions::delay`]
//! later, in the same store batch as the notification: a crash loses
//! neither. One task ([`run_pusher`]) takes due deliveries off the queue
//! and sends each only if no client of the user saw the event meanwhile
//! (the notification is still unread and the user's read marker in the
//! room is below it); a payload is encrypted for each subscription and
//! sent to its endpoint, and only there. Answers: 2xx done; 404 or 410
//! the subscription is gone and removed; 429, 5xx or no answer retried
//! with back-off ([`retry_after`]), at most [`MAX_ATTEMPTS`] times; any
//! other answer dropped. The HTTP client follows no redirect.
//!
//! After a crash the queue is what the store holds: deliveries being sent
//! are sent again (a push service may show a notification twice; it loses
//! none).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use spaces_push::{Subscription, SubscriptionError, Urgency, VapidKey};
use spaces_store::{NotificationAt, PushDelivery, PushKey, PushSubscription, Store};
use tokio::sync::watch;

use crate::engine::now_ms;
use crate::services::on_disk;

/// Sends before a delivery is given up: with [`retry_after`]'s back-off,
/// about an hour of trying.
pub const MAX_ATTEMPTS: u32 = 8;
/// Deliveries taken off the queue at once.
const BATCH: usize = 32;
/// How long one request to a push service may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Renders a notification as the payload a service worker receives (the
/// API's JSON: built in `api/render.rs`, handed in by the wiring).
pub type Payload = fn(&NotificationAt) -> Vec<u8>;

/// Web Push settings (`[push]` in the config).
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Subscriptions one user may register.
    pub max_per_user: usize,
    /// How long a notification waits for a client to see it before it is pushed.
    pub delay: Duration,
    /// How long the push service keeps an undelivered message (`TTL`).
    pub ttl: Duration,
    /// The VAPID `sub` claim: how a push service reaches the operator.
    pub contact: String,
    /// Lets `http://` endpoints on a loopback address through (tests).
    pub allow_loopback_http: bool,
}

/// Why a subscription request failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error("at most {0} push subscriptions per user")]
    TooMany(usize),
    #[error("unknown push subscription")]
    Unknown,
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

/// The push service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Push {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    key: VapidKey,
    options: PushOptions,
    /// Users with at least one subscription: the notifier queues pushes
    /// for these only.
    subscribers: Mutex<HashSet<String>>,
    /// Held across a subscription's count and insert.
    adding: tokio::sync::Mutex<()>,
    /// Wakes the pusher when something is queued.
    wake: tokio::sync::Notify,
}

/// The id of a subscription: BLAKE3 of its endpoint, so a browser that
/// registers again replaces its old record.
fn subscription_id(endpoint: &str) -> [u8; 32] {
    *blake3::hash(endpoint.as_bytes()).as_bytes()
}

impl Push {
    /// Reads the VAPID key from `key_path`, making one if there is none.
    pub fn open(store: Store, key_path: &Path, options: PushOptions) -> anyhow::Result<Push> {
        let key = match std::fs::read(key_path) {
            Ok(bytes) => VapidKey::from_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = VapidKey::generate();
                write_secret(key_path, &key.to_bytes())?;
                key
            }
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", key_path.display())),
        };
        let subscribers = store.push_subscribers()?.into_iter().collect();
        Ok(Push {
            inner: Arc::new(Inner {
                store,
                key,
                options,
                subscribers: Mutex::new(subscribers),
                adding: tokio::sync::Mutex::new(()),
                wake: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The node's VAPID public key, base64url: `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        self.inner.key.public_key()
    }

    /// How long a notification waits before it is pushed.
    pub fn delay(&self) -> Duration {
        self.inner.options.delay
    }

    /// Whether `username` has a subscription.
    pub fn has_subscriber(&self, username: &str) -> bool {
        self.subscribers().contains(username)
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Something was queued: the pusher looks again.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Registers a browser's subscription for `username` (again: replaced).
    pub async fn subscribe(
        &self,
        username: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<(), PushError> {
        let checked = Subscription::parse(
            endpoint,
            p256dh,
            auth,
            self.inner.options.allow_loopback_http,
        )?;
        let id = subscription_id(endpoint);
        let record = PushSubscription {
            endpoint: endpoint.to_owned(),
            p256dh: checked.p256dh,
            auth: checked.auth,
            created_ms: now_ms(),
        };
        let _adding = self.inner.adding.lock().await;
        let (username, max) = (username.to_owned(), self.inner.options.max_per_user);
        {
            let username = username.clone();
            on_disk(&self.inner.store, move |store| {
                let existing = store.push_subscriptions(&username)?;
                if !existing.iter().any(|(other, _)| *other == id) && existing.len() >= max {
                    return Ok(Err(PushError::TooMany(max)));
                }
                store.put_push_subscription(&username, &id, &record)?;
                Ok(Ok(()))
            })
            .await??;
        }
        self.subscribers().insert(username);
        Ok(())
    }

    /// Removes `username`'s subscription of `endpoint`.
    pub async fn unsubscribe(&self, username: &str, endpoint: &str) -> Result<(), PushError> {
        let id = subscription_id(endpoint);
        let _adding = self.inner.adding.lock().await;
        let name = username.to_owned();
        let (removed, left) = on_disk(&self.inner.store, move |store| {
            let removed = store.remove_push_subscription(&name, &id)?;
            Ok((removed, store.push_subscriptions(&name)?.len()))
        })
        .await?;
        if left == 0 {
            self.subscribers().remove(username);
        }
        match removed {
            true => Ok(()),
            false => Err(PushError::Unknown),
        }
    }

    /// `username`'s subscriptions' endpoints.
    pub async fn subscriptions(&self, username: &str) -> Result<Vec<String>, PushError> {
        let name = username.to_owned();
        let subs = on_disk(&self.inner.store, move |store| {
            store.push_subscriptions(&name)
        })
        .await?;
        Ok(subs.into_iter().map(|(_, s)| s.endpoint).collect())
    }

    /// Starts the pusher, which stops when `stopped` turns true.
    pub fn start(
        &self,
        payload: Payload,
        stopped: watch::Receiver<bool>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        // reqwest's rustls needs a provider named; idempotent, so a binary
        // or test that named one already keeps it.
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            .build()?;
        Ok(tokio::spawn(run_pusher(
            self.clone(),
            client,
            payload,
            stopped,
        )))
    }
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// When attempt `attempts` (1 after the first failure) is tried again:
/// 30 s, doubling, at most an hour apart.
pub fn retry_after(attempts: u32) -> Duration {
    Duration::from_secs((30u64 << attempts.min(7).saturating_sub(1)).min(3600))
}

/// What a push service's answer means for the delivery.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Gone,
    Retry,
}

fn outcome(status: Option<u16>) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Done,
        Some(404 | 410) => Outcome::Gone,
        Some(429 | 500..=599) | None => Outcome::Retry,
        // Another 4xx (a bad request, a payload too large, our VAPID key
        // refused): sending the same again would get the same answer.
        Some(_) => Outcome::Done,
    }
}

/// The pusher: see the module docs.
pub async fn run_pusher(
    push: Push,
    client: reqwest::Client,
    payload: Payload,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let now = now_ms();
        let store = push.inner.store.clone();
        let found = tokio::task::spawn_blocking(move || store.due_pushes(now, BATCH)).await;
        let (due, next) = match found {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::error!(%error, "reading the push queue failed; pushes stopped");
                return;
            }
            Err(_) => return,
        };
        for (key, delivery) in due {
            if let Err(error) = deliver(&push, &client, payload, key, delivery).await {
                tracing::error!(%error, "a push delivery failed to update the store; pushes stopped");
                return;
            }
        }
        let wait = match next {
            Some(due_ms) => Duration::from_millis(due_ms.saturating_sub(now_ms())),
            // Nothing queued: until woken (or a minute, in case).
            None => Duration::from_secs(60),
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = stopped.changed() => {}
            _ = push.inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends one delivery to the subscriptions it names (or all of its user's),
/// then takes it off the queue or queues what failed again.
async fn deliver(
    push: &Push,
    client: &reqwest::Client,
    payload: Payload,
    key: PushKey,
    delivery: PushDelivery,
) -> Result<(), spaces_store::Error> {
    let store = push.inner.store.clone();
    let looked = {
        let delivery = delivery.clone();
        on_disk(&store, move |store| {
            let Some(at) = store.notification(&delivery.username, delivery.seq)? else {
                return Ok(None);
            };
            // Seen on a client meanwhile: read, or the room read past it.
            let marker = store.read_marker(&delivery.username, &at.notification.room_id)?;
            if !at.unread || marker >= delivery.seq {
                return Ok(None);
            }
            let subscriptions: Vec<_> = store
                .push_subscriptions(&delivery.username)?
                .into_iter()
                .filter(|(id, _)| {
                    delivery.subscriptions.is_empty() || delivery.subscriptions.contains(id)
                })
                .collect();
            Ok(Some((at, subscriptions)))
        })
        .await?
    };
    let Some((at, subscriptions)) = looked else {
        return on_disk(&store, move |s| s.finish_push(key, None)).await;
    };
    let body = payload(&at);
    let mut failed = Vec::new();
    for (id, subscription) in subscriptions {
        let sent = send(push, client, &subscription, &body).await;
        match outcome(sent) {
            Outcome::Done => {}
            Outcome::Gone => {
                tracing::info!("a push subscription is gone; removed");
                let _ = push
                    .unsubscribe(&delivery.username, &subscription.endpoint)
                    .await;
            }
            Outcome::Retry => failed.push(id),
        }
    }
    let retry = match failed.is_empty() || delivery.attempts + 1 >= MAX_ATTEMPTS {
        true => None,
        false => {
            let again = PushDelivery {
                subscriptions: failed,
                attempts: delivery.attempts + 1,
                ..delivery
            };
            let due = now_ms() + retry_after(again.attempts).as_millis() as u64;
            Some((due, again))
        }
    };
    on_disk(&store, move |s| {
        s.finish_push(key, retry.as_ref().map(|(due, d)| (*due, d)))
    })
    .await
}

/// Sends `body` to one subscription: the status, or `None` without an
/// answer (or when the request could not be built).
async fn send(
    push: &Push,
    client: &reqwest::Client,
    record: &PushSubscription,
    body: &[u8],
) -> Option<u16> {
    let options = &push.inner.options;
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    // Checked again: the rules may have changed since it was stored.
    let subscription = Subscription::parse(
        &record.endpoint,
        &b64(&record.p256dh),
        &b64(&record.auth),
        options.allow_loopback_http,
    )
    .ok()?;
    let request = match spaces_push::build(
        &subscription,
        body,
        options.ttl,
        Urgency::High,
        &push.inner.key,
        &options.contact,
        now_ms() / 1000,
    ) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(%error, "a push request could not be built");
            return Some(400);
        }
    };
    let (parts, body) = request.into_parts();
    let response = client
        .post(parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => Some(response.status().as_u16()),
        Err(error) => {
            tracing::info!(%error, "a push service did not answer");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_back_off() {
        assert_eq!(outcome(Some(201)), Outcome::Done);
        assert_eq!(outcome(Some(410)), Outcome::Gone);
        assert_eq!(outcome(Some(404)), Outcome::Gone);
        assert_eq!(outcome(Some(429)), Outcome::Retry);
        assert_eq!(outcome(Some(503)), Outcome::Retry);
        assert_eq!(outcome(None), Outcome::Retry);
        assert_eq!(outcome(Some(413)), Outcome::Done);
        assert_eq!(retry_after(1), Duration::from_secs(30));
        assert_eq!(retry_after(2), Duration::from_secs(60));
        assert_eq!(retry_after(7), Duration::from_secs(1920));
        assert_eq!(retry_after(20), Duration::from_secs(1920));
    }
}
