//! The backup archive: writing one from a store snapshot and the data
//! directory's files, checking one, and restoring one into a new directory.
//! Blocking I/O throughout: it runs on a blocking thread
//! (`services::backup`) or in the operator CLI (`admin`).
//!
//! A backup is one archive file (format below) holding a consistent snapshot
//! of the store ([`spaces_store::Store::snapshot`]: every event durable when
//! it started, with its indexes, and the other trees as of one moment), the
//! node's keys, and every other file of the data directory. It is written
//! while the node runs: the event writer is never paused, and writes that
//! span two trees wait only while the small trees are copied.
//!
//! What is not copied: `search/`, an index that is rebuilt from the store's
//! stream (ARCHITECTURE.md, "Pattern for services"), and anything that is
//! neither a regular file nor a directory. Every other sub-directory (media
//! blobs included) is copied file by file as it is when read: a service
//! that keeps files there must write each one whole (write, then rename),
//! so a file is never read half-written.
//!
//! # Archive format, version 1
//!
//! ```text
//! magic "SPACESBK" ‖ version u16 BE (1)
//! frames: kind u8 ‖ payload length u32 BE ‖ payload (at most 16 MiB)
//!   0x01 info   JSON: format, node id, last seq, creation time, the binary's version
//!   0x02 file   a relative path ('/'-separated, UTF-8); its bytes follow in 0x03 frames
//!   0x03 data   up to 1 MiB of the current file
//!   0x04 entry  tree name length u8 ‖ tree name ‖ key length u32 BE ‖ key ‖ value
//!   0xff end    frame count u64 BE ‖ BLAKE3 of every byte before this frame
//! ```
//!
//! Nothing may follow the end frame. A restore reads the whole archive and
//! checks it (every frame, the count, the hash) before it writes anything,
//! then restores into a staging directory beside the target and renames it
//! into place: a truncated or damaged archive restores nothing, and a crash
//! during a restore leaves no half-restored target.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use spaces_store::{Entry, Restorer, Store};

const MAGIC: &[u8; 8] = b"SPACESBK";
/// The archive format this build writes and reads.
pub const FORMAT: u16 = 1;
/// Largest frame payload: a store value (event records are at most 64 KiB,
/// but a tree of a later service may hold more) or a file chunk.
const MAX_FRAME: u32 = 16 * 1024 * 1024;
/// File bytes per data frame.
const FILE_CHUNK: usize = 1024 * 1024;
/// Sub-directories of the data directory that are not copied: rebuilt from the store.
const REBUILT: &[&str] = &["search"];
/// The store's own directory, copied through a snapshot, not as files.
const STORE_DIR: &str = "store";

const INFO: u8 = 0x01;
const FILE: u8 = 0x02;
const DATA: u8 = 0x03;
const ENTRY: u8 = 0x04;
const END: u8 = 0xff;

/// What an archive says about itself (its first frame).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Info {
    pub format: u16,
    pub node_id: String,
    /// The last event seq in the archive: every event acknowledged before the backup started.
    pub last_seq: u64,
    pub created_at_ms: u64,
    /// The `spaces` version that wrote it.
    pub binary: String,
}

/// Writes a backup of a *stopped* node's data directory (its store opened
/// by the caller) to `out`; `progress` is told the bytes written so far.
pub fn backup_offline(
    data_dir: &Path,
    store: &Store,
    node_id: String,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Info> {
    let snapshot = store.snapshot()?;
    let info = Info {
        format: FORMAT,
        node_id,
        last_seq: snapshot.last_seq(),
        created_at_ms: crate::engine::now_ms(),
        binary: env!("CARGO_PKG_VERSION").to_owned(),
    };
    write_archive(data_dir, &info, snapshot, out, progress)?;
    Ok(info)
}

/// An upper estimate of a backup of `data_dir` (its store included), for a progress bar.
pub fn size_estimate(data_dir: &Path) -> u64 {
    files_size(data_dir) + dir_size(&data_dir.join(STORE_DIR))
}

pub(crate) fn write_archive(
    data_dir: &Path,
    info: &Info,
    snapshot: spaces_store::Snapshot,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<()> {
    let mut w = FrameWriter::new(out);
    w.header()?;
    w.frame(INFO, &serde_json::to_vec(info)?)?;
    for (relative, path) in data_files(data_dir)? {
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            // Removed since it was listed: a blob deleted meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        w.frame(FILE, relative.as_bytes())?;
        let mut chunk = vec![0; FILE_CHUNK];
        loop {
            let n = file
                .read(&mut chunk)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            w.frame(DATA, &chunk[..n])?;
            progress(w.written);
        }
    }
    let mut payload = Vec::new();
    for (n, entry) in snapshot.entries().enumerate() {
        let entry = entry.context("reading the store")?;
        payload.clear();
        let tree = u8::try_from(entry.tree.len()).context("tree name longer than 255 bytes")?;
        payload.push(tree);
        payload.extend_from_slice(entry.tree.as_bytes());
        payload.extend_from_slice(&u32::try_from(entry.key.len())?.to_be_bytes());
        payload.extend_from_slice(&entry.key);
        payload.extend_from_slice(&entry.value);
        w.frame(ENTRY, &payload)?;
        if n % 1024 == 0 {
            progress(w.written);
        }
    }
    w.end()?;
    progress(w.written);
    Ok(())
}

/// Every regular file of the data directory to copy, keys first, as
/// (archive path, path on disk); the store and rebuilt indexes left out.
fn data_files(data_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut dirs = vec![(String::new(), data_dir.to_owned())];
    while let Some((prefix, dir)) = dirs.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %entry.path().display(), "backup skips a non-UTF-8 name");
                continue;
            };
            let relative = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if prefix.is_empty() && (name == STORE_DIR || REBUILT.contains(&name.as_str())) {
                    continue;
                }
                dirs.push((format!("{relative}/"), entry.path()));
            } else if kind.is_file() {
                found.push((relative, entry.path()));
            }
        }
    }
    // The keys first: a reader sees the node's identity before its data.
    found.sort_by_key(|(relative, _)| !relative.ends_with(".key") || relative.contains('/'));
    Ok(found)
}

pub(crate) fn files_size(data_dir: &Path) -> u64 {
    data_files(data_dir).map_or(0, |files| {
        files
            .iter()
            .filter_map(|(_, path)| fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

struct FrameWriter<'a> {
    out: &'a mut dyn Write,
    hasher: blake3::Hasher,
    n_frames: u64,
    written: u64,
}

impl<'a> FrameWriter<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        FrameWriter {
            out,
            hasher: blake3::Hasher::new(),
            n_frames: 0,
            written: 0,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn header(&mut self) -> io::Result<()> {
        self.raw(MAGIC)?;
        self.raw(&FORMAT.to_be_bytes())
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> anyhow::Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&len| len <= MAX_FRAME)
            .context("a record larger than 16 MiB")?;
        self.raw(&[kind])?;
        self.raw(&len.to_be_bytes())?;
        self.raw(payload)?;
        self.n_frames += 1;
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        let hash = self.hasher.finalize();
        let mut payload = self.n_frames.to_be_bytes().to_vec();
        payload.extend_from_slice(hash.as_bytes());
        // Lossless: 40 bytes.
        let len = payload.len() as u32;
        self.out.write_all(&[END])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&payload)?;
        self.written += 5 + payload.len() as u64;
        self.out.flush()
    }
}

/// One frame read back.
enum Frame {
    Info(Info),
    File(String),
    Data(Vec<u8>),
    Entry(Entry),
}

/// Reads an archive frame by frame, hashing as it goes; the end frame is checked when reached.
struct FrameReader<R> {
    input: R,
    hasher: blake3::Hasher,
    n_frames: u64,
    done: bool,
}

impl<R: Read> FrameReader<R> {
    fn open(mut input: R) -> anyhow::Result<Self> {
        let mut header = [0; 10];
        input
            .read_exact(&mut header)
            .context("not a Spaces backup: shorter than its header")?;
        if &header[..8] != MAGIC {
            bail!("not a Spaces backup (no SPACESBK header)");
        }
        let format = u16::from_be_bytes([header[8], header[9]]);
        if format != FORMAT {
            bail!(
                "backup format {format}; this build reads format {FORMAT} (a newer spaces wrote it?)"
            );
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&header);
        Ok(FrameReader {
            input,
            hasher,
            n_frames: 0,
            done: false,
        })
    }

    fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0; 5];
        self.input
            .read_exact(&mut head)
            .context("the backup is truncated (no end frame)")?;
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            bail!("the backup is damaged: a frame of {len} bytes");
        }
        let mut payload = vec![0; len as usize];
        self.input
            .read_exact(&mut payload)
            .context("the backup is truncated (a frame is cut short)")?;
        if kind == END {
            let hash = self.hasher.finalize();
            if payload.len() != 40
                || payload[..8] != self.n_frames.to_be_bytes()
                || payload[8..] != hash.as_bytes()[..]
            {
                bail!("the backup is damaged: its checksum does not match");
            }
            let mut rest = [0; 1];
            if self.input.read(&mut rest)? != 0 {
                bail!("the backup is damaged: bytes after its end");
            }
            self.done = true;
            return Ok(None);
        }
        self.hasher.update(&head);
        self.hasher.update(&payload);
        self.n_frames += 1;
        let frame = match kind {
            INFO => Frame::Info(
                serde_json::from_slice(&payload).context("the backup is damaged: bad info")?,
            ),
            FILE => Frame::File(safe_path(&payload)?),
            DATA => Frame::Data(payload),
            ENTRY => Frame::Entry(entry(&payload).context("the backup is damaged: bad entry")?),
            other => bail!("the backup is damaged: unknown frame kind {other:#04x}"),
        };
        Ok(Some(frame))
    }
}

fn entry(payload: &[u8]) -> anyhow::Result<Entry> {
    let (&tree_len, rest) = payload.split_first().context("empty")?;
    let tree_len = usize::from(tree_len);
    anyhow::ensure!(rest.len() >= tree_len + 4, "short");
    let tree = std::str::from_utf8(&rest[..tree_len])?.to_owned();
    let rest = &rest[tree_len..];
    let key_len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let rest = &rest[4..];
    anyhow::ensure!(rest.len() >= key_len, "short key");
    Ok(Entry {
        tree,
        key: rest[..key_len].to_vec(),
        value: rest[key_len..].to_vec(),
    })
}

/// A relative path that stays inside the target directory.
fn safe_path(bytes: &[u8]) -> anyhow::Result<String> {
    let path = std::str::from_utf8(bytes).context("the backup is damaged: a non-UTF-8 path")?;
    let ok = !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && path.split('/').next() != Some(STORE_DIR);
    if !ok {
        bail!("the backup is damaged: file path {path:?} leaves the data directory");
    }
    Ok(path.to_owned())
}

/// Reads a whole archive and checks it; returns what it says about itself.
pub fn verify(archive: &Path) -> anyhow::Result<Info> {
    let file = fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut reader = FrameReader::open(BufReader::new(file))?;
    let mut info = None;
    while let Some(frame) = reader.next()? {
        if let Frame::Info(i) = frame {
            info = Some(i);
        }
    }
    info.context("the backup is damaged: no info frame")
}

/// Restores `archive` into `target`, which must not exist or be an empty
/// directory. The archive is checked whole first; see the module docs.
pub fn restore(
    archive: &Path,
    target: &Path,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<Info> {
    if target.exists()
        && fs::read_dir(target)
            .with_context(|| format!("reading {}", target.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore only into a new or empty directory",
            target.display()
        );
    }
    let info = verify(archive)?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = target
        .file_name()
        .context("the target directory needs a name")?
        .to_string_lossy();
    let staging = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let result = restore_into(archive, &staging, progress).and_then(|()| {
        if target.exists() {
            fs::remove_dir(target).with_context(|| format!("replacing {}", target.display()))?;
        }
        fs::rename(&staging, target)
            .with_context(|| format!("moving the restored directory to {}", target.display()))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| info)
}

fn restore_into(archive: &Path, dir: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let file = fs::File::open(archive)?;
    let mut reader = FrameReader::open(BufReader::new(file))?;
    let mut restorer = Restorer::create(&dir.join(STORE_DIR))?;
    let mut current: Option<BufWriter<fs::File>> = None;
    let mut done = 0u64;
    while let Some(frame) = reader.next()? {
        match frame {
            Frame::Info(_) => {}
            Frame::File(relative) => {
                if let Some(mut file) = current.take() {
                    file.flush()?;
                    file.get_ref().sync_all()?;
                }
                let path = dir.join(&relative);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                current = Some(BufWriter::new(file));
            }
            Frame::Data(bytes) => {
                let file = current
                    .as_mut()
                    .context("the backup is damaged: file data before a file")?;
                file.write_all(&bytes)?;
                done += bytes.len() as u64;
                progress(done);
            }
            Frame::Entry(entry) => {
                done += (entry.key.len() + entry.value.len()) as u64;
                restorer.put(entry)?;
            }
        }
    }
    if let Some(mut file) = current.take() {
        file.flush()?;
        file.get_ref().sync_all()?;
    }
    restorer.complete()?;
    progress(done);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("node.key"), [1; 32]).unwrap();
        fs::write(dir.path().join("token.key"), [2; 32]).unwrap();
        fs::create_dir_all(dir.path().join("blobs/ab")).unwrap();
        fs::write(dir.path().join("blobs/ab/cdef"), b"blob").unwrap();
        fs::create_dir_all(dir.path().join("search")).unwrap();
        fs::write(dir.path().join("search/segment"), b"rebuilt").unwrap();
        dir
    }

    fn archive_of(dir: &Path) -> Vec<u8> {
        let store = Store::open(&dir.join("store"), &Default::default()).unwrap();
        store
            .append_events(&[spaces_store::NewEvent {
                room_id: [3; 32],
                event_id: [4; 32],
                bytes: b"event",
                flips: &[],
            }])
            .unwrap();
        let mut out = Vec::new();
        backup_offline(dir, &store, "~node".into(), &mut out, &mut |_| {}).unwrap();
        out
    }

    #[test]
    fn a_backup_restores_keys_files_and_store_but_not_search() {
        let dir = node_dir();
        let bytes = archive_of(dir.path());
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("b.spaces");
        fs::write(&archive, &bytes).unwrap();
        let target = work.path().join("restored");
        let info = restore(&archive, &target, &mut |_| {}).unwrap();
        assert_eq!(info.last_seq, 1);
        assert_eq!(fs::read(target.join("node.key")).unwrap(), [1; 32]);
        assert_eq!(fs::read(target.join("blobs/ab/cdef")).unwrap(), b"blob");
        assert!(!target.join("search").exists());
        let store = Store::open(&target.join("store"), &Default::default()).unwrap();
        assert_eq!(
            store.event_by_id(&[4; 32]).unwrap().unwrap().bytes,
            b"event"
        );
    }

    /// Every cut and every flipped byte is refused, and the target stays absent.
    #[test]
    fn a_truncated_or_damaged_archive_restores_nothing() {
        let dir = node_dir();
        let bytes = archive_of(dir.path());
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("b.spaces");
        let target = work.path().join("restored");
        let step = (bytes.len() / 40).max(1);
        let mut damaged: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(step)
            .map(|n| bytes[..n].to_vec())
            .collect();
        for at in (0..bytes.len()).step_by(step) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            damaged.push(flipped);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        damaged.push(longer);
        for bytes in damaged {
            fs::write(&archive, &bytes).unwrap();
            assert!(restore(&archive, &target, &mut |_| {}).is_err());
            assert!(!target.exists());
        }
        assert_eq!(
            fs::read_dir(work.path()).unwrap().count(),
            1,
            "no staging left"
        );
    }

    #[test]
    fn a_non_empty_target_is_refused() {
        let dir = node_dir();
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("b.spaces");
        fs::write(&archive, archive_of(dir.path())).unwrap();
        let error = restore(&archive, dir.path(), &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "store/db"] {
            assert!(safe_path(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(safe_path(b"blobs/ab/cd").unwrap(), "blobs/ab/cd");
    }
}
