//! Client numbers turned into times and counts. Every duration, count and
//! page size a client sends passes through one of these helpers, which
//! check it against the range docs/spec/api.md gives it (a clear 400
//! `bad_value` naming the range) or saturate where the protocol already
//! bounds the result. None of them can overflow or wrap: a huge
//! `expires_in_secs` once wrapped to an expiry in the past. The clock is
//! an argument, so the property tests below cover any `now`.

use super::error::{ApiError, ApiResult};

/// Longest lifetime of an invite token or an invite link: a year. Longer
/// is "never", which a client asks for by leaving the field out.
pub const MAX_EXPIRES_SECS: u64 = 365 * 86_400;
/// Most uses of one invite token or link. A link for a whole community,
/// not a way to fill the node.
pub const MAX_USES: u32 = 10_000;
/// History page size bounds: enough for a screen, small enough to answer
/// fast while the room is locked.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// A role's color is 0xRRGGBB.
pub const MAX_COLOR: u32 = 0xFF_FFFF;

/// When something that lives `secs` from `now_ms` expires: `None` (never)
/// when the client sent none, else 1 s to [`MAX_EXPIRES_SECS`].
pub fn expiry(now_ms: u64, secs: Option<u64>) -> ApiResult<Option<u64>> {
    let Some(secs) = secs else {
        return Ok(None);
    };
    if !(1..=MAX_EXPIRES_SECS).contains(&secs) {
        return Err(ApiError::bad_request(
            "bad_value",
            format!("expires_in_secs must be 1–{MAX_EXPIRES_SECS}, or left out for no expiry"),
        ));
    }
    // secs ≤ a year, so secs * 1000 is far below u64::MAX; saturating in
    // case `now_ms` is absurd.
    Ok(Some(now_ms.saturating_add(secs * 1000)))
}

/// Uses of an invite token: 1 to [`MAX_USES`]; absent means 1.
pub fn token_uses(uses: Option<u32>) -> ApiResult<u32> {
    match uses.unwrap_or(1) {
        uses @ 1..=MAX_USES => Ok(uses),
        _ => Err(ApiError::bad_request(
            "bad_value",
            format!("uses must be 1–{MAX_USES}"),
        )),
    }
}

/// Uses of an invite link: 1 to [`MAX_USES`]; 0 or absent means the maximum.
pub fn link_uses(uses: Option<u32>) -> ApiResult<u32> {
    match uses.unwrap_or(0) {
        0 => Ok(MAX_USES),
        uses @ 1..=MAX_USES => Ok(uses),
        _ => Err(ApiError::bad_request(
            "bad_value",
            format!("uses must be 0–{MAX_USES} (0: {MAX_USES})"),
        )),
    }
}

/// The end of a timeout of `seconds` from `now_ms`; 0 lifts it (0). Saturates:
/// the auth rules refuse an end more than 28 days after the event (403
/// `bad_value`), so a huge number is refused there, never wrapped here.
pub fn timeout_until(now_ms: u64, seconds: u64) -> u64 {
    if seconds == 0 {
        0
    } else {
        now_ms.saturating_add(seconds.saturating_mul(1000))
    }
}

/// A history page size: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::bad_request(
            "bad_value",
            format!("limit must be 1–{MAX_PAGE}"),
        )),
    }
}

/// A role color: 0xRRGGBB, so 0 to [`MAX_COLOR`].
pub fn color(color: Option<u32>) -> ApiResult<Option<u32>> {
    match color {
        Some(c) if c > MAX_COLOR => Err(ApiError::bad_request(
            "bad_value",
            format!("color must be 0–{MAX_COLOR} (0xRRGGBB)"),
        )),
        c => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use spaces_protocol::auth::MAX_TIMEOUT_MS;

    use super::*;

    /// A plausible clock: any time up to the year 2500, plus the edges.
    fn now() -> impl Strategy<Value = u64> {
        prop_oneof![0..16_725_225_600_000u64, Just(u64::MAX), Just(0)]
    }

    /// Numbers a hostile client sends: small, near the limits, huge, and
    /// the one that used to wrap (u64::MAX / 1000 + 1).
    fn secs() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0..=MAX_EXPIRES_SECS + 2,
            Just(18_446_744_073_709_552),
            Just(u64::MAX),
        ]
    }

    proptest! {
        #[test]
        fn an_expiry_is_never_in_the_past_and_never_beyond_a_year(now in now(), secs in secs()) {
            match expiry(now, Some(secs)) {
                Ok(Some(at)) => {
                    prop_assert!((1..=MAX_EXPIRES_SECS).contains(&secs));
                    prop_assert!(at > now || now == u64::MAX);
                    prop_assert!(at - now <= MAX_EXPIRES_SECS * 1000);
                }
                Ok(None) => prop_assert!(false, "a given expiry is never dropped"),
                Err(e) => {
                    prop_assert!(secs == 0 || secs > MAX_EXPIRES_SECS);
                    prop_assert_eq!(e.code, "bad_value");
                }
            }
            prop_assert_eq!(expiry(now, None).ok(), Some(None));
        }

        #[test]
        fn a_timeout_ends_after_now_or_is_lifted(now in now(), secs in secs()) {
            let until = timeout_until(now, secs);
            if secs == 0 {
                prop_assert_eq!(until, 0);
            } else {
                prop_assert!(until >= now);
                // Exact whenever it fits; otherwise the ceiling, which the
                // auth rules refuse as more than 28 days away.
                match secs.checked_mul(1000).and_then(|ms| now.checked_add(ms)) {
                    Some(exact) => prop_assert_eq!(until, exact),
                    None => prop_assert_eq!(until, u64::MAX),
                }
            }
        }

        #[test]
        fn counts_are_in_range_or_refused(
            uses in prop::option::of(any::<u32>()),
            limit in prop::option::of(any::<usize>()),
            c in prop::option::of(any::<u32>()),
        ) {
            match token_uses(uses) {
                Ok(n) => prop_assert!((1..=MAX_USES).contains(&n)),
                Err(_) => prop_assert!(uses.is_some_and(|u| u == 0 || u > MAX_USES)),
            }
            match link_uses(uses) {
                Ok(n) => prop_assert!((1..=MAX_USES).contains(&n)),
                Err(_) => prop_assert!(uses.is_some_and(|u| u > MAX_USES)),
            }
            match page_limit(limit) {
                Ok(n) => prop_assert!((1..=MAX_PAGE).contains(&n)),
                Err(_) => prop_assert!(limit.is_some_and(|l| l == 0 || l > MAX_PAGE)),
            }
            match color(c) {
                Ok(got) => prop_assert!(got == c && c.is_none_or(|c| c <= MAX_COLOR)),
                Err(_) => prop_assert!(c.is_some_and(|c| c > MAX_COLOR)),
            }
        }
    }

    #[test]
    fn the_edges() {
        let now = 1_700_000_000_000;
        assert_eq!(
            expiry(now, Some(MAX_EXPIRES_SECS)).unwrap(),
            Some(now + MAX_EXPIRES_SECS * 1000)
        );
        assert!(expiry(now, Some(MAX_EXPIRES_SECS + 1)).is_err());
        assert!(expiry(now, Some(0)).is_err());
        // The number that used to wrap to 1970.
        assert!(expiry(now, Some(18_446_744_073_709_552)).is_err());
        assert_eq!(token_uses(None).unwrap(), 1);
        assert_eq!(link_uses(None).unwrap(), MAX_USES);
        assert_eq!(link_uses(Some(0)).unwrap(), MAX_USES);
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(
            timeout_until(now, MAX_TIMEOUT_MS / 1000),
            now + MAX_TIMEOUT_MS
        );
        assert_eq!(color(Some(MAX_COLOR)).unwrap(), Some(MAX_COLOR));
    }
}
