//! Event content: what an event says. One enum, so an event's type and its
//! content cannot disagree. The variant order is part of the wire format
//! (postcard encodes the variant index): append, never reorder.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, NodeId, RoleId, RoomId, UserId};
use crate::limits::*;
use crate::permissions::{Permissions, Rank};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    // ---- state ----
    Create(Create),
    Member(Member),
    Role(RoleDef),
    MemberRoles(MemberRoles),
    Timeout(Timeout),
    Name(String),
    Topic(String),
    Avatar(Option<Attachment>),
    JoinRule(JoinRule),
    HistoryVisibility(HistoryVisibility),
    Slowmode(Slowmode),
    Encryption(Encryption),
    Pins(Vec<EventId>),
    SpaceChild(SpaceLink),
    SpaceParent(SpaceLink),
    // ---- messages ----
    Message(Message),
    Reaction(Reaction),
    Edit(Edit),
    Redaction(Redaction),
    // ---- state, added later: appended so every older event decodes ----
    ModerationPolicy(ModerationPolicy),
    BanEntry(BanEntry),
    BanLists(BanLists),
    AutoMod(AutoMod),
}

/// The first event of a room. Its id is the room id, so everything here is
/// fixed by the room's name: the creator (its sender) owns the room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    /// Rules version the room follows. This crate implements version 1.
    pub room_version: u16,
    pub kind: RoomKind,
    pub join_rule: JoinRule,
    pub history_visibility: HistoryVisibility,
    /// Caller-supplied randomness, so two rooms created by one user in the
    /// same millisecond still get different ids.
    pub nonce: [u8; 16],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomKind {
    /// A chat room.
    Room,
    /// A space: a community that groups rooms (through `SpaceChild`).
    Space,
    /// A direct conversation between two people.
    Direct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JoinRule {
    /// Anyone may join.
    Public,
    /// Only invited users may join.
    Invite,
    /// Anyone may ask to join (knock); a member with `INVITE` lets them in.
    Knock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HistoryVisibility {
    /// Anyone who can see the room, members or not (public rooms' previews).
    WorldReadable,
    /// Members see the whole history, from before they joined too.
    Shared,
    /// Members see events from their invite on.
    Invited,
    /// Members see events from their join on.
    Joined,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Membership {
    Join,
    Invite,
    /// Left, declined, kicked, or unbanned: not in the room.
    Leave,
    Knock,
    Ban,
}

/// A change of `target`'s membership. Who sent it decides what it means:
/// the target themselves (join, leave, knock) or someone else (invite, kick,
/// ban, unban).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub target: UserId,
    pub membership: Membership,
    pub reason: Option<String>,
}

/// Defines, changes or deletes a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    pub role: RoleId,
    pub name: String,
    pub rank: Rank,
    pub permissions: Permissions,
    /// 0xRRGGBB for display.
    pub color: Option<u32>,
    pub deleted: bool,
}

/// Sets the complete list of roles `target` holds in this room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRoles {
    pub target: UserId,
    pub roles: Vec<RoleId>,
}

/// Mutes `target` until `until_ms` (unix milliseconds); 0 lifts a timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub target: UserId,
    pub until_ms: u64,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slowmode {
    /// Minimum time between two messages of one member; 0 turns it off.
    pub seconds: u32,
}

/// What every node does with a message its local classifier scores: per
/// label (`insult`, `threat`, `self_harm`, `sexual`, `hate`; a label a node
/// does not know is ignored by it), an action taken when the score reaches
/// the threshold. The latest policy replaces the whole previous one; an
/// empty list turns moderation off for the room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationPolicy {
    pub rules: Vec<PolicyRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub label: String,
    /// In thousandths, 1..=1000: a score p reaches it when p * 1000 >= it.
    /// An integer so that every node reads the same bytes the same way.
    pub threshold_milli: u16,
    pub action: PolicyAction,
}

/// The actions, mildest first: where several rules apply, the strongest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyAction {
    /// Nothing happens.
    Allow,
    /// Shown, and put before the room's moderators.
    Flag,
    /// Hidden from the room's members on each receiving node until a
    /// moderator reveals it; never removed from the room's history.
    Hide,
    /// Refused by the sender's own node before it is signed.
    Block,
}

/// The most rules a policy holds, and the longest label.
pub const MAX_POLICY_RULES: usize = 16;
pub const MAX_POLICY_LABEL_BYTES: usize = 32;

/// One entry of a ban list (a policy-list room, in the spirit of Matrix's
/// Mjolnir/Draupnir policy lists): a state event keyed by its `target`.
/// Every node that holds a room subscribed to the list enforces it there
/// (docs/spec/events.md §Ban lists); the entries themselves change nothing
/// in the list room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    pub target: BanTarget,
    pub recommendation: Recommendation,
    /// Shown to moderators and in the ban's reason; at most 256 bytes.
    pub reason: String,
    /// false removes the entry for `target`.
    pub present: bool,
}

/// Whom a ban-list entry names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BanTarget {
    User(UserId),
    /// Every user of a node.
    Node(NodeId),
    /// A glob (`*`, `?`) over user ids' text form (`crate::glob`).
    Pattern(String),
}

/// What a ban-list entry asks subscribing nodes to do. Only `Ban` exists;
/// the enum leaves room for milder ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recommendation {
    Ban,
}

/// The ban lists (list rooms) a room follows; the latest replaces the
/// whole previous list, an empty one unsubscribes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanLists {
    pub lists: Vec<RoomId>,
}

/// Entries a ban list holds at most, patterns among them, and lists a
/// room may follow: a list is state every subscribing node keeps and
/// matches each sender against, so its size is bounded for all of them.
pub const MAX_BAN_ENTRIES: usize = 4_096;
pub const MAX_BAN_PATTERNS: usize = 64;
pub const MAX_BAN_LISTS: usize = 8;

/// AutoMod rules (Discord AutoMod's shape), beside the classifier's policy:
/// a message or edit whose text holds a keyword (case-insensitive, whole
/// words) or matches a regular expression, or that carries more links or
/// mentions than allowed, is refused by its sender's node and hidden by
/// every other node that enforces moderation. The latest replaces the
/// whole previous one; one with no rules turns AutoMod off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoMod {
    pub keywords: Vec<String>,
    /// Regular expressions in the syntax of Rust's `regex` crate (no
    /// look-around or backreferences: matching is linear). A node that
    /// cannot compile one ignores it.
    pub regexes: Vec<String>,
    /// Most `http://`/`https://` links in one message; 0: no limit.
    pub max_links: u16,
    /// Most mentions (users, roles, `@room`) in one message; 0: no limit.
    pub max_mentions: u16,
}

impl AutoMod {
    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty()
            && self.regexes.is_empty()
            && self.max_links == 0
            && self.max_mentions == 0
    }
}

/// Bounds of AutoMod rules: every node compiles and runs them on every
/// message of the room.
pub const MAX_AUTOMOD_KEYWORDS: usize = 64;
pub const MAX_AUTOMOD_KEYWORD_BYTES: usize = 64;
pub const MAX_AUTOMOD_REGEXES: usize = 16;
pub const MAX_AUTOMOD_REGEX_BYTES: usize = 256;

/// Turns on end-to-end encryption. Once on, it stays on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    /// MLS (RFC 9420), ciphersuite MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    Mls128X25519,
}

/// Links a space and a room (`SpaceChild` in the space, `SpaceParent` in the room).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceLink {
    pub room: RoomId,
    /// Nodes that can be asked for the linked room.
    pub via: Vec<NodeId>,
    /// false removes the link.
    pub present: bool,
}

/// A chat message. `body` is a Markdown subset (docs/spec/events.md §Text):
/// clients render it without raw HTML.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Message {
    pub body: String,
    pub mentions: Mentions,
    /// The message this one replies to.
    pub reply_to: Option<EventId>,
    /// The root of the thread this message belongs to.
    pub thread: Option<EventId>,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mentions {
    pub users: Vec<UserId>,
    pub roles: Vec<RoleId>,
    /// `@room`: notify every member (needs `MENTION_ROOM`).
    pub room: bool,
}

/// A file, by content: the BLAKE3 hash iroh-blobs addresses it with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub hash: [u8; 32],
    pub size: u64,
    pub mime: String,
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A node that holds the blob.
    pub node: NodeId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub target: EventId,
    pub key: String,
}

/// Replaces the body of one of the sender's own messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub target: EventId,
    pub body: String,
    pub mentions: Mentions,
}

/// Hides a message, reaction or edit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub target: EventId,
    pub reason: Option<String>,
}

/// Where an event sorts among concurrent events of the same depth: the
/// create event, then changes to other members' standing (so a ban or a
/// demotion wins a race against what the target did at the same depth),
/// then other state, then messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Create = 0,
    Power = 1,
    State = 2,
    Message = 3,
}

impl Content {
    /// What a replica keeps of this content: everything admission and
    /// resolution read, nothing they do not. State events are kept whole
    /// (they are the room's state). A message keeps its reply and thread
    /// targets, its `@room` flag and whether it carries files (both need a
    /// permission), but not its text, mentioned users and roles, or its
    /// files' names and types; an edit keeps its target and `@room` flag;
    /// a redaction its target; a reaction its target and key (the read
    /// model counts reactions per key). The rest stays in the node's store
    /// (docs/spec/state-resolution.md §What a replica holds).
    pub fn skeleton(&self) -> Content {
        let mentions = |m: &Mentions| Mentions {
            room: m.room,
            ..Mentions::default()
        };
        match self {
            Content::Message(m) => Content::Message(Message {
                body: String::new(),
                mentions: mentions(&m.mentions),
                reply_to: m.reply_to,
                thread: m.thread,
                // One file stands for all: only "has files" is authorized.
                attachments: m
                    .attachments
                    .first()
                    .map(|a| Attachment {
                        mime: String::new(),
                        name: String::new(),
                        ..a.clone()
                    })
                    .into_iter()
                    .collect(),
            }),
            Content::Edit(e) => Content::Edit(Edit {
                target: e.target,
                body: String::new(),
                mentions: mentions(&e.mentions),
            }),
            Content::Redaction(r) => Content::Redaction(Redaction {
                target: r.target,
                reason: None,
            }),
            other => other.clone(),
        }
    }

    /// The event type's name, as used in the HTTP API and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            Content::Create(_) => "create",
            Content::Member(_) => "member",
            Content::Role(_) => "role",
            Content::MemberRoles(_) => "member_roles",
            Content::Timeout(_) => "timeout",
            Content::Name(_) => "name",
            Content::Topic(_) => "topic",
            Content::Avatar(_) => "avatar",
            Content::JoinRule(_) => "join_rule",
            Content::HistoryVisibility(_) => "history_visibility",
            Content::Slowmode(_) => "slowmode",
            Content::Encryption(_) => "encryption",
            Content::Pins(_) => "pins",
            Content::SpaceChild(_) => "space_child",
            Content::SpaceParent(_) => "space_parent",
            Content::Message(_) => "message",
            Content::Reaction(_) => "reaction",
            Content::Edit(_) => "edit",
            Content::Redaction(_) => "redaction",
            Content::ModerationPolicy(_) => "moderation_policy",
            Content::BanEntry(_) => "ban_entry",
            Content::BanLists(_) => "ban_lists",
            Content::AutoMod(_) => "automod",
        }
    }

    pub fn is_state(&self) -> bool {
        !matches!(
            self,
            Content::Message(_) | Content::Reaction(_) | Content::Edit(_) | Content::Redaction(_)
        )
    }

    /// See [`Class`]. `sender` decides whether a membership change is about
    /// oneself (state) or about someone else (power).
    pub fn class_for(&self, sender: &UserId) -> Class {
        match self {
            Content::Create(_) => Class::Create,
            Content::Role(_) | Content::MemberRoles(_) | Content::Timeout(_) => Class::Power,
            Content::Member(member) if &member.target != sender => Class::Power,
            Content::Message(_)
            | Content::Reaction(_)
            | Content::Edit(_)
            | Content::Redaction(_) => Class::Message,
            _ => Class::State,
        }
    }

    /// Events this content refers to, which must be ancestors of the event
    /// (its author saw them).
    pub fn references(&self) -> Vec<EventId> {
        match self {
            Content::Message(m) => m.reply_to.iter().chain(m.thread.iter()).copied().collect(),
            Content::Reaction(r) => vec![r.target],
            Content::Edit(e) => vec![e.target],
            Content::Redaction(r) => vec![r.target],
            Content::Pins(pins) => pins.clone(),
            _ => Vec::new(),
        }
    }

    /// Checks every length and count limit and the shape of nested ids.
    pub fn check_limits(&self) -> Result<(), &'static str> {
        fn text(s: &str, max: usize, what: &'static str) -> Result<(), &'static str> {
            if s.len() > max { Err(what) } else { Ok(()) }
        }
        fn opt(s: &Option<String>, max: usize, what: &'static str) -> Result<(), &'static str> {
            s.as_deref().map_or(Ok(()), |s| text(s, max, what))
        }
        fn list<T>(l: &[T], what: &'static str) -> Result<(), &'static str> {
            if l.len() > MAX_LIST_LEN {
                Err(what)
            } else {
                Ok(())
            }
        }
        fn user(u: &UserId) -> Result<(), &'static str> {
            u.validate().map_err(|_| "user id localpart")
        }
        fn mentions(m: &Mentions) -> Result<(), &'static str> {
            list(&m.users, "too many user mentions")?;
            list(&m.roles, "too many role mentions")?;
            m.users.iter().try_for_each(user)
        }
        fn attachment(a: &Attachment) -> Result<(), &'static str> {
            text(&a.mime, MAX_NAME_BYTES, "attachment MIME type too long")?;
            text(&a.name, MAX_NAME_BYTES, "attachment name too long")
        }
        match self {
            Content::Create(c) if c.room_version != 1 => Err("unsupported room version"),
            Content::Create(_) => Ok(()),
            Content::Member(m) => {
                user(&m.target)?;
                opt(&m.reason, MAX_NAME_BYTES, "reason too long")
            }
            Content::Role(r) => text(&r.name, MAX_NAME_BYTES, "role name too long"),
            Content::MemberRoles(m) => {
                user(&m.target)?;
                list(&m.roles, "too many roles")
            }
            Content::Timeout(t) => {
                user(&t.target)?;
                opt(&t.reason, MAX_NAME_BYTES, "reason too long")
            }
            Content::Name(n) => text(n, MAX_NAME_BYTES, "room name too long"),
            Content::Topic(t) => text(t, MAX_TOPIC_BYTES, "topic too long"),
            Content::Avatar(a) => a.as_ref().map_or(Ok(()), attachment),
            Content::JoinRule(_) | Content::HistoryVisibility(_) => Ok(()),
            Content::Slowmode(_) | Content::Encryption(_) => Ok(()),
            Content::Pins(p) => list(p, "too many pins"),
            Content::SpaceChild(l) | Content::SpaceParent(l) => list(&l.via, "too many via nodes"),
            Content::Message(m) => {
                text(&m.body, MAX_BODY_BYTES, "message body too long")?;
                mentions(&m.mentions)?;
                list(&m.attachments, "too many attachments")?;
                m.attachments.iter().try_for_each(attachment)
            }
            Content::Reaction(r) if r.key.is_empty() => Err("empty reaction key"),
            Content::Reaction(r) => text(&r.key, MAX_REACTION_BYTES, "reaction key too long"),
            Content::Edit(e) => {
                text(&e.body, MAX_BODY_BYTES, "message body too long")?;
                mentions(&e.mentions)
            }
            Content::Redaction(r) => opt(&r.reason, MAX_NAME_BYTES, "reason too long"),
            Content::ModerationPolicy(p) => {
                if p.rules.len() > MAX_POLICY_RULES {
                    return Err("too many policy rules");
                }
                for (i, rule) in p.rules.iter().enumerate() {
                    if rule.label.is_empty() || rule.label.len() > MAX_POLICY_LABEL_BYTES {
                        return Err("policy label empty or too long");
                    }
                    if !(1..=1000).contains(&rule.threshold_milli) {
                        return Err("policy threshold outside 1..=1000");
                    }
                    if p.rules[..i].iter().any(|r| r.label == rule.label) {
                        return Err("policy label listed twice");
                    }
                }
                Ok(())
            }
            Content::BanEntry(entry) => {
                text(&entry.reason, MAX_NAME_BYTES, "reason too long")?;
                match &entry.target {
                    BanTarget::User(u) => user(u),
                    BanTarget::Node(_) => Ok(()),
                    BanTarget::Pattern(p) => crate::glob::Glob::parse(p).map(drop),
                }
            }
            Content::AutoMod(a) => {
                if a.keywords.len() > MAX_AUTOMOD_KEYWORDS {
                    return Err("too many automod keywords");
                }
                if a.regexes.len() > MAX_AUTOMOD_REGEXES {
                    return Err("too many automod regexes");
                }
                if a.keywords
                    .iter()
                    .any(|k| k.trim().is_empty() || k.len() > MAX_AUTOMOD_KEYWORD_BYTES)
                {
                    return Err("automod keyword empty or too long");
                }
                if a.regexes
                    .iter()
                    .any(|r| r.is_empty() || r.len() > MAX_AUTOMOD_REGEX_BYTES)
                {
                    return Err("automod regex empty or too long");
                }
                Ok(())
            }
            Content::BanLists(b) => {
                if b.lists.len() > MAX_BAN_LISTS {
                    return Err("too many ban lists");
                }
                if b.lists
                    .iter()
                    .enumerate()
                    .any(|(i, l)| b.lists[..i].contains(l))
                {
                    return Err("ban list listed twice");
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name, NodeId([1; 32])).unwrap()
    }

    #[test]
    fn a_skeleton_keeps_what_authorization_reads_and_drops_text_and_files() {
        let file = |name: &str| Attachment {
            hash: [7; 32],
            size: 1 << 20,
            mime: "image/png".into(),
            name: name.into(),
            width: Some(10),
            height: Some(20),
            node: NodeId([1; 32]),
        };
        let mentions = Mentions {
            users: vec![user("a"), user("b")],
            roles: vec![RoleId(3)],
            room: true,
        };
        let message = Content::Message(Message {
            body: "x".repeat(16_000),
            mentions: mentions.clone(),
            reply_to: Some(EventId([4; 32])),
            thread: Some(EventId([5; 32])),
            attachments: vec![file("a.png"), file("b.png")],
        });
        let Content::Message(kept) = message.skeleton() else {
            panic!("a message stays a message");
        };
        assert!(kept.body.is_empty());
        assert_eq!(
            (kept.reply_to, kept.thread),
            (Some(EventId([4; 32])), Some(EventId([5; 32])))
        );
        assert!(
            kept.mentions.room && kept.mentions.users.is_empty() && kept.mentions.roles.is_empty()
        );
        assert_eq!(kept.attachments.len(), 1, "has files, not which");
        assert!(kept.attachments[0].name.is_empty() && kept.attachments[0].mime.is_empty());
        let plain = Content::Message(Message::default());
        assert_eq!(plain.skeleton(), plain);
        let edit = Content::Edit(Edit {
            target: EventId([6; 32]),
            body: "new text".into(),
            mentions,
        });
        let Content::Edit(kept) = edit.skeleton() else {
            panic!("an edit stays an edit");
        };
        assert_eq!(kept.target, EventId([6; 32]));
        assert!(kept.body.is_empty() && kept.mentions.room);
        let redaction = Content::Redaction(Redaction {
            target: EventId([6; 32]),
            reason: Some("spam".into()),
        });
        assert_eq!(
            redaction.skeleton(),
            Content::Redaction(Redaction {
                target: EventId([6; 32]),
                reason: None
            })
        );
        // State, reactions: whole.
        for content in samples() {
            if !matches!(
                content,
                Content::Message(_) | Content::Edit(_) | Content::Redaction(_)
            ) {
                assert_eq!(content.skeleton(), content);
            }
        }
    }

    fn samples() -> Vec<Content> {
        let e = EventId([1; 32]);
        let link = SpaceLink {
            room: RoomId([2; 32]),
            via: vec![],
            present: true,
        };
        let member = |target: &str| {
            Content::Member(Member {
                target: user(target),
                membership: Membership::Ban,
                reason: None,
            })
        };
        vec![
            Content::Create(Create {
                room_version: 1,
                kind: RoomKind::Room,
                join_rule: JoinRule::Public,
                history_visibility: HistoryVisibility::Shared,
                nonce: [0; 16],
            }),
            member("bob"),
            member("alice"),
            Content::Role(RoleDef {
                role: RoleId(1),
                name: String::new(),
                rank: 1,
                permissions: Permissions::NONE,
                color: None,
                deleted: false,
            }),
            Content::MemberRoles(MemberRoles {
                target: user("alice"),
                roles: vec![],
            }),
            Content::Timeout(Timeout {
                target: user("bob"),
                until_ms: 0,
                reason: None,
            }),
            Content::Name(String::new()),
            Content::Topic(String::new()),
            Content::Avatar(None),
            Content::JoinRule(JoinRule::Knock),
            Content::HistoryVisibility(HistoryVisibility::Joined),
            Content::Slowmode(Slowmode { seconds: 1 }),
            Content::Encryption(Encryption::Mls128X25519),
            Content::Pins(vec![e, EventId([3; 32])]),
            Content::SpaceChild(link.clone()),
            Content::SpaceParent(link),
            Content::Message(Message {
                reply_to: Some(e),
                thread: Some(EventId([4; 32])),
                ..Message::default()
            }),
            Content::Reaction(Reaction {
                target: e,
                key: "+".into(),
            }),
            Content::Edit(Edit {
                target: e,
                body: String::new(),
                mentions: Mentions::default(),
            }),
            Content::Redaction(Redaction {
                target: e,
                reason: None,
            }),
        ]
    }

    #[test]
    fn classes_kinds_and_names() {
        // docs/spec/encoding.md, the Content table, as sent by alice.
        let alice = user("alice");
        let want: [(&str, bool, Class); 20] = [
            ("create", true, Class::Create),
            ("member", true, Class::Power), // alice bans bob
            ("member", true, Class::State), // alice about herself
            ("role", true, Class::Power),
            ("member_roles", true, Class::Power), // even her own
            ("timeout", true, Class::Power),
            ("name", true, Class::State),
            ("topic", true, Class::State),
            ("avatar", true, Class::State),
            ("join_rule", true, Class::State),
            ("history_visibility", true, Class::State),
            ("slowmode", true, Class::State),
            ("encryption", true, Class::State),
            ("pins", true, Class::State),
            ("space_child", true, Class::State),
            ("space_parent", true, Class::State),
            ("message", false, Class::Message),
            ("reaction", false, Class::Message),
            ("edit", false, Class::Message),
            ("redaction", false, Class::Message),
        ];
        for (content, (name, state, class)) in samples().iter().zip(want) {
            assert_eq!(content.type_name(), name);
            assert_eq!(content.is_state(), state, "{name}");
            assert_eq!(content.class_for(&alice), class, "{name}");
            assert!(content.check_limits().is_ok(), "{name}");
        }
        assert!(
            Class::Create < Class::Power
                && Class::Power < Class::State
                && Class::State < Class::Message
        );
    }

    #[test]
    fn references_are_what_must_be_ancestors() {
        let refs: Vec<Vec<EventId>> = samples().iter().map(Content::references).collect();
        let (e, e3, e4) = (EventId([1; 32]), EventId([3; 32]), EventId([4; 32]));
        for (i, r) in refs.iter().enumerate() {
            let want: Vec<EventId> = match i {
                13 => vec![e, e3],
                16 => vec![e, e4],
                17..=19 => vec![e],
                _ => vec![],
            };
            assert_eq!(r, &want, "sample {i}");
        }
    }

    #[test]
    fn moderation_policy_limits() {
        let rule = |label: &str, threshold_milli: u16| PolicyRule {
            label: label.into(),
            threshold_milli,
            action: PolicyAction::Hide,
        };
        let policy = |rules: Vec<PolicyRule>| Content::ModerationPolicy(ModerationPolicy { rules });
        assert_eq!(
            policy(vec![rule("threat", 800), rule("hate", 1000)]).check_limits(),
            Ok(())
        );
        assert_eq!(policy(vec![]).check_limits(), Ok(()));
        for (bad, why) in [
            (vec![rule("threat", 0)], "policy threshold outside 1..=1000"),
            (
                vec![rule("threat", 1001)],
                "policy threshold outside 1..=1000",
            ),
            (vec![rule("", 500)], "policy label empty or too long"),
            (
                vec![rule(&"x".repeat(33), 500)],
                "policy label empty or too long",
            ),
            (
                vec![rule("hate", 500), rule("hate", 600)],
                "policy label listed twice",
            ),
            (
                (0..17).map(|i| rule(&format!("l{i}"), 500)).collect(),
                "too many policy rules",
            ),
        ] {
            assert_eq!(policy(bad).check_limits(), Err(why));
        }
        assert!(
            PolicyAction::Block > PolicyAction::Hide && PolicyAction::Hide > PolicyAction::Flag
        );
    }
}
