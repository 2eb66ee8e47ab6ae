//! Account deletion (issue 19): what is left of an account after its user
//! asked for it to go.
//!
//! In this order, so that the user is locked out before anything else:
//! the account is disabled and its password hash replaced by one nothing
//! verifies against (the username stays taken: a new account under it
//! would inherit the old one's user id, and with it memberships and
//! mentions); every session ends, which closes its WebSockets; with
//! [`Policy::redact_messages`], every message the user sent in a room they
//! are still in is redacted (a redaction event, federated like any other;
//! their attachments lose the reference); the user leaves every room they
//! are joined to, invited to or knocking on (a `leave` event each, which
//! other nodes receive as a leave); their profile is erased (the avatar
//! unpinned), and their settings and contacts emptied.
//!
//! A crash part-way leaves the account disabled and locked out; asking
//! again is refused (the password no longer verifies), so the operator's
//! CLI would finish it (not built yet). Every step is idempotent.

use spaces_protocol::content::{Content, Member, Membership};
use spaces_protocol::{RoomId, UserId};
use spaces_store::Profile;

use super::accounts::Accounts;
use super::media::{Media, MediaError};
use super::on_disk;
use crate::engine::{Engine, EngineError};

/// What an operator chose for deleted accounts (`accounts.deleted_messages`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Redact the user's messages (true), or keep them (false, the default:
    /// a conversation stays readable, under a user id that no longer
    /// signs in and shows no profile).
    pub redact_messages: bool,
}

/// The password hash a deleted account keeps: not a PHC string, so no
/// password verifies against it.
pub const DELETED_HASH: &str = "!deleted";

/// Messages redacted per room per round: the room lock is taken once per
/// round to pick them.
const REDACT_BATCH: usize = 200;

/// What a deletion did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub sessions: usize,
    pub rooms_left: usize,
    pub messages_redacted: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("the account is gone")]
    Gone,
}

/// Deletes `username`'s account (see the module doc).
pub async fn delete_account(
    engine: &Engine,
    accounts: &Accounts,
    media: &Media,
    user: &UserId,
    username: String,
    policy: Policy,
) -> Result<Deleted, ErasureError> {
    let mut deleted = Deleted::default();
    let name = username.clone();
    on_disk(engine.store(), move |store| {
        let Some(mut account) = store.account(&name)? else {
            return Ok(false);
        };
        account.disabled = true;
        account.is_admin = false;
        account.password_hash = DELETED_HASH.to_owned();
        store.update_account(&account)?;
        Ok(true)
    })
    .await?
    .then_some(())
    .ok_or(ErasureError::Gone)?;
    let name = username.clone();
    let sessions = on_disk(engine.store(), move |store| store.sessions_of(&name)).await?;
    for session in sessions {
        if accounts.delete_session(session.id).await? {
            deleted.sessions += 1;
        }
    }
    for room_id in engine.rooms_of(user) {
        if policy.redact_messages {
            deleted.messages_redacted += redact_all(engine, media, user, room_id).await;
        }
        let leave = Content::Member(Member {
            target: user.clone(),
            membership: Membership::Leave,
            reason: None,
        });
        match engine.send(user, &room_id, leave).await {
            Ok(_) => deleted.rooms_left += 1,
            Err(error) => {
                tracing::warn!(%room_id, %error, "deleted account: leave refused");
            }
        }
    }
    media
        .put_profile(accounts, user, username.clone(), Profile::default(), None)
        .await?;
    let name = username.clone();
    let contacts = on_disk(engine.store(), move |store| store.contacts(&name)).await?;
    for contact in contacts {
        accounts.remove_contact(username.clone(), contact).await?;
    }
    accounts.put_settings(username, b"{}".to_vec()).await?;
    Ok(deleted)
}

/// Redacts every accepted, unredacted message `user` sent in a room;
/// how many. A refused redaction is logged and skipped.
async fn redact_all(engine: &Engine, media: &Media, user: &UserId, room_id: RoomId) -> usize {
    let Ok(slot) = engine.room(&room_id) else {
        return 0;
    };
    let (mut after, mut n) = (0, 0);
    loop {
        let batch: Vec<_> = {
            let view = slot.lock().await;
            let mine = view
                .arrivals()
                .messages_by(&view.room, user, after, REDACT_BATCH);
            let Some(&(last, _)) = mine.last() else {
                return n;
            };
            after = last;
            mine.into_iter()
                .map(|(_, id)| id)
                .filter(|id| view.room.is_accepted(id) && !view.agg.redacted.contains(id))
                .collect()
        };
        for target in batch {
            match media.redact(user, &room_id, target).await {
                Ok(_) => n += 1,
                Err(MediaError::Engine(EngineError::Forbidden(error))) => {
                    tracing::warn!(%room_id, %error, "deleted account: redaction refused");
                }
                Err(error) => tracing::warn!(%room_id, %error, "deleted account: redaction failed"),
            }
        }
    }
}
