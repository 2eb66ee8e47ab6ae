//! A push request (RFC 8030 §5): the payload encrypted for the
//! subscription with `aes128gcm` (RFC 8291), with `TTL`, `Urgency` and the
//! node's VAPID `Authorization` (RFC 8292).

use std::time::Duration;

use crate::{Error, Subscription, VapidKey};

/// Largest plaintext: RFC 8291 allows a 4,096-byte encrypted body, of
/// which the header (86 bytes with a 65-byte key id), the padding
/// delimiter and the AEAD tag (17) take 103.
pub const MAX_PAYLOAD_BYTES: usize = 3_993;

/// How soon the push service should deliver (RFC 8030 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// The request that pushes `payload` to `subscription`: kept by the push
/// service for `ttl`, signed by `key` until `now_s` + 12 hours (the
/// longest RFC 8292 allows is 24), naming `contact`.
pub fn build(
    subscription: &Subscription,
    payload: &[u8],
    ttl: Duration,
    urgency: Urgency,
    key: &VapidKey,
    contact: &str,
    now_s: u64,
) -> Result<http::Request<Vec<u8>>, Error> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::TooLarge(payload.len()));
    }
    let ua_public = web_push_native::p256::PublicKey::from_sec1_bytes(&subscription.p256dh)
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    let auth = web_push_native::Auth::clone_from_slice(&subscription.auth);
    let mut request =
        web_push_native::WebPushBuilder::new(subscription.endpoint.clone(), ua_public, auth)
            .with_valid_duration(ttl)
            .build(payload.to_vec())
            .map_err(|e| Error::Encrypt(e.to_string()))?;
    let authorization = key.authorization(&subscription.origin(), now_s + 12 * 3600, contact);
    let headers = request.headers_mut();
    headers.insert(
        http::header::AUTHORIZATION,
        authorization
            .parse()
            .map_err(|_| Error::Key("authorization header".into()))?,
    );
    headers.insert("urgency", http::HeaderValue::from_static(urgency.as_str()));
    Ok(request)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;

    use super::*;

    /// Built and then decrypted with the browser's secret: the payload
    /// comes back, the headers are there.
    #[test]
    fn encrypts_for_the_subscription() {
        let browser = p256::SecretKey::from_slice(&[5; 32]).unwrap();
        let point = browser.public_key().to_encoded_point(false);
        let subscription = Subscription::parse(
            "https://push.example/s/1",
            &URL_SAFE_NO_PAD.encode(point.as_bytes()),
            &URL_SAFE_NO_PAD.encode([3u8; 16]),
            false,
        )
        .unwrap();
        let key = VapidKey::generate();
        let request = build(
            &subscription,
            b"{\"hello\":1}",
            Duration::from_secs(60),
            Urgency::High,
            &key,
            "mailto:ops@example",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(request.headers()["ttl"], "60");
        assert_eq!(request.headers()["urgency"], "high");
        assert_eq!(request.headers()["content-encoding"], "aes128gcm");
        let secret = web_push_native::p256::SecretKey::from_slice(&[5; 32]).unwrap();
        let auth = web_push_native::Auth::clone_from_slice(&[3u8; 16]);
        let plain = web_push_native::decrypt(request.body().clone(), &secret, &auth).unwrap();
        assert_eq!(plain, b"{\"hello\":1}");
        let too_big = vec![b'x'; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            build(
                &subscription,
                &too_big,
                Duration::ZERO,
                Urgency::Low,
                &key,
                "x",
                0
            ),
            Err(Error::TooLarge(_))
        ));
        let largest = vec![b'x'; MAX_PAYLOAD_BYTES];
        let request = build(
            &subscription,
            &largest,
            Duration::ZERO,
            Urgency::Low,
            &key,
            "x",
            0,
        )
        .unwrap();
        assert!(request.body().len() <= 4096);
    }
}
