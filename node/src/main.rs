//! `spaces`: run a node, or administer a stopped one.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spaces_node::config::{Config, LogFormat, Overrides};
use spaces_node::data_dir::DataDir;
use spaces_node::{Node, admin};

/// Spaces: a self-hostable, federated chat node.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// TOML configuration file (see spaces.example.toml).
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Data directory: keys and store. Created on first start.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the node until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        common: Common,
        /// HTTP + WebSocket listen address.
        #[arg(long, value_name = "ADDR:PORT")]
        http_listen: Option<SocketAddr>,
        /// Federation listen multiaddr (repeatable).
        #[arg(long, value_name = "MULTIADDR")]
        p2p_listen: Vec<String>,
    },
    /// Exit 0 if the node at --url answers `GET /healthz` with 200 within
    /// 5 seconds, 1 otherwise: a container or monitor health check.
    Healthcheck {
        /// The node's base URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Operator commands: most on a stopped node's data directory; `backup`
    /// also on a running node through its HTTP API.
    Admin {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand, Debug)]
enum UsersAction {
    /// Every account with its role and status.
    List,
    /// No sign-in by any method until reactivated; every session ends.
    Suspend { username: String },
    /// Lift a suspension.
    Reactivate { username: String },
    /// No sign-in ever again; every session ends.
    Deactivate { username: String },
}

#[derive(Subcommand, Debug)]
enum OAuthClientAction {
    /// Register a client; prints its client id (and secret, shown once).
    Add {
        /// Shown to users on the consent page.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeatable): https://, or http:// on a
        /// loopback host.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// The most the client may ask for: openid profile read send.
        #[arg(long, default_value = "openid profile read")]
        scopes: String,
        /// A public client (a native or browser app): no secret; PKCE only.
        #[arg(long)]
        public: bool,
    },
    /// Every registered client: id, name, type, scopes, redirect URIs.
    List,
    /// Remove a client and end every session it holds.
    Remove { client_id: String },
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create a user; the password is read from standard input.
    CreateUser {
        username: String,
        /// Make the user a node admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set a user's password (read from standard input) and end their sessions.
    ResetPassword { username: String },
    /// List accounts.
    ListUsers,
    /// Accounts: list them, suspend, reactivate or deactivate one. On a
    /// running node through its HTTP API (--url, with an admin's or
    /// moderator's access token in SPACES_ADMIN_TOKEN: sessions end and
    /// WebSockets close at once), or on a stopped node's data directory.
    Users {
        #[command(subcommand)]
        action: UsersAction,
        /// The running node's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL", global = true)]
        url: Option<String>,
    },
    /// List rooms with their event counts.
    ListRooms,
    /// Third-party OAuth2 / OpenID Connect clients of this node's provider
    /// (on a stopped node's data directory).
    OauthClient {
        #[command(subcommand)]
        action: OAuthClientAction,
    },
    /// Rebuild the search index from the store (the node must be stopped),
    /// with a progress bar and an ETA.
    Reindex,
    /// Report the media store: blobs, bytes, kept uploads, references.
    MediaStats,
    /// Mint a sign-up invite token (for registration mode "invite").
    InviteToken {
        /// How many sign-ups it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Lifetime in seconds; forever if absent.
        #[arg(long)]
        expires_in_secs: Option<u64>,
    },
    /// Back up a node into one archive file: a running node through its HTTP
    /// API (--url, with an admin's access token in SPACES_ADMIN_TOKEN), or a
    /// stopped node's data directory (--data-dir).
    Backup {
        /// The archive to write; must not exist yet.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// The running node's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Verify a stopped node's data directory: every event decodes and
    /// verifies, the indexes agree; exits non-zero if anything is wrong.
    Check,
    /// Restore a backup into --data-dir, which must not exist or be empty.
    Restore {
        /// The archive written by `spaces admin backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    spaces_node::install_crypto_provider();
    let cli = Cli::parse();
    // A server logs its life at info; an admin command speaks only when it must.
    // Kademlia warns "No known peers" whenever a node without peers gains a
    // listen address (every start of a first node): not news.
    const SERVE_FILTER: &str = "info,sled=warn,libp2p_kad::behaviour=error";
    match cli.command {
        Command::Serve {
            common,
            http_listen,
            p2p_listen,
        } => {
            let overrides = Overrides {
                data_dir: common.data_dir,
                http_listen,
                p2p_listen: (!p2p_listen.is_empty()).then_some(p2p_listen),
            };
            let config = Config::load(common.config.as_deref(), std::env::vars(), &overrides)?;
            spaces_node::logging::init(SERVE_FILTER, config.log.format);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Healthcheck { url } => {
            spaces_node::logging::init("warn", LogFormat::Text);
            if let Err(e) = admin::healthcheck(&url) {
                eprintln!("unhealthy: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Admin { common, command } => {
            let overrides = Overrides {
                data_dir: common.data_dir,
                ..Default::default()
            };
            let config = Config::load(common.config.as_deref(), std::env::vars(), &overrides)?;
            spaces_node::logging::init("warn", config.log.format);
            // Backup and restore must not create a data directory (and keys) where there is none.
            let dir = || DataDir::open(&config.data_dir);
            match command {
                AdminCommand::Backup { to, url } => admin::backup(&config.data_dir, &to, url)?,
                AdminCommand::Restore { from } => admin::restore(&from, &config.data_dir)?,
                AdminCommand::Check => {
                    if !admin::check(&config.data_dir, &mut std::io::stdout())? {
                        std::process::exit(1);
                    }
                }
                AdminCommand::CreateUser { username, admin } => {
                    let user = admin::create_user(&dir()?, &username, &read_password()?, admin)?;
                    println!("created {user}");
                }
                AdminCommand::ResetPassword { username } => {
                    admin::reset_password(&dir()?, &username, &read_password()?)?;
                    println!("password reset; sessions ended");
                }
                AdminCommand::Users { action, url } => {
                    let action = match action {
                        UsersAction::List => None,
                        UsersAction::Suspend { username } => {
                            Some((admin::UserAction::Suspend, username))
                        }
                        UsersAction::Reactivate { username } => {
                            Some((admin::UserAction::Reactivate, username))
                        }
                        UsersAction::Deactivate { username } => {
                            Some((admin::UserAction::Deactivate, username))
                        }
                    };
                    for line in admin::users(&config.data_dir, url, action)? {
                        println!("{line}");
                    }
                }
                AdminCommand::ListUsers => admin::list_users(&dir()?)?
                    .iter()
                    .for_each(|l| println!("{l}")),
                AdminCommand::ListRooms => admin::list_rooms(&dir()?)?
                    .iter()
                    .for_each(|l| println!("{l}")),
                AdminCommand::OauthClient { action } => match action {
                    OAuthClientAction::Add {
                        name,
                        redirect_uris,
                        scopes,
                        public,
                    } => {
                        let client = admin::add_oauth_client(
                            &dir()?,
                            &name,
                            &redirect_uris,
                            &scopes,
                            !public,
                        )?;
                        println!("client_id {}", client.client_id);
                        if let Some(secret) = client.client_secret {
                            println!("client_secret {secret}");
                        }
                    }
                    OAuthClientAction::List => admin::list_oauth_clients(&dir()?)?
                        .iter()
                        .for_each(|l| println!("{l}")),
                    OAuthClientAction::Remove { client_id } => {
                        let ended = admin::remove_oauth_client(&dir()?, &client_id)?;
                        println!("removed {client_id}; {ended} sessions ended");
                    }
                },
                AdminCommand::InviteToken {
                    uses,
                    expires_in_secs,
                } => println!("{}", admin::invite_token(&dir()?, uses, expires_in_secs)?),
                AdminCommand::Reindex => {
                    let indexed = admin::reindex(&dir()?)?;
                    println!("search index rebuilt from the store: {indexed} messages");
                }
                AdminCommand::MediaStats => {
                    println!("{}", admin::media_stats(&dir()?, &config.media)?)
                }
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let scheme = if config.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let node = Node::spawn(config).await?;
    println!(
        "Spaces node {} on {scheme}://{}",
        node.node_id, node.http_addr
    );
    shutdown_signal().await?;
    tracing::info!("stopping");
    node.shutdown().await
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
