//! Operator tools for the admin console: the rooms this node holds, shutting
//! one down for this node's users, and what the data directory weighs.
//!
//! No state of its own: rooms are the engine's, and shutting one down is
//! ordinary protocol events (each local member leaves, signed by this node
//! as for any leave, and federated like one), so every other node of the
//! room sees this node's users go and nothing else changes. Sizes are read
//! from the file system on the blocking pool, never on a tokio worker.

use std::path::{Path, PathBuf};

use spaces_protocol::content::{Content, JoinRule, Member, Membership};
use spaces_protocol::{RoomId, UserId};

use crate::engine::{Engine, EngineError};

/// One room as the admin console lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    pub room_id: RoomId,
    pub name: Option<String>,
    /// Anyone may join (`JoinRule::Public`).
    pub public: bool,
    /// Events this node holds for the room: its size here.
    pub events: usize,
    /// Joined members, on every node.
    pub joined: usize,
    /// Joined members of this node.
    pub local_joined: usize,
    /// Nodes with a joined member, this one included.
    pub nodes: usize,
}

/// Every room this node holds, largest first. Takes each room's lock in
/// turn, briefly.
pub async fn rooms(engine: &Engine) -> Vec<RoomSummary> {
    let node = engine.node_id();
    let mut rooms = Vec::new();
    for room_id in engine.room_ids() {
        let Ok(slot) = engine.room(&room_id) else {
            continue;
        };
        let view = slot.lock().await;
        let state = view.room.state();
        let joined = state.joined();
        rooms.push(RoomSummary {
            room_id,
            name: state.name().map(str::to_owned),
            public: state.join_rule() == JoinRule::Public,
            events: view.room.len(),
            local_joined: joined.iter().filter(|u| u.node() == node).count(),
            joined: joined.len(),
            nodes: state.nodes().len(),
        });
    }
    rooms.sort_by(|a, b| b.events.cmp(&a.events).then(a.room_id.cmp(&b.room_id)));
    rooms
}

/// This node's users in `room_id` who are joined or invited.
async fn local_members(engine: &Engine, room_id: &RoomId) -> Result<Vec<UserId>, EngineError> {
    let slot = engine.room(room_id)?;
    let view = slot.lock().await;
    Ok(view
        .room
        .state()
        .members()
        .into_iter()
        .filter(|(user, m)| {
            engine.is_local(user) && matches!(m, Membership::Join | Membership::Invite)
        })
        .map(|(user, _)| user)
        .collect())
}

/// Shuts `room_id` down on this node: every local member leaves (and every
/// local invitation is declined), each by its own leave event. Returns how
/// many left. A member whose leave the auth rules refuse stops it with that
/// error; those who left before stay gone, and running it again finishes.
/// The room's other nodes keep it; a local user may join again later if the
/// room's rules let them.
pub async fn shutdown_room(engine: &Engine, room_id: &RoomId) -> Result<usize, EngineError> {
    let members = local_members(engine, room_id).await?;
    for user in &members {
        engine
            .send(
                user,
                room_id,
                Content::Member(Member {
                    target: user.clone(),
                    membership: Membership::Leave,
                    reason: Some("room shut down on this node by its operator".into()),
                }),
            )
            .await?;
    }
    tracing::info!(room = %room_id, n_left = members.len(), "room shut down on this node");
    Ok(members.len())
}

/// What the data directory's parts weigh on disk, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageSizes {
    /// `store/`: events, accounts, sessions, everything sled holds.
    pub store: u64,
    /// `search/`: the full-text index (rebuilt from the store at will).
    pub search: u64,
    /// `blobs/`: media.
    pub blobs: u64,
    /// The whole directory, keys and backups beside it included.
    pub total: u64,
}

/// Sizes of `data_dir`'s parts, off the async threads.
pub async fn storage_sizes(data_dir: PathBuf) -> StorageSizes {
    let sizes = tokio::task::spawn_blocking(move || StorageSizes {
        store: dir_size(&data_dir.join("store")),
        search: dir_size(&data_dir.join("search")),
        blobs: dir_size(&data_dir.join("blobs")),
        total: dir_size(&data_dir),
    })
    .await;
    match sizes {
        Ok(sizes) => sizes,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Bytes of the regular files under `path` (0 if it does not exist).
/// Symbolic links are not followed, so a link cannot make it count
/// something outside, or loop. Files that vanish while it walks (sled and
/// tantivy replace files as they work) count as gone.
pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_counts_files_below_and_not_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/deep"), [0u8; 1000]).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        assert_eq!(dir_size(dir.path()), 1010);
        assert_eq!(dir_size(&dir.path().join("a")), 1000);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}
