//! `spaces-email`: what the node needs to send mail.
//!
//! - `link`: signed, expiring links (address verification) and signed
//!   one-click unsubscribe links (RFC 8058), HMAC-SHA256 under a key the
//!   node derives from its token secret.
//! - `digest`: when a user who is away gets a digest (a pure decision with
//!   the time passed in), and the digest's text.
//! - `smtp`: one configured SMTP relay (STARTTLS, TLS, or plain on a
//!   loopback address for tests) over lettre, and the messages it sends.
//!
//! The crate knows no users, store or HTTP: the node decides who gets what
//! and keeps the queue; this builds links, decides a digest's time from
//! facts it is given, and talks SMTP to the one relay it was configured
//! with, only when asked to send.

mod digest;
mod link;
mod smtp;

pub use digest::{Decision, DigestItem, DigestText, Facts, decide, render_digest};
pub use link::{Claim, Kind, LinkError, LinkKey};
pub use smtp::{Mail, Mailer, Security, SendError, SmtpOptions, check_address};
