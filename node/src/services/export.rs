//! Account export (issue 19): what a user may take away — their account
//! record (without its password hash), profile, settings and contacts,
//! the rooms they have a membership in, and every message they sent there.
//!
//! One task per export walks the store and hands [`Part`]s to the API
//! through a channel of [`CHANNEL_PARTS`]; the API renders each part (JSON
//! and HTML) into the archive it streams. Memory is one page of
//! [`PAGE_MESSAGES`] messages per export, whatever the account's size; a
//! client that stops reading stops the task at the next part (the channel
//! is full), and one that goes away ends it (the channel is closed).
//!
//! Only the user's own messages are exported, from every room they have a
//! membership in (left rooms included: they wrote them); a room's name and
//! topic only while the user may read the room, so nothing said in a room
//! after they left reaches the export.

use spaces_protocol::content::Membership;
use spaces_protocol::{RoomId, UserId};
use spaces_store::{Account, Profile};
use tokio::sync::mpsc;

use crate::engine::{Engine, EngineError, Shown};

/// Messages per [`Part::Messages`]: each is at most a 64 KiB event, so a
/// page is bounded (about 13 MiB at the very worst, a few hundred KiB for
/// chat).
pub const PAGE_MESSAGES: usize = 200;
/// Parts rendered or in flight per export: the task stays at most this far
/// ahead of the client.
const CHANNEL_PARTS: usize = 2;

/// Why an export stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
    #[error("the account is gone")]
    Gone,
    #[error("export task: {0}")]
    Task(String),
}

/// A piece of an export, in the order the task sends them: the account,
/// then per room its record and its pages.
#[derive(Debug)]
pub enum Part {
    Account {
        user: UserId,
        account: Account,
        profile: Profile,
        /// The stored settings document (JSON), if any.
        settings: Option<Vec<u8>>,
        contacts: Vec<String>,
    },
    Room {
        room_id: RoomId,
        /// Name and topic, while the user may read the room.
        name: Option<String>,
        topic: Option<String>,
        membership: Membership,
    },
    /// `page` counts from 1 per room.
    Messages {
        room_id: RoomId,
        page: usize,
        events: Vec<Shown>,
    },
}

/// Starts an export of `user`'s data; the parts arrive on the receiver,
/// which ends after the last (or after the first error).
pub fn start(
    engine: Engine,
    user: UserId,
    username: String,
) -> mpsc::Receiver<Result<Part, ExportError>> {
    let (tx, rx) = mpsc::channel(CHANNEL_PARTS);
    tokio::spawn(async move {
        if let Err(error) = run(&engine, &user, username, &tx).await {
            // The client sees a truncated archive (no end blocks).
            let _ = tx.send(Err(error)).await;
        }
    });
    rx
}

/// Sends every part; `Ok` also when the client went away.
async fn run(
    engine: &Engine,
    user: &UserId,
    username: String,
    tx: &mpsc::Sender<Result<Part, ExportError>>,
) -> Result<(), ExportError> {
    let store = engine.store().clone();
    let account = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || -> Result<_, spaces_store::Error> {
            let account = store.account(&username)?;
            let profile = store.profile(&username)?;
            let settings = store.settings(&username)?;
            let contacts = store.contacts(&username)?;
            Ok((account, profile, settings, contacts))
        })
        .await
        .map_err(|e| ExportError::Task(e.to_string()))??
    };
    let (Some(account), profile, settings, contacts) = account else {
        return Err(ExportError::Gone);
    };
    let part = Part::Account {
        user: user.clone(),
        account,
        profile,
        settings,
        contacts,
    };
    if tx.send(Ok(part)).await.is_err() {
        return Ok(());
    }
    let mut room_ids = engine.room_ids();
    room_ids.sort_by_key(ToString::to_string);
    for room_id in room_ids {
        let Ok(slot) = engine.room(&room_id) else {
            continue;
        };
        let part = {
            let view = slot.lock().await;
            let state = view.room.state();
            let Some(membership) = state.membership(user) else {
                continue;
            };
            let readable = view.readable_from(user).is_some();
            Part::Room {
                room_id,
                name: state.name().filter(|_| readable).map(str::to_owned),
                topic: state.topic().filter(|_| readable).map(str::to_owned),
                membership,
            }
        };
        if tx.send(Ok(part)).await.is_err() {
            return Ok(());
        }
        let mut after = 0;
        for page in 1.. {
            let view = slot.lock().await;
            let mine = view
                .arrivals()
                .messages_by(&view.room, user, after, PAGE_MESSAGES);
            let Some(&(last, _)) = mine.last() else {
                break;
            };
            after = last;
            let ids: Vec<_> = mine.into_iter().map(|(_, id)| id).collect();
            let events = engine.show(view, &ids, true).await?;
            let part = Part::Messages {
                room_id,
                page,
                events,
            };
            if tx.send(Ok(part)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}
