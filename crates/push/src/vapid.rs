//! The node's VAPID key pair (RFC 8292): a P-256 key that the node keeps
//! in its data directory (32 bytes, the secret scalar) and whose public
//! half browsers are given as `applicationServerKey`. Push services check
//! that every request to a subscription carries a JWT signed by the key
//! the subscription was made with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

use crate::Error;

/// The node's VAPID key.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
    /// The uncompressed public point (65 bytes), base64url without padding.
    public_b64: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new random key.
    pub fn generate() -> VapidKey {
        loop {
            let bytes: [u8; 32] = rand::random();
            // Almost every 32 bytes is a valid scalar (below the order, not 0).
            if let Ok(key) = VapidKey::from_bytes(&bytes) {
                return key;
            }
        }
    }

    /// The key whose secret scalar is `bytes` (what [`VapidKey::to_bytes`]
    /// gave).
    pub fn from_bytes(bytes: &[u8]) -> Result<VapidKey, Error> {
        // from_slice takes shorter slices too (left-padded): a key file is 32 bytes or damaged.
        if bytes.len() != 32 {
            return Err(Error::Key(format!("{} bytes, expected 32", bytes.len())));
        }
        let signing = SigningKey::from_slice(bytes).map_err(|e| Error::Key(e.to_string()))?;
        let point = signing.verifying_key().to_encoded_point(false);
        let public_b64 = URL_SAFE_NO_PAD.encode(point.as_bytes());
        Ok(VapidKey {
            signing,
            public_b64,
        })
    }

    /// The secret scalar, to keep in the data directory.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes().into()
    }

    /// The public key as browsers take it (`applicationServerKey`) and as
    /// the `k` of the `Authorization` header: the uncompressed point,
    /// base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// The ES256 JWT for a push service at `audience` (the endpoint's
    /// origin), valid until `expires_s` (Unix seconds), naming `subject`
    /// (a `mailto:` or `https:` contact).
    pub fn jwt(&self, audience: &str, expires_s: u64, subject: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": expires_s, "sub": subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        // RFC 6979 deterministic ECDSA over SHA-256; JWS wants r ‖ s.
        let signature: Signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// The `Authorization` header value of RFC 8292: `vapid t=<jwt>, k=<key>`.
    pub fn authorization(&self, audience: &str, expires_s: u64, subject: &str) -> String {
        format!(
            "vapid t={}, k={}",
            self.jwt(audience, expires_s, subject),
            self.public_b64
        )
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier as _;

    use super::*;

    #[test]
    fn round_trips_and_signs_a_verifiable_jwt() {
        let key = VapidKey::generate();
        let again = VapidKey::from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = URL_SAFE_NO_PAD.decode(key.public_key()).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 4, "uncompressed point");

        let jwt = key.jwt("https://push.example", 1_700_000_000, "mailto:ops@example");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example");
        assert_eq!(claims["exp"], 1_700_000_000u64);
        let verifying = VerifyingKey::from_sec1_bytes(&public).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        verifying.verify(signed.as_bytes(), &signature).unwrap();
        assert!(
            verifying.verify(b"something else", &signature).is_err(),
            "the signature is over the JWT"
        );
        assert!(
            key.authorization("https://push.example", 1, "mailto:x")
                .starts_with("vapid t=")
        );
        assert!(VapidKey::from_bytes(&[0; 32]).is_err());
        assert!(VapidKey::from_bytes(&[1; 31]).is_err());
    }
}
