//! Invite links: a member with the `invite` permission mints a code; anyone
//! logged in to this node who has it can join the room, private or not, and
//! a user of another node can bring it in a federation `Join`.
//!
//! A link is a node-local capability, not a protocol object. Redeeming one
//! makes the link's creator invite the redeemer (a protocol `member` event
//! the auth rules check as of now: a creator who lost `invite`, or a banned
//! redeemer, is refused), then the redeemer joins. So a link can never do
//! more than its creator could do by hand at redemption time.
//!
//! State: the store's `invite_links` records, nothing in memory. No lock:
//! an admission first takes a use with the store's compare-and-swap
//! ([`spaces_store::Store::use_invite_link`]), so concurrent admissions can
//! never take more than the link grants, and gives it back if the auth rules
//! then refuse the invite. An admission runs in a task of its own, so a
//! caller that gives up half-way (a dropped HTTP request) cannot take a use
//! without sending the invite, or send it without taking one (each such
//! task is awaited by its caller, so there are never more of them than
//! requests and federation answers in flight, both bounded). Writes go
//! through [`on_disk`]. Errors are [`LinkError`]: the API renders them as
//! HTTP errors, federation as `Refused` answers.
//!
//! Links minted by builds before the `invite_links` tree are JSON records
//! in the store's `meta`; [`Links::migrate_legacy`] moves them at start,
//! each in one store transaction, so a crash half-way moves the rest at the
//! next start.

use spaces_protocol::content::{Content, JoinRule, Member, Membership};
use spaces_protocol::{AuthError, Event, Permissions, RoomId, UserId};
use spaces_store::{InviteLink, Store};

use super::on_disk;
use crate::engine::{Engine, EngineError, now_ms};

/// Most uses one link may grant; 0 asks for this many.
pub const MAX_USES: u32 = 10_000;

/// Why a link could not be minted or used.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Unknown, used up, expired, not shaped like a code, or for another
    /// room than the one asked for: all look alike to the caller.
    #[error("this invite link does not exist or has run out")]
    Unknown,
    #[error("you are already in this room")]
    AlreadyJoined,
    #[error("uses must be at most {MAX_USES}")]
    TooManyUses,
    /// The room or the auth rules said no (unknown room, not a member,
    /// missing permission, banned).
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("store: {0}")]
    Store(#[from] spaces_store::Error),
}

/// A live link, as its preview shows it.
#[derive(Debug)]
pub struct Live {
    pub room_id: RoomId,
    pub creator: UserId,
    pub link: InviteLink,
}

/// The links service: cheap to clone.
#[derive(Clone, Debug)]
pub struct Links {
    engine: Engine,
    store: Store,
}

/// Codes are base64url: anything else cannot be one (and stays out of keys).
pub fn is_code_shaped(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A link as builds before the `invite_links` tree stored it, as JSON.
#[derive(serde::Deserialize)]
struct LegacyLink {
    room_id: String,
    creator: String,
    uses_left: u32,
    expires_at_ms: Option<u64>,
}

impl LegacyLink {
    /// The link as stored now; `None` if its ids do not parse.
    fn convert(self) -> Option<InviteLink> {
        let room_id: RoomId = self.room_id.parse().ok()?;
        let creator: UserId = self.creator.parse().ok()?;
        Some(InviteLink {
            room_id: room_id.0,
            creator: creator.to_string(),
            uses_left: self.uses_left,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

/// What [`Links::migrate_legacy`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Links moved to the `invite_links` tree, as they were (used up and
    /// expired ones too: they are refused there the same way).
    pub moved: usize,
    /// Records that were not links of the old format; removed.
    pub dropped: usize,
}

impl Links {
    pub fn new(engine: Engine, store: Store) -> Links {
        Links { engine, store }
    }

    /// Moves the invite links an older build kept in `meta` to the
    /// `invite_links` tree (see the module docs). Run once at start,
    /// before the API serves; nothing to do on a store that has none.
    pub async fn migrate_legacy(&self) -> Result<Migrated, spaces_store::Error> {
        on_disk(&self.store, |store| {
            let mut migrated = Migrated::default();
            for (code, bytes) in store.legacy_invite_links()? {
                let link = serde_json::from_slice::<LegacyLink>(&bytes)
                    .ok()
                    .and_then(LegacyLink::convert)
                    .filter(|_| is_code_shaped(&code));
                match &link {
                    Some(_) => migrated.moved += 1,
                    None => migrated.dropped += 1,
                }
                store.migrate_legacy_invite_link(&code, link.as_ref())?;
            }
            Ok(migrated)
        })
        .await
    }

    /// Mints a link to `room_id` for `uses` admissions (0: [`MAX_USES`]),
    /// expiring `expires_in_secs` from now if given. `creator` must be
    /// joined and hold the `invite` permission.
    pub async fn create(
        &self,
        creator: &UserId,
        room_id: RoomId,
        uses_left: u32,
        expires_at_ms: Option<u64>,
    ) -> Result<(String, InviteLink), LinkError> {
        if uses_left == 0 || uses_left > MAX_USES {
            return Err(LinkError::TooManyUses);
        }
        {
            let slot = self.engine.room(&room_id)?;
            let view = slot.lock().await;
            view.readable(creator)?;
            let room_state = view.room.state();
            if !room_state.is_joined(creator) {
                return Err(EngineError::Forbidden(AuthError::NotMember).into());
            }
            if !room_state
                .permissions(creator)
                .contains(Permissions::INVITE)
            {
                let missing = AuthError::MissingPermission(Permissions::INVITE);
                return Err(EngineError::Forbidden(missing).into());
            }
        }
        let code = spaces_auth::new_invite_token(&mut rand::rng());
        let link = InviteLink {
            room_id: room_id.0,
            creator: creator.to_string(),
            uses_left,
            expires_at_ms,
        };
        let stored = (code.clone(), link.clone());
        on_disk(&self.store, move |store| {
            store.put_invite_link(&stored.0, &stored.1)
        })
        .await?;
        Ok((code, link))
    }

    /// The link under `code` if it is live: known, unexpired, a use left.
    pub fn live(&self, code: &str) -> Result<Live, LinkError> {
        if !is_code_shaped(code) {
            return Err(LinkError::Unknown);
        }
        let link = self.store.invite_link(code)?.ok_or(LinkError::Unknown)?;
        if link.uses_left == 0 || link.expires_at_ms.is_some_and(|t| t <= now_ms()) {
            return Err(LinkError::Unknown);
        }
        let creator = link.creator.parse().map_err(|_| {
            LinkError::Store(spaces_store::Error::Corrupt {
                tree: "invite_links",
                key_hex: None,
                reason: "creator is not a user id".into(),
            })
        })?;
        Ok(Live {
            room_id: RoomId(link.room_id),
            creator,
            link,
        })
    }

    /// Joins `user` (of this node) to the link's room: [`Links::admit`],
    /// then their join.
    pub async fn redeem(&self, code: &str, user: &UserId) -> Result<Event, LinkError> {
        let room_id = self.admit(code, user, None).await?;
        let join = Content::Member(Member {
            target: user.clone(),
            membership: Membership::Join,
            reason: None,
        });
        Ok(self.engine.send(user, &room_id, join).await?)
    }

    /// Lets `user` (of this node or another) into the link's room, which
    /// must be `for_room` when given: one use is taken and the link's
    /// creator invites them, unless the room is public or they are invited
    /// already. The user then joins through their own node.
    pub async fn admit(
        &self,
        code: &str,
        user: &UserId,
        for_room: Option<RoomId>,
    ) -> Result<RoomId, LinkError> {
        let this = self.clone();
        let (code, user) = (code.to_owned(), user.clone());
        // A task of its own: see the module docs.
        tokio::spawn(async move { this.admit_to_end(code, user, for_room).await })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    async fn admit_to_end(
        &self,
        code: String,
        user: UserId,
        for_room: Option<RoomId>,
    ) -> Result<RoomId, LinkError> {
        let Live {
            room_id, creator, ..
        } = self.live(&code)?;
        if for_room.is_some_and(|r| r != room_id) {
            // Nothing spent: a link opens only its own room.
            return Err(LinkError::Unknown);
        }
        let (join_rule, membership) = {
            let slot = self.engine.room(&room_id)?;
            let view = slot.lock().await;
            let room_state = view.room.state();
            (room_state.join_rule(), room_state.membership(&user))
        };
        if membership == Some(Membership::Join) {
            return Err(LinkError::AlreadyJoined);
        }
        let taken = {
            let code = code.clone();
            on_disk(&self.store, move |store| {
                store.use_invite_link(&code, now_ms())
            })
            .await?
        };
        if taken.is_none() {
            // Another admission took the last use since `live`.
            return Err(LinkError::Unknown);
        }
        if join_rule != JoinRule::Public && membership != Some(Membership::Invite) {
            let invite = Content::Member(Member {
                target: user.clone(),
                membership: Membership::Invite,
                reason: None,
            });
            if let Err(error) = self.engine.send(&creator, &room_id, invite).await {
                on_disk(&self.store, move |store| {
                    store.return_invite_link_use(&code)
                })
                .await?;
                return Err(error.into());
            }
        }
        Ok(room_id)
    }
}

#[cfg(test)]
mod tests {
    use super::is_code_shaped;

    #[test]
    fn only_base64url_codes_of_at_most_64_bytes_are_shaped_like_one() {
        let cases = [
            ("abcDEF019-_", true),
            ("", false),
            ("a/b", false),
            ("a.b", false),
            ("é", false),
            (&"a".repeat(64), true),
            (&"a".repeat(65), false),
        ];
        for (code, shaped) in cases {
            assert_eq!(is_code_shaped(code), shaped, "{code:?}");
        }
    }
}
