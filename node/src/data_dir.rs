//! The data directory: `node.key` (the node's ed25519 seed), `token.key`
//! (the secret device tokens are signed under) and `store/` (sled). Keys are created on first
//! start with owner-only permissions and never rewritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use spaces_auth::TokenKey;
use spaces_protocol::NodeKey;
use spaces_store::{Options, Store};

#[derive(Debug)]
pub struct DataDir {
    pub path: PathBuf,
    pub node_key: NodeKey,
    pub token_key: TokenKey,
}

impl DataDir {
    /// Opens the directory, creating it and its keys on first use.
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        fs::create_dir_all(path)
            .with_context(|| format!("creating data directory {}", path.display()))?;
        let node_key = NodeKey::from_seed(secret(&path.join("node.key"))?);
        let token_key = TokenKey::from_bytes(secret(&path.join("token.key"))?);
        Ok(DataDir {
            path: path.to_owned(),
            node_key,
            token_key,
        })
    }

    pub fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.path.join("store");
        Store::open(&path, &Options::default()).with_context(|| {
            format!(
                "opening store at {} (is another spaces process using this data directory?)",
                path.display()
            )
        })
    }
}

/// Reads a 32-byte secret, or creates it from the OS RNG.
fn secret(path: &Path) -> anyhow::Result<[u8; 32]> {
    match fs::read(path) {
        Ok(bytes) => {
            let Ok(secret) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                bail!(
                    "{} is {} bytes, expected 32: refusing to replace a damaged key",
                    path.display(),
                    bytes.len()
                );
            };
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&secret)?;
            file.sync_all()?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
