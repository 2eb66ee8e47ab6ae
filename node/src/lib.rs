//! The Spaces node: one process, one data directory.
//!
//! - [`config`]: the configuration and its sources.
//! - [`engine`]: the room service — replicas, group commit, the live stream.
//! - [`api`]: the HTTP + WebSocket gateway.
//! - [`node`]: wiring — [`Node::spawn`] starts everything, [`Node::shutdown`] stops it.
//! - [`admin`]: operator commands that work on a stopped node's data directory.
//! - [`archive`]: the backup archive: writing, checking, restoring.
//! - [`peering`]: the node's side of federation — taking and answering what
//!   other nodes send, publishing, joining rooms held elsewhere (the
//!   `spaces_federation` crate moves the bytes).
//! - [`services`]: domain rules outside the engine (invite links), store writes off the runtime.
//! - [`http_server`]: connections — caps, time limits, hyper under the API.
//! - [`tls`]: HTTPS/WSS with rustls, the certificate reloaded on SIGHUP.
//! - [`logging`]: log output, text or JSON lines.
//! - [`hasher`]: password hashing on a bounded thread pool.
//! - [`metrics`]: Prometheus counters.
//! - [`signin`]: sign-in throttling per address, per account and per device.

pub mod admin;
pub mod api;
pub mod archive;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod hasher;
pub mod http_server;
pub mod logging;
pub mod metrics;
mod node;
pub mod peering;
pub mod services;
pub mod signin;
#[cfg(test)]
mod tidy;
pub mod tls;

pub use config::Config;
pub use node::Node;

/// Names rustls' process-wide crypto provider (aws-lc-rs, the one in our
/// tree). iroh (under `spaces_blobs`) turns on reqwest's
/// `rustls-no-provider`, and reqwest then panics when a client is built
/// without a provider installed. Every binary and the test harness call
/// this first; calling it again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
