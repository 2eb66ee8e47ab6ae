//! `spaces-oidc`: the pieces of the node's OAuth2 / OpenID Connect provider
//! that have test vectors and no I/O.
//!
//! | module  | what it holds                                                          |
//! | ------- | ---------------------------------------------------------------------- |
//! | `key`   | the Ed25519 ID-token signing key, its JWKS, and signed ID tokens       |
//! | `pkce`  | PKCE (RFC 7636): `S256` only; `plain` and a missing method are refused |
//! | `scope` | the scopes a third-party client may hold, as a small bit set           |
//!
//! What this crate does not know: clients, users, sessions, storage, HTTP or
//! time. The node stores clients and codes, decides who consented, and
//! passes `now` into the claims. JOSE (the JWS and the JWK) is jsonwebtoken's
//! with its aws-lc-rs backend; nothing of the signature is written here.

mod key;
mod pkce;
mod scope;

pub use jsonwebtoken::jwk::JwkSet;
pub use key::{Error, IdTokenClaims, SigningKey};
pub use pkce::{PkceError, check_challenge, verify_verifier};
pub use scope::{Scope, Scopes, UnknownScope};
