//! Sign-in throttling: who may try a password now, and the node-wide alarm.
//!
//! One guard per node, one mutex over all its tables, so each decision — may
//! this attempt go ahead, and what does it count against — is taken in one
//! step. Tables live in memory only: a restart forgives everyone, and each
//! table is bounded (idle entries are forgotten, and when a table is full the
//! least recently touched half goes).
//!
//! An attempt comes from a *source* (the client's IPv4 address, or the /64
//! prefix of an IPv6 one: anyone holds a whole /64) and names a username,
//! whether or not an account has it (so throttling is no username oracle).
//! Three limits apply to an attempt from an unknown device:
//!
//! - per source: a token bucket of failed sign-ins over all usernames, which
//!   stops one address spraying a password across many accounts;
//! - per (source, username): after `pair_free_failures` consecutive failures,
//!   exponential back-off (`backoff_base`, doubling per failure, at most
//!   `backoff_max`), which stops one address guessing one account;
//! - per username: the same back-off after `account_free_failures`
//!   consecutive failures counted from all sources — but a source counts
//!   against the account only for its first `pair_free_failures` failures in
//!   a row, so one address alone can never put an account in back-off. This
//!   stops many addresses guessing one account.
//!
//! A *known device* is one that presents a valid device token for this
//! username (issued at an earlier successful sign-in, see
//! `spaces_auth::DeviceKey`). Its attempts skip all three limits, so an
//! account under attack stays open to its owner's devices; each device has
//! `pair_free_failures` consecutive failures of its own before it is treated
//! as unknown, so a stolen device token buys a handful of guesses, no more.
//! A passkey would be a stronger proof still: [`Trust`] is where it goes.
//!
//! Every attempt is counted as a failure when it is let through and undone
//! when its password turns out right ([`Guard::finish`]), so concurrent
//! guesses cannot all slip past a limit before the first failure is recorded.
//! A refused attempt (429) counts against nothing: no password was checked.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use spaces_auth::DeviceId;

use crate::metrics::Metrics;

/// Entries per table at most. Each is well under 100 bytes, so the four
/// tables stay under about 40 MiB even when an attacker fills them all.
const MAX_ENTRIES: usize = 100_000;

/// What the node knows about where an attempt comes from, beyond its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Nothing: the first sign-in from this client, or it kept no token.
    Unknown,
    /// A valid device token for this username.
    KnownDevice(DeviceId),
}

/// The guard's limits; `config.rs` fills them from `[login]`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Failed sign-ins per source over all usernames: burst, then refill.
    pub source_burst: u32,
    pub source_per_min: f64,
    /// Consecutive failures of one source on one username (and of one known
    /// device) before back-off.
    pub pair_free_failures: u32,
    /// Consecutive failures on one username, counted as the module docs say,
    /// before back-off for unknown devices.
    pub account_free_failures: u32,
    /// The first back-off wait; each further failure doubles it.
    pub backoff_base: Duration,
    /// The longest back-off wait.
    pub backoff_max: Duration,
    /// Failed sign-ins node-wide per minute at which the alarm goes on.
    pub alarm_failures_per_min: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            source_burst: 30,
            source_per_min: 10.0,
            pair_free_failures: 5,
            account_free_failures: 20,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15 * 60),
            alarm_failures_per_min: 100,
        }
    }
}

/// The key of a source: an IPv4 address, or an IPv6 /64 (the last 64 bits
/// zeroed). IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// A sign-in let through by [`Guard::begin`]; hand it to [`Guard::finish`].
#[derive(Debug)]
#[must_use = "finish the attempt so a right password undoes its failure"]
pub struct Attempt {
    source: IpAddr,
    username: String,
    device: Option<DeviceId>,
    /// Whether it took a token from its source's bucket.
    charged_source: bool,
}

#[derive(Debug)]
pub struct Guard {
    options: Options,
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    sources: HashMap<IpAddr, Bucket>,
    pairs: HashMap<(IpAddr, String), Streak>,
    accounts: HashMap<String, Streak>,
    devices: HashMap<DeviceId, Streak>,
    alarm: FailureRate,
}

/// Failed sign-ins still allowed to a source, refilled over time.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Consecutive failures, and when the last was let through.
#[derive(Clone, Copy, Debug)]
struct Streak {
    failures: u32,
    last: Instant,
}

/// Failures in the current and the previous minute, for a sliding estimate.
#[derive(Debug, Default)]
struct FailureRate {
    window_start: Option<Instant>,
    current: u64,
    previous: u64,
    on: bool,
}

const WINDOW: Duration = Duration::from_secs(60);

trait Touched {
    fn touched(&self) -> Instant;
}

impl Touched for Bucket {
    fn touched(&self) -> Instant {
        self.at
    }
}

impl Touched for Streak {
    fn touched(&self) -> Instant {
        self.last
    }
}

impl Guard {
    pub fn new(options: Options) -> Guard {
        Guard {
            options,
            tables: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every change below leaves the tables consistent between statements.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a streak is remembered after its last failure: past the
    /// longest back-off, so a patient guesser stays at the slowest rate.
    fn memory(&self) -> Duration {
        self.options
            .backoff_max
            .saturating_mul(2)
            .max(Duration::from_secs(3600))
    }

    /// The back-off wait after `failures` consecutive failures, of which
    /// `free` cost nothing; zero while within `free`.
    fn wait(&self, failures: u32, free: u32) -> Duration {
        let Some(over) = failures.checked_sub(free) else {
            return Duration::ZERO;
        };
        let factor = 2u32.saturating_pow(over);
        self.options
            .backoff_base
            .saturating_mul(factor)
            .min(self.options.backoff_max)
    }

    /// May a sign-in for `username` from `source` check its password now?
    /// `Err` is how long to wait (the longest of the limits that refused).
    pub fn begin(
        &self,
        source: IpAddr,
        username: &str,
        trust: Trust,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let source = source_of(source);
        let memory = self.memory();
        let free = self.options.pair_free_failures;
        let mut tables = self.lock();
        let tables = &mut *tables;
        if let Trust::KnownDevice(device_id) = trust {
            let streak = slot(&mut tables.devices, device_id, now, memory, |_| {
                Streak::new(now)
            });
            if streak.failures < free {
                streak.fail(now);
                return Ok(Attempt {
                    source,
                    username: username.to_owned(),
                    device: Some(device_id),
                    charged_source: false,
                });
            }
            // Too many wrong passwords from this device: it is treated as
            // unknown until a right one.
        }

        let (burst, per_sec) = (
            f64::from(self.options.source_burst),
            self.options.source_per_min / 60.0,
        );
        let full_after = seconds(burst / per_sec);
        let bucket = slot(&mut tables.sources, source, now, full_after, |_| Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * per_sec)
            .min(burst);
        bucket.at = now;
        let mut wait = if bucket.tokens >= 1.0 {
            Duration::ZERO
        } else {
            seconds((1.0 - bucket.tokens) / per_sec)
        };
        let pair_key = (source, username.to_owned());
        let pair = tables.pairs.get(&pair_key).copied();
        if let Some(pair) = pair {
            wait = wait.max(remaining(pair.last, self.wait(pair.failures, free), now));
        }
        let account = tables.accounts.get(username).copied();
        if let Some(account) = account {
            let backoff = self.wait(account.failures, self.options.account_free_failures);
            wait = wait.max(remaining(account.last, backoff, now));
        }
        if !wait.is_zero() {
            return Err(wait);
        }

        bucket.tokens -= 1.0;
        let pair = slot(&mut tables.pairs, pair_key, now, memory, |_| {
            Streak::new(now)
        });
        pair.fail(now);
        // Beyond its free failures a source is throttled by its own back-off
        // and no longer counts against the account (see the module docs).
        if pair.failures <= free {
            slot(
                &mut tables.accounts,
                username.to_owned(),
                now,
                memory,
                |_| Streak::new(now),
            )
            .fail(now);
        }
        Ok(Attempt {
            source,
            username: username.to_owned(),
            device: match trust {
                Trust::KnownDevice(device_id) => Some(device_id),
                Trust::Unknown => None,
            },
            charged_source: true,
        })
    }

    /// May a client at `source` present a passkey now? A passkey cannot be
    /// guessed, so its failures say nothing about an account: only the
    /// source's bucket is charged (a client trying stolen or made-up
    /// assertions is slowed like one spraying passwords), and an account in
    /// back-off from password guesses does not keep its owner's passkey out.
    /// Hand the attempt to [`finish`](Self::finish).
    pub fn begin_passkey(&self, source: IpAddr, now: Instant) -> Result<Attempt, Duration> {
        let source = source_of(source);
        let mut tables = self.lock();
        let (burst, per_sec) = (
            f64::from(self.options.source_burst),
            self.options.source_per_min / 60.0,
        );
        let full_after = seconds(burst / per_sec);
        let bucket = slot(&mut tables.sources, source, now, full_after, |_| Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * per_sec)
            .min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(seconds((1.0 - bucket.tokens) / per_sec));
        }
        bucket.tokens -= 1.0;
        Ok(Attempt {
            source,
            // No username: `finish` clears no account's streak for a passkey
            // (the empty name is no account's: usernames are never empty).
            username: String::new(),
            device: None,
            charged_source: true,
        })
    }

    /// The end of an attempt: `ok` if its password was right. A right one
    /// clears the streaks it touched and gives its source its token back; a
    /// wrong one stays counted, and feeds the node-wide failure rate.
    pub fn finish(&self, attempt: Attempt, ok: bool, now: Instant, metrics: &Metrics) {
        let mut tables = self.lock();
        if !ok {
            metrics.login_failures.add(1);
            tables.alarm.record(now);
            self.update_alarm(&mut tables.alarm, now, metrics);
            return;
        }
        if let Some(device_id) = attempt.device {
            tables.devices.remove(&device_id);
        }
        // The owner is here: the account's streak ends.
        tables.accounts.remove(&attempt.username);
        // A known device let past the limits says nothing about the other
        // clients at its address (a shared NAT may hold the guesser too), so
        // only an attempt that went through them clears them.
        if attempt.charged_source {
            if let Some(bucket) = tables.sources.get_mut(&attempt.source) {
                bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.options.source_burst));
            }
            tables
                .pairs
                .remove(&(attempt.source, attempt.username.clone()));
        }
    }

    /// Re-evaluates the alarm at `now` (for a scrape while no failures come).
    pub fn tick(&self, now: Instant, metrics: &Metrics) {
        let mut tables = self.lock();
        self.update_alarm(&mut tables.alarm, now, metrics);
    }

    fn update_alarm(&self, alarm: &mut FailureRate, now: Instant, metrics: &Metrics) {
        let per_min = alarm.per_min(now);
        let threshold = f64::from(self.options.alarm_failures_per_min);
        let on = per_min >= threshold;
        if on != alarm.on {
            alarm.on = on;
            metrics.login_failure_alarm.set(i64::from(on));
            if on {
                tracing::warn!(
                    failures_per_min = per_min.round() as u64,
                    threshold = self.options.alarm_failures_per_min,
                    "sign-in failure rate above the alarm threshold: a password-guessing run?"
                );
            } else {
                tracing::info!(
                    failures_per_min = per_min.round() as u64,
                    "sign-in failure rate back below the alarm threshold"
                );
            }
        }
    }
}

impl Streak {
    fn new(now: Instant) -> Streak {
        Streak {
            failures: 0,
            last: now,
        }
    }

    fn fail(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last = now;
    }
}

impl FailureRate {
    /// Moves the windows up to `now`.
    fn roll(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW * 2 {
            self.previous = 0;
            self.current = 0;
            self.window_start = Some(now);
        } else if elapsed >= WINDOW {
            self.previous = self.current;
            self.current = 0;
            self.window_start = Some(start + WINDOW);
        }
    }

    fn record(&mut self, now: Instant) {
        self.roll(now);
        self.current += 1;
    }

    /// Failures in the minute before `now`: the current window's, plus the
    /// previous window's in proportion to how much of it that minute covers.
    fn per_min(&mut self, now: Instant) -> f64 {
        self.roll(now);
        let start = self.window_start.unwrap_or(now);
        let into = now.saturating_duration_since(start).as_secs_f64() / WINDOW.as_secs_f64();
        self.current as f64 + self.previous as f64 * (1.0 - into.min(1.0))
    }
}

/// What is left at `now` of a wait of `wait` from `since`.
fn remaining(since: Instant, wait: Duration, now: Instant) -> Duration {
    since
        .checked_add(wait)
        .map_or(wait, |ready| ready.saturating_duration_since(now))
}

/// A number of seconds as a duration, at most a day (also for infinities
/// and NaN, which a zero rate would give).
fn seconds(secs: f64) -> Duration {
    const DAY: Duration = Duration::from_secs(86_400);
    Duration::try_from_secs_f64(secs).map_or(DAY, |duration| duration.min(DAY))
}

/// The entry for `key`, made by `make` if absent. When the table is full,
/// entries untouched for `idle` go first, then the least recently touched
/// half, so memory stays bounded whatever the keys.
fn slot<K: Hash + Eq + Clone, V: Touched>(
    table: &mut HashMap<K, V>,
    key: K,
    now: Instant,
    idle: Duration,
    make: impl FnOnce(&K) -> V,
) -> &mut V {
    if table.len() >= MAX_ENTRIES && !table.contains_key(&key) {
        table.retain(|_, value| now.saturating_duration_since(value.touched()) < idle);
        if table.len() >= MAX_ENTRIES / 2 {
            let mut times: Vec<Instant> = table.values().map(Touched::touched).collect();
            let middle = times.len() / 2;
            let (_, cut, _) = times.select_nth_unstable(middle);
            let cut = *cut;
            table.retain(|_, value| value.touched() > cut);
        }
    }
    table.entry(key).or_insert_with_key(make)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            source_burst: 30,
            source_per_min: 10.0,
            pair_free_failures: 3,
            account_free_failures: 6,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            alarm_failures_per_min: 10,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn passkey_attempts_spend_only_their_source() {
        let guard = Guard::new(options());
        let metrics = Metrics::default();
        let now = Instant::now();
        // An account locked by password guesses does not stop a passkey.
        fail(&guard, ip(1), "alice", Trust::Unknown, now, 3);
        fail(&guard, ip(2), "alice", Trust::Unknown, now, 3);
        assert!(guard.begin(ip(3), "alice", Trust::Unknown, now).is_err());
        let attempt = guard.begin_passkey(ip(3), now).unwrap();
        guard.finish(attempt, true, now, &metrics);
        // Failed passkey attempts drain the source like wrong passwords.
        let mut refused = false;
        for _ in 0..100 {
            match guard.begin_passkey(ip(4), now) {
                Ok(attempt) => guard.finish(attempt, false, now, &metrics),
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "the source was never throttled");
        // Another source is not.
        assert!(guard.begin_passkey(ip(5), now).is_ok());
    }

    /// Fails `n` attempts; panics if one is refused.
    fn fail(guard: &Guard, source: IpAddr, user: &str, trust: Trust, now: Instant, n: u32) {
        let metrics = Metrics::default();
        for i in 0..n {
            let attempt = guard
                .begin(source, user, trust, now)
                .unwrap_or_else(|wait| panic!("attempt {i} refused for {wait:?}"));
            guard.finish(attempt, false, now, &metrics);
        }
    }

    #[test]
    fn ipv6_sources_are_slash_64s() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b));
        assert_ne!(source_of(a), source_of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_of(mapped), IpAddr::from([192, 0, 2, 7]));
    }

    /// One source guessing one account backs off exponentially; the account
    /// stays open to other sources, and a right password clears the streak.
    #[test]
    fn one_source_backs_off_and_others_do_not() {
        let guard = Guard::new(options());
        let t0 = Instant::now();
        fail(&guard, ip(1), "alice", Trust::Unknown, t0, 3);
        assert_eq!(
            guard.begin(ip(1), "alice", Trust::Unknown, t0).unwrap_err(),
            Duration::from_secs(1)
        );
        let t1 = t0 + Duration::from_secs(1);
        fail(&guard, ip(1), "alice", Trust::Unknown, t1, 1);
        assert_eq!(
            guard.begin(ip(1), "alice", Trust::Unknown, t1).unwrap_err(),
            Duration::from_secs(2)
        );
        // Many more failures from the one source: it never puts the account
        // in back-off, so the owner signs in from elsewhere.
        let mut now = t1;
        for _ in 0..20 {
            now += Duration::from_secs(61);
            fail(&guard, ip(1), "alice", Trust::Unknown, now, 1);
        }
        assert_eq!(
            guard
                .begin(ip(1), "alice", Trust::Unknown, now)
                .unwrap_err(),
            Duration::from_secs(60),
            "capped at backoff_max"
        );
        let owner = guard.begin(ip(2), "alice", Trust::Unknown, now).unwrap();
        guard.finish(owner, true, now, &Metrics::default());
        // Other usernames from the guessing source are not in its back-off.
        fail(&guard, ip(1), "bob", Trust::Unknown, now, 1);
    }

    /// Many sources guessing one account put it in back-off for unknown
    /// devices; a known device still gets through, and its success clears it.
    #[test]
    fn many_sources_back_the_account_off_but_known_devices_pass() {
        let guard = Guard::new(options());
        let now = Instant::now();
        fail(&guard, ip(1), "alice", Trust::Unknown, now, 3);
        fail(&guard, ip(2), "alice", Trust::Unknown, now, 3);
        assert!(guard.begin(ip(3), "alice", Trust::Unknown, now).is_err());
        let device = Trust::KnownDevice([1; 16]);
        let owner = guard.begin(ip(3), "alice", device, now).unwrap();
        guard.finish(owner, true, now, &Metrics::default());
        let after = guard.begin(ip(3), "alice", Trust::Unknown, now).unwrap();
        guard.finish(after, true, now, &Metrics::default());
    }

    /// The owner's device signing in behind the guesser's address (a shared
    /// NAT) does not lift the guesser's back-off.
    #[test]
    fn a_known_device_success_leaves_its_address_throttled() {
        let guard = Guard::new(options());
        let now = Instant::now();
        fail(&guard, ip(1), "alice", Trust::Unknown, now, 3);
        let owner = guard
            .begin(ip(1), "alice", Trust::KnownDevice([3; 16]), now)
            .unwrap();
        guard.finish(owner, true, now, &Metrics::default());
        assert!(guard.begin(ip(1), "alice", Trust::Unknown, now).is_err());
    }

    /// A known device gets `pair_free_failures` wrong passwords of its own,
    /// then it is as unknown as any other.
    #[test]
    fn a_stolen_device_token_buys_a_few_guesses() {
        let guard = Guard::new(options());
        let now = Instant::now();
        fail(&guard, ip(1), "alice", Trust::Unknown, now, 3);
        fail(&guard, ip(2), "alice", Trust::Unknown, now, 3);
        let device = Trust::KnownDevice([2; 16]);
        fail(&guard, ip(3), "alice", device, now, 3);
        assert!(guard.begin(ip(3), "alice", device, now).is_err());
    }

    /// Spraying: one source, a different username each time.
    #[test]
    fn spraying_from_one_source_is_limited() {
        let guard = Guard::new(options());
        let now = Instant::now();
        for n in 0..30 {
            fail(&guard, ip(1), &format!("user{n}"), Trust::Unknown, now, 1);
        }
        let wait = guard
            .begin(ip(1), "user99", Trust::Unknown, now)
            .unwrap_err();
        assert!(
            wait.abs_diff(Duration::from_secs(6)) < Duration::from_millis(1),
            "10 per minute: {wait:?}"
        );
        assert!(guard.begin(ip(2), "user99", Trust::Unknown, now).is_ok());
        // Right passwords do not use the source up.
        let metrics = Metrics::default();
        for _ in 0..100 {
            let attempt = guard.begin(ip(3), "carol", Trust::Unknown, now).unwrap();
            guard.finish(attempt, true, now, &metrics);
        }
    }

    #[test]
    fn the_alarm_follows_the_failure_rate() {
        let guard = Guard::new(options());
        let metrics = Metrics::default();
        let now = Instant::now();
        for n in 0..10u8 {
            let user = format!("user{n}");
            let attempt = guard.begin(ip(n), &user, Trust::Unknown, now).unwrap();
            guard.finish(attempt, false, now, &metrics);
        }
        assert_eq!(metrics.login_failures.get(), 10);
        assert_eq!(metrics.login_failure_alarm.get(), 1);
        guard.tick(now + Duration::from_secs(90), &metrics);
        assert_eq!(
            metrics.login_failure_alarm.get(),
            0,
            "half a minute's worth"
        );
    }

    #[test]
    fn tables_are_bounded() {
        let mut table: HashMap<u32, Streak> = HashMap::new();
        let t0 = Instant::now();
        for n in 0..(MAX_ENTRIES as u32 + 10) {
            let now = t0 + Duration::from_millis(u64::from(n));
            slot(&mut table, n, now, Duration::from_secs(3600), |_| {
                Streak::new(now)
            })
            .fail(now);
        }
        assert!(table.len() <= MAX_ENTRIES, "{}", table.len());
        assert!(table.contains_key(&(MAX_ENTRIES as u32 + 9)));
        assert!(!table.contains_key(&0), "the oldest went first");
    }
}
