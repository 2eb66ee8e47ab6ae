//! Sending mail through the one SMTP relay the operator configured.
//!
//! lettre speaks SMTP; rustls (aws-lc-rs, with the platform's certificate
//! verifier) wraps it in TLS from the first byte (`tls`, port 465) or after
//! `STARTTLS` (`starttls`, port 587, refused if the relay does not offer
//! it: no silent plaintext). `none` is plain SMTP and only allowed to a
//! loopback address (a local relay, or the tests' server). Credentials, if
//! any, go only over TLS or to loopback.
//!
//! Every message is plain text, UTF-8, with a `Message-ID` and `Date`;
//! a digest also carries `List-Unsubscribe` and `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058), so mail clients offer a one-click
//! unsubscribe that POSTs to the signed link.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// The longest address taken (RFC 5321's path limit).
const MAX_ADDRESS_LEN: usize = 254;

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP, then `STARTTLS` (required).
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No TLS: loopback relays only.
    None,
}

/// The relay and how to reach it.
#[derive(Clone)]
pub struct SmtpOptions {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Username and password, if the relay wants them.
    pub credentials: Option<(String, String)>,
    /// The `From:` address.
    pub from: String,
    /// The longest one SMTP command may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The signed one-click unsubscribe URL (digests).
    pub unsubscribe: Option<String>,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The relay refused it for good (a 5xx answer) or it cannot be built:
    /// sending it again would fail again.
    #[error("refused: {0}")]
    Permanent(String),
    /// No answer, a 4xx answer, a TLS or connection failure: try later.
    #[error("not sent, try again: {0}")]
    Transient(String),
}

/// Checks an address as the node keeps it: at most 254 bytes, one
/// `local@domain` (no display name, no comments), returned lowercased in
/// the domain.
pub fn check_address(text: &str) -> Result<String, String> {
    if text.len() > MAX_ADDRESS_LEN {
        return Err(format!("longer than {MAX_ADDRESS_LEN} bytes"));
    }
    let address: Address = text
        .parse()
        .map_err(|e| format!("not an email address: {e}"))?;
    Ok(format!(
        "{}@{}",
        address.user(),
        address.domain().to_ascii_lowercase()
    ))
}

/// The relay: cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl Mailer {
    /// A mailer for `options`; opens no connection until it sends.
    pub fn new(options: &SmtpOptions) -> Result<Mailer, String> {
        let from: Mailbox = options
            .from
            .parse()
            .map_err(|e| format!("email.from: {e}"))?;
        let loopback = is_loopback(&options.host);
        let tls = match options.security {
            Security::None if !loopback => {
                return Err(
                    "email.security = \"none\" is only allowed to a loopback address".into(),
                );
            }
            Security::None => Tls::None,
            Security::StartTls | Security::Tls => {
                let parameters = TlsParameters::new(options.host.clone())
                    .map_err(|e| format!("email: TLS for {}: {e}", options.host))?;
                match options.security {
                    Security::Tls => Tls::Wrapper(parameters),
                    _ => Tls::Required(parameters),
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&options.host)
            .port(options.port)
            .timeout(Some(options.timeout))
            .tls(tls);
        if let Some((username, password)) = &options.credentials {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Builds `mail` as a message (for tests and for [`Mailer::send`]).
    pub fn message(&self, mail: &Mail) -> Result<Message, SendError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        if let Some(url) = &mail.unsubscribe {
            let header = |name: &'static str, value: String| {
                HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
            };
            builder = builder
                .raw_header(header("List-Unsubscribe", format!("<{url}>")))
                .raw_header(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        builder
            .body(mail.body.clone())
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Sends `mail` through the relay.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let message = self.message(mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(host: &str, security: Security) -> SmtpOptions {
        SmtpOptions {
            host: host.into(),
            port: 25,
            security,
            credentials: None,
            from: "Spaces <spaces@example.org>".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        assert!(Mailer::new(&options("127.0.0.1", Security::None)).is_ok());
        assert!(Mailer::new(&options("[::1]", Security::None)).is_ok());
        assert!(Mailer::new(&options("smtp.example.org", Security::None)).is_err());
        assert!(Mailer::new(&options("10.0.0.1", Security::None)).is_err());
        assert!(Mailer::new(&options("smtp.example.org", Security::StartTls)).is_ok());
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            check_address("Al.B@Example.ORG").unwrap(),
            "Al.B@example.org"
        );
        for bad in ["", "al", "al@", "Al <al@example.org>", "a b@example.org"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert!(check_address(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn a_digest_carries_the_one_click_headers() {
        let mailer = Mailer::new(&options("127.0.0.1", Security::None)).unwrap();
        let mail = Mail {
            to: "al@example.org".into(),
            subject: "2 unread".into(),
            body: "hello".into(),
            unsubscribe: Some(
                "https://n.example/api/v1/account/email/unsubscribe?token=u1.x".into(),
            ),
        };
        let text = String::from_utf8(mailer.message(&mail).unwrap().formatted()).unwrap();
        assert!(text.contains(
            "List-Unsubscribe: <https://n.example/api/v1/account/email/unsubscribe?token=u1.x>\r\n"
        ));
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        let plain = Mail {
            unsubscribe: None,
            ..mail
        };
        let text = String::from_utf8(mailer.message(&plain).unwrap().formatted()).unwrap();
        assert!(!text.contains("List-Unsubscribe"));
    }
}
