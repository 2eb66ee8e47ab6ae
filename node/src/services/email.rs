//! Email: the node's seam to `spaces-email`.
//!
//! Each account may keep one address (`email` tree): set by its owner,
//! verified by a signed, expiring link mailed to it ([`Email::set_address`],
//! [`Email::verify`]), with digests on until the owner or the signed
//! unsubscribe link in a digest turns them off. A verified address also
//! receives password-reset mails: a random single-use token, kept only as
//! its BLAKE3 hash, that expires ([`Email::request_reset`],
//! [`Email::take_reset`]). Verification and reset mails to one account are
//! limited per hour.
//!
//! One task ([`run_mailer`]) sends. Verification and reset mails go out
//! as soon as they are asked for, from a bounded in-memory outbox: a
//! restart loses the ones not sent yet, and the user asks again. Digests
//! are durable:
//! - The mailer follows the notifier's new notifications (the broadcast
//!   the WebSockets follow; on a lag, every user with digests is looked at
//!   again) and the engine's local presence changes (when a user's last
//!   client left). At start it looks at every user with digests on.
//! - For a user it looks at, it gathers what a digest would hold: their
//!   unread notifications of a mention, `@room` or direct message after
//!   their last digest's, that no client has seen (the room's read marker
//!   is below it), in rooms they are still joined to, of events resolution
//!   accepts and moderation does not hide. `spaces_email::decide` says
//!   whether to send now: nobody connected, away for `digest_delay`, the
//!   period since the last digest over; or when to look again.
//! - A digest is queued (its notifications' seqs) together with the user's
//!   digest state (when, and the last seq it holds) in one store batch: a
//!   crash neither loses it nor lets a second one through in the period.
//! - The queue is sent in due order, each digest rendered from what the
//!   store holds then (what was redacted, refused, hidden, read or left
//!   meanwhile drops out; an empty digest is not sent), to the address the
//!   account has then, if it is still verified with digests on. A relay
//!   that does not answer or answers 4xx gets it again with back-off
//!   ([`retry_after`]), at most [`MAX_ATTEMPTS`] times; a 5xx drops it.
//!
//! After a crash, a digest being sent is sent again (a mailbox may get it
//! twice; none is lost). At start every queued digest is tried once at
//! once, whatever its back-off said: the relay may be back. "Away" is what the node can see: the user's
//! WebSockets (presence), and read markers past a notification. A node
//! with presence off counts from its own start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use spaces_email::{
    Claim, Decision, DigestItem, Facts, Kind, LinkError, LinkKey, Mail, Mailer, SendError,
    SmtpOptions,
};
use spaces_protocol::{EventId, Presence, RoomId, UserId};
use spaces_store::{
    DigestState, EmailAddress, EmailDelivery, EmailKey, NotificationAt, ResetToken, Store,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::engine::{Engine, now_ms};
use crate::services::moderation::Moderation;
use crate::services::notify::Notify;
use crate::services::on_disk;

/// Sends before a digest is given up: with [`retry_after`]'s back-off,
/// about a day of trying.
pub const MAX_ATTEMPTS: u32 = 10;
/// Notifications in one digest: the newest; the rest are counted as read
/// by the digest's cursor (the web client lists them all).
pub const MAX_DIGEST_ITEMS: usize = 50;
/// Notification reasons a digest holds: mentions (of the user, a role of
/// theirs, `@room`) and direct messages.
const DIGEST_REASONS: [&str; 4] = ["mention", "role_mention", "room", "direct"];
/// Verification and reset mails waiting for the relay: more are refused
/// (503) rather than queued without end.
const OUTBOX: usize = 256;
/// Digests taken off the queue at once.
const BATCH: usize = 16;
/// Verification and reset timestamps kept per account: enough for any
/// sane hourly limit.
const MAX_SENT_KEPT: usize = 32;
/// Bytes of a reset token (base64url: 43 characters).
const RESET_TOKEN_BYTES: usize = 32;
/// Reset requests being worked on at once; more are dropped (their answer
/// is the same either way), so a flood of requests queues nothing.
const RESETS_IN_FLIGHT: usize = 16;

/// Email settings (`[email]` in the config), resolved.
#[derive(Clone, Debug)]
pub struct EmailOptions {
    pub smtp: SmtpOptions,
    /// Where links in mails point: the node's public URL.
    pub public_url: String,
    /// How long a user must be away before a digest.
    pub digest_delay: Duration,
    /// At most one digest per this per user.
    pub digest_period: Duration,
    /// How long a verification link works.
    pub verify_ttl: Duration,
    /// How long a reset token works.
    pub reset_ttl: Duration,
    /// Verification and reset mails to one account per hour.
    pub mails_per_hour: usize,
}

/// Why an email request failed.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{0}")]
    BadAddress(String),
    #[error("at most {0} verification or reset mails per hour to one account")]
    TooMany(usize),
    #[error("the account has no email address")]
    NoAddress,
    #[error("the address is already verified for another account")]
    Taken,
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("the reset token is unknown, used or expired")]
    BadResetToken,
    #[error("too many mails are waiting for the mail relay; try again later")]
    Busy,
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

/// An account's address as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressView {
    pub address: String,
    pub verified: bool,
    pub digests: bool,
}

impl From<EmailAddress> for AddressView {
    fn from(record: EmailAddress) -> AddressView {
        AddressView {
            address: record.address,
            verified: record.verified,
            digests: record.digests,
        }
    }
}

/// The email service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Email {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    moderation: Moderation,
    key: LinkKey,
    mailer: Mailer,
    options: EmailOptions,
    /// Held across an address record's read, decision and write.
    writing: tokio::sync::Mutex<()>,
    outbox: mpsc::Sender<Mail>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Mail>>>,
    /// Users with a verified address and digests on.
    digest_users: Mutex<HashSet<String>>,
    /// Users to look at, and when.
    check_at: Mutex<HashMap<String, u64>>,
    /// When each user's last client left (users not in it: the node's start).
    last_seen: Mutex<HashMap<String, u64>>,
    started_ms: u64,
    wake: tokio::sync::Notify,
    resets: Arc<tokio::sync::Semaphore>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn reset_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

impl Email {
    /// The email service for `options`, signing links with a key derived
    /// from `secret` (the node's token secret). Opens no connection.
    pub fn open(
        engine: Engine,
        moderation: Moderation,
        secret: &[u8],
        options: EmailOptions,
    ) -> anyhow::Result<Email> {
        let mailer = Mailer::new(&options.smtp).map_err(|e| anyhow::anyhow!(e))?;
        let digest_users = engine
            .store()
            .email_addresses()?
            .into_iter()
            .filter(|(_, record)| record.verified && record.digests)
            .map(|(username, _)| username)
            .collect::<HashSet<_>>();
        let started_ms = now_ms();
        let check_at = digest_users
            .iter()
            .map(|username| (username.clone(), started_ms))
            .collect();
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        Ok(Email {
            inner: Arc::new(Inner {
                engine,
                moderation,
                key: LinkKey::derive(secret),
                mailer,
                options,
                writing: tokio::sync::Mutex::new(()),
                outbox,
                outbox_rx: Mutex::new(Some(outbox_rx)),
                digest_users: Mutex::new(digest_users),
                check_at: Mutex::new(check_at),
                last_seen: Mutex::default(),
                started_ms,
                wake: tokio::sync::Notify::new(),
                resets: Arc::new(tokio::sync::Semaphore::new(RESETS_IN_FLIGHT)),
            }),
        })
    }

    fn store(&self) -> &Store {
        self.inner.engine.store()
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.inner.options.public_url.trim_end_matches('/')
        )
    }

    /// `username`'s address, if any.
    pub async fn address(&self, username: &str) -> Result<Option<AddressView>, EmailError> {
        let name = username.to_owned();
        let record = on_disk(self.store(), move |s| s.email_address(&name)).await?;
        Ok(record.map(AddressView::from))
    }

    /// Takes a send from `record`'s hourly allowance, or refuses.
    fn take_allowance(&self, record: &mut EmailAddress, now: u64) -> Result<(), EmailError> {
        let max = self.inner.options.mails_per_hour;
        record
            .mails_sent_ms
            .retain(|sent| now.saturating_sub(*sent) < 3_600_000);
        if record.mails_sent_ms.len() >= max {
            return Err(EmailError::TooMany(max));
        }
        record.mails_sent_ms.push(now);
        let excess = record.mails_sent_ms.len().saturating_sub(MAX_SENT_KEPT);
        record.mails_sent_ms.drain(..excess);
        Ok(())
    }

    /// Sets `username`'s address (unverified) and mails it a verification
    /// link. The same address again, already verified, changes nothing and
    /// sends nothing.
    pub async fn set_address(
        &self,
        username: &str,
        address: &str,
    ) -> Result<AddressView, EmailError> {
        let address = spaces_email::check_address(address).map_err(EmailError::BadAddress)?;
        let _writing = self.inner.writing.lock().await;
        let old = self.address_record(username).await?;
        if let Some(old) = &old
            && old.verified
            && old.address == address
        {
            return Ok(old.clone().into());
        }
        let now = now_ms();
        let mut record = EmailAddress {
            address: address.clone(),
            verified: false,
            digests: old.as_ref().is_none_or(|old| old.digests),
            mails_sent_ms: old
                .as_ref()
                .map(|old| old.mails_sent_ms.clone())
                .unwrap_or_default(),
        };
        self.take_allowance(&mut record, now)?;
        // A place in the outbox before anything is written: a full outbox
        // changes nothing.
        let permit = self
            .inner
            .outbox
            .try_reserve()
            .map_err(|_| EmailError::Busy)?;
        let unindex = old.filter(|old| old.verified).map(|old| old.address);
        {
            let (name, record) = (username.to_owned(), record.clone());
            on_disk(self.store(), move |s| {
                s.put_email_address(&name, Some(&record), unindex.as_deref(), None)
            })
            .await?;
        }
        lock(&self.inner.digest_users).remove(&username.to_lowercase());
        let expires_s = (now + self.inner.options.verify_ttl.as_millis() as u64) / 1000;
        let token = self.inner.key.verify_token(username, &address, expires_s);
        let link = self.url(&format!(
            "/api/v1/account/email/verify?token={}",
            encode_component(&token)
        ));
        let hours = self.inner.options.verify_ttl.as_secs().div_ceil(3600);
        permit.send(Mail {
            to: address,
            subject: "Confirm your email address for Spaces".into(),
            body: format!(
                "Hello {username},\n\nTo confirm that this address is yours, open this link (it works for {hours} h):\n\n{link}\n\nIf you did not ask for this, ignore this mail: nothing changes.\n"
            ),
            unsubscribe: None,
        });
        tracing::info!(username, "verification mail queued");
        Ok(record.into())
    }

    async fn address_record(&self, username: &str) -> Result<Option<EmailAddress>, EmailError> {
        let name = username.to_owned();
        Ok(on_disk(self.store(), move |s| s.email_address(&name)).await?)
    }

    /// Checks a link's token of `kind` against the address its user has
    /// now: the user and their record.
    async fn checked(&self, kind: Kind, token: &str) -> Result<(String, EmailAddress), EmailError> {
        let claim = Claim::parse(kind, token)?;
        let record = self
            .address_record(&claim.username)
            .await?
            .ok_or(LinkError::BadSignature)?;
        self.inner
            .key
            .check(&claim, &record.address, now_ms() / 1000)?;
        Ok((claim.username, record))
    }

    /// Verifies the address a verification link was made for.
    pub async fn verify(&self, token: &str) -> Result<AddressView, EmailError> {
        let _writing = self.inner.writing.lock().await;
        let (username, mut record) = self.checked(Kind::Verify, token).await?;
        if record.verified {
            return Ok(record.into());
        }
        let owner = {
            let address = record.address.clone();
            on_disk(self.store(), move |s| s.email_user_by_address(&address)).await?
        };
        if owner.is_some_and(|owner| owner != username.to_lowercase()) {
            return Err(EmailError::Taken);
        }
        record.verified = true;
        {
            let (name, record) = (username.clone(), record.clone());
            on_disk(self.store(), move |s| {
                s.put_email_address(&name, Some(&record), None, Some(&record.address))
            })
            .await?;
        }
        if record.digests {
            self.watch(&username);
        }
        tracing::info!(username, "email address verified");
        Ok(record.into())
    }

    /// A user now gets digests: look at them soon.
    fn watch(&self, username: &str) {
        let username = username.to_lowercase();
        lock(&self.inner.digest_users).insert(username.clone());
        lock(&self.inner.check_at).insert(username, now_ms());
        self.inner.wake.notify_one();
    }

    /// Turns `username`'s digests on or off.
    pub async fn set_digests(&self, username: &str, on: bool) -> Result<AddressView, EmailError> {
        let _writing = self.inner.writing.lock().await;
        let mut record = self
            .address_record(username)
            .await?
            .ok_or(EmailError::NoAddress)?;
        self.write_digests(username, &mut record, on).await?;
        Ok(record.into())
    }

    async fn write_digests(
        &self,
        username: &str,
        record: &mut EmailAddress,
        on: bool,
    ) -> Result<(), EmailError> {
        if record.digests != on {
            record.digests = on;
            let (name, record) = (username.to_owned(), record.clone());
            on_disk(self.store(), move |s| {
                s.put_email_address(&name, Some(&record), None, None)
            })
            .await?;
        }
        match on && record.verified {
            true => self.watch(username),
            false => {
                lock(&self.inner.digest_users).remove(&username.to_lowercase());
            }
        }
        Ok(())
    }

    /// Checks an unsubscribe link without using it.
    pub async fn check_unsubscribe(&self, token: &str) -> Result<(), EmailError> {
        self.checked(Kind::Unsubscribe, token).await.map(drop)
    }

    /// Turns digests off for the user an unsubscribe link names.
    pub async fn unsubscribe(&self, token: &str) -> Result<(), EmailError> {
        let _writing = self.inner.writing.lock().await;
        let (username, mut record) = self.checked(Kind::Unsubscribe, token).await?;
        self.write_digests(&username, &mut record, false).await?;
        tracing::info!(username, "digests turned off by an unsubscribe link");
        Ok(())
    }

    /// Removes `username`'s address.
    pub async fn remove(&self, username: &str) -> Result<(), EmailError> {
        let _writing = self.inner.writing.lock().await;
        let record = self
            .address_record(username)
            .await?
            .ok_or(EmailError::NoAddress)?;
        let name = username.to_owned();
        on_disk(self.store(), move |s| {
            s.put_email_address(&name, None, Some(&record.address), None)
        })
        .await?;
        lock(&self.inner.digest_users).remove(&username.to_lowercase());
        Ok(())
    }

    /// Mails a reset token to the verified address of the account named
    /// by `login` (a username, or a verified address), if there is one.
    /// Runs in a task of its own and returns at once: the caller's answer
    /// says nothing about whether the account exists. At most
    /// [`RESETS_IN_FLIGHT`] run at once; more are dropped.
    pub fn request_reset(&self, login: String) {
        let Ok(permit) = self.inner.resets.clone().try_acquire_owned() else {
            tracing::info!(
                "password-reset requests arrive faster than they are handled; one dropped"
            );
            return;
        };
        let email = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = email.send_reset(&login).await {
                // Which account is not logged: the request is anonymous.
                tracing::info!(%error, "no password-reset mail sent");
            }
        });
    }

    async fn send_reset(&self, login: &str) -> Result<(), EmailError> {
        let login = login.trim().to_owned();
        let _writing = self.inner.writing.lock().await;
        let username = {
            let login = login.clone();
            on_disk(self.store(), move |s| {
                if login.contains('@') {
                    return s.email_user_by_address(&login);
                }
                Ok(s.account(&login)?.map(|account| account.username))
            })
            .await?
            .ok_or(EmailError::NoAddress)?
        };
        let mut record = self
            .address_record(&username)
            .await?
            .filter(|record| record.verified)
            .ok_or(EmailError::NoAddress)?;
        let now = now_ms();
        self.take_allowance(&mut record, now)?;
        let permit = self
            .inner
            .outbox
            .try_reserve()
            .map_err(|_| EmailError::Busy)?;
        let token = {
            let bytes: [u8; RESET_TOKEN_BYTES] = rand::random();
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let stored = ResetToken {
            username: username.clone(),
            expires_ms: now + self.inner.options.reset_ttl.as_millis() as u64,
        };
        {
            let (name, record, hash) = (username.clone(), record.clone(), reset_hash(&token));
            on_disk(self.store(), move |s| {
                s.put_email_address(&name, Some(&record), None, None)?;
                s.put_reset_token(&hash, &stored, now)
            })
            .await?;
        }
        let link = self.url(&format!(
            "/reset-password?token={}",
            encode_component(&token)
        ));
        let minutes = self.inner.options.reset_ttl.as_secs().div_ceil(60);
        permit.send(Mail {
            to: record.address,
            subject: "Reset your Spaces password".into(),
            body: format!(
                "Hello {username},\n\nSomeone (we hope you) asked to reset the password of your Spaces account.\nTo choose a new one, open this link (it works once, for {minutes} minutes):\n\n{link}\n\nor enter this code: {token}\n\nSetting a new password signs out every session of the account.\nIf you did not ask for this, ignore this mail: your password stays as it is.\n"
            ),
            unsubscribe: None,
        });
        Ok(())
    }

    /// The user a reset token is for, if it is kept and not expired
    /// (without using it: the caller checks it before the costly hashing).
    pub async fn peek_reset(&self, token: &str) -> Result<String, EmailError> {
        let hash = reset_hash(token);
        let found = on_disk(self.store(), move |s| s.reset_token(&hash)).await?;
        match found {
            Some(found) if found.expires_ms >= now_ms() => Ok(found.username),
            _ => Err(EmailError::BadResetToken),
        }
    }

    /// Uses a reset token: the user it is for. A token is taken once.
    pub async fn take_reset(&self, token: &str) -> Result<String, EmailError> {
        let hash = reset_hash(token);
        let found = on_disk(self.store(), move |s| s.take_reset_token(&hash)).await?;
        match found {
            Some(found) if found.expires_ms >= now_ms() => Ok(found.username),
            _ => Err(EmailError::BadResetToken),
        }
    }

    /// Starts the mailer, which stops when `stopped` turns true.
    pub fn start(
        &self,
        notify: &Notify,
        stopped: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        // lettre's rustls takes the process's provider when one is installed.
        crate::install_crypto_provider();
        let outbox = lock(&self.inner.outbox_rx)
            .take()
            .expect("the mailer is started once");
        tokio::spawn(run_mailer(self.clone(), notify.clone(), outbox, stopped))
    }
}

/// When attempt `attempts` (1 after the first failure) is tried again:
/// a minute, doubling, at most four hours apart.
pub fn retry_after(attempts: u32) -> Duration {
    Duration::from_secs((60u64 << attempts.min(9).saturating_sub(1)).min(4 * 3600))
}

/// The mailer: see the module docs.
pub async fn run_mailer(
    email: Email,
    notify: Notify,
    mut outbox: mpsc::Receiver<Mail>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut frames = notify.subscribe();
    let mut presence = email.inner.engine.presence_changes();
    // After a restart the relay may well be back: every digest queued goes
    // once now, whatever its back-off said.
    let queued = on_disk(email.store(), |s| s.due_emails(u64::MAX, usize::MAX)).await;
    match queued {
        Ok((queued, _)) => {
            for (key, delivery) in queued {
                if let Err(error) = send_digest(&email, key, delivery).await {
                    tracing::error!(%error, "the mailer failed to update the store; email stopped");
                    return;
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, "the mailer failed to read its queue; email stopped");
            return;
        }
    }
    loop {
        if *stopped.borrow() {
            return;
        }
        if let Err(error) = look(&email).await {
            tracing::error!(%error, "the mailer failed to read or write the store; email stopped");
            return;
        }
        let next_due = match send_due(&email).await {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "the mailer failed to update the store; email stopped");
                return;
            }
        };
        let next_check = lock(&email.inner.check_at).values().min().copied();
        let next = [next_due, next_check].into_iter().flatten().min();
        let wait = match next {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
            None => Duration::from_secs(600),
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = stopped.changed() => {}
            _ = email.inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            mail = outbox.recv() => {
                if let Some(mail) = mail {
                    // Not kept on failure: the user asks again.
                    let _ = send(&email, &mail).await;
                }
            }
            frame = frames.recv() => match frame {
                Ok(delivered) => {
                    let username = delivered.user.localpart().to_lowercase();
                    if lock(&email.inner.digest_users).contains(&username) {
                        lock(&email.inner.check_at).entry(username).or_insert_with(now_ms);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let now = now_ms();
                    let users: Vec<String> = lock(&email.inner.digest_users).iter().cloned().collect();
                    let mut check_at = lock(&email.inner.check_at);
                    for username in users {
                        check_at.insert(username, now);
                    }
                }
                // Not while this task holds `notify`: its sender lives there.
                Err(RecvError::Closed) => return,
            },
            change = presence.recv() => match change {
                Ok((user, state)) => {
                    if state == Presence::Offline {
                        lock(&email.inner.last_seen)
                            .insert(user.localpart().to_lowercase(), now_ms());
                    }
                }
                // A missed change: the user may have left; "away" counts
                // from now, which errs on the side of waiting.
                Err(RecvError::Lagged(_)) => {}
                // Not while this task holds the engine.
                Err(RecvError::Closed) => return,
            }
        }
    }
}

/// Sends one mail; logs and counts the outcome.
async fn send(email: &Email, mail: &Mail) -> Result<(), SendError> {
    let metrics = email.inner.engine.metrics();
    match email.inner.mailer.send(mail).await {
        Ok(()) => {
            metrics.email_sent.add(1);
            Ok(())
        }
        Err(error) => {
            metrics.email_failed.add(1);
            tracing::warn!(%error, "a mail was not sent");
            Err(error)
        }
    }
}

/// A notification a digest would hold, with the user's read marker in its room.
struct Candidate {
    at: NotificationAt,
}

/// The user's unread digest notifications after `cursor` that no client
/// has seen, newest first (on the blocking pool).
fn unseen(
    store: &Store,
    username: &str,
    cursor: u64,
) -> Result<Vec<Candidate>, spaces_store::Error> {
    let mut found = Vec::new();
    for seq in store.notification_seqs(username, true)? {
        if seq <= cursor {
            break;
        }
        let Some(at) = store.notification(username, seq)? else {
            continue;
        };
        if !at.unread || !DIGEST_REASONS.contains(&at.notification.reason.as_str()) {
            continue;
        }
        if store.read_marker(username, &at.notification.room_id)? >= seq {
            continue;
        }
        found.push(Candidate { at });
    }
    Ok(found)
}

/// Keeps the candidates `user` may still be shown: still joined to the
/// room, the event accepted and not hidden by moderation.
async fn shown(
    email: &Email,
    user: &UserId,
    candidates: Vec<Candidate>,
) -> Vec<(Candidate, String)> {
    let mut kept = Vec::new();
    let mut names: HashMap<RoomId, Option<String>> = HashMap::new();
    for candidate in candidates {
        let room_id = RoomId(candidate.at.notification.room_id);
        let event_id = EventId(candidate.at.notification.event_id);
        if email.inner.moderation.is_hidden(&event_id) {
            continue;
        }
        let name = match names.get(&room_id) {
            Some(name) => name.clone(),
            None => {
                let name = match email.inner.engine.room(&room_id) {
                    Ok(slot) => {
                        let view = slot.lock().await;
                        let state = view.room.state();
                        match state.is_joined(user) {
                            true => Some(state.name().unwrap_or_default().to_owned()),
                            false => None,
                        }
                    }
                    Err(_) => None,
                };
                names.insert(room_id, name.clone());
                name
            }
        };
        let Some(name) = name else { continue };
        let accepted = match email.inner.engine.room(&room_id) {
            Ok(slot) => slot.lock().await.room.is_accepted(&event_id),
            Err(_) => false,
        };
        if !accepted {
            continue;
        }
        let name = match name.is_empty() {
            true => room_id.to_string(),
            false => name,
        };
        kept.push((candidate, name));
    }
    kept
}

/// Looks at every user whose time has come: queues their digest, or says
/// when to look again.
async fn look(email: &Email) -> Result<(), spaces_store::Error> {
    let now = now_ms();
    let due: Vec<String> = {
        let check_at = lock(&email.inner.check_at);
        check_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(username, _)| username.clone())
            .collect()
    };
    if due.is_empty() {
        return Ok(());
    }
    let present: HashSet<String> = email
        .inner
        .engine
        .local_presence()
        .into_iter()
        .filter(|(_, presence)| *presence != Presence::Offline)
        .map(|(user, _)| user.localpart().to_lowercase())
        .collect();
    let options = &email.inner.options;
    let metrics = email.inner.engine.metrics();
    for username in due {
        lock(&email.inner.check_at).remove(&username);
        if !lock(&email.inner.digest_users).contains(&username) {
            continue;
        }
        let Ok(user) = UserId::new(&username, email.inner.engine.node_id()) else {
            continue;
        };
        let (state, candidates) = {
            let name = username.clone();
            on_disk(email.store(), move |s| {
                let state = s.digest_state(&name)?;
                let candidates = unseen(s, &name, state.cursor)?;
                Ok((state, candidates))
            })
            .await?
        };
        let cursor = candidates
            .iter()
            .map(|c| c.at.seq)
            .max()
            .unwrap_or(state.cursor);
        let kept = shown(email, &user, candidates).await;
        let now = now_ms();
        let facts = Facts {
            now_ms: now,
            n_pending: kept.len(),
            present: present.contains(&username),
            last_seen_ms: lock(&email.inner.last_seen)
                .get(&username)
                .copied()
                .unwrap_or(email.inner.started_ms),
            last_digest_ms: (state.last_sent_ms > 0).then_some(state.last_sent_ms),
            delay_ms: options.digest_delay.as_millis() as u64,
            period_ms: options.digest_period.as_millis() as u64,
        };
        match spaces_email::decide(&facts) {
            Decision::Nothing => {}
            Decision::Later(at) => {
                metrics.email_digests_deferred.add(1);
                lock(&email.inner.check_at).insert(username, at);
            }
            Decision::Send => {
                let mut seqs: Vec<u64> = kept
                    .iter()
                    .take(MAX_DIGEST_ITEMS)
                    .map(|(c, _)| c.at.seq)
                    .collect();
                seqs.reverse();
                let delivery = EmailDelivery {
                    username: username.clone(),
                    seqs,
                    attempts: 0,
                };
                let state = DigestState {
                    last_sent_ms: now,
                    cursor,
                };
                on_disk(email.store(), move |s| {
                    s.queue_digest(&state, now, &delivery)
                })
                .await?;
                metrics.email_digests_queued.add(1);
                tracing::info!(username, "digest queued");
            }
        }
    }
    Ok(())
}

/// Sends the digests due now; when the next one is due.
async fn send_due(email: &Email) -> Result<Option<u64>, spaces_store::Error> {
    loop {
        let now = now_ms();
        let (due, next) = on_disk(email.store(), move |s| s.due_emails(now, BATCH)).await?;
        if due.is_empty() {
            return Ok(next);
        }
        for (key, delivery) in due {
            send_digest(email, key, delivery).await?;
        }
    }
}

/// Renders one queued digest from what the store holds now and sends it,
/// then takes it off the queue or queues it again.
async fn send_digest(
    email: &Email,
    key: EmailKey,
    delivery: EmailDelivery,
) -> Result<(), spaces_store::Error> {
    let store = email.store().clone();
    let (record, candidates) = {
        let delivery = delivery.clone();
        on_disk(&store, move |s| {
            let record = s.email_address(&delivery.username)?;
            let mut candidates = Vec::new();
            for seq in &delivery.seqs {
                if let Some(at) = s.notification(&delivery.username, *seq)?
                    && at.unread
                    && s.read_marker(&delivery.username, &at.notification.room_id)? < *seq
                {
                    candidates.push(Candidate { at });
                }
            }
            Ok((record, candidates))
        })
        .await?
    };
    let record = record.filter(|r| r.verified && r.digests);
    let user = UserId::new(&delivery.username, email.inner.engine.node_id()).ok();
    let (Some(record), Some(user)) = (record, user) else {
        return on_disk(&store, move |s| s.finish_email(key, None)).await;
    };
    let kept = shown(email, &user, candidates).await;
    if kept.is_empty() {
        return on_disk(&store, move |s| s.finish_email(key, None)).await;
    }
    let items: Vec<DigestItem> = kept
        .iter()
        .map(|(c, room)| {
            let room_id = RoomId(c.at.notification.room_id);
            DigestItem {
                room: room.clone(),
                sender: c.at.notification.sender.clone(),
                reason: c.at.notification.reason.clone(),
                excerpt: c.at.notification.excerpt.clone(),
                link: email.url(&format!("/room/{}", encode_component(&room_id.to_string()))),
            }
        })
        .collect();
    let token = email
        .inner
        .key
        .unsubscribe_token(&delivery.username, &record.address);
    let unsubscribe = email.url(&format!(
        "/api/v1/account/email/unsubscribe?token={}",
        encode_component(&token)
    ));
    let text =
        spaces_email::render_digest(&delivery.username, &email.url(""), &items, &unsubscribe);
    let mail = Mail {
        to: record.address,
        subject: text.subject,
        body: text.body,
        unsubscribe: Some(unsubscribe),
    };
    let retry = match send(email, &mail).await {
        Ok(()) | Err(SendError::Permanent(_)) => None,
        Err(SendError::Transient(_)) if delivery.attempts + 1 >= MAX_ATTEMPTS => None,
        Err(SendError::Transient(_)) => {
            let again = EmailDelivery {
                attempts: delivery.attempts + 1,
                ..delivery
            };
            let due = now_ms() + retry_after(again.attempts).as_millis() as u64;
            Some((due, again))
        }
    };
    on_disk(&store, move |s| {
        s.finish_email(key, retry.as_ref().map(|(due, d)| (*due, d)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_and_encoding() {
        assert_eq!(retry_after(1), Duration::from_secs(60));
        assert_eq!(retry_after(2), Duration::from_secs(120));
        assert_eq!(retry_after(9), Duration::from_secs(4 * 3600));
        assert_eq!(retry_after(40), Duration::from_secs(4 * 3600));
        assert_eq!(encode_component("!a+b/c=.d_~"), "%21a%2Bb%2Fc%3D.d_~");
    }
}
