//! The triggers, in the order a notification names its reason when several
//! hold: an invite, a direct message, a mention of the user, of a role they
//! hold, a reply to their message, a message in a thread they follow,
//! `@room`, a keyword, and (at level `All`) any other message.
//!
//! Only the event itself notifies: an edit that adds a mention does not
//! (the message already notified or did not, and people fix typos), nor do
//! reactions, redactions or state events other than an invite.

use spaces_protocol::content::{Content, Membership, RoomKind};
use spaces_protocol::{Event, RoleId, UserId};

use crate::settings::{Level, Settings};

/// Why a user is notified of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// They were invited to the room.
    Invite,
    /// A message in a direct room they are in.
    Direct,
    /// The message mentions them.
    Mention,
    /// The message mentions a role they hold.
    RoleMention,
    /// The message replies to one of theirs.
    Reply,
    /// A message in a thread they started or wrote in.
    Thread,
    /// The message mentions `@room`.
    Room,
    /// The message holds one of their keywords.
    Keyword,
    /// Any other message, in a room whose level is `All`.
    Message,
}

impl Reason {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invite => "invite",
            Reason::Direct => "direct",
            Reason::Mention => "mention",
            Reason::RoleMention => "role_mention",
            Reason::Reply => "reply",
            Reason::Thread => "thread",
            Reason::Room => "room",
            Reason::Keyword => "keyword",
            Reason::Message => "message",
        }
    }

    /// The reason named `text`, if any.
    pub fn parse(text: &str) -> Option<Reason> {
        use Reason::*;
        [
            Invite,
            Direct,
            Mention,
            RoleMention,
            Reply,
            Thread,
            Room,
            Keyword,
            Message,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }

    /// Whether the reason notifies at `level`.
    fn notifies_at(self, level: Level) -> bool {
        match level {
            Level::All => true,
            Level::Mentions => self != Reason::Message,
            Level::Nothing => false,
        }
    }
}

/// What the rules need to know of one local user, gathered by the node
/// under the room's lock.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    pub user: &'a UserId,
    /// The roles they hold in the room.
    pub roles: &'a [RoleId],
    /// They sent the message this one replies to.
    pub wrote_replied: bool,
    /// They started, or wrote in, the thread this message belongs to.
    pub follows_thread: bool,
    pub settings: &'a Settings,
}

/// Whether, and why, `recipient` is notified of `event` in a room of
/// `kind`, at `now_ms` (mutes). Never for their own events. The caller has
/// already checked that resolution accepted the event and that the
/// recipient may read it.
pub fn reason(
    event: &Event,
    kind: RoomKind,
    recipient: &Recipient<'_>,
    now_ms: u64,
) -> Option<Reason> {
    if event.sender() == recipient.user {
        return None;
    }
    let level = recipient.settings.level_in(&event.room_id(), now_ms);
    let reason = match event.content() {
        Content::Member(member)
            if member.membership == Membership::Invite && &member.target == recipient.user =>
        {
            Reason::Invite
        }
        Content::Message(message) => {
            let mentions = &message.mentions;
            if kind == RoomKind::Direct {
                Reason::Direct
            } else if mentions.users.contains(recipient.user) {
                Reason::Mention
            } else if mentions.roles.iter().any(|r| recipient.roles.contains(r)) {
                Reason::RoleMention
            } else if message.reply_to.is_some() && recipient.wrote_replied {
                Reason::Reply
            } else if message.thread.is_some() && recipient.follows_thread {
                Reason::Thread
            } else if mentions.room {
                Reason::Room
            } else if recipient
                .settings
                .keywords
                .iter()
                .any(|keyword| contains_word(&message.body, keyword))
            {
                Reason::Keyword
            } else {
                Reason::Message
            }
        }
        _ => return None,
    };
    reason.notifies_at(level).then_some(reason)
}

/// Whether `body` holds `keyword`, ignoring case, with no letter or digit
/// right before or after it ("deploy" matches "Deploy!" but not
/// "redeployed").
fn contains_word(body: &str, keyword: &str) -> bool {
    let body = body.to_lowercase();
    let keyword = keyword.to_lowercase();
    if keyword.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(found) = body[from..].find(&keyword) {
        let start = from + found;
        let end = start + keyword.len();
        let before = body[..start].chars().next_back();
        let after = body[end..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        // Step past the first character of this match.
        from = start + body[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// The first `max_chars` characters of `body`, with "…" when cut: what a
/// notification shows of a message.
pub fn excerpt(body: &str, max_chars: usize) -> String {
    match body.char_indices().nth(max_chars) {
        None => body.to_owned(),
        Some((cut, _)) => format!("{}…", &body[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use spaces_protocol::content::{HistoryVisibility, JoinRule, Member, Mentions, Message};
    use spaces_protocol::{EventBody, EventId, NodeKey, Room};

    use super::*;
    use crate::settings::RoomSetting;

    struct Case {
        name: &'static str,
        kind: RoomKind,
        content: Content,
        roles: &'static [RoleId],
        wrote_replied: bool,
        follows_thread: bool,
        settings: Settings,
        now_ms: u64,
        want: Option<Reason>,
    }

    fn message(f: impl FnOnce(&mut Message)) -> Content {
        let mut message = Message {
            body: "hello there".into(),
            ..Default::default()
        };
        f(&mut message);
        Content::Message(message)
    }

    fn level(level: Level) -> Settings {
        Settings {
            level,
            ..Default::default()
        }
    }

    /// The table of triggers and settings for one recipient, "bob".
    #[test]
    fn triggers_and_settings() {
        let key = NodeKey::from_seed([7; 32]);
        let bob = UserId::new("bob", key.node_id()).unwrap();
        let create = EventBody::create(
            key.node_id(),
            "alice",
            1,
            RoomKind::Room,
            JoinRule::Public,
            HistoryVisibility::Shared,
            [0; 16],
        )
        .sign(&key)
        .unwrap();
        let room_id = create.room_id();
        let room = Room::new(create).unwrap();
        let muted = Settings {
            rooms: [(
                room_id,
                RoomSetting {
                    level: None,
                    mute_until_ms: Some(1_000),
                },
            )]
            .into(),
            ..Default::default()
        };
        let keyword = Settings {
            keywords: vec!["Deploy".into()],
            ..Default::default()
        };
        let base = || Case {
            name: "",
            kind: RoomKind::Room,
            content: message(|_| {}),
            roles: &[],
            wrote_replied: false,
            follows_thread: false,
            settings: Settings::default(),
            now_ms: 2_000,
            want: None,
        };
        let cases = [
            Case {
                name: "plain message, mentions level",
                ..base()
            },
            Case {
                name: "plain message, all level",
                settings: level(Level::All),
                want: Some(Reason::Message),
                ..base()
            },
            Case {
                name: "mention",
                content: message(|m| m.mentions.users.push(bob.clone())),
                want: Some(Reason::Mention),
                ..base()
            },
            Case {
                name: "mention, nothing level",
                content: message(|m| m.mentions.users.push(bob.clone())),
                settings: level(Level::Nothing),
                ..base()
            },
            Case {
                name: "mention, muted room",
                content: message(|m| m.mentions.users.push(bob.clone())),
                settings: muted.clone(),
                now_ms: 999,
                ..base()
            },
            Case {
                name: "mention, mute over",
                content: message(|m| m.mentions.users.push(bob.clone())),
                settings: muted.clone(),
                now_ms: 1_000,
                want: Some(Reason::Mention),
                ..base()
            },
            Case {
                name: "role held",
                content: message(|m| m.mentions.roles.push(RoleId(3))),
                roles: &[RoleId(2), RoleId(3)],
                want: Some(Reason::RoleMention),
                ..base()
            },
            Case {
                name: "role not held",
                content: message(|m| m.mentions.roles.push(RoleId(4))),
                roles: &[RoleId(3)],
                ..base()
            },
            Case {
                name: "@room",
                content: message(|m| m.mentions.room = true),
                want: Some(Reason::Room),
                ..base()
            },
            Case {
                name: "reply to theirs",
                content: message(|m| m.reply_to = Some(EventId([1; 32]))),
                wrote_replied: true,
                want: Some(Reason::Reply),
                ..base()
            },
            Case {
                name: "reply to someone else's",
                content: message(|m| m.reply_to = Some(EventId([1; 32]))),
                ..base()
            },
            Case {
                name: "thread followed",
                content: message(|m| m.thread = Some(EventId([1; 32]))),
                follows_thread: true,
                want: Some(Reason::Thread),
                ..base()
            },
            Case {
                name: "direct room",
                kind: RoomKind::Direct,
                want: Some(Reason::Direct),
                ..base()
            },
            Case {
                name: "keyword",
                content: message(|m| m.body = "we DEPLOY at 5".into()),
                settings: keyword.clone(),
                want: Some(Reason::Keyword),
                ..base()
            },
            Case {
                name: "keyword inside a word",
                content: message(|m| m.body = "redeployed".into()),
                settings: keyword.clone(),
                ..base()
            },
            Case {
                name: "mention wins over @room",
                content: message(|m| {
                    m.mentions.room = true;
                    m.mentions.users.push(bob.clone());
                }),
                want: Some(Reason::Mention),
                ..base()
            },
            Case {
                name: "invite",
                content: Content::Member(Member {
                    target: bob.clone(),
                    membership: Membership::Invite,
                    reason: None,
                }),
                want: Some(Reason::Invite),
                ..base()
            },
            Case {
                name: "someone else's invite",
                content: Content::Member(Member {
                    target: UserId::new("carol", key.node_id()).unwrap(),
                    membership: Membership::Invite,
                    reason: None,
                }),
                ..base()
            },
            Case {
                name: "edit adding a mention",
                content: Content::Edit(spaces_protocol::content::Edit {
                    target: EventId([1; 32]),
                    body: "bob".into(),
                    mentions: Mentions {
                        users: vec![bob.clone()],
                        ..Default::default()
                    },
                }),
                ..base()
            },
        ];
        for (n, case) in cases.into_iter().enumerate() {
            let event = room
                .draft(key.node_id(), "alice", 2 + n as u64, case.content)
                .sign(&key)
                .unwrap();
            let recipient = Recipient {
                user: &bob,
                roles: case.roles,
                wrote_replied: case.wrote_replied,
                follows_thread: case.follows_thread,
                settings: &case.settings,
            };
            assert_eq!(
                reason(&event, case.kind, &recipient, case.now_ms),
                case.want,
                "{}",
                case.name
            );
            // Never for one's own events.
            let own = Recipient {
                user: event.sender(),
                ..recipient
            };
            assert_eq!(reason(&event, case.kind, &own, case.now_ms), None);
        }
    }

    #[test]
    fn words_and_excerpts() {
        assert!(contains_word("Deploy!", "deploy"));
        assert!(contains_word("the on call rota", "On Call"));
        assert!(!contains_word("redeploy", "deploy"));
        assert!(contains_word("redeploy deploy", "deploy"));
        assert!(contains_word("ÉTÉ", "été"));
        assert_eq!(excerpt("héllo", 10), "héllo");
        assert_eq!(excerpt("héllo", 2), "hé…");
    }
}
