//! Operator commands on a data directory: create users, reset passwords,
//! list users and rooms, mint invite tokens, rebuild the search index, report the media store.
//! They open the store directly,
//! so the node must be stopped (sled allows one process at a time, and says
//! so if another holds it). Backup is the exception: with a URL it asks the
//! running node (`POST /api/v1/admin/backup`); restore writes a new directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use spaces_protocol::content::Content;
use spaces_protocol::{Event, RoomId, UserId};
use spaces_store::{Account, InviteToken};

use crate::archive as backup;
use crate::data_dir::DataDir;
use crate::engine::{Engine, PresenceOptions, now_ms};
use crate::services::search::Search;

pub fn create_user(
    dir: &DataDir,
    username: &str,
    password: &str,
    admin: bool,
) -> anyhow::Result<UserId> {
    let username = username.to_lowercase();
    let user = UserId::new(&username, dir.node_key.node_id()).context("invalid username")?;
    spaces_auth::check_password_policy(password)?;
    let store = dir.open_store()?;
    let hash = spaces_auth::hash_password(password, &mut rand::rng())?;
    let account = Account {
        username,
        password_hash: hash,
        created_at_ms: now_ms(),
        is_admin: admin,
        disabled: false,
        moderator: false,
        suspended: false,
    };
    match store.create_account(&account) {
        Err(spaces_store::Error::AlreadyExists) => bail!("user {user} already exists"),
        other => other?,
    }
    Ok(user)
}

pub fn reset_password(dir: &DataDir, username: &str, password: &str) -> anyhow::Result<()> {
    spaces_auth::check_password_policy(password)?;
    let store = dir.open_store()?;
    let mut account = store
        .account(&username.to_lowercase())?
        .with_context(|| format!("no user {username}"))?;
    account.password_hash = spaces_auth::hash_password(password, &mut rand::rng())?;
    store.update_account(&account)?;
    // A reset password ends every session: whoever knew the old one is out.
    for session in store.sessions_of(&account.username)? {
        store.delete_session(&session.id)?;
    }
    Ok(())
}

pub fn list_users(dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let store = dir.open_store()?;
    let node = dir.node_key.node_id();
    Ok(store
        .accounts()?
        .into_iter()
        .map(|a| {
            format!(
                "@{}:{node}{}{}",
                a.username,
                if a.is_admin { "  admin" } else { "" },
                if a.disabled { "  disabled" } else { "" }
            )
        })
        .collect())
}

/// What `spaces admin users` does to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    Suspend,
    Reactivate,
    Deactivate,
}

impl UserAction {
    fn path(self) -> &'static str {
        match self {
            UserAction::Suspend => "suspend",
            UserAction::Reactivate => "reactivate",
            UserAction::Deactivate => "deactivate",
        }
    }
}

/// `spaces admin users`: lists accounts (`action` `None`) or acts on one,
/// on a running node through its API (`url`, `SPACES_ADMIN_TOKEN`) or on a
/// stopped node's data directory. One line per account: the user id, its
/// role and its status.
pub fn users(
    data_dir: &Path,
    url: Option<String>,
    action: Option<(UserAction, String)>,
) -> anyhow::Result<Vec<String>> {
    match url {
        Some(url) => users_online(&url, action),
        None => users_stopped(data_dir, action),
    }
}

fn user_line(user_id: &str, role: &str, status: &str) -> String {
    format!("{user_id}  {role}  {status}")
}

fn users_online(url: &str, action: Option<(UserAction, String)>) -> anyhow::Result<Vec<String>> {
    let token = std::env::var("SPACES_ADMIN_TOKEN")
        .context("set SPACES_ADMIN_TOKEN to a node admin's or moderator's access token")?;
    let base = format!("{}/api/v1/admin/users", url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let request = match &action {
            None => client.get(&base),
            Some((action, username)) => client.post(format!(
                "{base}/{}/{}",
                percent_segment(username),
                action.path()
            )),
        };
        let response = request
            .bearer_auth(token.trim())
            .send()
            .await
            .with_context(|| format!("connecting to {base}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "the node refused: {status} {} {}",
                body["code"].as_str().unwrap_or(""),
                body["message"].as_str().unwrap_or("")
            );
        }
        let users = match body {
            serde_json::Value::Array(users) => users,
            one => vec![one],
        };
        Ok(users
            .iter()
            .map(|u| {
                user_line(
                    u["user_id"].as_str().unwrap_or(""),
                    u["role"].as_str().unwrap_or(""),
                    u["status"].as_str().unwrap_or(""),
                )
            })
            .collect())
    })
}

/// A username as one path segment: the characters a username may hold
/// need no escaping; anything else is escaped so it cannot change the path.
fn percent_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn users_stopped(
    data_dir: &Path,
    action: Option<(UserAction, String)>,
) -> anyhow::Result<Vec<String>> {
    let dir = DataDir::open(data_dir)?;
    let store = dir
        .open_store()
        .context("the node may be running: use --url http://ADDR with SPACES_ADMIN_TOKEN")?;
    let node = dir.node_key.node_id();
    let accounts = match action {
        None => store.accounts()?,
        Some((action, username)) => {
            let username = username.to_lowercase();
            let current = store
                .account(&username)?
                .with_context(|| format!("no user {username}"))?;
            if action == UserAction::Reactivate && current.disabled {
                bail!("{username} is deactivated; a deactivated account cannot be reactivated");
            }
            let account = store.modify_account(&username, |a| match action {
                UserAction::Suspend => a.suspended = true,
                UserAction::Reactivate => a.suspended = false,
                UserAction::Deactivate => a.disabled = true,
            })?;
            if action != UserAction::Reactivate {
                for session in store.sessions_of(&username)? {
                    store.delete_session(&session.id)?;
                }
            }
            vec![account]
        }
    };
    Ok(accounts
        .into_iter()
        .map(|a| {
            let role = if a.is_admin {
                "admin"
            } else if a.moderator {
                "moderator"
            } else {
                "user"
            };
            let status = if a.disabled {
                "deactivated"
            } else if a.suspended {
                "suspended"
            } else {
                "active"
            };
            user_line(&format!("@{}:{node}", a.username), role, status)
        })
        .collect())
}

pub fn list_rooms(dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let store = dir.open_store()?;
    // One pass over the log; rooms listed in id order.
    let mut rooms: std::collections::BTreeMap<RoomId, (usize, Option<String>)> = Default::default();
    for stored in store.events() {
        let stored = stored?;
        let (n_events, name) = rooms.entry(RoomId(stored.room_id)).or_default();
        *n_events += 1;
        if let Ok(event) = Event::decode_trusted(&stored.bytes)
            && let Content::Name(n) = event.content()
        {
            *name = Some(n.clone());
        }
    }
    Ok(rooms
        .into_iter()
        .map(|(room_id, (n_events, name))| {
            format!(
                "{room_id}  {n_events} events  {}",
                name.unwrap_or_else(|| "(unnamed)".into())
            )
        })
        .collect())
}

pub fn invite_token(
    dir: &DataDir,
    uses: u32,
    expires_in_secs: Option<u64>,
) -> anyhow::Result<String> {
    let store = dir.open_store()?;
    let token = spaces_auth::new_invite_token(&mut rand::rng());
    store.put_invite_token(&InviteToken {
        token: token.clone(),
        uses_left: uses,
        expires_at_ms: expires_in_secs.map(|s| now_ms() + s * 1000),
        created_by: "admin".into(),
    })?;
    Ok(token)
}

/// Rebuilds the search index (`<data>/search/`) from the store, with a
/// progress bar and an ETA: loads the rooms as the node would (the index
/// asks each room what its messages read like now), then applies the
/// store's whole stream through the node's own indexer. Answers the
/// messages indexed. Opening the store first makes sure no node runs on
/// the directory.
pub fn reindex(dir: &DataDir) -> anyhow::Result<u64> {
    let store = dir.open_store()?;
    let last_seq = store.last_seq();
    let key = dir.node_key.clone();
    let options = spaces_search::Options::new(dir.path.join("search"));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let (engine, writer) = tokio::task::spawn_blocking(move || {
            Engine::open(
                store,
                key,
                std::sync::Arc::default(),
                1,
                PresenceOptions::default(),
            )
        })
        .await??;
        let mut progress = Progress::events("reindex", last_seq);
        let indexed = Search::rebuild(&engine, options, &mut |seq| progress.show(seq)).await;
        progress.done();
        // The engine's writer stops when the last handle is gone.
        drop(engine);
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        indexed
    })
}

/// Writes a backup to `to` (which must not exist): from the running node at
/// `url`, with an admin's access token in `SPACES_ADMIN_TOKEN`, or from the
/// stopped node's `data_dir`. The archive is written beside `to`, checked
/// whole, and only then renamed to `to`.
pub fn backup(data_dir: &Path, to: &Path, url: Option<String>) -> anyhow::Result<()> {
    if to.exists() {
        bail!("{} exists: choose a new file name", to.display());
    }
    let partial = partial_path(to);
    let written = match url {
        Some(url) => backup_online(&url, &partial),
        None => backup_stopped(data_dir, &partial),
    }
    .and_then(|total| {
        let info = backup::verify(&partial).context("checking the written backup")?;
        std::fs::rename(&partial, to).with_context(|| format!("renaming to {}", to.display()))?;
        Ok((total, info))
    });
    let (total, info) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    eprintln!(
        "backup of {} written to {}: {}, events up to seq {}",
        info.node_id,
        to.display(),
        mib(total),
        info.last_seq
    );
    Ok(())
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    to.with_file_name(name)
}

fn create_new(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // A backup holds the node's keys.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn backup_stopped(data_dir: &Path, partial: &Path) -> anyhow::Result<u64> {
    if !data_dir.join("node.key").is_file() {
        bail!(
            "{} is not a Spaces data directory (no node.key)",
            data_dir.display()
        );
    }
    let dir = DataDir::open(data_dir)?;
    let store = dir.open_store().context(
        "the node may be running: back it up online with --url http://ADDR and SPACES_ADMIN_TOKEN",
    )?;
    let mut progress = Progress::new("backup", backup::size_estimate(data_dir));
    let mut out = std::io::BufWriter::new(create_new(partial)?);
    backup::backup_offline(
        data_dir,
        &store,
        dir.node_key.node_id().to_string(),
        &mut out,
        &mut |n| progress.show(n),
    )?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    progress.done();
    Ok(progress.last)
}

fn backup_online(url: &str, partial: &Path) -> anyhow::Result<u64> {
    let token = std::env::var("SPACES_ADMIN_TOKEN")
        .context("set SPACES_ADMIN_TOKEN to a node admin's access token")?;
    let endpoint = format!("{}/api/v1/admin/backup", url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut response = reqwest::Client::new()
            .post(&endpoint)
            .bearer_auth(token.trim())
            .send()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            bail!(
                "the node refused the backup: {status} {} {}",
                body["code"].as_str().unwrap_or(""),
                body["message"].as_str().unwrap_or("")
            );
        }
        let estimate = response
            .headers()
            .get("x-spaces-backup-estimate")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let mut progress = Progress::new("backup", estimate);
        let mut out = std::io::BufWriter::new(create_new(partial)?);
        let mut total = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .context("the backup stream broke off")?
        {
            out.write_all(&chunk)?;
            total += chunk.len() as u64;
            progress.show(total);
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        progress.done();
        Ok(total)
    })
}

/// Restores the archive `from` into `data_dir` (absent or empty).
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(from)
        .with_context(|| format!("reading {}", from.display()))?
        .len();
    let mut progress = Progress::new("restore", size);
    let info = backup::restore(from, data_dir, &mut |n| progress.show(n))?;
    progress.done();
    eprintln!(
        "restored {} into {}: events up to seq {}",
        info.node_id,
        data_dir.display(),
        info.last_seq
    );
    Ok(())
}

fn mib(bytes: u64) -> String {
    // For display only: precision is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!("{mib:.1} MiB")
}

/// A progress bar on standard error with a rate and an ETA (indicatif,
/// which draws only when standard error is a terminal). Byte estimates
/// are upper bounds (sled's files hold garbage too), so a bar may finish
/// short of its end.
struct Progress {
    bar: indicatif::ProgressBar,
    last: u64,
}

impl Progress {
    /// Bytes of an archive, out of `estimate` (0: unknown).
    fn new(what: &'static str, estimate: u64) -> Progress {
        Progress::with(
            what,
            estimate,
            "{msg} [{bar:30}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}",
            "{msg} {bytes}  {bytes_per_sec}",
        )
    }

    /// Events of the store's stream, out of `total`.
    fn events(what: &'static str, total: u64) -> Progress {
        Progress::with(
            what,
            total,
            "{msg} [{bar:30}] {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
            "{msg} {human_pos} events  {per_sec}",
        )
    }

    fn with(what: &'static str, total: u64, bounded: &str, unbounded: &str) -> Progress {
        let (bar, template) = if total == 0 {
            (indicatif::ProgressBar::no_length(), unbounded)
        } else {
            (indicatif::ProgressBar::new(total), bounded)
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-");
        bar.set_style(style);
        bar.set_message(what);
        Progress { bar, last: 0 }
    }

    fn show(&mut self, done: u64) {
        self.last = done;
        self.bar.set_position(done);
    }

    fn done(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// `spaces admin check`: verifies a stopped node's data directory: its
/// format, keys, every store record (every event decodes, its signature
/// verifies and its id and room are the ones it is stored under) and that
/// the indexes agree with the log. Returns the report's lines; `Ok(false)`
/// when something is wrong.
pub fn check(data_dir: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    if !data_dir.join("node.key").is_file() {
        bail!(
            "{} is not a Spaces data directory (no node.key)",
            data_dir.display()
        );
    }
    // Refuses a directory newer than this build, and damaged keys.
    let dir = DataDir::open(data_dir)?;
    let store = dir
        .open_store()
        .context("the store cannot be opened: stop the node first, or the store is damaged")?;
    let report = store.check(&mut |stored| match Event::decode(&stored.bytes) {
        Err(rejection) => Some(format!("does not verify: {rejection}")),
        Ok(event) if event.id().0 != stored.event_id => {
            Some("is stored under another event id".to_owned())
        }
        Ok(event) if event.room_id().0 != stored.room_id => {
            Some("is stored under another room".to_owned())
        }
        Ok(_) => None,
    })?;
    writeln!(
        out,
        "data directory {} (format {}), node {}",
        data_dir.display(),
        crate::data_dir::FORMAT,
        dir.node_key.node_id()
    )?;
    writeln!(
        out,
        "{} events in {} records, {} other entries checked",
        report.n_events, report.n_records, report.n_entries
    )?;
    for problem in &report.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if report.n_problems > report.problems.len() as u64 {
        writeln!(
            out,
            "... and {} more problems",
            report.n_problems - report.problems.len() as u64
        )?;
    }
    if report.n_problems == 0 {
        writeln!(out, "ok")?;
    } else {
        writeln!(out, "{} problems found", report.n_problems)?;
    }
    Ok(report.n_problems == 0)
}

/// `spaces healthcheck`: `GET /healthz` at `url` answers 200 within 5 s.
pub fn healthcheck(url: &str) -> anyhow::Result<()> {
    let endpoint = format!("{}/healthz", url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?
            .get(&endpoint)
            .send()
            .await
            .with_context(|| format!("asking {endpoint}"))?;
        if !response.status().is_success() {
            bail!("{endpoint} answered {}", response.status());
        }
        Ok(())
    })
}

/// What the media store holds: blobs (files, thumbnails and records) and
/// their bytes, kept uploads and references.
pub fn media_stats(dir: &DataDir, media: &crate::config::MediaConfig) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the media store")?;
    let options = media.options(dir.path.join("blobs"));
    runtime.block_on(async {
        let blobs = spaces_blobs::Blobs::open(options)
            .await
            .context("opening the media store")?;
        let stats = blobs.stats().await;
        blobs.shutdown().await;
        let stats = stats.context("reading the media store")?;
        Ok(format!(
            "{} blobs, {} bytes; {} uploads kept, {} references",
            stats.blobs, stats.bytes, stats.uploads, stats.references
        ))
    })
}

/// What `spaces admin oauth-client add` registered: the secret is shown
/// this once (only its hash is kept).
#[derive(Debug)]
pub struct NewOAuthClient {
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Registers an OAuth client. `scopes` is space-separated (`openid profile
/// read send`); a public client (`confidential` false) gets no secret and
/// must use PKCE, as every client must anyway. Redirect URIs are matched
/// byte for byte: each must be an absolute `https://` URI, or `http://`
/// on a loopback host (a native app, RFC 8252 §7.3), with no fragment.
pub fn add_oauth_client(
    dir: &DataDir,
    name: &str,
    redirect_uris: &[String],
    scopes: &str,
    confidential: bool,
) -> anyhow::Result<NewOAuthClient> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        bail!("the client's name must be 1 to 64 characters");
    }
    if redirect_uris.is_empty() {
        bail!("give at least one --redirect-uri");
    }
    for uri in redirect_uris {
        check_redirect_uri(uri)?;
    }
    let scopes = spaces_oidc::Scopes::parse(scopes)?;
    if scopes.is_empty() {
        bail!("give at least one scope");
    }
    let store = dir.open_store()?;
    let mut rng = rand::rng();
    let client_id = spaces_auth::new_session_id(&mut rng);
    let secret = confidential.then(|| spaces_auth::new_refresh_token(&mut rng));
    store.add_oauth_client(&spaces_store::OAuthClient {
        client_id: client_id.clone(),
        name: name.to_owned(),
        redirect_uris: redirect_uris.to_vec(),
        scopes: scopes.bits(),
        secret_hash: secret.as_ref().map(|s| s.hash),
        created_at_ms: now_ms(),
    })?;
    Ok(NewOAuthClient {
        client_id,
        client_secret: secret.map(|s| s.token),
    })
}

fn check_redirect_uri(uri: &str) -> anyhow::Result<()> {
    let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"];
    let after_host = |prefix: &str| {
        uri.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
    };
    let https = uri
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !(https || loopback.iter().any(|prefix| after_host(prefix))) {
        bail!("redirect URI {uri:?}: use https://, or http:// on a loopback host");
    }
    if uri.contains('#') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("redirect URI {uri:?}: no fragment, spaces or control characters");
    }
    if uri.len() > 2048 {
        bail!("redirect URI too long (at most 2048 bytes)");
    }
    Ok(())
}

/// One line per registered OAuth client.
pub fn list_oauth_clients(dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let store = dir.open_store()?;
    Ok(store
        .oauth_clients()?
        .into_iter()
        .map(|client| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                client.client_id,
                client.name,
                if client.secret_hash.is_some() {
                    "confidential"
                } else {
                    "public"
                },
                spaces_oidc::Scopes::from_bits(client.scopes),
                client.redirect_uris.join(" "),
            )
        })
        .collect())
}

/// Removes an OAuth client and ends every session it holds; answers how
/// many.
pub fn remove_oauth_client(dir: &DataDir, client_id: &str) -> anyhow::Result<usize> {
    let store = dir.open_store()?;
    store
        .remove_oauth_client(client_id)?
        .with_context(|| format!("no OAuth client {client_id}"))
}
