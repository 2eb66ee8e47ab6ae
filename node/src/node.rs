//! Wiring: data directory → store → engine → API, and an orderly stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use spaces_protocol::NodeId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Shared};
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::engine::Engine;
use crate::http_server;
use crate::metrics::Metrics;
use crate::peering::{self, Federation, NodeHost};
use crate::services::accounts::Accounts;
use crate::services::backup::Backups;
use crate::services::banlists::BanLists;
use crate::services::links::Links;
use crate::services::media::Media;
use crate::services::moderation::Moderation;
use crate::services::notify::Notify;
use crate::services::push::Push;
use crate::services::search::Search;

/// A running node. Dropping it without [`Node::shutdown`] leaves its tasks
/// running until the runtime stops.
#[derive(Debug)]
pub struct Node {
    pub http_addr: SocketAddr,
    pub node_id: NodeId,
    engine: Engine,
    media: Media,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    writer: std::thread::JoinHandle<()>,
    /// The swarm task, the publisher, the presence announcer, the
    /// keeper of remote events' media references and the ban-list enforcer:
    /// stopped after the HTTP server.
    federation: [JoinHandle<()>; 5],
    /// The search indexer, if search is on: it commits and stops on the
    /// stop signal, before the engine goes.
    indexer: Option<JoinHandle<()>>,
    /// Handles SIGHUP: reloads the TLS certificate, if the node serves HTTPS.
    tls_reloader: Option<JoinHandle<()>>,
    /// The notifier, if notifications are on: stops on the stop signal.
    notifier: Option<JoinHandle<()>>,
    /// The pusher, if Web Push is on: its queue is in the store.
    pusher: Option<JoinHandle<()>>,
    /// The mailer, if email is configured: its digest queue is in the store.
    mailer: Option<JoinHandle<()>>,
}

/// Reloads the certificate and key on every SIGHUP; connections already up
/// keep theirs (`crate::tls`). Without TLS a SIGHUP is logged and ignored
/// (its default action would end the process).
async fn reload_on_sighup(tls: Option<crate::tls::Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: the TLS certificate will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: no TLS certificate to reload");
            continue;
        };
        // File reads: off the async threads.
        let reloading = tls.clone();
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Ok(Err(error)) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "SIGHUP: TLS certificate not reloaded; the old one stays"
                )
            }
            Err(error) => tracing::warn!(%error, "SIGHUP: TLS reload task failed"),
        }
    }
}

impl Node {
    /// Opens the data directory and starts serving.
    pub async fn spawn(config: Config) -> anyhow::Result<Node> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let store = data_dir.open_store()?;
        let metrics = Arc::new(Metrics::default());
        let node_key = data_dir.node_key.clone();
        let lag = config.limits.ws_lag_events;
        let presence = config.presence.options();
        let (engine, writer) = {
            let store = store.clone();
            let metrics = metrics.clone();
            tokio::task::spawn_blocking(move || {
                Engine::open(store, node_key, metrics, lag, presence)
            })
            .await??
        };
        let node_id = engine.node_id();
        let links = Links::new(engine.clone(), store.clone());
        let migrated = links
            .migrate_legacy()
            .await
            .context("moving invite links of an older build")?;
        if migrated != Default::default() {
            tracing::info!(
                moved = migrated.moved,
                dropped = migrated.dropped,
                "invite links of an older build moved to their own tree"
            );
        }
        let accounts = Accounts::new(store.clone());
        let backups = Backups::new(config.data_dir.clone(), store.clone(), node_id.to_string());
        let blobs = spaces_blobs::Blobs::open(config.media.options(data_dir.path.join("blobs")))
            .await
            .context("opening the media store")?;
        // Loading ONNX Runtime opens a shared library: off the async threads.
        // A missing library is a state (logged with where it looked), not an error.
        let moderation = {
            let moderation_config = config.moderation.clone();
            let store = store.clone();
            tokio::task::spawn_blocking(move || Moderation::start(&moderation_config, store))
                .await
                .context("starting moderation")??
        };
        let ban_lists = BanLists::new(
            engine.clone(),
            moderation.clone(),
            config.moderation.ban_list_ids()?,
        );
        let host = Arc::new(NodeHost::new(
            engine.clone(),
            links.clone(),
            blobs.clone(),
            moderation.clone(),
            ban_lists.clone(),
        ));
        let (handle, swarm_task) =
            spaces_federation::start(config.p2p.federation()?, &data_dir.node_key, host.clone())
                .context("starting federation")?;
        let media = Media::new(
            blobs,
            engine.clone(),
            Some((handle.clone(), config.media.fetch_options())),
        );
        let media_references = tokio::spawn(crate::services::media::run_references(media.clone()));
        let publisher = tokio::spawn(peering::run_publisher(engine.clone(), handle.clone()));
        let presence = tokio::spawn(peering::run_presence(engine.clone(), handle.clone()));
        let tls = match &config.http.tls {
            Some(tls) => Some(
                crate::tls::Tls::load(&tls.cert_file, &tls.key_file)
                    .context("http.tls: loading the certificate")?,
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding HTTP listener {}", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let ban_list_task = tokio::spawn(crate::services::banlists::run(
            ban_lists.clone(),
            stopped.clone(),
        ));
        let (search, indexer) = if config.search.enabled {
            let options = spaces_search::Options::new(data_dir.path.join("search"));
            let (search, task) = Search::start(engine.clone(), options, stopped.clone())
                .await
                .context("opening the search index")?;
            (search, Some(task))
        } else {
            (Search::off(), None)
        };
        let public_url = config
            .http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{}", http_addr.port()));
        let ceremonies =
            spaces_passkey::Passkeys::new(&config.login.passkey_options(public_url.clone()))
                .context("http.public_url")?;
        let passkeys = crate::services::passkeys::Passkeys::new(ceremonies, store.clone());
        let oidc = crate::services::oidc::Oidc::new(
            data_dir.oidc_key()?,
            store.clone(),
            accounts.clone(),
            public_url.clone(),
        );
        let push = if config.push.enabled {
            let push = Push::open(
                store.clone(),
                &data_dir.path.join("vapid.key"),
                config.push.options(),
            )
            .context("opening Web Push (the VAPID key)")?;
            Some(push)
        } else {
            None
        };
        let pusher = match &push {
            Some(push) => Some(push.start(api::push_payload, stopped.clone())?),
            None => None,
        };
        let notify = Notify::new(engine.clone(), push.clone(), moderation.clone());
        let notifier = config
            .notifications
            .enabled
            .then(|| notify.start(stopped.clone()));
        // Email, when a relay is configured: links signed under a key derived
        // from the token secret; the mailer follows the notifier's output.
        let email = match config
            .email
            .options(&public_url)
            .context("email: reading the configuration")?
        {
            Some(options) => Some(
                crate::services::email::Email::open(
                    engine.clone(),
                    moderation.clone(),
                    &data_dir.token_key.to_bytes(),
                    options,
                )
                .context("email: starting the mailer")?,
            ),
            None => None,
        };
        let mailer = email
            .as_ref()
            .map(|email| email.start(&notify, stopped.clone()));
        let device_key = data_dir.token_key.device_key();
        let mut limits = http_server::Limits::from_config(&config.http);
        limits.upload = std::time::Duration::from_secs(config.media.upload_timeout_secs);
        let server_metrics = metrics.clone();
        let txns = crate::services::txns::Txns::new(store.clone());
        let state = AppState::new(Shared {
            engine: engine.clone(),
            store,
            sends: api::RateLimiter::new(config.limits.sends_per_sec, config.limits.send_burst),
            searches: api::RateLimiter::new(
                config.search.searches_per_sec,
                config.search.search_burst,
            ),
            signin: crate::signin::Guard::new(config.login.options()),
            device_key,
            registrations_per_ip: api::RateLimiter::with_rate(
                f64::from(config.limits.registrations_per_ip_per_hour) / 3600.0,
                config.limits.registration_ip_burst,
            ),
            registrations: api::RateLimiter::new(
                config.limits.registrations_per_sec,
                config.limits.registration_burst,
            ),
            accounts,
            links,
            search,
            notify,
            push,
            email,
            backups,
            media: media.clone(),
            txns,
            passkeys,
            oidc,
            moderation,
            ban_lists,
            federation: Federation { handle, host },
            hasher: crate::hasher::Hasher::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            web_dir: web_dir(&config),
            metrics,
            config,
            stopped: stopped.clone(),
        });
        let app = api::router(state);
        // Always: without a handler SIGHUP would end the process.
        let tls_reloader = Some(tokio::spawn(reload_on_sighup(tls.clone())));
        let server = tokio::spawn(http_server::serve(
            listener,
            app,
            limits,
            server_metrics,
            stopped,
            tls,
        ));
        tracing::info!(node = %node_id, http = %http_addr, "node started");
        Ok(Node {
            http_addr,
            node_id,
            engine,
            media,
            stop,
            server,
            writer,
            federation: [
                swarm_task,
                publisher,
                presence,
                media_references,
                ban_list_task,
            ],
            indexer,
            tls_reloader,
            notifier,
            pusher,
            mailer,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish (their writes
    /// included), closes WebSockets, and flushes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.server.await.context("HTTP server task")??;
        if let Some(reloader) = self.tls_reloader {
            reloader.abort();
        }
        for task in self.federation {
            task.abort();
            let _ = task.await;
        }
        if let Some(mut indexer) = self.indexer {
            // It saw the stop signal: a last commit, then it ends.
            let limit = std::time::Duration::from_secs(10);
            if tokio::time::timeout(limit, &mut indexer).await.is_err() {
                tracing::warn!(
                    "the search indexer did not stop within 10 s; the next start catches up"
                );
                indexer.abort();
            }
        }
        if let Some(notifier) = self.notifier {
            // Its writes are atomic with its cursor: stopping it anywhere is
            // safe, and it ends at the stop signal.
            let limit = std::time::Duration::from_secs(10);
            let mut notifier = notifier;
            if tokio::time::timeout(limit, &mut notifier).await.is_err() {
                notifier.abort();
            }
        }
        if let Some(mailer) = self.mailer {
            // A digest being sent is sent again after the restart.
            mailer.abort();
            let _ = mailer.await;
        }
        if let Some(pusher) = self.pusher {
            // A delivery in flight is sent again after the restart.
            pusher.abort();
            let _ = pusher.await;
        }
        self.media.blobs().shutdown().await;
        let store = self.engine.store().clone();
        tokio::task::spawn_blocking(move || store.flush()).await??;
        // The writer stops when the last engine handle is gone (the server's
        // state went with the server; WebSockets closed on the stop signal;
        // the media service holds one too).
        drop(self.media);
        drop(self.engine);
        let writer = self.writer;
        let joined = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::task::spawn_blocking(move || writer.join()),
        )
        .await;
        if joined.is_err() {
            tracing::warn!("the writer did not stop within 10 s; its data is already flushed");
        }
        tracing::info!(node = %self.node_id, "node stopped");
        Ok(())
    }
}

/// The configured web client directory, or `web-ui/dist` of the source tree.
fn web_dir(config: &Config) -> Option<PathBuf> {
    let dir = config
        .web
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-ui/dist"));
    dir.join("index.html").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shutdown` stops every task: the same process can start a node on the
    /// same data directory again (sled would refuse a second open otherwise),
    /// with the same identity.
    #[tokio::test]
    async fn shutdown_releases_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            http: crate::config::HttpConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            },
            ..Config::default()
        };
        let first = Node::spawn(config.clone()).await.unwrap();
        let node_id = first.node_id;
        first.shutdown().await.unwrap();
        let second = Node::spawn(config).await.unwrap();
        assert_eq!(second.node_id, node_id, "the node key persists");
        second.shutdown().await.unwrap();
    }
}
