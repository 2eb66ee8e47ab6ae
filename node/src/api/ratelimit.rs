//! Token-bucket rate limits keyed by a string: a user for sends, a client
//! address for sign-ups (and one fixed key for node-wide limits). Buckets live
//! in memory; a restart forgives everyone, which is fine for limits measured
//! in seconds to hours. Sign-in attempts have their own guard (`crate::signin`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept at most: bounds memory under a flood of distinct keys (for
/// example sign-ups from many addresses). When full, buckets that have
/// refilled go first, then the least recently used half.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_rate(f64::from(per_sec), burst)
    }

    /// A limiter refilling `per_sec` tokens a second (a fraction for slow
    /// limits), holding at most `burst`.
    pub fn with_rate(per_sec: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            // A zero rate would never refill and divide by zero below.
            per_sec: per_sec.max(1e-9),
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), f64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let full_after = self.burst / self.per_sec;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full_after);
            if buckets.len() >= MAX_BUCKETS / 2 {
                let mut times: Vec<Instant> = buckets.values().map(|(_, at)| *at).collect();
                let middle = times.len() / 2;
                let cut = *times.select_nth_unstable(middle).1;
                buckets.retain(|_, (_, at)| *at > cut);
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.per_sec)
        }
    }

    /// Gives back the token a [`check`](Self::check) of `key` took, when what
    /// it paid for did not happen (a later limit refused it).
    pub fn refund(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = buckets.get_mut(key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_then_per_key_isolation() {
        let limiter = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > 0.0 && wait <= 1.0, "{wait}");
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn slow_rates_and_refunds() {
        // One an hour, burst 2.
        let limiter = RateLimiter::with_rate(1.0 / 3600.0, 2);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > 3590.0 && wait <= 3600.0, "{wait}");
        limiter.refund("a");
        assert!(limiter.check("a").is_ok());
        // A refund never lifts a bucket above its burst.
        limiter.refund("b");
        limiter.refund("b");
        assert!(limiter.check("b").is_ok());
    }

    /// Keys that keep their buckets busy still cannot grow the map past its bound.
    #[test]
    fn buckets_are_bounded_even_when_none_is_idle() {
        let limiter = RateLimiter::with_rate(1.0 / 3600.0, 5);
        for n in 0..(MAX_BUCKETS + 10) {
            let _ = limiter.check(&n.to_string());
        }
        assert!(limiter.len() <= MAX_BUCKETS, "{}", limiter.len());
    }
}
