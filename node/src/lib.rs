//! The Spaces node: one process, one data directory.
//!
//! - [`config`]: the configuration and its sources.
//! - [`engine`]: the room service — replicas, group commit, the live stream.
//! - [`api`]: the HTTP + WebSocket gateway.
//! - [`node`]: wiring — [`Node::spawn`] starts everything, [`Node::shutdown`] stops it.
//! - [`admin`]: operator commands that work on a stopped node's data directory.
//! - [`http_server`]: connections — caps, time limits, hyper under the API.
//! - [`hasher`]: password hashing on a bounded thread pool.
//! - [`metrics`]: Prometheus counters.

pub mod admin;
pub mod api;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod federation;
pub mod hasher;
pub mod http_server;
pub mod metrics;
mod node;

pub use config::Config;
pub use node::Node;
