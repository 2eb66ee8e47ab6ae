//! Integration tests: real `spaces` processes on `127.0.0.1:0` with temp
//! data directories, driven over HTTP and WebSocket like any client would.
//!
//! One binary, a module per area. Every test starts its own node(s), so
//! tests run in parallel and share nothing but the machine. Nothing waits on
//! a bare sleep: the harness reads the node's address from its stdout and
//! every wait has a deadline.

mod support;

mod account_data;
mod accounts;
mod admin_cli;
mod admin_console;
mod admin_users;
mod api_shape;
mod avatars;
mod ban_lists;
mod durability;
mod email;
mod errors;
mod federation;
mod hardening_auth;
mod hardening_conn;
mod hardening_fed;
mod hardening_input;
mod hardening_races;
mod history;
mod media;
mod media_federation;
mod messages;
mod moderation;
mod notifications;
mod oidc;
mod operator;
mod passkeys;
mod push;
mod rooms;
mod search;
mod tls;
mod tokens;
mod upgrades;
mod users;
mod websocket;
