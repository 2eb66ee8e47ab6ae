//! The ID-token signing key: Ed25519, from a 32-byte seed the node keeps in
//! its data directory (`oidc.key`), published as a one-key JWKS.
//!
//! The key id is the base64url of the first 8 bytes of the BLAKE3 hash of
//! the public key: stable for a key, different for another, so a client
//! that cached the JWKS notices a new key. Signing and the JWK's encoding
//! are jsonwebtoken's (aws-lc-rs underneath); this module only turns the
//! seed into the PKCS#8 document those want.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The DER of a PKCS#8 v1 `PrivateKeyInfo` for Ed25519 (RFC 8410 §7) up to
/// the 32-byte seed: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
/// OCTET STRING { OCTET STRING (32 bytes) } }.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be used or a token signed (a bug or a bad key file,
/// never the client's doing).
#[derive(Debug, thiserror::Error)]
#[error("ID-token signing: {0}")]
pub struct Error(#[from] jsonwebtoken::errors::Error);

/// The provider's signing key. `Debug` shows the key id only.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The claims of an ID token (OpenID Connect Core §2, §5.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer: the node's public URL.
    pub iss: String,
    /// The user id (`@name:node`): stable and never reassigned.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Unix seconds.
    pub exp: u64,
    pub iat: u64,
    /// When the user consented (unix seconds).
    pub auth_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// With the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// With the `profile` scope, when the user set a display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl SigningKey {
    /// The key whose Ed25519 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, Error> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(seed);
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)?;
        let public = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => {
                URL_SAFE_NO_PAD.decode(&okp.x).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let kid = URL_SAFE_NO_PAD.encode(&blake3::hash(&public).as_bytes()[..8]);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey { encoding, kid, jwk })
    }

    /// The key id, as in the JWKS and every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document: this key alone.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// A signed ID token: a JWS with `alg` EdDSA, `typ` JWT and this key's `kid`.
    pub fn id_token(&self, claims: &IdTokenClaims) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://chat.example".into(),
            sub: "@alice:node".into(),
            aud: "client-1".into(),
            exp: 4_000_000_000,
            iat: 3_999_999_000,
            auth_time: 3_999_999_000,
            nonce: Some("n-0S6_WzA2Mj".into()),
            preferred_username: Some("alice".into()),
            name: None,
        }
    }

    /// RFC 8037 Appendix A.1's key: its public `x` is the RFC's, and a token
    /// verifies against the JWKS alone, as a client does.
    #[test]
    fn rfc_8037_key_and_a_verifiable_token() {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap()
            .try_into()
            .unwrap();
        let key = SigningKey::from_seed(&seed).unwrap();
        let jwks = serde_json::to_value(key.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 11);
        assert!(jwk.get("d").is_none(), "the JWKS holds no private part");

        let token = key.id_token(&claims()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        let set: JwkSet = serde_json::from_value(jwks).unwrap();
        let decoding = DecodingKey::from_jwk(set.find(key.kid()).unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["client-1"]);
        validation.set_issuer(&["https://chat.example"]);
        let read = jsonwebtoken::decode::<IdTokenClaims>(&token, &decoding, &validation).unwrap();
        assert_eq!(read.claims, claims());

        // Another key's JWKS does not verify it.
        let other = SigningKey::from_seed(&[7; 32]).unwrap();
        assert_ne!(other.kid(), key.kid());
        let other_decoding = DecodingKey::from_jwk(&other.jwks().keys[0]).unwrap();
        assert!(
            jsonwebtoken::decode::<IdTokenClaims>(&token, &other_decoding, &validation).is_err()
        );
    }
}
