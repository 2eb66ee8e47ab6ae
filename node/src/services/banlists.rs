//! Shared ban lists: the node's enforcement of policy-list rooms
//! (docs/spec/events.md §Ban lists).
//!
//! A ban list is a room whose `ban_entry` state events name banned users,
//! nodes and glob patterns. A room follows lists through its `ban_lists`
//! state event; the whole node follows the lists in
//! `moderation.ban_lists` (config), in every room it holds. Either way this
//! node must hold the list room (one of its users is a member, as a
//! Mjolnir bot joins its lists): entries reach it as any room's events do.
//!
//! What a node does with a listed user in a room that follows the list:
//! - refuses their join when they are this node's user ([`BanLists::listed`],
//!   asked by the join API before the join is signed);
//! - sends a `ban` for them if they are present (joined, invited or
//!   knocking) and one of this node's joined members may ban them (the
//!   `ban` permission and a higher rank; the highest-ranked such member
//!   signs it). A node with no such member cannot ban: it still hides;
//! - hides their messages from this node's users through
//!   [`Moderation::hide_all`] (a hidden mark labelled `ban_list`, in the
//!   review queue, revealable), and every later event of theirs that
//!   arrives from another node ([`BanLists::screen`], before admission).
//!
//! [`run`] follows the engine's stream: a `ban_entry` in a list room
//! enforces it in every room here that follows the list, a `ban_lists` in
//! a room enforces its lists there, and a join, invite or knock is checked
//! against the room's lists. At start and after lagging behind the stream
//! it sweeps every room: enforcement is idempotent (a present ban, a
//! present mark are left alone), so nothing durable of its own is needed.
//!
//! A list is compiled once per version (the list room's entries as a
//! persistent map, compared by pointer): a set of users, a set of nodes
//! and at most [`spaces_protocol::content::MAX_BAN_PATTERNS`] globs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use spaces_protocol::content::{BanEntry, BanTarget, Content, Member, Membership};
use spaces_protocol::glob::Glob;
use spaces_protocol::limits::MAX_NAME_BYTES;
use spaces_protocol::permissions::Permissions;
use spaces_protocol::{Event, EventId, NodeId, RoomId, RoomState, UserId};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use crate::engine::{Engine, now_ms};
use crate::services::moderation::Moderation;

/// The label of marks a ban list makes.
pub const LABEL: &str = "ban_list";
/// Stream items gathered before enforcing: a burst of entries (a list
/// synced at once) enforces each room once, not once per entry.
const BATCH_ITEMS: usize = 512;

/// The node's ban-list enforcement: a cheap-to-clone handle.
#[derive(Clone, Debug)]
pub struct BanLists(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    engine: Engine,
    moderation: Moderation,
    /// Lists every room here follows (config `moderation.ban_lists`).
    node_lists: Vec<RoomId>,
    /// Compiled lists, by list room.
    compiled: Mutex<HashMap<RoomId, Arc<Compiled>>>,
}

/// Why a user is listed: the list and the entry's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub list: RoomId,
    pub reason: String,
}

/// One version of a list, ready to match.
#[derive(Debug)]
struct Compiled {
    /// The version compiled (compared by pointer).
    entries: imbl::OrdMap<BanTarget, Arc<BanEntry>>,
    users: HashMap<UserId, String>,
    nodes: HashMap<NodeId, String>,
    patterns: Vec<(Glob, String)>,
}

impl Compiled {
    fn compile(entries: imbl::OrdMap<BanTarget, Arc<BanEntry>>) -> Compiled {
        let mut compiled = Compiled {
            entries: imbl::OrdMap::new(),
            users: HashMap::new(),
            nodes: HashMap::new(),
            patterns: Vec::new(),
        };
        for (target, entry) in &entries {
            let reason = entry.reason.clone();
            match target {
                BanTarget::User(user) => {
                    compiled.users.insert(user.clone(), reason);
                }
                BanTarget::Node(node) => {
                    compiled.nodes.insert(*node, reason);
                }
                // Checked by every node's limits before acceptance; a bad
                // one here would be a bug, and matches nobody.
                BanTarget::Pattern(pattern) => {
                    if let Ok(glob) = Glob::parse(pattern) {
                        compiled.patterns.push((glob, reason));
                    }
                }
            }
        }
        compiled.entries = entries;
        compiled
    }

    fn reason_for(&self, user: &UserId) -> Option<&str> {
        if let Some(reason) = self.users.get(user) {
            return Some(reason);
        }
        if let Some(reason) = self.nodes.get(&user.node()) {
            return Some(reason);
        }
        if self.patterns.is_empty() {
            return None;
        }
        let text = user.to_string();
        self.patterns
            .iter()
            .find(|(glob, _)| glob.matches(&text))
            .map(|(_, reason)| reason.as_str())
    }
}

impl BanLists {
    pub fn new(engine: Engine, moderation: Moderation, node_lists: Vec<RoomId>) -> BanLists {
        BanLists(Arc::new(Inner {
            engine,
            moderation,
            node_lists,
            compiled: Mutex::default(),
        }))
    }

    /// The lists that apply in a room: its own, then the node's.
    fn lists_of(&self, state: &RoomState) -> Vec<RoomId> {
        let mut lists: Vec<RoomId> = state.ban_lists().to_vec();
        for list in &self.0.node_lists {
            if !lists.contains(list) {
                lists.push(*list);
            }
        }
        lists
    }

    /// Whether the room follows any list (the room's or the node's).
    fn follows_any(&self, state: &RoomState) -> bool {
        !self.0.node_lists.is_empty() || !state.ban_lists().is_empty()
    }

    /// The current version of `list` compiled; `None` when this node does
    /// not hold the list room.
    async fn compiled(&self, list: RoomId) -> Option<Arc<Compiled>> {
        let slot = self.0.engine.room(&list).ok()?;
        let entries = slot.lock().await.room.state().ban_entries().clone();
        let mut cache = self
            .0
            .compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(compiled) = cache.get(&list)
            && compiled.entries.ptr_eq(&entries)
        {
            return Some(compiled.clone());
        }
        let compiled = Arc::new(Compiled::compile(entries));
        cache.insert(list, compiled.clone());
        Some(compiled)
    }

    async fn compiled_all(&self, lists: &[RoomId]) -> Vec<(RoomId, Arc<Compiled>)> {
        let mut compiled = Vec::with_capacity(lists.len());
        for list in lists {
            if let Some(c) = self.compiled(*list).await {
                compiled.push((*list, c));
            }
        }
        compiled
    }

    fn first_listed(compiled: &[(RoomId, Arc<Compiled>)], user: &UserId) -> Option<Listed> {
        compiled.iter().find_map(|(list, c)| {
            c.reason_for(user).map(|reason| Listed {
                list: *list,
                reason: reason.to_owned(),
            })
        })
    }

    /// Whether `user` is listed by a list `room_id` follows.
    pub async fn listed(&self, room_id: &RoomId, user: &UserId) -> Option<Listed> {
        let slot = self.0.engine.room(room_id).ok()?;
        let lists = {
            let view = slot.lock().await;
            let state = view.room.state();
            if !self.follows_any(state) {
                return None;
            }
            self.lists_of(state)
        };
        let compiled = self.compiled_all(&lists).await;
        Self::first_listed(&compiled, user)
    }

    /// Hides other nodes' events whose sender a list of their room names,
    /// before the engine admits them (so the mark is durable before any
    /// subscriber hears of the event). Membership events stay visible:
    /// they are the room's record of who came and went.
    pub async fn screen(&self, events: &[Event]) {
        let own = self.0.engine.node_id();
        let mut hide: HashMap<RoomId, Vec<EventId>> = HashMap::new();
        // Each room's lists once per batch: one lock per room, not per event.
        let mut lists: HashMap<RoomId, Vec<(RoomId, Arc<Compiled>)>> = HashMap::new();
        for event in events {
            if event.origin() == own || matches!(event.content(), Content::Member(_)) {
                continue;
            }
            let room_id = event.room_id();
            if let std::collections::hash_map::Entry::Vacant(vacant) = lists.entry(room_id) {
                let followed = match self.0.engine.room(&room_id) {
                    Ok(slot) => {
                        let view = slot.lock().await;
                        let state = view.room.state();
                        if self.follows_any(state) {
                            self.lists_of(state)
                        } else {
                            Vec::new()
                        }
                    }
                    Err(_) => Vec::new(),
                };
                vacant.insert(self.compiled_all(&followed).await);
            }
            if Self::first_listed(&lists[&room_id], event.sender()).is_some() {
                hide.entry(room_id).or_default().push(event.id());
            }
        }
        for (room_id, ids) in hide {
            if let Err(error) = self
                .0
                .moderation
                .hide_all(room_id, ids, &[LABEL], now_ms())
                .await
            {
                tracing::error!(%error, "storing ban-list marks failed; the events are shown");
            }
        }
    }

    /// Enforces the lists `room_id` follows on its members (`only`: on one
    /// user): bans the present ones when a local member may, and hides
    /// every listed member's messages here.
    pub async fn enforce(&self, room_id: RoomId, only: Option<&UserId>) {
        let Ok(slot) = self.0.engine.room(&room_id) else {
            return;
        };
        let (lists, members) = {
            let view = slot.lock().await;
            let state = view.room.state();
            if !self.follows_any(state) {
                return;
            }
            let members: Vec<(UserId, Membership)> = match only {
                Some(user) => state
                    .membership(user)
                    .map(|m| (user.clone(), m))
                    .into_iter()
                    .collect(),
                None => state.members(),
            };
            (self.lists_of(state), members)
        };
        let compiled = self.compiled_all(&lists).await;
        if compiled.is_empty() {
            return;
        }
        let hits: Vec<(UserId, Membership, Listed)> = members
            .into_iter()
            .filter_map(|(user, m)| Self::first_listed(&compiled, &user).map(|l| (user, m, l)))
            .collect();
        for (user, membership, listed) in hits {
            if membership != Membership::Ban {
                self.ban(&room_id, &user, &listed).await;
            }
            let ids: Vec<EventId> = {
                let view = slot.lock().await;
                let arrivals = view.arrivals();
                arrivals
                    .messages_by(&view.room, &user, 0, usize::MAX)
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect()
            };
            match self
                .0
                .moderation
                .hide_all(room_id, ids, &[LABEL], now_ms())
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(room = %room_id, user = %user, list = %listed.list, hidden = n, "ban list: messages hidden")
                }
                Err(error) => tracing::error!(%error, "storing ban-list marks failed"),
            }
        }
    }

    /// Bans `user` from `room_id` as the highest-ranked local member who
    /// may; none: logged, and the user stays (hidden here).
    async fn ban(&self, room_id: &RoomId, user: &UserId, listed: &Listed) {
        let engine = &self.0.engine;
        let Ok(slot) = engine.room(room_id) else {
            return;
        };
        let banner = {
            let view = slot.lock().await;
            let state = view.room.state();
            let target_rank = state.rank(user);
            state
                .joined()
                .into_iter()
                .filter(|u| {
                    engine.is_local(u)
                        && u != user
                        && state.permissions(u).contains(Permissions::BAN)
                        && state.rank(u) > target_rank
                })
                .max_by_key(|u| state.rank(u))
        };
        let Some(banner) = banner else {
            tracing::info!(room = %room_id, user = %user, list = %listed.list, "ban list: no local member may ban; hidden only");
            return;
        };
        let content = Content::Member(Member {
            target: user.clone(),
            membership: Membership::Ban,
            reason: Some(ban_reason(listed)),
        });
        match engine.send(&banner, room_id, content).await {
            Ok(_) => {
                tracing::info!(room = %room_id, user = %user, list = %listed.list, by = %banner, "ban list: banned")
            }
            Err(error) => {
                tracing::warn!(room = %room_id, user = %user, %error, "ban list: the ban was refused")
            }
        }
    }

    /// Enforces every room's lists (at start, after lagging).
    async fn sweep(&self) {
        for room_id in self.0.engine.room_ids() {
            self.enforce(room_id, None).await;
        }
    }
}

/// The reason a list's ban carries: the entry's, printable, then the list,
/// within the protocol's length for reasons.
fn ban_reason(listed: &Listed) -> String {
    let reason: String = listed.reason.chars().filter(|c| !c.is_control()).collect();
    let mut text = format!("ban list {}: {reason}", listed.list);
    if text.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// What one stream item asks for.
fn wants(
    item: &crate::engine::StreamItem,
    rooms: &mut BTreeSet<RoomId>,
    users: &mut Vec<(RoomId, UserId)>,
    lists: &mut BTreeSet<RoomId>,
) {
    if !item.accepted {
        return;
    }
    match item.event.content() {
        Content::BanEntry(_) => {
            lists.insert(item.room_id);
        }
        Content::BanLists(_) => {
            rooms.insert(item.room_id);
        }
        Content::Member(m)
            if matches!(
                m.membership,
                Membership::Join | Membership::Invite | Membership::Knock
            ) =>
        {
            users.push((item.room_id, m.target.clone()));
        }
        _ => {}
    }
}

/// Follows the engine's stream and enforces lists as their entries and
/// rooms' members change; stops when `stopped` turns true.
pub async fn run(ban_lists: BanLists, mut stopped: watch::Receiver<bool>) {
    let engine = ban_lists.0.engine.clone();
    let mut stream = engine.subscribe();
    ban_lists.sweep().await;
    loop {
        let first = tokio::select! {
            _ = stopped.changed() => return,
            item = stream.recv() => item,
        };
        let mut rooms = BTreeSet::new();
        let mut users = Vec::new();
        let mut lists = BTreeSet::new();
        let mut lagged = false;
        match first {
            Ok(item) => wants(&item, &mut rooms, &mut users, &mut lists),
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return,
        }
        for _ in 1..BATCH_ITEMS {
            match stream.try_recv() {
                Ok(item) => wants(&item, &mut rooms, &mut users, &mut lists),
                Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        if lagged {
            ban_lists.sweep().await;
            continue;
        }
        if !lists.is_empty() {
            // Every room that follows a changed list (the node's lists: all).
            for room_id in engine.room_ids() {
                let Ok(slot) = engine.room(&room_id) else {
                    continue;
                };
                let follows = {
                    let view = slot.lock().await;
                    let followed = ban_lists.lists_of(view.room.state());
                    followed.iter().any(|l| lists.contains(l))
                };
                if follows {
                    rooms.insert(room_id);
                }
            }
        }
        for room_id in &rooms {
            ban_lists.enforce(*room_id, None).await;
        }
        for (room_id, user) in users {
            if !rooms.contains(&room_id) {
                ban_lists.enforce(room_id, Some(&user)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces_protocol::content::Recommendation;

    fn user(name: &str, node: u8) -> UserId {
        UserId::new(name, NodeId([node; 32])).unwrap()
    }

    #[test]
    fn a_list_matches_users_nodes_and_patterns() {
        let entry = |target: BanTarget, reason: &str| {
            (
                target.clone(),
                Arc::new(BanEntry {
                    target,
                    recommendation: Recommendation::Ban,
                    reason: reason.into(),
                    present: true,
                }),
            )
        };
        let spam_node = user("x", 9).node();
        let entries: imbl::OrdMap<BanTarget, Arc<BanEntry>> = [
            entry(BanTarget::User(user("mallory", 1)), "abuse"),
            entry(BanTarget::Node(spam_node), "spam node"),
            entry(BanTarget::Pattern("@spam*".into()), "spam names"),
        ]
        .into_iter()
        .collect();
        let compiled = Compiled::compile(entries.clone());
        assert!(compiled.entries.ptr_eq(&entries));
        assert_eq!(compiled.reason_for(&user("mallory", 1)), Some("abuse"));
        assert_eq!(compiled.reason_for(&user("mallory", 2)), None);
        assert_eq!(compiled.reason_for(&user("anyone", 9)), Some("spam node"));
        assert_eq!(compiled.reason_for(&user("spammer", 3)), Some("spam names"));
        assert_eq!(compiled.reason_for(&user("alice", 1)), None);
    }

    #[test]
    fn a_ban_reason_is_printable_and_bounded() {
        let listed = |reason: &str| Listed {
            list: RoomId([3; 32]),
            reason: reason.into(),
        };
        let short = ban_reason(&listed("spam\u{7}"));
        assert!(
            short.starts_with("ban list !") && short.ends_with(": spam"),
            "{short}"
        );
        let long = ban_reason(&listed(&"é".repeat(200)));
        assert!(long.len() <= MAX_NAME_BYTES);
    }
}
