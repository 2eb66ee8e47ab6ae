//! Notifications: the node's seam to `spaces-notify`.
//!
//! One task ([`run_notifier`]) decides who is notified of what. It
//! subscribes to the engine's live stream, catches up from the store after
//! the cursor the `notifications` tree holds, then follows the stream: this
//! node's events and received ones alike, after they are durable. For each
//! batch it locks each room once and, for every event resolution accepted,
//! asks the rules ([`spaces_notify::reason`]) about each local user the
//! event could concern: the joined local members for a message, the target
//! of an invite. A user is asked only if the room API would show them the
//! event: [`RoomView::readable`]'s floor and [`RoomView::shows`] (the
//! engine's readability rules, not a copy), or, for an invite, their
//! membership still being that invite. A redaction, or resolution turning
//! against an earlier event (a flip to refused), removes the notifications
//! of the event it hides.
//!
//! The new notifications, the removals and the cursor past the batch are
//! one atomic write ([`Store::write_notifications`]), so a crash replays
//! the batch or none of it: nothing notifies twice, nothing is skipped. A
//! lagging subscription is the same as a restart: catch up from the store.
//! Each user keeps at most [`MAX_PER_USER`] notifications; the oldest go.
//!
//! A new notification of a user with a Web Push subscription also queues
//! a delivery (`services::push`) in that same write.
//!
//! The API reads and marks notifications through [`Notify`]; every new one
//! is also published on a bounded broadcast channel that WebSockets follow
//! (the `notification` frame). Settings are cached in memory per user and
//! written through.
//!
//! What is decided when: readability and membership are those of the room
//! when the batch is processed (a moment after the event, or at catch-up),
//! not when the event was sent; a user who left before the event is never
//! notified, one who left a moment after may not be either.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use spaces_notify::{Level, Recipient, RoomSetting, Settings, SettingsError};
use spaces_protocol::content::{Content, Membership};
use spaces_protocol::{Event, EventId, RoomId, UserId};
use spaces_store::{
    Notification, NotificationAt, NotifySettings, PushDelivery, RoomNotifySetting, Store,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::engine::{Engine, now_ms};
use crate::services::moderation::Moderation;
use crate::services::on_disk;
use crate::services::push::Push;

/// Notifications kept per user: a person reads the newest few dozen; the
/// bound keeps a flood in a busy room from growing the tree without end.
pub const MAX_PER_USER: usize = 1_000;
/// Characters of a message kept in its notification: a line of a list or
/// a push.
pub const EXCERPT_CHARS: usize = 140;
/// New notifications waiting for slow WebSockets: a socket further behind
/// skips some frames (the list and the unread count stay right).
const FRAMES_CAPACITY: usize = 1_024;
/// Stream events handled in one batch (one round of room locks and one
/// store write).
const BATCH_EVENTS: usize = 512;

/// Why a notification request failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("unknown notification")]
    Unknown,
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

/// A new notification for one user, as WebSockets receive it.
#[derive(Debug)]
pub struct Delivered {
    pub user: UserId,
    pub at: NotificationAt,
}

/// The notification service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Notify {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    /// Web Push, when on: a new notification of a user with a
    /// subscription is queued for it in the same write.
    push: Option<Push>,
    /// This node's moderation: an event it hides notifies no one.
    moderation: Moderation,
    /// Each local user's settings once read: written through by
    /// [`Notify::set_settings`], read by the notifier for every event.
    settings: Mutex<HashMap<String, Arc<Settings>>>,
    frames: broadcast::Sender<Arc<Delivered>>,
}

impl Notify {
    pub fn new(engine: Engine, push: Option<Push>, moderation: Moderation) -> Notify {
        let (frames, _) = broadcast::channel(FRAMES_CAPACITY);
        Notify {
            inner: Arc::new(Inner {
                engine,
                push,
                moderation,
                settings: Mutex::default(),
                frames,
            }),
        }
    }

    fn store(&self) -> &Store {
        self.inner.engine.store()
    }

    /// Starts the notifier, which stops when `stopped` turns true.
    pub fn start(&self, stopped: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run_notifier(self.clone(), stopped))
    }

    /// New notifications as they are written, for WebSockets.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Delivered>> {
        self.inner.frames.subscribe()
    }

    /// A page of `user`'s notifications, unread first, newest first within
    /// each, after `after` (the previous page's last (unread, id)).
    pub async fn list(
        &self,
        user: &UserId,
        after: Option<(bool, u64)>,
        limit: usize,
    ) -> Result<Vec<NotificationAt>, NotifyError> {
        let username = user.localpart().to_owned();
        let page = on_disk(self.store(), move |store| {
            store.notifications_page(&username, after, limit)
        })
        .await?;
        Ok(page)
    }

    /// How many of `user`'s notifications are unread.
    pub async fn unread(&self, user: &UserId) -> Result<usize, NotifyError> {
        let username = user.localpart().to_owned();
        Ok(on_disk(self.store(), move |store| {
            store.unread_notifications(&username)
        })
        .await?)
    }

    /// Marks one notification read; `Unknown` if `user` has none with `id`.
    pub async fn mark_read(&self, user: &UserId, id: u64) -> Result<(), NotifyError> {
        let username = user.localpart().to_owned();
        match on_disk(self.store(), move |s| {
            s.mark_notification_read(&username, id)
        })
        .await?
        {
            true => Ok(()),
            false => Err(NotifyError::Unknown),
        }
    }

    /// Marks all of `user`'s notifications read; how many were unread.
    pub async fn mark_all_read(&self, user: &UserId) -> Result<usize, NotifyError> {
        let username = user.localpart().to_owned();
        Ok(on_disk(self.store(), move |s| {
            s.mark_all_notifications_read(&username)
        })
        .await?)
    }

    /// `user`'s settings (the defaults if they never set any).
    pub async fn settings(&self, user: &UserId) -> Result<Arc<Settings>, NotifyError> {
        let username = user.localpart().to_owned();
        if let Some(found) = self.cached(&username) {
            return Ok(found);
        }
        let loaded = {
            let username = username.clone();
            on_disk(self.store(), move |store| load_settings(store, &username)).await?
        };
        Ok(self.cache_loaded(&username, loaded))
    }

    /// Replaces `user`'s settings, refused past the limits.
    pub async fn set_settings(&self, user: &UserId, settings: Settings) -> Result<(), NotifyError> {
        settings.check()?;
        let username = user.localpart().to_owned();
        let record = to_record(&settings);
        {
            let username = username.clone();
            on_disk(self.store(), move |s| {
                s.put_notify_settings(&username, &record)
            })
            .await?;
        }
        let mut cache = self
            .inner
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(username, Arc::new(settings));
        Ok(())
    }

    fn cached(&self, username: &str) -> Option<Arc<Settings>> {
        let cache = self
            .inner
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.get(username).cloned()
    }

    /// Keeps settings read from the store, unless a write came first
    /// (its value is newer than what this read).
    fn cache_loaded(&self, username: &str, loaded: Arc<Settings>) -> Arc<Settings> {
        let mut cache = self
            .inner
            .settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.entry(username.to_owned()).or_insert(loaded).clone()
    }

    /// Settings of `username` for the notifier (on the blocking pool).
    fn settings_blocking(&self, username: &str) -> Result<Arc<Settings>, spaces_store::Error> {
        if let Some(found) = self.cached(username) {
            return Ok(found);
        }
        let loaded = load_settings(self.store(), username)?;
        Ok(self.cache_loaded(username, loaded))
    }
}

fn load_settings(store: &Store, username: &str) -> Result<Arc<Settings>, spaces_store::Error> {
    Ok(Arc::new(
        store
            .notify_settings(username)?
            .map(from_record)
            .unwrap_or_default(),
    ))
}

fn to_record(settings: &Settings) -> NotifySettings {
    NotifySettings {
        level: settings.level.as_str().to_owned(),
        keywords: settings.keywords.clone(),
        rooms: settings
            .rooms
            .iter()
            .map(|(room_id, room)| RoomNotifySetting {
                room_id: room_id.0,
                level: room.level.map(|level| level.as_str().to_owned()),
                mute_until_ms: room.mute_until_ms,
            })
            .collect(),
    }
}

fn from_record(record: NotifySettings) -> Settings {
    Settings {
        level: Level::parse(&record.level).unwrap_or_default(),
        keywords: record.keywords,
        rooms: record
            .rooms
            .into_iter()
            .map(|room| {
                let setting = RoomSetting {
                    level: room.level.as_deref().and_then(Level::parse),
                    mute_until_ms: room.mute_until_ms,
                };
                (RoomId(room.room_id), setting)
            })
            .collect(),
    }
}

/// An event to handle: from the live stream, or read back from the store.
struct Item {
    seq: u64,
    room_id: RoomId,
    event: Event,
    /// Earlier events resolution now refuses.
    refused: Vec<EventId>,
}

/// The earlier events an arrival made resolution refuse.
fn refused(flips: &[(EventId, bool)]) -> Vec<EventId> {
    flips
        .iter()
        .filter(|(_, accepted)| !accepted)
        .map(|(id, _)| *id)
        .collect()
}

/// What one batch decided.
#[derive(Default)]
struct Decided {
    added: Vec<(UserId, u64, Notification)>,
    /// (user, seq of the event) whose notification goes.
    removed: Vec<(String, u64)>,
}

/// The notifier: see the module docs. Stops when `stopped` turns true or
/// the stream closes; a store failure is logged and stops it, never the
/// node (the next start resumes from the cursor).
pub async fn run_notifier(notify: Notify, mut stopped: watch::Receiver<bool>) {
    let engine = notify.inner.engine.clone();
    // Subscribe before catching up, so nothing falls between the two.
    let mut stream = engine.subscribe();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut done = match engine.store().notify_cursor() {
        // A cursor past the log (a store restored from an older copy) would
        // skip the events that get those seqs again.
        Ok(cursor) => cursor.min(engine.store().last_seq()),
        Err(error) => {
            tracing::error!(%error, "reading the notifier's cursor failed; notifications stopped");
            return;
        }
    };
    if let Err(error) = catch_up(&notify, &mut counts, &mut done).await {
        tracing::error!(%error, "notifications stopped");
        return;
    }
    loop {
        tokio::select! {
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    break;
                }
            }
            received = stream.recv() => {
                let result = match received {
                    Ok(first) => {
                        let mut batch = vec![first];
                        while batch.len() < BATCH_EVENTS {
                            match stream.try_recv() {
                                Ok(item) => batch.push(item),
                                Err(_) => break,
                            }
                        }
                        let last = batch.iter().map(|item| item.seq).max().unwrap_or(0);
                        let items = batch
                            .iter()
                            .filter(|item| item.seq > done)
                            .map(|item| Item {
                                seq: item.seq,
                                room_id: item.room_id,
                                event: item.event.clone(),
                                refused: refused(&item.flips),
                            })
                            .collect();
                        apply(&notify, &mut counts, items, last, &mut done).await
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "notifier lagged; catching up from the store");
                        catch_up(&notify, &mut counts, &mut done).await
                    }
                    Err(RecvError::Closed) => break,
                };
                if let Err(error) = result {
                    tracing::error!(%error, "notifications stopped");
                    return;
                }
            }
        }
    }
}

/// Handles the store's stream after `done` up to its end, page by page.
async fn catch_up(
    notify: &Notify,
    counts: &mut HashMap<String, usize>,
    done: &mut u64,
) -> anyhow::Result<()> {
    loop {
        let store = notify.store().clone();
        let after = *done;
        let (items, last) =
            tokio::task::spawn_blocking(move || read_stream(&store, after)).await??;
        if last == after {
            return Ok(());
        }
        apply(notify, counts, items, last, done).await?;
    }
}

/// A page of the store's stream after `after`, as the notifier decides it.
fn read_stream(store: &Store, after: u64) -> Result<(Vec<Item>, u64), spaces_store::Error> {
    let (items, last) = crate::engine::stream_page(store, after, BATCH_EVENTS)?;
    let items = items
        .into_iter()
        .map(|item| Item {
            seq: item.seq,
            room_id: item.room_id,
            event: item.event,
            refused: refused(&item.flips),
        })
        .collect();
    Ok((items, last))
}

/// Decides a batch, writes it with the cursor `last`, trims users past
/// [`MAX_PER_USER`] and publishes the new notifications.
async fn apply(
    notify: &Notify,
    counts: &mut HashMap<String, usize>,
    items: Vec<Item>,
    last: u64,
    done: &mut u64,
) -> anyhow::Result<()> {
    if last <= *done {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let now = now_ms();
    let mut by_room: Vec<(RoomId, Vec<Item>)> = Vec::new();
    for item in items {
        match by_room
            .iter_mut()
            .find(|(room_id, _)| *room_id == item.room_id)
        {
            Some((_, items)) => items.push(item),
            None => by_room.push((item.room_id, vec![item])),
        }
    }
    // Settings are read on the blocking pool before the room locks: the
    // local members of every room of the batch.
    let mut candidates: HashSet<String> = HashSet::new();
    let engine = &notify.inner.engine;
    for (room_id, _) in &by_room {
        if let Ok(slot) = engine.room(room_id) {
            let view = slot.lock().await;
            for (user, _) in view.room.state().members() {
                if engine.is_local(&user) {
                    candidates.insert(user.localpart().to_owned());
                }
            }
        }
    }
    let settings: HashMap<String, Arc<Settings>> = {
        let notify = notify.clone();
        tokio::task::spawn_blocking(move || {
            candidates
                .into_iter()
                .map(|username| {
                    let settings = notify.settings_blocking(&username)?;
                    Ok((username, settings))
                })
                .collect::<Result<_, spaces_store::Error>>()
        })
        .await??
    };
    let mut decided = Decided::default();
    for (room_id, items) in &by_room {
        let moderation = &notify.inner.moderation;
        decide_room(
            engine,
            room_id,
            items,
            &settings,
            now,
            moderation,
            &mut decided,
        )
        .await;
    }
    // Keep each user's list bounded: count once, then track.
    let store = notify.store().clone();
    let mut added_per_user: HashMap<String, usize> = HashMap::new();
    for (user, _, _) in &decided.added {
        *added_per_user
            .entry(user.localpart().to_owned())
            .or_default() += 1;
    }
    let removed_count = decided.removed.len();
    let added: Vec<(String, u64, Notification)> = decided
        .added
        .iter()
        .map(|(user, seq, n)| (user.localpart().to_owned(), *seq, n.clone()))
        .collect();
    let mut removed = decided.removed;
    let (trims, known) = {
        let store = store.clone();
        let current: Vec<(String, usize, Option<usize>)> = added_per_user
            .iter()
            .map(|(u, n)| (u.clone(), *n, counts.get(u).copied()))
            .collect();
        tokio::task::spawn_blocking(move || -> Result<_, spaces_store::Error> {
            let mut trims = Vec::new();
            let mut known = Vec::new();
            for (username, n_new, count) in current {
                let count = match count {
                    Some(count) => count,
                    None => store.notification_seqs(&username, false)?.len(),
                };
                let total = count + n_new;
                if total > MAX_PER_USER {
                    let seqs = store.notification_seqs(&username, false)?;
                    // Oldest first, among those stored before this batch.
                    let excess = total - MAX_PER_USER;
                    for seq in seqs.iter().rev().take(excess) {
                        trims.push((username.clone(), *seq));
                    }
                    known.push((username, MAX_PER_USER.min(total)));
                } else {
                    known.push((username, total));
                }
            }
            Ok((trims, known))
        })
        .await??
    };
    removed.extend(trims);
    // Pushes for users with a subscription, due once a client had time to
    // see the event: queued in the same write, so a crash loses neither.
    let pushes: Vec<(u64, PushDelivery)> = match &notify.inner.push {
        Some(push) => {
            let due = now_ms() + push.delay().as_millis() as u64;
            added
                .iter()
                .filter(|(username, _, _)| push.has_subscriber(username))
                .map(|(username, seq, _)| {
                    let delivery = PushDelivery {
                        username: username.clone(),
                        seq: *seq,
                        subscriptions: Vec::new(),
                        attempts: 0,
                    };
                    (due, delivery)
                })
                .collect()
        }
        None => Vec::new(),
    };
    let n_pushes = pushes.len();
    {
        let added = added.clone();
        let removed = removed.clone();
        on_disk(&store, move |s| {
            s.write_notifications(&added, &removed, &pushes, last)
        })
        .await?;
    }
    if n_pushes > 0
        && let Some(push) = &notify.inner.push
    {
        push.wake();
    }
    for (username, count) in known {
        counts.insert(username, count);
    }
    if removed_count > 0 {
        // Counts of users who lost notifications to a redaction or flip are
        // recounted when next needed.
        for (username, _) in removed.iter().take(removed_count) {
            counts.remove(username);
        }
    }
    *done = last;
    let metrics = notify.inner.engine.metrics();
    metrics.notifications.add(decided.added.len() as u64);
    metrics
        .notify_busy_micros
        .add(started.elapsed().as_micros() as u64);
    metrics.notify_seq.set(last as i64);
    for (user, seq, notification) in decided.added {
        // No receivers is not an error: nobody is connected.
        let _ = notify.inner.frames.send(Arc::new(Delivered {
            user,
            at: NotificationAt {
                seq,
                unread: true,
                notification,
            },
        }));
    }
    Ok(())
}

/// The rules for the events of one room, under its lock once.
async fn decide_room(
    engine: &Engine,
    room_id: &RoomId,
    items: &[Item],
    settings: &HashMap<String, Arc<Settings>>,
    now: u64,
    moderation: &Moderation,
    decided: &mut Decided,
) {
    let Ok(slot) = engine.room(room_id) else {
        return;
    };
    let view = slot.lock().await;
    let state = view.room.state();
    let kind = state
        .kind()
        .unwrap_or(spaces_protocol::content::RoomKind::Room);
    let locals: Vec<UserId> = state
        .members()
        .into_iter()
        .filter(|(user, _)| engine.is_local(user))
        .map(|(user, _)| user)
        .collect();
    let no_settings = Settings::default();
    for item in items {
        let id = item.event.id();
        // What this event hides: its redaction's target, flips to refused.
        let mut hidden = item.refused.clone();
        if let Content::Redaction(redaction) = item.event.content()
            && view.room.is_accepted(&id)
        {
            hidden.push(redaction.target);
        }
        for target in hidden {
            if let Some(seq) = view.arrivals().seq(&target) {
                for user in &locals {
                    decided.removed.push((user.localpart().to_owned(), seq));
                }
            }
        }
        // Hidden by this node's moderation (a policy, a ban list): as the
        // WebSocket does, nobody hears of it.
        if !view.room.is_accepted(&id) || moderation.hides(&item.event) {
            continue;
        }
        let candidates: Vec<&UserId> = match item.event.content() {
            Content::Member(member) if member.membership == Membership::Invite => locals
                .iter()
                .filter(|user| {
                    **user == member.target && state.membership(user) == Some(Membership::Invite)
                })
                .collect(),
            Content::Message(_) => locals
                .iter()
                .filter(|user| {
                    state.is_joined(user)
                        && view
                            .readable(user)
                            .is_ok_and(|floor| view.shows(floor, &id))
                })
                .collect(),
            _ => continue,
        };
        if candidates.is_empty() {
            continue;
        }
        // Who wrote the message replied to; who started or wrote in the thread.
        let (replied_sender, thread_people, excerpt) = match item.event.content() {
            Content::Message(message) => {
                let replied = message
                    .reply_to
                    .and_then(|r| view.room.event(&r))
                    .map(|e| e.sender().clone());
                let mut people: HashSet<&UserId> = HashSet::new();
                if let Some(root) = message.thread {
                    if let Some(event) = view.room.event(&root) {
                        people.insert(event.sender());
                    }
                    for reply in view.agg.threads.get(&root).into_iter().flatten() {
                        if *reply != id
                            && let Some(event) = view.room.event(reply)
                        {
                            people.insert(event.sender());
                        }
                    }
                }
                (
                    replied,
                    people,
                    spaces_notify::excerpt(&message.body, EXCERPT_CHARS),
                )
            }
            _ => (None, HashSet::new(), String::new()),
        };
        for user in candidates {
            let settings = settings
                .get(user.localpart())
                .map_or(&no_settings, |s| s.as_ref());
            let recipient = Recipient {
                user,
                roles: state.roles_of(user),
                wrote_replied: replied_sender.as_ref() == Some(user),
                follows_thread: thread_people.contains(user),
                settings,
            };
            let Some(reason) = spaces_notify::reason(&item.event, kind, &recipient, now) else {
                continue;
            };
            decided.added.push((
                user.clone(),
                item.seq,
                Notification {
                    room_id: room_id.0,
                    event_id: id.0,
                    sender: item.event.sender().to_string(),
                    reason: reason.as_str().to_owned(),
                    origin_ts: item.event.origin_ts(),
                    excerpt: excerpt.clone(),
                },
            ));
        }
    }
}
