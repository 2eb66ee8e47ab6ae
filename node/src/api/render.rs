//! JSON views of protocol values for the HTTP API and the WebSocket. The
//! shapes are documented in docs/spec/api.md; ids are their text forms.

use serde_json::{Value, json};
use spaces_protocol::content::*;
use spaces_protocol::{Event, EventId, Permissions, RoomId, RoomState, UserId};

use crate::engine::{EphemeralItem, Notes, Notice, RoomView, StreamItem};

pub fn membership(m: Membership) -> &'static str {
    match m {
        Membership::Join => "join",
        Membership::Invite => "invite",
        Membership::Leave => "leave",
        Membership::Knock => "knock",
        Membership::Ban => "ban",
    }
}

pub fn join_rule(rule: JoinRule) -> &'static str {
    match rule {
        JoinRule::Public => "public",
        JoinRule::Invite => "invite",
        JoinRule::Knock => "knock",
    }
}

pub fn parse_join_rule(text: &str) -> Option<JoinRule> {
    [JoinRule::Public, JoinRule::Invite, JoinRule::Knock]
        .into_iter()
        .find(|r| join_rule(*r) == text)
}

pub fn history_visibility(v: HistoryVisibility) -> &'static str {
    match v {
        HistoryVisibility::WorldReadable => "world_readable",
        HistoryVisibility::Shared => "shared",
        HistoryVisibility::Invited => "invited",
        HistoryVisibility::Joined => "joined",
    }
}

pub fn parse_history_visibility(text: &str) -> Option<HistoryVisibility> {
    use HistoryVisibility::*;
    [WorldReadable, Shared, Invited, Joined]
        .into_iter()
        .find(|v| history_visibility(*v) == text)
}

pub fn room_kind(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Room => "room",
        RoomKind::Space => "space",
        RoomKind::Direct => "direct",
    }
}

pub fn permissions(p: Permissions) -> Vec<&'static str> {
    p.names().collect()
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn hash_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn attachment(a: &Attachment) -> Value {
    json!({
        "hash": hash_hex(&a.hash),
        "size": a.size, "mime": a.mime, "name": a.name,
        "width": a.width, "height": a.height, "node": a.node.to_string(),
    })
}

fn mentions(m: &Mentions) -> Value {
    json!({ "users": strings(&m.users), "roles": m.roles.iter().map(|r| r.0).collect::<Vec<_>>(), "room": m.room })
}

pub fn content(content: &Content) -> Value {
    match content {
        Content::Create(c) => json!({
            "room_version": c.room_version, "kind": room_kind(c.kind),
            "join_rule": join_rule(c.join_rule), "history_visibility": history_visibility(c.history_visibility),
        }),
        Content::Member(m) => {
            json!({ "target": m.target.to_string(), "membership": membership(m.membership), "reason": m.reason })
        }
        Content::Role(r) => json!({
            "role": r.role.0, "name": r.name, "rank": r.rank, "permissions": permissions(r.permissions),
            "color": r.color, "deleted": r.deleted,
        }),
        Content::MemberRoles(m) => {
            json!({ "target": m.target.to_string(), "roles": m.roles.iter().map(|r| r.0).collect::<Vec<_>>() })
        }
        Content::Timeout(t) => {
            json!({ "target": t.target.to_string(), "until_ms": t.until_ms, "reason": t.reason })
        }
        Content::Name(name) => json!({ "name": name }),
        Content::Topic(topic) => json!({ "topic": topic }),
        Content::Avatar(a) => json!({ "avatar": a.as_ref().map(attachment) }),
        Content::JoinRule(rule) => json!({ "join_rule": join_rule(*rule) }),
        Content::HistoryVisibility(v) => json!({ "history_visibility": history_visibility(*v) }),
        Content::Slowmode(s) => json!({ "seconds": s.seconds }),
        Content::ModerationPolicy(p) => moderation_policy(p),
        Content::BanEntry(entry) => ban_entry(entry),
        Content::BanLists(b) => json!({ "lists": strings(&b.lists) }),
        Content::AutoMod(a) => automod(a),
        Content::Encryption(_) => json!({ "algorithm": "mls128-x25519" }),
        Content::Pins(pins) => json!({ "pins": strings(pins) }),
        Content::SpaceChild(l) | Content::SpaceParent(l) => {
            json!({ "room": l.room.to_string(), "via": strings(&l.via), "present": l.present })
        }
        Content::Message(m) => json!({
            "body": m.body, "mentions": mentions(&m.mentions),
            "reply_to": m.reply_to.map(|id| id.to_string()), "thread": m.thread.map(|id| id.to_string()),
            "attachments": m.attachments.iter().map(attachment).collect::<Vec<_>>(),
        }),
        Content::Reaction(r) => json!({ "target": r.target.to_string(), "key": r.key }),
        Content::Edit(e) => {
            json!({ "target": e.target.to_string(), "body": e.body, "mentions": mentions(&e.mentions) })
        }
        Content::Redaction(r) => json!({ "target": r.target.to_string(), "reason": r.reason }),
    }
}

/// An event as clients see it. With the read model's notes, messages carry
/// their reactions, latest edit, redaction and thread size.
pub fn event(event: &Event, notes: Option<&Notes>, viewer: &UserId) -> Value {
    let mut value = json!({
        "event_id": event.id().to_string(),
        "room_id": event.room_id().to_string(),
        "sender": event.sender().to_string(),
        "type": event.content().type_name(),
        "origin_ts": event.origin_ts(),
        "depth": event.depth(),
        "content": content(event.content()),
    });
    let (Some(notes), Content::Message(_)) = (notes, event.content()) else {
        return value;
    };
    let reactions: Vec<Value> = notes
        .reactions
        .iter()
        .map(|(key, users)| {
            json!({
                "key": key, "count": users.len(),
                "me": users.iter().any(|(u, _)| u == viewer),
                "users": users.iter().map(|(u, _)| u.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let edited = notes
        .edited
        .as_ref()
        .filter(|_| !notes.redacted)
        .map(|(edit_id, body)| json!({ "edit_id": edit_id.to_string(), "body": body }));
    if let Some(object) = value.as_object_mut() {
        if notes.redacted {
            object.insert("content".into(), json!({ "body": "", "mentions": { "users": [], "roles": [], "room": false }, "reply_to": null, "thread": null, "attachments": [] }));
        }
        object.insert("redacted".into(), json!(notes.redacted));
        object.insert("edited".into(), edited.unwrap_or(Value::Null));
        object.insert("reactions".into(), json!(reactions));
        object.insert("thread_count".into(), json!(notes.thread_count));
    }
    value
}

/// A room as one user sees it.
pub fn room(view: &RoomView, viewer: &UserId, unread: Option<usize>) -> Value {
    let state: &RoomState = view.room.state();
    json!({
        "room_id": view.room.room_id().to_string(),
        "kind": state.kind().map(room_kind),
        "name": state.name(),
        "topic": state.topic(),
        "avatar": state.avatar().map(|a| hash_hex(&a.hash)),
        "creator": state.creator().map(ToString::to_string),
        "join_rule": join_rule(state.join_rule()),
        "history_visibility": history_visibility(state.history_visibility()),
        "encrypted": state.encryption().is_some(),
        "slowmode_seconds": state.slowmode_seconds(),
        "pins": strings(state.pins()),
        "n_members": state.joined().len(),
        "membership": state.membership(viewer).map(membership),
        "permissions": permissions(state.permissions(viewer)),
        "rank": state.rank(viewer),
        "is_owner": state.is_owner(viewer),
        "unread": unread,
        "n_events": view.room.len(),
        "moderation_policy": state.moderation_policy().map(|p| moderation_policy(p)),
        "ban_lists": strings(state.ban_lists()),
        "automod": state.automod().map(|a| automod(a)),
    })
}

/// A room's AutoMod rules.
pub fn automod(rules: &AutoMod) -> Value {
    json!({
        "keywords": rules.keywords,
        "regexes": rules.regexes,
        "max_links": rules.max_links,
        "max_mentions": rules.max_mentions,
    })
}

/// A ban-list entry: `kind` is `user`, `node` or `pattern`.
pub fn ban_entry(entry: &BanEntry) -> Value {
    let (kind, target) = match &entry.target {
        BanTarget::User(user) => ("user", user.to_string()),
        BanTarget::Node(node) => ("node", node.to_string()),
        BanTarget::Pattern(pattern) => ("pattern", pattern.clone()),
    };
    json!({
        "kind": kind,
        "target": target,
        "reason": entry.reason,
        "recommendation": match entry.recommendation {
            Recommendation::Ban => "ban",
        },
        "present": entry.present,
    })
}

/// A room's moderation policy: thresholds as probabilities (thousandths on the wire).
pub fn moderation_policy(policy: &ModerationPolicy) -> Value {
    json!({
        "rules": policy.rules.iter().map(|rule| json!({
            "label": rule.label,
            "threshold": f64::from(rule.threshold_milli) / 1000.0,
            "action": policy_action(rule.action),
        })).collect::<Vec<_>>(),
    })
}

pub fn policy_action(action: PolicyAction) -> &'static str {
    match action {
        PolicyAction::Allow => "allow",
        PolicyAction::Flag => "flag",
        PolicyAction::Hide => "hide",
        PolicyAction::Block => "block",
    }
}

pub fn parse_policy_action(text: &str) -> Option<PolicyAction> {
    [
        PolicyAction::Allow,
        PolicyAction::Flag,
        PolicyAction::Hide,
        PolicyAction::Block,
    ]
    .into_iter()
    .find(|a| policy_action(*a) == text)
}

/// The WebSocket frame of a typing notice, receipt or presence change:
/// rendered once per item, shared by every client that gets it.
pub fn ephemeral(item: &EphemeralItem) -> &str {
    item.rendered.get_or_init(|| {
        let user_id = item.user.to_string();
        match &item.notice {
            Notice::Typing { room_id, typing } => json!({
                "type": "typing", "room_id": room_id.to_string(),
                "user_id": user_id, "typing": typing,
            }),
            Notice::Receipt { room_id, event_id } => json!({
                "type": "receipt", "room_id": room_id.to_string(),
                "user_id": user_id, "event_id": event_id.to_string(),
            }),
            Notice::Presence(state) => json!({
                "type": "presence", "user_id": user_id, "state": state.as_str(),
            }),
        }
        .to_string()
    })
}

// The WebSocket's frames (docs/spec/api.md §WebSocket). `api/ws.rs` drives
// the socket and sends these; it builds no JSON of its own.

/// The first frame after authentication: who the client is and the last
/// durable seq.
pub fn ready_frame(user: &UserId, last_seq: u64) -> String {
    json!({ "type": "ready", "user_id": user.to_string(), "seq": last_seq }).to_string()
}

/// A notification as `GET /api/v1/notifications` lists it. Ids are the
/// stored ids' text forms; the store only ever holds ids the node wrote.
pub fn notification(at: &spaces_store::NotificationAt) -> Value {
    let n = &at.notification;
    json!({
        "id": at.seq,
        "room_id": RoomId(n.room_id).to_string(),
        "event_id": EventId(n.event_id).to_string(),
        "sender": n.sender,
        "reason": n.reason,
        "origin_ts": n.origin_ts,
        "excerpt": n.excerpt,
        "unread": at.unread,
    })
}

/// The WebSocket frame of a new notification for the connected user.
pub fn notification_frame(at: &spaces_store::NotificationAt) -> String {
    json!({ "type": "notification", "notification": notification(at) }).to_string()
}

/// A Web Push payload: what the service worker receives, decrypted.
pub fn push_payload(at: &spaces_store::NotificationAt) -> Vec<u8> {
    notification_frame(at).into_bytes()
}

/// The end of the backlog: live events follow.
pub fn caught_up_frame(seq: u64) -> String {
    json!({ "type": "caught_up", "seq": seq }).to_string()
}

/// The answer to a client's `ping` message.
pub const PONG_FRAME: &str = r#"{"type":"pong"}"#;

/// An event frame. Without a room view the rendering does not depend on
/// the viewer, so every client shares the item's one rendering.
pub fn event_frame(item: &StreamItem) -> &str {
    item.rendered.get_or_init(|| {
        json!({ "type": "event", "seq": item.seq, "event": event(&item.event, None, item.event.sender()) })
            .to_string()
    })
}

/// Resolution changed its mind about earlier events of a room: a ban
/// merged late refuses the messages it raced, a refused ban gives them
/// back. Clients drop the refused ids and place the accepted events.
pub fn acceptance_frame(
    seq: u64,
    room_id: RoomId,
    refused: &[EventId],
    accepted: &[Event],
) -> String {
    json!({
        "type": "acceptance",
        "seq": seq,
        "room_id": room_id.to_string(),
        "refused": strings(refused),
        "accepted": accepted
            .iter()
            .map(|e| event(e, None, e.sender()))
            .collect::<Vec<_>>(),
    })
    .to_string()
}
