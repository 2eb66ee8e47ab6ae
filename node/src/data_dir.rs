//! The data directory: `format` (the directory's format version),
//! `node.key` (the node's ed25519 seed), `token.key` (the access-token
//! secret) and `store/` (sled); services add their own sub-directories
//! (`search/`, `blobs/`). Keys are created on first start with owner-only
//! permissions and never rewritten.
//!
//! # Format versions
//!
//! `format` holds one decimal number, the directory's format: what the
//! files and trees in it mean as a whole. Each stored record also carries a
//! format byte of its own (`spaces_store` records), and backup archives
//! carry theirs. A binary opens a directory of its own format or an older
//! one (migrating it forward, if a migration exists, before anything else
//! touches it), and refuses a newer one without changing a byte. A
//! directory from before this file existed is format 1, today's layout:
//! the file is written when such a directory is first opened.

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
        check_format(path)?;
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

/// The data-directory format this build writes (module docs).
pub const FORMAT: u32 = 1;
/// The file that holds it.
const FORMAT_FILE: &str = "format";

/// The format of the directory at `path`: `None` for a directory without a
/// `format` file (new, or from before the file existed).
pub fn read_format(path: &Path) -> anyhow::Result<Option<u32>> {
    let file = path.join(FORMAT_FILE);
    match fs::read_to_string(&file) {
        Ok(text) => {
            text.trim().parse().map(Some).with_context(|| {
                format!("{} does not hold a format number: {text:?}", file.display())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Refuses a directory newer than this build; records the format of a
/// directory that has none. No format before 1 exists, so there is no
/// migration yet: the next format adds its step here, after a backup.
fn check_format(path: &Path) -> anyhow::Result<()> {
    match read_format(path)? {
        Some(format) if format > FORMAT => bail!(
            "the data directory {} is format {format}, newer than this spaces {} (format {FORMAT}): \
             run the newer spaces that wrote it, or restore a backup made for this version",
            path.display(),
            env!("CARGO_PKG_VERSION")
        ),
        Some(0) => bail!("{}: format 0 does not exist", path.display()),
        Some(_) => Ok(()),
        None => {
            let file = path.join(FORMAT_FILE);
            let tmp = path.join(format!("{FORMAT_FILE}.tmp"));
            fs::write(&tmp, format!("{FORMAT}\n"))
                .and_then(|()| fs::File::open(&tmp)?.sync_all())
                .and_then(|()| fs::rename(&tmp, &file))
                .with_context(|| format!("writing {}", file.display()))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_the_current_format() {
        let dir = tempfile::tempdir().unwrap();
        DataDir::open(dir.path()).unwrap();
        assert_eq!(read_format(dir.path()).unwrap(), Some(FORMAT));
        // An existing directory without the file (before formats) is format 1.
        fs::remove_file(dir.path().join(FORMAT_FILE)).unwrap();
        DataDir::open(dir.path()).unwrap();
        assert_eq!(read_format(dir.path()).unwrap(), Some(1));
    }

    #[test]
    fn a_newer_directory_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FORMAT_FILE), format!("{}\n", FORMAT + 1)).unwrap();
        let error = DataDir::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("newer than this spaces"), "{error}");
        assert!(!dir.path().join("node.key").exists(), "nothing written");
        fs::write(dir.path().join(FORMAT_FILE), "x").unwrap();
        assert!(DataDir::open(dir.path()).is_err());
    }
}
