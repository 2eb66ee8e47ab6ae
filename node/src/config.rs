//! Node configuration. Precedence, lowest first: built-in defaults, the TOML
//! file, `SPACES__SECTION__KEY` environment variables, command-line flags.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub use crate::services::moderation::ModerationConfig;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its key, its token secret and its store.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub p2p: P2pConfig,
    pub registration: RegistrationConfig,
    pub limits: LimitsConfig,
    pub login: LoginConfig,
    pub presence: PresenceConfig,
    pub media: MediaConfig,
    pub search: SearchConfig,
    pub notifications: NotificationsConfig,
    pub push: PushConfig,
    pub email: EmailConfig,
    pub web: WebConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub accounts: AccountsConfig,
    pub moderation: ModerationConfig,
}

/// Accounts a user deletes (`DELETE /api/v1/account`, docs/spec/api.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// What happens to a deleted account's messages in the rooms it is
    /// still in: `keep` them (the conversation stays readable) or
    /// `redact` them (a redaction each, federated).
    pub deleted_messages: DeletedMessages,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletedMessages {
    #[default]
    Keep,
    Redact,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A secret that `GET /metrics` must present as `Authorization: Bearer
    /// <token>`. Unset: `/metrics` is open to anyone who reaches the HTTP
    /// listener (fine on loopback, not on a public address).
    pub token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human-readable lines) or `json` (one JSON object a line, for
    /// log collectors). `RUST_LOG` still sets the filter.
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the HTTP + WebSocket API and the web client.
    pub listen: SocketAddr,
    /// Reverse proxies whose `X-Forwarded-For` names the client. A request
    /// from one of these addresses is limited as coming from the last
    /// address in that header that is not itself a trusted proxy; from any
    /// other address the header is ignored. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Seconds a client has to send a whole request line and headers,
    /// from its connection or its first byte of a request.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body has, from the end of its headers, to arrive
    /// in full.
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    pub idle_timeout_secs: u64,
    /// Seconds a write to a client (HTTP or WebSocket) may make no
    /// progress before the connection is dropped.
    pub write_timeout_secs: u64,
    /// Seconds a WebSocket close handshake may take before the connection
    /// is dropped.
    pub ws_close_timeout_secs: u64,
    /// Open connections at most; 0: half the process's open-file limit,
    /// at most 10 000.
    pub max_connections: usize,
    /// Open connections from one IP address at most; 0: no per-address cap.
    pub max_connections_per_ip: usize,
    /// The URL users open the node at (`https://chat.example.org`): the
    /// origin passkeys are bound to, its host their relying-party id. It
    /// must be https, or http on `localhost`. Absent:
    /// `http://localhost:<bound port>`, for a node on a laptop.
    pub public_url: Option<String>,
    /// Serve HTTPS and WSS on `listen` with this certificate and key
    /// (PEM), reloaded on SIGHUP. Absent: plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// `[http.tls]`: the listener's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Multiaddrs to listen on for federation.
    pub listen: Vec<String>,
    /// Peers to dial at start (multiaddrs with /p2p/<peer id>). Empty: the
    /// node dials nobody until told to.
    pub bootstrap: Vec<String>,
    /// Discover peers by multicast DNS on the local network. Off: a node
    /// makes no connection it was not configured to make.
    pub mdns: bool,
    /// Seconds between reconciliations of each room with one of its other
    /// nodes (a safety net: events normally arrive by gossip or push).
    pub sync_interval_secs: u64,
    /// Node ids (`~...`) this node refuses to talk to.
    pub blocked: Vec<String>,
    /// Requests from other nodes (pushes, backfills, joins) worked on and
    /// being answered at once, all peers together; more are answered
    /// `busy`. Bounds the memory and tasks inbound federation can take.
    pub max_inbound_requests: usize,
}

impl P2pConfig {
    /// The settings as federation takes them; an address or node id that
    /// does not parse is an error naming it.
    pub fn federation(&self) -> anyhow::Result<spaces_federation::Config> {
        let addr = |text: &String| {
            text.parse::<spaces_federation::Multiaddr>()
                .with_context(|| format!("p2p: {text:?} is not a multiaddr"))
        };
        Ok(spaces_federation::Config {
            listen: self.listen.iter().map(addr).collect::<Result<_, _>>()?,
            bootstrap: self.bootstrap.iter().map(addr).collect::<Result<_, _>>()?,
            mdns: self.mdns,
            sync_interval: std::time::Duration::from_secs(self.sync_interval_secs.max(1)),
            blocked: self
                .blocked
                .iter()
                .map(|n| {
                    n.parse::<spaces_protocol::NodeId>()
                        .map_err(|e| anyhow::anyhow!("p2p.blocked: {n:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            max_inbound: self.max_inbound_requests,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone who can reach the node may sign up.
    Open,
    /// Sign-up needs an invite token from an admin (`spaces admin invite-token`).
    Invite,
    /// Only admins create accounts (`spaces admin create-user`).
    Closed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest accepted request body. Events are at most 64 KiB; JSON
    /// around them stays well under this.
    pub max_body_bytes: usize,
    /// Access token lifetime. Short, because a stolen access token cannot
    /// be recalled faster than this; refresh tokens renew it quietly.
    pub access_token_secs: u64,
    /// Refresh token (session) lifetime without use.
    pub session_days: u64,
    /// Events a WebSocket client may fall behind the live stream before it
    /// is dropped (it then resumes from its cursor, losing nothing).
    pub ws_lag_events: usize,
    /// Sustained message sends per user per second, and the burst above it.
    pub sends_per_sec: u32,
    pub send_burst: u32,
    /// Sign-ups per second node-wide, and the burst above it: each costs a
    /// password hash and an account record. The ceiling over all addresses.
    pub registrations_per_sec: u32,
    pub registration_burst: u32,
    /// Sign-ups per client address (IPv6: per /64) per hour, and the burst
    /// above it; checked before the node-wide limit, so one address cannot
    /// spend the node's budget alone.
    pub registrations_per_ip_per_hour: u32,
    pub registration_ip_burst: u32,
}

/// Sign-in throttling (`crate::signin` has the design).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed sign-ins per client address (IPv6: per /64) over all
    /// usernames: the burst, then this many per minute. Stops spraying one
    /// password across many accounts.
    pub address_failures_burst: u32,
    pub address_failures_per_min: u32,
    /// Consecutive failures of one address on one username (and of one
    /// known device) before exponential back-off.
    pub free_failures_per_address: u32,
    /// Consecutive failures on one username from all addresses (each address
    /// counting at most `free_failures_per_address`) before exponential
    /// back-off for every device the account has not used before.
    pub free_failures_per_account: u32,
    /// The first back-off wait; it doubles with each further failure.
    pub backoff_base_secs: u64,
    /// The longest back-off wait; at most a day.
    pub backoff_max_secs: u64,
    /// How long a device token (proof of an earlier sign-in, which lets the
    /// owner's devices past account back-off) stays valid.
    pub device_token_days: u64,
    /// Failed sign-ins node-wide per minute that raise the alarm (a metric
    /// and a warning in the log).
    pub alarm_failures_per_min: u32,
    /// Seconds a passkey ceremony (registration or sign-in) may take.
    pub passkey_challenge_secs: u64,
}

impl LoginConfig {
    /// The passkey relying party for a node whose public URL is `public_url`.
    pub fn passkey_options(&self, public_url: String) -> spaces_passkey::Options {
        spaces_passkey::Options {
            challenge_ttl: std::time::Duration::from_secs(self.passkey_challenge_secs),
            ..spaces_passkey::Options::new(public_url)
        }
    }

    pub fn options(&self) -> crate::signin::Options {
        crate::signin::Options {
            source_burst: self.address_failures_burst,
            source_per_min: f64::from(self.address_failures_per_min),
            pair_free_failures: self.free_failures_per_address,
            account_free_failures: self.free_failures_per_account,
            backoff_base: std::time::Duration::from_secs(self.backoff_base_secs),
            backoff_max: std::time::Duration::from_secs(self.backoff_max_secs),
            alarm_failures_per_min: self.alarm_failures_per_min,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> LoginConfig {
        let options = crate::signin::Options::default();
        LoginConfig {
            address_failures_burst: options.source_burst,
            address_failures_per_min: options.source_per_min as u32,
            free_failures_per_address: options.pair_free_failures,
            free_failures_per_account: options.account_free_failures,
            backoff_base_secs: options.backoff_base.as_secs(),
            backoff_max_secs: options.backoff_max.as_secs(),
            // Half a year: a device signed in once in that time is still the
            // owner's; each sign-in renews it.
            device_token_days: 180,
            alarm_failures_per_min: options.alarm_failures_per_min,
            // WebAuthn's recommended timeout: time to find and touch a key.
            passkey_challenge_secs: 300,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// Track, announce and show who is online. Off: users see no presence,
    /// and this node tells others nothing about its users.
    pub enabled: bool,
    /// Seconds after a user's last client leaves before they show offline,
    /// so a reconnect does not flicker.
    pub grace_secs: u64,
    /// Seconds between repeats of this node's users' presence to other
    /// nodes; another node's announcement is forgotten after three of these.
    pub refresh_secs: u64,
}

impl PresenceConfig {
    pub fn options(&self) -> crate::engine::PresenceOptions {
        crate::engine::PresenceOptions {
            enabled: self.enabled,
            grace: std::time::Duration::from_secs(self.grace_secs),
            refresh: std::time::Duration::from_secs(self.refresh_secs.max(1)),
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> PresenceConfig {
        let options = crate::engine::PresenceOptions::default();
        PresenceConfig {
            enabled: options.enabled,
            grace_secs: options.grace.as_secs(),
            refresh_secs: options.refresh.as_secs(),
        }
    }
}
/// Files and images (`spaces_blobs`, docs/spec/api.md "Media").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// The largest file accepted, in bytes (413 `too_large` above it).
    pub max_file_bytes: u64,
    /// What one user's kept uploads may add up to, in bytes (413 `quota_exceeded`).
    pub quota_bytes: u64,
    /// The largest image canvas (width x height) decoded; a larger image
    /// is refused (413 `image_too_large`), which is what stops
    /// decompression bombs before they allocate.
    pub max_image_pixels: u64,
    /// Images decoded at once, node-wide: each holds its file and canvas
    /// in memory (40 Mpx RGBA is 160 MB).
    pub image_jobs: usize,
    /// Seconds an upload that no message references is kept.
    pub grace_secs: u64,
    /// Seconds between garbage collections of unreferenced blobs.
    pub gc_interval_secs: u64,
    /// Blobs fetched from other nodes at once (a reader here asked for an
    /// attachment another node holds); more wait their turn.
    pub fetch_jobs: usize,
    /// Seconds one such fetch may take in all (50 MiB at about 0.2 MB/s);
    /// slower, the reader gets 502 `media_unavailable` and may ask again.
    pub fetch_timeout_secs: u64,
    /// Attachments of other nodes' messages up to this many bytes are
    /// fetched as the message arrives, so they show at once and stay
    /// readable when their holder goes away (0: none; larger ones wait
    /// for a reader).
    pub eager_fetch_bytes: u64,
    /// Such eager fetches at once (each also counts against `fetch_jobs`).
    pub eager_fetch_jobs: usize,
    /// Seconds an upload's body may take (`POST /api/v1/media`): 50 MiB
    /// at about 0.35 Mbit/s. Every other request body keeps
    /// `http.body_read_timeout_secs`.
    pub upload_timeout_secs: u64,
}

impl MediaConfig {
    pub fn options(&self, dir: PathBuf) -> spaces_blobs::Options {
        spaces_blobs::Options {
            dir,
            max_file_bytes: self.max_file_bytes,
            quota_bytes: self.quota_bytes,
            max_image_pixels: self.max_image_pixels,
            image_jobs: self.image_jobs.max(1),
            grace: std::time::Duration::from_secs(self.grace_secs),
            gc_interval: std::time::Duration::from_secs(self.gc_interval_secs.max(1)),
        }
    }

    pub fn fetch_options(&self) -> crate::services::media::FetchOptions {
        crate::services::media::FetchOptions {
            jobs: self.fetch_jobs.max(1),
            timeout: std::time::Duration::from_secs(self.fetch_timeout_secs.max(1)),
            eager_bytes: self.eager_fetch_bytes,
            eager_jobs: self.eager_fetch_jobs.max(1),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        let options = spaces_blobs::Options::new(PathBuf::new());
        MediaConfig {
            max_file_bytes: options.max_file_bytes,
            quota_bytes: options.quota_bytes,
            max_image_pixels: options.max_image_pixels,
            image_jobs: options.image_jobs,
            grace_secs: options.grace.as_secs(),
            gc_interval_secs: options.gc_interval.as_secs(),
            // A handful: each holds a 1 MiB chunk and a staging file.
            fetch_jobs: 4,
            fetch_timeout_secs: 300,
            // Photos and voice notes, not videos.
            eager_fetch_bytes: 1024 * 1024,
            eager_fetch_jobs: 2,
            upload_timeout_secs: 1200,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Keep a full-text index of messages in `<data_dir>/search/` and
    /// answer `GET /api/v1/search`. Off: no index is written and searches
    /// answer 503 `search_off`; turned on again, the index catches up from
    /// the store.
    pub enabled: bool,
    /// Searches per user per second, and the burst above it: a person
    /// types a query in a few requests; each search holds one of the
    /// node's few search slots for milliseconds.
    pub searches_per_sec: u32,
    pub search_burst: u32,
}

impl Default for SearchConfig {
    fn default() -> SearchConfig {
        SearchConfig {
            enabled: true,
            searches_per_sec: 5,
            search_burst: 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Decide who is notified of each event (mentions, replies, threads,
    /// direct messages, invites, keywords) and keep their notifications.
    /// Off: no new notifications; turned on again, the notifier catches
    /// up from its cursor in the store.
    pub enabled: bool,
}

impl Default for NotificationsConfig {
    fn default() -> NotificationsConfig {
        NotificationsConfig { enabled: true }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Web Push to browsers that registered a subscription: a VAPID key in
    /// `<data_dir>/vapid.key` (made on first start), and requests to those
    /// subscriptions' push services only. Off: subscriptions are refused
    /// and nothing is pushed.
    pub enabled: bool,
    /// Subscriptions (browsers) one user may register.
    pub max_subscriptions_per_user: usize,
    /// How long a notification waits for one of the user's clients to see
    /// it (read it, or read the room past it) before it is pushed.
    pub delay_ms: u64,
    /// How long a push service keeps a push it could not deliver yet.
    pub ttl_secs: u64,
    /// How a push service can reach the operator (the VAPID `sub`):
    /// `mailto:` or `https:`.
    pub contact: String,
    /// Accept `http://` endpoints on a loopback address. For tests only:
    /// every other endpoint must be `https://`.
    pub allow_loopback_http: bool,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            enabled: true,
            // A person's browsers and devices: a few; 10 bounds what one
            // account makes the node send per notification.
            max_subscriptions_per_user: 10,
            // Long enough for an open tab to show the event and mark it read.
            delay_ms: 10_000,
            ttl_secs: 24 * 3600,
            contact: "mailto:postmaster@localhost".into(),
            allow_loopback_http: false,
        }
    }
}

impl PushConfig {
    pub fn options(&self) -> crate::services::push::PushOptions {
        crate::services::push::PushOptions {
            max_per_user: self.max_subscriptions_per_user,
            delay: std::time::Duration::from_millis(self.delay_ms),
            ttl: std::time::Duration::from_secs(self.ttl_secs),
            contact: self.contact.clone(),
            allow_loopback_http: self.allow_loopback_http,
        }
    }
}

/// How the connection to the SMTP relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded by `STARTTLS`, which the relay must offer.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS: only to a loopback address (a local relay, tests).
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP relay. Unset: no email at all (no addresses, no digests,
    /// no reset mails) and no connection to anything.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    /// Credentials for the relay, if it wants them: the password is read
    /// from `password_file` at start (first line), never kept in the config.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The `From:` of every mail, e.g. `Spaces <spaces@example.org>`.
    pub from: String,
    /// How long a user must have been away (no client connected) before a
    /// digest of their unread mentions and direct messages.
    pub digest_delay_secs: u64,
    /// At most one digest per user per this.
    pub digest_period_secs: u64,
    /// How long a verification link works.
    pub verify_link_hours: u64,
    /// How long a password-reset token works.
    pub reset_link_minutes: u64,
    /// Verification and reset mails one account may be sent per hour.
    pub mails_per_account_per_hour: usize,
    /// The longest one SMTP command may take.
    pub timeout_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> EmailConfig {
        EmailConfig {
            smtp_host: None,
            // Submission with STARTTLS: what mail providers offer.
            smtp_port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password_file: None,
            from: "Spaces <spaces@localhost>".into(),
            // An hour away: push and the open tab cover shorter absences.
            digest_delay_secs: 3600,
            // One a day: a digest is a reminder, not a feed.
            digest_period_secs: 24 * 3600,
            verify_link_hours: 24,
            reset_link_minutes: 60,
            // Enough for a typo and a retry; few enough that nobody can make
            // the node mail-bomb an address.
            mails_per_account_per_hour: 5,
            timeout_secs: 30,
        }
    }
}

impl EmailConfig {
    /// The email service's options, when a relay is configured (the
    /// password file read now); `public_url` is where links point.
    pub fn options(
        &self,
        public_url: &str,
    ) -> anyhow::Result<Option<crate::services::email::EmailOptions>> {
        let Some(host) = &self.smtp_host else {
            return Ok(None);
        };
        let credentials = match (&self.username, &self.password_file) {
            (Some(username), Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("email.password_file {}", path.display()))?;
                let password = text.lines().next().unwrap_or_default().to_owned();
                Some((username.clone(), password))
            }
            (None, None) => None,
            _ => bail!("email.username and email.password_file go together"),
        };
        let security = match self.security {
            SmtpSecurity::Starttls => spaces_email::Security::StartTls,
            SmtpSecurity::Tls => spaces_email::Security::Tls,
            SmtpSecurity::None => spaces_email::Security::None,
        };
        let secs = std::time::Duration::from_secs;
        Ok(Some(crate::services::email::EmailOptions {
            smtp: spaces_email::SmtpOptions {
                host: host.clone(),
                port: self.smtp_port,
                security,
                credentials,
                from: self.from.clone(),
                timeout: secs(self.timeout_secs),
            },
            public_url: public_url.to_owned(),
            digest_delay: secs(self.digest_delay_secs),
            digest_period: secs(self.digest_period_secs),
            verify_ttl: secs(self.verify_link_hours * 3600),
            reset_ttl: secs(self.reset_link_minutes * 60),
            mails_per_hour: self.mails_per_account_per_hour,
        }))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.smtp_host.is_none() {
            return Ok(());
        }
        if self.verify_link_hours == 0
            || self.reset_link_minutes == 0
            || self.mails_per_account_per_hour == 0
            || self.timeout_secs == 0
        {
            bail!(
                "email: verify_link_hours, reset_link_minutes, mails_per_account_per_hour and timeout_secs must be positive"
            );
        }
        // The relay's rules (plain SMTP only to loopback, a valid From:)
        // without opening anything.
        let mut probe = self.clone();
        probe.password_file = None;
        probe.username = None;
        let options = probe
            .options("http://localhost")?
            .expect("smtp_host is set");
        spaces_email::Mailer::new(&options.smtp).map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The built web client to serve at `/`. Empty: `web-ui/dist` next to
    /// the binary's source tree if it exists, else no web client.
    pub dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("spaces-data"),
            http: HttpConfig::default(),
            p2p: P2pConfig::default(),
            registration: RegistrationConfig::default(),
            limits: LimitsConfig::default(),
            login: LoginConfig::default(),
            presence: PresenceConfig::default(),
            media: MediaConfig::default(),
            search: SearchConfig::default(),
            notifications: NotificationsConfig::default(),
            push: PushConfig::default(),
            email: EmailConfig::default(),
            web: WebConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            accounts: AccountsConfig::default(),
            moderation: ModerationConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        // Loopback: a laptop default exposes nothing to the network.
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            trusted_proxies: Vec::new(),
            // A real client sends its headers in one or two packets; 10 s
            // is many round trips of a bad mobile link.
            header_read_timeout_secs: 10,
            // The largest body (`limits.max_body_bytes`, 256 KiB) at about
            // 9 KiB/s: a poor link, but not a trickle.
            body_read_timeout_secs: 30,
            // Browsers reuse an idle connection within a minute or open a
            // new one; holding it longer only holds a file descriptor.
            idle_timeout_secs: 60,
            // The kernel buffers megabytes: a write that cannot move for
            // 30 s means the client stopped reading.
            write_timeout_secs: 30,
            // A live client answers a close at once; 5 s covers its round
            // trip and the frames queued before the close.
            ws_close_timeout_secs: 5,
            max_connections: 0,
            // Many people behind one NAT each hold a WebSocket and a few
            // HTTP connections; a single client needs a handful.
            max_connections_per_ip: 256,
            public_url: None,
            tls: None,
        }
    }
}

impl Default for P2pConfig {
    fn default() -> P2pConfig {
        P2pConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/4040".into()],
            bootstrap: Vec::new(),
            mdns: false,
            sync_interval_secs: 30,
            blocked: Vec::new(),
            // The reasons are at the constant.
            max_inbound_requests: spaces_federation::DEFAULT_MAX_INBOUND,
        }
    }
}

impl Default for RegistrationConfig {
    fn default() -> RegistrationConfig {
        RegistrationConfig {
            mode: RegistrationMode::Open,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: 256 * 1024,
            access_token_secs: 15 * 60,
            session_days: 30,
            ws_lag_events: 4096,
            // Generous for people, tight for scripts: a person rarely sends
            // more than a few messages a second for long.
            sends_per_sec: 10,
            send_burst: 50,
            registrations_per_sec: 1,
            // Above one address's burst, so one address never empties it.
            registration_burst: 60,
            // A household or office signs up a few people at once; a script
            // making accounts from one address gets one a minute.
            registrations_per_ip_per_hour: 60,
            registration_ip_burst: 20,
        }
    }
}

/// Overrides given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub http_listen: Option<SocketAddr>,
    pub p2p_listen: Option<Vec<String>>,
}

impl Config {
    /// Builds the configuration from every source in order.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> anyhow::Result<Config> {
        let mut value = toml::Value::try_from(Config::default()).context("encoding defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let file_value: toml::Value = toml::from_str(&text)
                .with_context(|| format!("parsing config {}", path.display()))?;
            merge(&mut value, file_value);
        }
        for (key, raw) in env {
            let Some(path) = key.strip_prefix("SPACES__") else {
                continue;
            };
            let segments: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            set_path(&mut value, &segments, parse_env_value(&raw))
                .with_context(|| format!("environment variable {key}"))?;
        }
        let mut config: Config = value.try_into().context("invalid configuration")?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = overrides.http_listen {
            config.http.listen = listen;
        }
        if let Some(listen) = &overrides.p2p_listen {
            config.p2p.listen = listen.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.p2p.federation()?;
        if self.login.passkey_challenge_secs == 0 {
            bail!("login.passkey_challenge_secs must be positive");
        }
        if let Some(url) = &self.http.public_url {
            spaces_passkey::Passkeys::new(&spaces_passkey::Options::new(url.clone()))
                .map_err(|e| anyhow::anyhow!("http.public_url: {e}"))?;
        }
        if self.p2p.max_inbound_requests == 0 {
            bail!("p2p.max_inbound_requests must be positive");
        }
        let http = &self.http;
        if [
            http.header_read_timeout_secs,
            http.body_read_timeout_secs,
            http.idle_timeout_secs,
            http.write_timeout_secs,
            http.ws_close_timeout_secs,
        ]
        .contains(&0)
        {
            bail!("http: every *_timeout_secs must be positive");
        }
        if self.limits.access_token_secs == 0 || self.limits.session_days == 0 {
            bail!("limits.access_token_secs and limits.session_days must be positive");
        }
        if self.limits.ws_lag_events == 0 || self.limits.max_body_bytes < 1024 {
            bail!("limits.ws_lag_events must be positive and limits.max_body_bytes at least 1024");
        }
        if !(self.push.contact.starts_with("mailto:") || self.push.contact.starts_with("https:"))
            || self.push.max_subscriptions_per_user == 0
        {
            bail!(
                "push.contact must be a mailto: or https: URI and push.max_subscriptions_per_user positive"
            );
        }
        if self.search.searches_per_sec == 0 || self.search.search_burst == 0 {
            bail!("search.searches_per_sec and search.search_burst must be positive");
        }
        if self.limits.sends_per_sec == 0 || self.limits.send_burst == 0 {
            bail!("limits.sends_per_sec and limits.send_burst must be positive");
        }
        if self.limits.registrations_per_sec == 0 || self.limits.registration_burst == 0 {
            bail!("limits.registrations_per_sec and limits.registration_burst must be positive");
        }
        if self.limits.registrations_per_ip_per_hour == 0 || self.limits.registration_ip_burst == 0
        {
            bail!(
                "limits.registrations_per_ip_per_hour and limits.registration_ip_burst must be positive"
            );
        }
        let login = &self.login;
        if login.address_failures_burst == 0
            || login.address_failures_per_min == 0
            || login.free_failures_per_address == 0
            || login.free_failures_per_account == 0
            || login.backoff_base_secs == 0
            || login.backoff_max_secs < login.backoff_base_secs
            || login.backoff_max_secs > 86_400
            || login.device_token_days == 0
            || login.alarm_failures_per_min == 0
        {
            bail!(
                "login: every limit must be positive, and backoff_max_secs from backoff_base_secs to 86400"
            );
        }
        self.moderation.validate()?;
        self.email.validate()?;
        Ok(())
    }
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn set_path(value: &mut toml::Value, path: &[String], new: toml::Value) -> anyhow::Result<()> {
    let Some((first, rest)) = path.split_first() else {
        bail!("empty key")
    };
    let table = value.as_table_mut().context("not a table")?;
    if rest.is_empty() {
        table.insert(first.clone(), new);
        return Ok(());
    }
    let child = table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(Default::default()));
    set_path(child, rest, new)
}

/// An environment value is TOML if it parses as a TOML value (numbers,
/// booleans, arrays), else a plain string.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults_where_it_says_so() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spaces.example.toml");
        let config = Config::load(Some(&path), [], &Overrides::default()).unwrap();
        assert_eq!(config.http, HttpConfig::default());
        assert!(!config.p2p.mdns);
        assert!(config.p2p.bootstrap.is_empty());
        assert_eq!(config.limits, LimitsConfig::default());
        assert_eq!(config.login, LoginConfig::default());
        assert!(config.http.trusted_proxies.is_empty());
    }

    #[test]
    fn email_is_off_unless_configured_and_plain_smtp_only_to_loopback() {
        let config = Config::load(None, [], &Overrides::default()).unwrap();
        assert!(config.email.options("http://x").unwrap().is_none());
        let env = |host: &str, security: &str| {
            [
                ("SPACES__EMAIL__SMTP_HOST".to_string(), host.to_string()),
                ("SPACES__EMAIL__SECURITY".to_string(), security.to_string()),
            ]
        };
        let config = Config::load(None, env("127.0.0.1", "none"), &Overrides::default()).unwrap();
        assert!(config.email.options("http://x").unwrap().is_some());
        assert!(
            Config::load(None, env("smtp.example.org", "none"), &Overrides::default()).is_err()
        );
        assert!(
            Config::load(
                None,
                env("smtp.example.org", "starttls"),
                &Overrides::default()
            )
            .is_ok()
        );
        assert!(Config::load(None, env("smtp.example.org", "ssl"), &Overrides::default()).is_err());
    }

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/from/file\"\n[limits]\nsession_days = 7\nws_lag_events = 9\n",
        )
        .unwrap();
        let env = [
            (
                "SPACES__LIMITS__WS_LAG_EVENTS".to_string(),
                "11".to_string(),
            ),
            (
                "SPACES__REGISTRATION__MODE".to_string(),
                "closed".to_string(),
            ),
            (
                "SPACES__HTTP__IDLE_TIMEOUT_SECS".to_string(),
                "3".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let overrides = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let config = Config::load(Some(&path), env, &overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.limits.session_days, 7);
        assert_eq!(config.limits.ws_lag_events, 11);
        assert_eq!(config.registration.mode, RegistrationMode::Closed);
        assert_eq!(config.http.idle_timeout_secs, 3);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        assert!(Config::load(Some(&path), [], &Overrides::default()).is_err());
        let env = [(
            "SPACES__HTTP__LISTEN".to_string(),
            "not an address".to_string(),
        )];
        assert!(Config::load(None, env, &Overrides::default()).is_err());
        let env = [("SPACES__LIMITS__SESSION_DAYS".to_string(), "0".to_string())];
        assert!(Config::load(None, env, &Overrides::default()).is_err());
        let env = [(
            "SPACES__HTTP__WRITE_TIMEOUT_SECS".to_string(),
            "0".to_string(),
        )];
        assert!(Config::load(None, env, &Overrides::default()).is_err());
    }
}
