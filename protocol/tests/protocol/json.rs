//! The JSON form of event bodies used by `protocol/vectors/events.json`.
//!
//! Written by hand, not derived: ids appear in their text form (`~node`,
//! `$event`, `!room`, `@user:~node`), bytes in hex and permissions by name, so
//! a reader can check a vector against docs/spec without this crate.

use serde_json::{Value, json};
use spaces_protocol::content::*;
use spaces_protocol::{EventBody, EventId, Permissions, RoleId, UserId};

use super::support::{hex, unhex};

pub fn body_to_json(body: &EventBody) -> Value {
    json!({
        "origin": body.origin.to_string(),
        "room": body.room.map(|r| r.to_string()),
        "sender": body.sender,
        "parents": body.parents.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "depth": body.depth,
        "origin_ts": body.origin_ts,
        "content": content_to_json(&body.content),
    })
}

pub fn body_from_json(value: &Value) -> EventBody {
    EventBody {
        origin: str_of(&value["origin"]).parse().unwrap(),
        room: value["room"].as_str().map(|r| r.parse().unwrap()),
        sender: str_of(&value["sender"]).to_owned(),
        parents: value["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(event_id)
            .collect(),
        depth: value["depth"].as_u64().unwrap(),
        origin_ts: value["origin_ts"].as_u64().unwrap(),
        content: content_from_json(&value["content"]),
    }
}

fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
}

fn event_id(value: &Value) -> EventId {
    str_of(value).parse().unwrap()
}

fn user(value: &Value) -> UserId {
    str_of(value).parse().unwrap()
}

fn opt_string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn permissions_to_json(permissions: Permissions) -> Value {
    json!(permissions.names().collect::<Vec<_>>())
}

fn permissions_from_json(value: &Value) -> Permissions {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|name| Permissions::from_name(str_of(name)).unwrap())
        .fold(Permissions::NONE, |acc, p| acc | p)
}

fn mentions_to_json(m: &Mentions) -> Value {
    json!({
        "users": m.users.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
        "roles": m.roles.iter().map(|r| r.0).collect::<Vec<_>>(),
        "room": m.room,
    })
}

fn mentions_from_json(value: &Value) -> Mentions {
    Mentions {
        users: value["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(user)
            .collect(),
        roles: value["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| RoleId(r.as_u64().unwrap() as u32))
            .collect(),
        room: value["room"].as_bool().unwrap(),
    }
}

fn attachment_to_json(a: &Attachment) -> Value {
    json!({
        "hash": hex(&a.hash),
        "size": a.size,
        "mime": a.mime,
        "name": a.name,
        "width": a.width,
        "height": a.height,
        "node": a.node.to_string(),
    })
}

fn attachment_from_json(value: &Value) -> Attachment {
    Attachment {
        hash: unhex(str_of(&value["hash"])).try_into().unwrap(),
        size: value["size"].as_u64().unwrap(),
        mime: str_of(&value["mime"]).to_owned(),
        name: str_of(&value["name"]).to_owned(),
        width: value["width"].as_u64().map(|w| w as u32),
        height: value["height"].as_u64().map(|h| h as u32),
        node: str_of(&value["node"]).parse().unwrap(),
    }
}

macro_rules! unit_enum {
    ($to:ident, $from:ident, $ty:ty, [$($variant:ident = $name:literal),* $(,)?]) => {
        fn $to(value: $ty) -> Value {
            match value { $(<$ty>::$variant => json!($name),)* }
        }
        fn $from(value: &Value) -> $ty {
            match str_of(value) {
                $($name => <$ty>::$variant,)*
                other => panic!("unknown {}: {other}", stringify!($ty)),
            }
        }
    };
}

unit_enum!(
    kind_to_json,
    kind_from_json,
    RoomKind,
    [Room = "room", Space = "space", Direct = "direct"]
);
unit_enum!(
    rule_to_json,
    rule_from_json,
    JoinRule,
    [Public = "public", Invite = "invite", Knock = "knock"]
);
unit_enum!(
    visibility_to_json,
    visibility_from_json,
    HistoryVisibility,
    [
        WorldReadable = "world_readable",
        Shared = "shared",
        Invited = "invited",
        Joined = "joined",
    ]
);
unit_enum!(
    membership_to_json,
    membership_from_json,
    Membership,
    [
        Join = "join",
        Invite = "invite",
        Leave = "leave",
        Knock = "knock",
        Ban = "ban",
    ]
);

/// The vectors use these content types; others panic (add them here when a
/// vector needs them).
pub fn content_to_json(content: &Content) -> Value {
    let fields = match content {
        Content::Create(c) => json!({
            "room_version": c.room_version,
            "kind": kind_to_json(c.kind),
            "join_rule": rule_to_json(c.join_rule),
            "history_visibility": visibility_to_json(c.history_visibility),
            "nonce": hex(&c.nonce),
        }),
        Content::Member(m) => json!({
            "target": m.target.to_string(),
            "membership": membership_to_json(m.membership),
            "reason": m.reason,
        }),
        Content::Role(r) => json!({
            "role": r.role.0,
            "name": r.name,
            "rank": r.rank,
            "permissions": permissions_to_json(r.permissions),
            "color": r.color,
            "deleted": r.deleted,
        }),
        Content::MemberRoles(m) => json!({
            "target": m.target.to_string(),
            "roles": m.roles.iter().map(|r| r.0).collect::<Vec<_>>(),
        }),
        Content::Timeout(t) => json!({
            "target": t.target.to_string(),
            "until_ms": t.until_ms,
            "reason": t.reason,
        }),
        Content::Name(name) => json!({ "name": name }),
        Content::Topic(topic) => json!({ "topic": topic }),
        Content::Message(m) => json!({
            "body": m.body,
            "mentions": mentions_to_json(&m.mentions),
            "reply_to": m.reply_to.map(|id| id.to_string()),
            "thread": m.thread.map(|id| id.to_string()),
            "attachments": m.attachments.iter().map(attachment_to_json).collect::<Vec<_>>(),
        }),
        Content::Reaction(r) => json!({ "target": r.target.to_string(), "key": r.key }),
        Content::Edit(e) => json!({
            "target": e.target.to_string(),
            "body": e.body,
            "mentions": mentions_to_json(&e.mentions),
        }),
        Content::Redaction(r) => json!({ "target": r.target.to_string(), "reason": r.reason }),
        other => panic!("no JSON form for {} in the vectors yet", other.type_name()),
    };
    let mut object = fields.as_object().unwrap().clone();
    object.insert("type".into(), json!(content.type_name()));
    Value::Object(object)
}

pub fn content_from_json(value: &Value) -> Content {
    match str_of(&value["type"]) {
        "create" => Content::Create(Create {
            room_version: value["room_version"].as_u64().unwrap() as u16,
            kind: kind_from_json(&value["kind"]),
            join_rule: rule_from_json(&value["join_rule"]),
            history_visibility: visibility_from_json(&value["history_visibility"]),
            nonce: unhex(str_of(&value["nonce"])).try_into().unwrap(),
        }),
        "member" => Content::Member(Member {
            target: user(&value["target"]),
            membership: membership_from_json(&value["membership"]),
            reason: opt_string(&value["reason"]),
        }),
        "role" => Content::Role(RoleDef {
            role: RoleId(value["role"].as_u64().unwrap() as u32),
            name: str_of(&value["name"]).to_owned(),
            rank: value["rank"].as_u64().unwrap() as u32,
            permissions: permissions_from_json(&value["permissions"]),
            color: value["color"].as_u64().map(|c| c as u32),
            deleted: value["deleted"].as_bool().unwrap(),
        }),
        "member_roles" => Content::MemberRoles(MemberRoles {
            target: user(&value["target"]),
            roles: value["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| RoleId(r.as_u64().unwrap() as u32))
                .collect(),
        }),
        "timeout" => Content::Timeout(Timeout {
            target: user(&value["target"]),
            until_ms: value["until_ms"].as_u64().unwrap(),
            reason: opt_string(&value["reason"]),
        }),
        "name" => Content::Name(str_of(&value["name"]).to_owned()),
        "topic" => Content::Topic(str_of(&value["topic"]).to_owned()),
        "message" => Content::Message(Message {
            body: str_of(&value["body"]).to_owned(),
            mentions: mentions_from_json(&value["mentions"]),
            reply_to: value["reply_to"].as_str().map(|id| id.parse().unwrap()),
            thread: value["thread"].as_str().map(|id| id.parse().unwrap()),
            attachments: value["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(attachment_from_json)
                .collect(),
        }),
        "reaction" => Content::Reaction(Reaction {
            target: event_id(&value["target"]),
            key: str_of(&value["key"]).to_owned(),
        }),
        "edit" => Content::Edit(Edit {
            target: event_id(&value["target"]),
            body: str_of(&value["body"]).to_owned(),
            mentions: mentions_from_json(&value["mentions"]),
        }),
        "redaction" => Content::Redaction(Redaction {
            target: event_id(&value["target"]),
            reason: opt_string(&value["reason"]),
        }),
        other => panic!("no JSON form for {other} in the vectors yet"),
    }
}
