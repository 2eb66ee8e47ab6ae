//! The data directory: `format` (the directory's format version),
//! `node.key` (the node's ed25519 seed), `token.key` (the secret
//! device tokens are signed under), `oidc.key` (the Ed25519 seed ID tokens
//! are signed with) and `store/` (sled); services add their own sub-directories
//! (`search/`, `blobs/`). Keys are created on first start with owner-only
//! permissions and never rewritten.
//!
//! # Format versions
//!
//! `format` holds one decimal number, the directory's format: what the
//! files and trees in it mean as a whole. Each stored record also carries a
//! format byte of its own (`spaces_store` records), and backup archives
//! carry theirs. A binary opens a directory of its own format or an older
//! one, and refuses a newer one without changing a byte. An older one is
//! backed up beside the directory first, then migrated forward one step
//! ([`Migration`]) at a time before anything else touches it, the format
//! recorded after each step, so an interrupted upgrade resumes where it
//! stopped. A
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

    /// The OAuth2/OIDC provider's ID-token signing key: the Ed25519 seed in
    /// `oidc.key`, made on first use like the other keys.
    pub fn oidc_key(&self) -> anyhow::Result<spaces_oidc::SigningKey> {
        let path = self.path.join("oidc.key");
        spaces_oidc::SigningKey::from_seed(&secret(&path)?)
            .with_context(|| format!("loading {}", path.display()))
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
        Some(format) if format < FORMAT => migrate(path, format, FORMAT, MIGRATIONS),
        Some(_) => Ok(()),
        None => write_format(path, FORMAT),
    }
}

fn write_format(path: &Path, format: u32) -> anyhow::Result<()> {
    let file = path.join(FORMAT_FILE);
    let tmp = path.join(format!("{FORMAT_FILE}.tmp"));
    fs::write(&tmp, format!("{format}\n"))
        .and_then(|()| fs::File::open(&tmp)?.sync_all())
        .and_then(|()| fs::rename(&tmp, &file))
        .with_context(|| format!("writing {}", file.display()))
}

/// One step of an upgrade: from format `from` to `from + 1`, on a directory
/// no process has open.
#[derive(Debug)]
pub(crate) struct Migration {
    pub from: u32,
    pub run: fn(&Path) -> anyhow::Result<()>,
}

/// Every migration, in order. Empty: format 1 is the first format.
const MIGRATIONS: &[Migration] = &[];

/// Takes a backup of the directory beside it (`<dir>.format-<from>-<ms>.spaces`),
/// then runs each step from `from` to `to`, recording the format after each,
/// so an interrupted upgrade resumes at the step it was in.
fn migrate(path: &Path, from: u32, to: u32, steps: &[Migration]) -> anyhow::Result<()> {
    let name = path.file_name().map_or_else(
        || "spaces-data".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let backup = path.with_file_name(format!(
        "{name}.format-{from}-{}.spaces",
        crate::engine::now_ms()
    ));
    tracing::warn!(
        from,
        to,
        backup = %backup.display(),
        "upgrading the data directory; backing it up first"
    );
    {
        let store = Store::open(&path.join("store"), &Options::default())
            .context("opening the store to back it up before the upgrade")?;
        let node_id = NodeKey::from_seed(secret(&path.join("node.key"))?).node_id();
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&backup)
            .with_context(|| format!("creating {}", backup.display()))?;
        let mut out = std::io::BufWriter::new(file);
        crate::archive::backup_offline(path, &store, node_id.to_string(), &mut out, &mut |_| {})
            .context("backing up before the upgrade")?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    for format in from..to {
        let Some(step) = steps.iter().find(|step| step.from == format) else {
            bail!("no migration from data-directory format {format}");
        };
        (step.run)(path).with_context(|| format!("migrating from format {format}"))?;
        write_format(path, format + 1)?;
    }
    Ok(())
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

    /// An upgrade backs the directory up first, runs each step and records
    /// the format after it; a missing step stops it with the format as it was.
    #[test]
    fn a_migration_backs_up_first_then_steps_forward() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("data");
        DataDir::open(&path).unwrap().open_store().unwrap();
        let steps = [Migration {
            from: 1,
            run: |path| {
                // The backup exists before any step runs.
                let backups = fs::read_dir(path.parent().unwrap())
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .ends_with(".spaces")
                    })
                    .count();
                assert_eq!(backups, 1);
                fs::write(path.join("migrated"), b"")?;
                Ok(())
            },
        }];
        migrate(&path, 1, 2, &steps).unwrap();
        assert_eq!(read_format(&path).unwrap(), Some(2));
        assert!(path.join("migrated").exists());
        let backup = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".spaces"))
            .unwrap();
        assert!(backup.to_string_lossy().contains("data.format-1-"));
        crate::archive::verify(&backup).unwrap();

        let error = migrate(&path, 2, 3, &steps).unwrap_err();
        assert!(error.to_string().contains("no migration from"), "{error}");
        assert_eq!(read_format(&path).unwrap(), Some(2));
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
