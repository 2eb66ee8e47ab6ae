//! Notifications: the node's seam to `spaces-notify`.
//!
//! One task ([`run_notifier`]) decides who is notified of what. It
//! subscribes to the engine's live stream, catches up from the store after
//! the cursor the `notifications` tree holds, then follows the stream: this
//! node's events and received ones alike, after they are durable. For each
//! batch it locks each room once and, for every event resolution accepted,
//! gathers each local user the event could concern: for a message, those
//! it names (mentions, holders of a mentioned role, the author of the
//! message it replies to, the people of its thread) and the users whose
//! settings listen beyond mentions (level `all`, keywords: `Inner::
//! listeners`), or every local member for `@room` and in a direct room;
//! the target of an invite. So a message costs a check per member only
//! when it could notify every member. With the lock released, the rules
//! ([`spaces_notify::reason`]) decide each. A user is asked only if the room API would show them the
//! event: [`RoomView::readable`]'s floor and [`RoomView::shows`] (the
//! engine's readability rules, not a copy), or, for an invite, their
//! membership still being that invite. A redaction, or resolution turning
//! against an earlier event (a flip to refused), removes the notifications
//! of the event it hides.
//!
//! The new notifications, the removals and the cursor past the batch are
//! one atomic write ([`Store::write_notifications`]), so a crash replays
//! the batch or none of it: nothing notifies twice, nothing is skipped.
//! That write needs no fsync of its own (all of it derives from the durable
//! log), and a batch that decides nothing writes only every [`CURSOR_LAG`]
//! seqs: the send path pays no store write for the notifier. A
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
use spaces_protocol::content::{Content, Membership, RoomKind};
use spaces_protocol::{Event, EventId, RoleId, RoomId, UserId};
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
    /// Usernames whose settings reach beyond what names them (a level of
    /// `All` anywhere, or keywords): the only users the notifier asks
    /// about a message that neither mentions, replies to nor threads with
    /// them. Everyone else keeps the defaults or narrower, so a message in
    /// a room of a thousand costs a thousand checks only when it is
    /// `@room` or direct. Read whole at the notifier's start, kept by
    /// [`Notify::set_settings`]; swapped, never edited in place.
    listeners: Mutex<Arc<HashSet<String>>>,
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
                listeners: Mutex::default(),
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
        let listens = listens_beyond_mentions(&settings);
        cache.insert(username.clone(), Arc::new(settings));
        // Under the cache's lock, so two writes of one user's settings
        // leave the cache and the listeners agreeing.
        self.set_listener(username, listens);
        Ok(())
    }

    fn listeners(&self) -> Arc<HashSet<String>> {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_listener(&self, username: String, listens: bool) {
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listeners.contains(&username) != listens {
            let mut changed = HashSet::clone(&listeners);
            match listens {
                true => changed.insert(username),
                false => changed.remove(&username),
            };
            *listeners = Arc::new(changed);
        }
    }

    /// Reads every user's settings into the cache and the listeners (on
    /// the blocking pool, once, before the notifier's first batch).
    fn load_all_settings(&self) -> Result<(), spaces_store::Error> {
        let all = self.store().all_notify_settings()?;
        let mut listeners = HashSet::new();
        for (username, record) in all {
            let settings = self.cache_loaded(&username, Arc::new(from_record(record)));
            if listens_beyond_mentions(&settings) {
                listeners.insert(username);
            }
        }
        *self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(listeners);
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

/// Whether `settings` can notify of a message that does not name the user
/// (see `Inner::listeners`).
fn listens_beyond_mentions(settings: &Settings) -> bool {
    settings.level == Level::All
        || !settings.keywords.is_empty()
        || settings
            .rooms
            .values()
            .any(|room| room.level == Some(Level::All))
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

/// Where the notifier is: the last seq handled, the last written as the
/// cursor, and users' notification counts as last known.
struct Progress {
    counts: HashMap<String, usize>,
    done: u64,
    written: u64,
}

/// Seqs a cursor on disk may lag the notifier by (see [`apply`]).
const CURSOR_LAG: u64 = 4_096;

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
    let done = match engine.store().notify_cursor() {
        // A cursor past the log (a store restored from an older copy) would
        // skip the events that get those seqs again.
        Ok(cursor) => cursor.min(engine.store().last_seq()),
        Err(error) => {
            tracing::error!(%error, "reading the notifier's cursor failed; notifications stopped");
            return;
        }
    };
    let mut progress = Progress {
        counts: HashMap::new(),
        done,
        written: done,
    };
    let loading = notify.clone();
    match tokio::task::spawn_blocking(move || loading.load_all_settings()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "reading notification settings failed; notifications stopped");
            return;
        }
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
    if let Err(error) = catch_up(&notify, &mut progress).await {
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
                            .filter(|item| item.seq > progress.done)
                            .map(|item| Item {
                                seq: item.seq,
                                room_id: item.room_id,
                                event: item.event.clone(),
                                refused: refused(&item.flips),
                            })
                            .collect();
                        apply(&notify, &mut progress, items, last).await
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "notifier lagged; catching up from the store");
                        catch_up(&notify, &mut progress).await
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
async fn catch_up(notify: &Notify, progress: &mut Progress) -> anyhow::Result<()> {
    loop {
        let store = notify.store().clone();
        let after = progress.done;
        let (items, last) =
            tokio::task::spawn_blocking(move || read_stream(&store, after)).await??;
        if last == after {
            return Ok(());
        }
        apply(notify, progress, items, last).await?;
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
    progress: &mut Progress,
    items: Vec<Item>,
    last: u64,
) -> anyhow::Result<()> {
    if last <= progress.done {
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
    // Under each room's lock, once: who each event could concern and what
    // the rules need to know of them. The rules themselves run after, with
    // the lock released and the settings at hand.
    let engine = &notify.inner.engine;
    let listeners = notify.listeners();
    let mut decided = Decided::default();
    let mut asks: Vec<Ask<'_>> = Vec::new();
    for (room_id, items) in &by_room {
        let moderation = &notify.inner.moderation;
        decide_room(
            engine,
            room_id,
            items,
            &listeners,
            moderation,
            &mut asks,
            &mut decided,
        )
        .await;
    }
    let settings: HashMap<String, Arc<Settings>> = {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for ask in &asks {
            let username = ask.user.localpart();
            if found.contains_key(username) {
                continue;
            }
            match notify.cached(username) {
                Some(settings) => {
                    found.insert(username.to_owned(), settings);
                }
                None => missing.push(username.to_owned()),
            }
        }
        if !missing.is_empty() {
            let notify = notify.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                missing
                    .into_iter()
                    .map(|username| {
                        let settings = notify.settings_blocking(&username)?;
                        Ok((username, settings))
                    })
                    .collect::<Result<Vec<_>, spaces_store::Error>>()
            })
            .await??;
            found.extend(loaded);
        }
        found
    };
    let no_settings = Settings::default();
    for ask in asks {
        let settings = settings
            .get(ask.user.localpart())
            .map_or(&no_settings, |s| s.as_ref());
        let recipient = Recipient {
            user: &ask.user,
            roles: &ask.roles,
            wrote_replied: ask.wrote_replied,
            follows_thread: ask.follows_thread,
            settings,
        };
        let Some(reason) = spaces_notify::reason(&ask.item.event, ask.kind, &recipient, now) else {
            continue;
        };
        decided.added.push((
            ask.user,
            ask.item.seq,
            Notification {
                room_id: ask.item.room_id.0,
                event_id: ask.item.event.id().0,
                sender: ask.item.event.sender().to_string(),
                reason: reason.as_str().to_owned(),
                origin_ts: ask.item.event.origin_ts(),
                excerpt: ask.excerpt.to_string(),
            },
        ));
    }
    // A message and its redaction (or a flip refusing it) in one batch:
    // the removal wins, so it is neither written nor framed nor pushed.
    if !decided.removed.is_empty() {
        let removed: HashSet<(&str, u64)> = decided
            .removed
            .iter()
            .map(|(username, seq)| (username.as_str(), *seq))
            .collect();
        decided
            .added
            .retain(|(user, seq, _)| !removed.contains(&(user.localpart(), *seq)));
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
    let (trims, known) = if added_per_user.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let store = store.clone();
        let current: Vec<(String, usize, Option<usize>)> = added_per_user
            .iter()
            .map(|(u, n)| (u.clone(), *n, progress.counts.get(u).copied()))
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
    // A batch that changes nothing moves the cursor in memory only, and on
    // disk once it is [`CURSOR_LAG`] behind: replaying such events after a
    // crash decides nothing twice, and a write (with its flush) per batch
    // would cost the send path.
    if !added.is_empty()
        || !removed.is_empty()
        || n_pushes > 0
        || last - progress.written >= CURSOR_LAG
    {
        let added = added.clone();
        let removed = removed.clone();
        on_disk(&store, move |s| {
            s.write_notifications(&added, &removed, &pushes, last)
        })
        .await?;
        progress.written = last;
    }
    if n_pushes > 0
        && let Some(push) = &notify.inner.push
    {
        push.wake();
    }
    for (username, count) in known {
        progress.counts.insert(username, count);
    }
    if removed_count > 0 {
        // Counts of users who lost notifications to a redaction or flip are
        // recounted when next needed.
        for (username, _) in removed.iter().take(removed_count) {
            progress.counts.remove(username);
        }
    }
    progress.done = last;
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

/// One local user an event could concern, with what the rules need to know
/// of them, gathered under the room's lock.
struct Ask<'a> {
    item: &'a Item,
    kind: RoomKind,
    user: UserId,
    roles: Vec<RoleId>,
    wrote_replied: bool,
    follows_thread: bool,
    excerpt: Arc<str>,
}

/// Who the events of one room could concern, under its lock once: for a
/// message, the local users it names (mentions, holders of a mentioned
/// role, the author of the message it replies to, the people of its
/// thread) and the room's [listeners](Inner::listeners) — or every local
/// member for `@room` and in a direct room — each only if the room API
/// would show them the event; for an invite, its target. Also what the
/// events hide (removals).
async fn decide_room<'a>(
    engine: &Engine,
    room_id: &RoomId,
    items: &'a [Item],
    listeners: &HashSet<String>,
    moderation: &Moderation,
    asks: &mut Vec<Ask<'a>>,
    decided: &mut Decided,
) {
    let Ok(slot) = engine.room(room_id) else {
        return;
    };
    let view = slot.lock().await;
    let state = view.room.state();
    let kind = state.kind().unwrap_or(RoomKind::Room);
    // Local members (any membership) and the listeners among the joined,
    // each worked out once per batch, and only if an event needs them.
    let mut locals: Option<Vec<UserId>> = None;
    let mut listening: Option<Vec<UserId>> = None;
    fn local_members<'s>(
        locals: &'s mut Option<Vec<UserId>>,
        state: &spaces_protocol::RoomState,
        engine: &Engine,
    ) -> &'s [UserId] {
        locals.get_or_insert_with(|| {
            state
                .members()
                .into_iter()
                .filter(|(user, _)| engine.is_local(user))
                .map(|(user, _)| user)
                .collect()
        })
    }
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
            if let Some(seq) = view.seq(&target) {
                for user in local_members(&mut locals, state, engine) {
                    decided.removed.push((user.localpart().to_owned(), seq));
                }
            }
        }
        // Hidden by this node's moderation (a policy, a ban list): as the
        // WebSocket does, nobody hears of it.
        if !view.room.is_accepted(&id) || moderation.hides(&item.event) {
            continue;
        }
        // Who wrote the message replied to; who started or wrote in the
        // thread (local users only: no one else is asked).
        let (replied_sender, thread_people, excerpt) = match item.event.content() {
            Content::Message(message) => {
                let replied = message
                    .reply_to
                    .and_then(|r| view.room.sender(&r))
                    .filter(|user| engine.is_local(user))
                    .cloned();
                let mut people: Vec<UserId> = Vec::new();
                if let Some(root) = message.thread {
                    let replies = view.agg.threads.get(&root).into_iter().flatten();
                    for sender in std::iter::once(&root)
                        .chain(replies.filter(|reply| **reply != id))
                        .filter_map(|e| view.room.sender(e))
                    {
                        if engine.is_local(sender) && !people.contains(sender) {
                            people.push(sender.clone());
                        }
                    }
                }
                let excerpt: Arc<str> = spaces_notify::excerpt(&message.body, EXCERPT_CHARS).into();
                (replied, people, excerpt)
            }
            _ => (None, Vec::new(), Arc::from("")),
        };
        let mut candidates: Vec<UserId> = match item.event.content() {
            Content::Member(member)
                if member.membership == Membership::Invite
                    && engine.is_local(&member.target)
                    && state.membership(&member.target) == Some(Membership::Invite) =>
            {
                vec![member.target.clone()]
            }
            Content::Message(message) if kind == RoomKind::Direct || message.mentions.room => {
                local_members(&mut locals, state, engine).to_vec()
            }
            Content::Message(message) => {
                let mut named: Vec<UserId> = message
                    .mentions
                    .users
                    .iter()
                    .filter(|user| engine.is_local(user))
                    .cloned()
                    .collect();
                if !message.mentions.roles.is_empty() {
                    named.extend(
                        local_members(&mut locals, state, engine)
                            .iter()
                            .filter(|user| {
                                state
                                    .roles_of(user)
                                    .iter()
                                    .any(|role| message.mentions.roles.contains(role))
                            })
                            .cloned(),
                    );
                }
                named.extend(replied_sender.iter().cloned());
                named.extend(thread_people.iter().cloned());
                named.extend(
                    listening
                        .get_or_insert_with(|| {
                            listeners
                                .iter()
                                .filter_map(|name| UserId::new(name, engine.node_id()).ok())
                                .filter(|user| state.is_joined(user))
                                .collect()
                        })
                        .iter()
                        .cloned(),
                );
                named
            }
            _ => continue,
        };
        candidates.sort();
        candidates.dedup();
        if let Content::Message(_) = item.event.content() {
            candidates.retain(|user| {
                user != item.event.sender()
                    && state.is_joined(user)
                    && view
                        .readable(user)
                        .is_ok_and(|floor| view.shows(floor, &id))
            });
        }
        for user in candidates {
            let follows_thread = thread_people.contains(&user);
            asks.push(Ask {
                item,
                kind,
                roles: state.roles_of(&user).to_vec(),
                wrote_replied: replied_sender.as_ref() == Some(&user),
                follows_thread,
                excerpt: excerpt.clone(),
                user,
            });
        }
    }
}
