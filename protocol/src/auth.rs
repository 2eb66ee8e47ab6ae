//! The auth rules (docs/spec/auth.md): may this event happen in this state?
//! And what does it change? Pure functions of the state, the event, the
//! event's effective time and what its references point at.

use std::sync::Arc;

use crate::content::*;
use crate::event::Event;
use crate::ids::{RoleId, UserId};
use crate::limits::MAX_ROLES;
use crate::permissions::{OWNER_RANK, Permissions};
use crate::state::{Role, RoomState};

/// The longest timeout, as on Discord: 28 days.
pub const MAX_TIMEOUT_MS: u64 = 28 * 24 * 3600 * 1000;
/// The longest slowmode interval: 6 hours.
pub const MAX_SLOWMODE_SECONDS: u32 = 6 * 3600;

/// Why the auth rules refuse an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the room has no create event before this one")]
    NoCreate,
    #[error("a room has exactly one create event, first")]
    DuplicateCreate,
    #[error("sender is not a member of the room")]
    NotMember,
    #[error("user is banned from the room")]
    Banned,
    #[error("the join rule does not allow this (invite needed)")]
    JoinRule,
    #[error("sender lacks the {0:?} permission")]
    MissingPermission(Permissions),
    #[error("sender does not outrank the target")]
    Rank,
    #[error("cannot grant or revoke a permission or role one does not hold or outrank")]
    CannotGrant,
    #[error("sender is timed out")]
    TimedOut,
    #[error("slowmode: too soon after the sender's last message")]
    Slowmode,
    #[error("invalid target: {0}")]
    Target(&'static str),
    #[error("invalid value: {0}")]
    Value(&'static str),
    #[error("no change")]
    NoChange,
    /// Refused after the fold: a message sent concurrently with a ban or kick
    /// of its sender (docs/spec/state-resolution.md §Revocation).
    #[error("sent concurrently with the sender's ban or kick")]
    Revoked,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NoCreate => "no_create",
            AuthError::DuplicateCreate => "duplicate_create",
            AuthError::NotMember => "not_member",
            AuthError::Banned => "banned",
            AuthError::JoinRule => "join_rule",
            AuthError::MissingPermission(_) => "missing_permission",
            AuthError::Rank => "rank",
            AuthError::CannotGrant => "cannot_grant",
            AuthError::TimedOut => "timed_out",
            AuthError::Slowmode => "slowmode",
            AuthError::Target(_) => "bad_target",
            AuthError::Value(_) => "bad_value",
            AuthError::NoChange => "no_change",
            AuthError::Revoked => "revoked",
        }
    }
}

/// What the rules need to know about an event another event refers to
/// (the message a reaction, edit, reply or redaction points at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub sender: UserId,
    pub kind: TargetKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Message,
    /// A message that is itself in a thread (cannot root another thread).
    ThreadReply,
    Reaction,
    Edit,
    Redaction,
    State,
}

impl TargetKind {
    pub fn of(content: &Content) -> TargetKind {
        match content {
            Content::Message(m) if m.thread.is_some() => TargetKind::ThreadReply,
            Content::Message(_) => TargetKind::Message,
            Content::Reaction(_) => TargetKind::Reaction,
            Content::Edit(_) => TargetKind::Edit,
            Content::Redaction(_) => TargetKind::Redaction,
            _ => TargetKind::State,
        }
    }
    fn is_message(self) -> bool {
        matches!(self, TargetKind::Message | TargetKind::ThreadReply)
    }
}

/// Checks `event` against `state`. `time_ms` is the event's effective time
/// (see `room.rs`); `target` resolves the events its content refers to
/// (`None`: not an accepted event of this room at this point).
pub fn authorize(
    state: &RoomState,
    event: &Event,
    time_ms: u64,
    target: &dyn Fn(&crate::ids::EventId) -> Option<Target>,
) -> Result<(), AuthError> {
    let sender = event.sender();
    let content = event.content();
    if let Content::Create(_) = content {
        return if state.creator.is_some() {
            Err(AuthError::DuplicateCreate)
        } else {
            Ok(())
        };
    }
    if state.creator.is_none() {
        return Err(AuthError::NoCreate);
    }
    if let Content::Member(member) = content {
        return authorize_member(state, sender, member);
    }
    // Everything else needs a joined sender.
    if !state.is_joined(sender) {
        return Err(AuthError::NotMember);
    }
    let perms = state.permissions(sender);
    let need = |p: Permissions| {
        if perms.contains(p) {
            Ok(())
        } else {
            Err(AuthError::MissingPermission(p))
        }
    };
    let outrank = |target: &UserId| {
        if state.rank(sender) > state.rank(target) {
            Ok(())
        } else {
            Err(AuthError::Rank)
        }
    };
    let not_timed_out = || match state.timeout_until(sender) {
        Some(until) if time_ms < until => Err(AuthError::TimedOut),
        _ => Ok(()),
    };
    let message_target = |id| match target(id) {
        Some(t) if t.kind.is_message() => Ok(t),
        Some(_) => Err(AuthError::Target("not a message")),
        None => Err(AuthError::Target("unknown or refused event")),
    };

    match content {
        Content::Create(_) | Content::Member(_) => unreachable_ok(),
        Content::Role(def) => authorize_role(state, sender, perms, def),
        Content::MemberRoles(mr) => {
            need(Permissions::MANAGE_ROLES)?;
            if !matches!(
                state.membership(&mr.target),
                Some(Membership::Join | Membership::Invite)
            ) {
                return Err(AuthError::Target("roles go to members and invitees"));
            }
            outrank(&mr.target)?;
            if !mr.roles.windows(2).all(|w| w[0] < w[1]) {
                return Err(AuthError::Value("roles must be sorted and distinct"));
            }
            let old = state.roles_of(&mr.target);
            let changed = mr
                .roles
                .iter()
                .filter(|r| !old.contains(r))
                .chain(old.iter().filter(|r| !mr.roles.contains(r)));
            let sender_rank = state.rank(sender);
            for role_id in changed {
                if *role_id == RoleId::EVERYONE {
                    return Err(AuthError::Value("@everyone is implicit"));
                }
                match state.roles.get(role_id) {
                    Some(role)
                        if role.rank < sender_rank
                            && perms.contains(role.permissions & Permissions::ALL) => {}
                    Some(_) => return Err(AuthError::CannotGrant),
                    // Removing a deleted role is fine; adding an unknown one is not.
                    None if old.contains(role_id) => {}
                    None => return Err(AuthError::Value("unknown role")),
                }
            }
            if old == &mr.roles[..] {
                Err(AuthError::NoChange)
            } else {
                Ok(())
            }
        }
        Content::Timeout(t) => {
            need(Permissions::TIMEOUT)?;
            if !state.is_joined(&t.target) {
                return Err(AuthError::Target("not a member"));
            }
            outrank(&t.target)?;
            if t.until_ms > time_ms.saturating_add(MAX_TIMEOUT_MS) {
                return Err(AuthError::Value("timeout longer than 28 days"));
            }
            Ok(())
        }
        Content::Name(_)
        | Content::Topic(_)
        | Content::Avatar(_)
        | Content::JoinRule(_)
        | Content::HistoryVisibility(_) => need(Permissions::MANAGE_ROOM),
        Content::ModerationPolicy(_) => need(Permissions::MANAGE_ROOM),
        Content::BanLists(_) => need(Permissions::BAN),
        Content::AutoMod(_) => need(Permissions::MANAGE_ROOM),
        Content::BanEntry(entry) => {
            need(Permissions::BAN)?;
            let known = state.ban_entries.contains_key(&entry.target);
            if !entry.present {
                return if known {
                    Ok(())
                } else {
                    Err(AuthError::NoChange)
                };
            }
            if !known && state.ban_entries.len() >= MAX_BAN_ENTRIES {
                return Err(AuthError::Value("the ban list is full"));
            }
            if !known
                && matches!(entry.target, BanTarget::Pattern(_))
                && state.ban_patterns() >= MAX_BAN_PATTERNS
            {
                return Err(AuthError::Value("the ban list has too many patterns"));
            }
            Ok(())
        }
        Content::Slowmode(s) => {
            need(Permissions::MANAGE_ROOM)?;
            if s.seconds > MAX_SLOWMODE_SECONDS {
                Err(AuthError::Value("slowmode longer than 6 hours"))
            } else {
                Ok(())
            }
        }
        Content::Encryption(_) => {
            need(Permissions::MANAGE_ROOM)?;
            if state.encryption.is_some() {
                Err(AuthError::Value("encryption cannot change once on"))
            } else {
                Ok(())
            }
        }
        Content::SpaceChild(_) => {
            need(Permissions::MANAGE_ROOM)?;
            if state.kind != Some(RoomKind::Space) {
                return Err(AuthError::Value("only a space has child rooms"));
            }
            Ok(())
        }
        Content::SpaceParent(_) => need(Permissions::MANAGE_ROOM),
        Content::Pins(pins) => {
            need(Permissions::MANAGE_MESSAGES)?;
            pins.iter().try_for_each(|id| message_target(id).map(drop))
        }
        Content::Message(m) => {
            need(Permissions::SEND_MESSAGES)?;
            not_timed_out()?;
            if state.slowmode_seconds > 0
                && !perms.contains(Permissions::BYPASS_SLOWMODE)
                && let Some(last) = state.last_message_ms.get(sender)
                && time_ms < last.saturating_add(u64::from(state.slowmode_seconds) * 1000)
            {
                return Err(AuthError::Slowmode);
            }
            if m.mentions.room {
                need(Permissions::MENTION_ROOM)?;
            }
            if !m.attachments.is_empty() {
                need(Permissions::ATTACH_FILES)?;
            }
            if let Some(reply_to) = &m.reply_to {
                message_target(reply_to)?;
            }
            if let Some(root) = &m.thread
                && message_target(root)?.kind != TargetKind::Message
            {
                return Err(AuthError::Target("a thread's root is not in a thread"));
            }
            Ok(())
        }
        Content::Reaction(r) => {
            need(Permissions::ADD_REACTIONS)?;
            not_timed_out()?;
            message_target(&r.target).map(drop)
        }
        Content::Edit(e) => {
            // An edit is a new version of a message: the same rights as
            // sending one, so it cannot add an @room its sender may not send.
            need(Permissions::SEND_MESSAGES)?;
            not_timed_out()?;
            if e.mentions.room {
                need(Permissions::MENTION_ROOM)?;
            }
            if &message_target(&e.target)?.sender != sender {
                return Err(AuthError::Target("only the sender edits a message"));
            }
            Ok(())
        }
        Content::Redaction(r) => {
            let t = target(&r.target).ok_or(AuthError::Target("unknown or refused event"))?;
            if t.kind == TargetKind::State || t.kind == TargetKind::Redaction {
                return Err(AuthError::Target(
                    "state events and redactions cannot be redacted",
                ));
            }
            if &t.sender == sender {
                return Ok(());
            }
            need(Permissions::MANAGE_MESSAGES)?;
            outrank(&t.sender)
        }
    }
}

fn unreachable_ok() -> Result<(), AuthError> {
    // Create and Member return before the match; reaching here would be a bug
    // in this file, and refusing is the safe answer.
    Err(AuthError::Value("internal: unexpected content"))
}

fn authorize_member(state: &RoomState, sender: &UserId, member: &Member) -> Result<(), AuthError> {
    use Membership::*;
    let current = state.membership(&member.target);
    if &member.target == sender {
        return match (member.membership, current) {
            (_, Some(Ban)) => Err(AuthError::Banned),
            (Join, Some(Join)) | (Knock, Some(Knock)) => Err(AuthError::NoChange),
            (Join, Some(Invite)) => direct_room_has_space(state, sender),
            (Join, _) if state.join_rule() == JoinRule::Public => {
                // A direct room made public still holds two people.
                direct_room_has_space(state, sender)
            }
            (Join, _) => Err(AuthError::JoinRule),
            (Leave, Some(Join | Invite | Knock)) => Ok(()),
            (Leave, _) => Err(AuthError::NotMember),
            (Knock, Some(Join | Invite)) => Err(AuthError::NoChange),
            (Knock, _) if state.join_rule() == JoinRule::Knock => Ok(()),
            (Knock, _) => Err(AuthError::JoinRule),
            (Invite | Ban, _) => Err(AuthError::Target("cannot invite or ban oneself")),
        };
    }
    if !state.is_joined(sender) {
        return Err(AuthError::NotMember);
    }
    let perms = state.permissions(sender);
    let need = |p: Permissions| {
        if perms.contains(p) {
            Ok(())
        } else {
            Err(AuthError::MissingPermission(p))
        }
    };
    let outranks = state.rank(sender) > state.rank(&member.target);
    match (member.membership, current) {
        (Join | Knock, _) => Err(AuthError::Target("only the user can join or knock")),
        (Invite, Some(Ban)) => Err(AuthError::Banned),
        (Invite, Some(Join | Invite)) => Err(AuthError::NoChange),
        (Invite, _) => {
            need(Permissions::INVITE)?;
            direct_room_has_space(state, &member.target)
        }
        (Leave, Some(Ban)) => {
            need(Permissions::BAN)?;
            if outranks {
                Ok(())
            } else {
                Err(AuthError::Rank)
            }
        }
        (Leave, Some(Join | Invite | Knock)) => {
            need(Permissions::KICK)?;
            if outranks {
                Ok(())
            } else {
                Err(AuthError::Rank)
            }
        }
        (Leave, _) => Err(AuthError::NotMember),
        (Ban, Some(Ban)) => Err(AuthError::NoChange),
        (Ban, _) => {
            need(Permissions::BAN)?;
            if outranks {
                Ok(())
            } else {
                Err(AuthError::Rank)
            }
        }
    }
}

/// A direct room holds two people: a third cannot be invited or join.
fn direct_room_has_space(state: &RoomState, user: &UserId) -> Result<(), AuthError> {
    if state.kind != Some(RoomKind::Direct) {
        return Ok(());
    }
    let others = state
        .members
        .iter()
        .filter(|(u, m)| *u != user && matches!(m, Membership::Join | Membership::Invite))
        .count();
    if others < 2 {
        Ok(())
    } else {
        Err(AuthError::Value("a direct room has two members"))
    }
}

fn authorize_role(
    state: &RoomState,
    sender: &UserId,
    perms: Permissions,
    def: &RoleDef,
) -> Result<(), AuthError> {
    if !perms.contains(Permissions::MANAGE_ROLES) {
        return Err(AuthError::MissingPermission(Permissions::MANAGE_ROLES));
    }
    let sender_rank = state.rank(sender);
    let old = state.roles.get(&def.role);
    if def.role == RoleId::EVERYONE {
        if def.rank != 0 || def.deleted {
            return Err(AuthError::Value(
                "@everyone has rank 0 and cannot be deleted",
            ));
        }
    } else if def.rank == 0 || def.rank == OWNER_RANK {
        return Err(AuthError::Value(
            "a role's rank is between 1 and the owner's",
        ));
    }
    if let Some(old) = old {
        if old.rank >= sender_rank && def.role != RoleId::EVERYONE {
            return Err(AuthError::Rank);
        }
    } else if def.deleted {
        return Err(AuthError::Value("unknown role"));
    } else if state.deleted_roles.contains(&def.role) {
        // Its old holders still list it: a new role under the same id would
        // silently return to them.
        return Err(AuthError::Value("a deleted role's id is not reused"));
    } else if state.roles.len() >= MAX_ROLES {
        return Err(AuthError::Value("too many roles"));
    }
    if def.rank >= sender_rank {
        return Err(AuthError::Rank);
    }
    let old_perms = old.map_or(Permissions::NONE, |r| r.permissions);
    let new_perms = if def.deleted {
        Permissions::NONE
    } else {
        def.permissions
    };
    // Toggling a bit, on or off, needs the bit.
    let toggled = Permissions((old_perms.0 ^ new_perms.0) & Permissions::ALL.0);
    if !perms.contains(toggled) {
        return Err(AuthError::CannotGrant);
    }
    Ok(())
}

/// Applies an authorized event to the state. `time_ms` is its effective time.
pub fn apply(state: &mut RoomState, event: &Event, time_ms: u64) {
    let sender = event.sender();
    match event.content() {
        Content::Create(create) => {
            state.creator = Some(sender.clone());
            state.kind = Some(create.kind);
            state.join_rule = Some(create.join_rule);
            state.history_visibility = Some(create.history_visibility);
            state.members.insert(sender.clone(), Membership::Join);
            state.roles.insert(
                RoleId::EVERYONE,
                Role {
                    name: "everyone".into(),
                    rank: 0,
                    permissions: Permissions::DEFAULT_EVERYONE,
                    color: None,
                },
            );
        }
        Content::Member(member) => {
            if matches!(member.membership, Membership::Leave | Membership::Ban) {
                // Roles do not survive leaving: a returning member starts
                // without them. A timeout does survive, or leaving and
                // rejoining would lift it early.
                state.member_roles.remove(&member.target);
            }
            state
                .members
                .insert(member.target.clone(), member.membership);
        }
        Content::Role(def) if def.deleted => {
            state.roles.remove(&def.role);
            state.deleted_roles.insert(def.role);
        }
        Content::Role(def) => {
            state.roles.insert(
                def.role,
                Role {
                    name: def.name.clone(),
                    rank: def.rank,
                    permissions: def.permissions,
                    color: def.color,
                },
            );
        }
        Content::MemberRoles(mr) if mr.roles.is_empty() => {
            state.member_roles.remove(&mr.target);
        }
        Content::MemberRoles(mr) => {
            state
                .member_roles
                .insert(mr.target.clone(), Arc::from(&mr.roles[..]));
        }
        Content::Timeout(t) if t.until_ms == 0 => {
            state.timeouts.remove(&t.target);
        }
        Content::Timeout(t) => {
            state.timeouts.insert(t.target.clone(), t.until_ms);
        }
        Content::Name(name) => state.name = Some(name.clone()).filter(|n| !n.is_empty()),
        Content::Topic(topic) => state.topic = Some(topic.clone()).filter(|t| !t.is_empty()),
        Content::Avatar(avatar) => state.avatar = avatar.clone(),
        Content::JoinRule(rule) => state.join_rule = Some(*rule),
        Content::HistoryVisibility(v) => state.history_visibility = Some(*v),
        Content::Slowmode(s) => state.slowmode_seconds = s.seconds,
        Content::ModerationPolicy(p) => {
            state.moderation_policy = Some(Arc::new(p.clone())).filter(|p| !p.rules.is_empty());
        }
        Content::BanEntry(entry) if entry.present => {
            state
                .ban_entries
                .insert(entry.target.clone(), Arc::new(entry.clone()));
        }
        Content::BanEntry(entry) => {
            state.ban_entries.remove(&entry.target);
        }
        Content::BanLists(b) => state.ban_lists = Arc::from(&b.lists[..]),
        Content::AutoMod(a) => {
            state.automod = Some(Arc::new(a.clone())).filter(|a| !a.is_empty());
        }
        Content::Encryption(e) => state.encryption = Some(*e),
        Content::Pins(pins) => state.pins = Arc::from(&pins[..]),
        Content::SpaceChild(link) => link_space(&mut state.space_children, link),
        Content::SpaceParent(link) => link_space(&mut state.space_parents, link),
        Content::Message(_) => apply_message(state, sender, time_ms),
        Content::Reaction(_) | Content::Edit(_) | Content::Redaction(_) => {}
    }
}

/// [`apply`] of an accepted message: its sender's slowmode clock. For a
/// replica that keeps messages as records (`room.rs`).
pub(crate) fn apply_message(state: &mut RoomState, sender: &UserId, time_ms: u64) {
    state.last_message_ms.insert(sender.clone(), time_ms);
}

fn link_space(
    links: &mut imbl::OrdMap<crate::ids::RoomId, Arc<[crate::ids::NodeId]>>,
    link: &SpaceLink,
) {
    if link.present {
        links.insert(link.room, Arc::from(&link.via[..]));
    } else {
        links.remove(&link.room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventId;

    #[test]
    fn target_kinds() {
        let e = EventId([1; 32]);
        let cases = [
            (
                Content::Message(Message::default()),
                TargetKind::Message,
                true,
            ),
            (
                Content::Message(Message {
                    thread: Some(e),
                    ..Message::default()
                }),
                TargetKind::ThreadReply,
                true,
            ),
            (
                Content::Message(Message {
                    reply_to: Some(e),
                    ..Message::default()
                }),
                TargetKind::Message,
                true,
            ),
            (
                Content::Reaction(Reaction {
                    target: e,
                    key: "+".into(),
                }),
                TargetKind::Reaction,
                false,
            ),
            (
                Content::Edit(Edit {
                    target: e,
                    body: String::new(),
                    mentions: Mentions::default(),
                }),
                TargetKind::Edit,
                false,
            ),
            (
                Content::Redaction(Redaction {
                    target: e,
                    reason: None,
                }),
                TargetKind::Redaction,
                false,
            ),
            (Content::Name(String::new()), TargetKind::State, false),
            (Content::Pins(vec![]), TargetKind::State, false),
        ];
        for (content, kind, is_message) in cases {
            assert_eq!(TargetKind::of(&content), kind, "{}", content.type_name());
            assert_eq!(kind.is_message(), is_message);
        }
    }

    #[test]
    fn the_fallback_arm_refuses() {
        // Unreachable by construction; if it ever were reached, it must refuse.
        assert_eq!(
            unreachable_ok(),
            Err(AuthError::Value("internal: unexpected content"))
        );
    }

    #[test]
    fn limits_match_the_spec() {
        assert_eq!(MAX_TIMEOUT_MS, 2_419_200_000);
        assert_eq!(MAX_SLOWMODE_SECONDS, 21_600);
        assert_eq!(Permissions::ALL.0, 0xfff);
    }
}
