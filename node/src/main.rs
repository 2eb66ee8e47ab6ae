//! `spaces`: run a node, or administer a stopped one.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spaces_node::config::{Config, Overrides};
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
    /// Operator commands on a stopped node's data directory.
    Admin {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        command: AdminCommand,
    },
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
    /// List rooms with their event counts.
    ListRooms,
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
}

fn main() -> anyhow::Result<()> {
    spaces_node::install_crypto_provider();
    let cli = Cli::parse();
    // A server logs its life at info; an admin command speaks only when it must.
    let default_filter = match cli.command {
        // Kademlia warns "No known peers" whenever a node without peers
        // gains a listen address (every start of a first node): not news.
        Command::Serve { .. } => "info,sled=warn,libp2p_kad::behaviour=error",
        Command::Admin { .. } => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Admin { common, command } => {
            let overrides = Overrides {
                data_dir: common.data_dir,
                ..Default::default()
            };
            let config = Config::load(common.config.as_deref(), std::env::vars(), &overrides)?;
            let dir = DataDir::open(&config.data_dir)?;
            match command {
                AdminCommand::CreateUser { username, admin } => {
                    let user = admin::create_user(&dir, &username, &read_password()?, admin)?;
                    println!("created {user}");
                }
                AdminCommand::ResetPassword { username } => {
                    admin::reset_password(&dir, &username, &read_password()?)?;
                    println!("password reset; sessions ended");
                }
                AdminCommand::ListUsers => admin::list_users(&dir)?
                    .iter()
                    .for_each(|l| println!("{l}")),
                AdminCommand::ListRooms => admin::list_rooms(&dir)?
                    .iter()
                    .for_each(|l| println!("{l}")),
                AdminCommand::InviteToken {
                    uses,
                    expires_in_secs,
                } => println!("{}", admin::invite_token(&dir, uses, expires_in_secs)?),
                AdminCommand::MediaStats => {
                    println!("{}", admin::media_stats(&dir, &config.media)?)
                }
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::spawn(config).await?;
    println!("Spaces node {} on http://{}", node.node_id, node.http_addr);
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
