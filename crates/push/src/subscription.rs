//! A browser's `PushSubscription`: where to send, and the keys to encrypt
//! for. Checked before the node keeps it, since the node will later send
//! requests to whatever endpoint it holds.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest endpoint URL kept: push services' URLs are a few hundred bytes.
pub const MAX_ENDPOINT_BYTES: usize = 1_024;

/// A checked subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: http::Uri,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The browser's 16-byte authentication secret.
    pub auth: [u8; 16],
}

/// Why a subscription was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("endpoint must be an absolute https URL of at most {MAX_ENDPOINT_BYTES} bytes")]
    Endpoint,
    #[error("endpoint must be https (http only on a loopback address, when the node allows it)")]
    Insecure,
    #[error("endpoint must not be a loopback, private or link-local address")]
    Internal,
    #[error("keys.p256dh must be a base64url P-256 public key")]
    P256dh,
    #[error("keys.auth must be 16 bytes in base64url")]
    Auth,
}

impl Subscription {
    /// Checks a subscription as a browser's `PushSubscription.toJSON()`
    /// gives it. `allow_loopback_http` lets `http://127.0.0.1:…` (or
    /// `[::1]`, `localhost`) through, for tests; never another `http`.
    pub fn parse(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        allow_loopback_http: bool,
    ) -> Result<Subscription, SubscriptionError> {
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(SubscriptionError::Endpoint);
        }
        let uri: http::Uri = endpoint.parse().map_err(|_| SubscriptionError::Endpoint)?;
        let host = uri.host().ok_or(SubscriptionError::Endpoint)?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            // No user info: nothing but a host and a port.
            return Err(SubscriptionError::Endpoint);
        }
        match uri.scheme_str() {
            // A push service is on the public internet: an address literal
            // of this machine or a private network is someone aiming the
            // node at what it can reach and they cannot.
            Some("https") if is_internal(host) => return Err(SubscriptionError::Internal),
            Some("https") => {}
            Some("http") if allow_loopback_http && is_loopback(host) => {}
            Some("http") => return Err(SubscriptionError::Insecure),
            _ => return Err(SubscriptionError::Endpoint),
        }
        let p256dh = URL_SAFE_NO_PAD
            .decode(p256dh.trim_end_matches('='))
            .map_err(|_| SubscriptionError::P256dh)?;
        if p256dh.len() != 65 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
            return Err(SubscriptionError::P256dh);
        }
        let auth = URL_SAFE_NO_PAD
            .decode(auth.trim_end_matches('='))
            .map_err(|_| SubscriptionError::Auth)?;
        let auth: [u8; 16] = auth.try_into().map_err(|_| SubscriptionError::Auth)?;
        Ok(Subscription {
            endpoint: uri,
            p256dh,
            auth,
        })
    }

    /// The endpoint's origin (`scheme://host[:port]`): the JWT's audience.
    pub fn origin(&self) -> String {
        let scheme = self.endpoint.scheme_str().unwrap_or("https");
        let authority = self.endpoint.authority().map_or("", |a| a.as_str());
        format!("{scheme}://{authority}")
    }
}

/// An address literal of a loopback, private, link-local or unspecified
/// range (names are resolved when the node sends; only literals are known
/// here).
fn is_internal(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT.
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some_and(|v4| is_internal(&v4.to_string()))
        }
        Err(_) => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (String, String) {
        let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        (
            URL_SAFE_NO_PAD.encode(point.as_bytes()),
            URL_SAFE_NO_PAD.encode([9u8; 16]),
        )
    }

    #[test]
    fn endpoints() {
        let (p, a) = keys();
        let ok = |e: &str, lo: bool| Subscription::parse(e, &p, &a, lo);
        assert!(ok("https://push.example/send/abc", false).is_ok());
        assert!(ok("https://8.8.8.8/send/abc", false).is_ok());
        assert_eq!(
            ok("https://push.example/x", false).unwrap().origin(),
            "https://push.example"
        );
        assert_eq!(
            ok("http://127.0.0.1:9/x", true).unwrap().origin(),
            "http://127.0.0.1:9"
        );
        assert!(ok("http://[::1]:9/x", true).is_ok());
        for (endpoint, loopback, want) in [
            ("http://127.0.0.1:9/x", false, SubscriptionError::Insecure),
            ("http://10.0.0.1/x", true, SubscriptionError::Insecure),
            ("http://example.com/x", true, SubscriptionError::Insecure),
            ("ftp://example.com/x", true, SubscriptionError::Endpoint),
            ("/relative", true, SubscriptionError::Endpoint),
            (
                "https://u:p@push.example/x",
                true,
                SubscriptionError::Endpoint,
            ),
            ("https://127.0.0.1/x", true, SubscriptionError::Internal),
            ("https://localhost/x", true, SubscriptionError::Internal),
            ("https://10.1.2.3/x", false, SubscriptionError::Internal),
            ("https://192.168.0.1/x", false, SubscriptionError::Internal),
            (
                "https://169.254.169.254/x",
                false,
                SubscriptionError::Internal,
            ),
            ("https://100.64.0.1/x", false, SubscriptionError::Internal),
            ("https://[::1]/x", false, SubscriptionError::Internal),
            ("https://[fd00::1]/x", false, SubscriptionError::Internal),
            ("https://[fe80::1]/x", false, SubscriptionError::Internal),
            (
                "https://[::ffff:10.0.0.1]/x",
                false,
                SubscriptionError::Internal,
            ),
            ("not a url", true, SubscriptionError::Endpoint),
        ] {
            assert_eq!(ok(endpoint, loopback), Err(want), "{endpoint}");
        }
        let long = format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT_BYTES));
        assert_eq!(ok(&long, false), Err(SubscriptionError::Endpoint));
    }

    #[test]
    fn keys_are_checked() {
        let (p, a) = keys();
        let e = "https://push.example/x";
        assert!(Subscription::parse(e, &format!("{p}="), &a, false).is_ok());
        assert_eq!(
            Subscription::parse(e, "AAAA", &a, false),
            Err(SubscriptionError::P256dh)
        );
        let not_on_curve = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(
            Subscription::parse(e, &not_on_curve, &a, false),
            Err(SubscriptionError::P256dh)
        );
        assert_eq!(
            Subscription::parse(e, &p, "AAAA", false),
            Err(SubscriptionError::Auth)
        );
    }
}
