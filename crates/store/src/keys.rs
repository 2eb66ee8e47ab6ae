//! The on-disk layout: every sled tree, how its keys are encoded and what its values hold.
//!
//! | tree            | key                              | value                          |
//! |-----------------|----------------------------------|--------------------------------|
//! | `log`           | seq (u64 BE) of its first event  | `LogRecord`: a run of events   |
//! | `log`           | 0xf1 ‖ room id ‖ record seq      | `RoomIndexRecord`: offsets     |
//! | `log`           | 0xf2 ‖ event id                  | seq (u64 BE) of the event      |
//! | `flips`         | seq (u64 BE) of the event        | `FlipRecord`: what it changed  |
//! | `accounts`      | username                         | [`Account`](crate::Account)    |
//! | `profiles`      | username                         | [`Profile`](crate::Profile)    |
//! | `settings`      | username                         | opaque JSON bytes              |
//! | `contacts`      | user prefix ‖ contact            | empty                          |
//! | `sessions`      | session id                       | [`Session`](crate::Session)    |
//! | `user_sessions` | user prefix ‖ session id         | empty                          |
//! | `invites`       | token                            | [`InviteToken`](crate::InviteToken) |
//! | `invite_links`  | code                             | [`InviteLink`](crate::InviteLink) |
//! | `passkeys`      | credential id (1–1023 bytes)     | [`PasskeyRecord`](crate::PasskeyRecord) |
//! | `user_passkeys` | user prefix ‖ credential id      | empty                          |
//! | `auth_policies` | username                         | [`AuthPolicy`](crate::AuthPolicy) |
//! | `read_markers`  | user prefix ‖ room id (32)       | seq (u64 BE)                   |
//! | `txns`          | session id                       | `SentTxns`: last txn ids sent  |
//! | `moderation`    | event id (32)                    | [`ModerationMark`](crate::ModerationMark) |
//! | `notifications` | 0x00                             | cursor: last stream seq (u64 BE) done |
//! | `notifications` | 0x01 ‖ user prefix ‖ seq         | [`Notification`](crate::Notification) |
//! | `notifications` | 0x02 ‖ user prefix ‖ seq         | empty: the notification is unread |
//! | `notifications` | 0x03 ‖ username                  | [`NotifySettings`](crate::NotifySettings) |
//! | `notifications` | 0x04 ‖ user prefix ‖ id (32)     | [`PushSubscription`](crate::PushSubscription) |
//! | `notifications` | 0x05 ‖ due ms ‖ delivery id      | [`PushDelivery`](crate::PushDelivery): the push queue |
//! | `meta`          | key                              | node metadata; `first_account` |
//! | `meta`          | `invite_link/` ‖ code (legacy)   | JSON link of an older build    |
//!
//! - Integers are big-endian, so sled's bytewise key order is numeric order: a range over `log`
//!   walks seqs ascending.
//! - `log` holds the event records and, under tagged keys, their two indexes, so that one sled
//!   batch (atomic within a tree) writes a commit's records and index entries together. A record
//!   key is a seq, whose first byte is 0x00 for any seq below 2^56 (a million events a second
//!   for 2,000 years) and in any case below [`INDEX_START`] for seqs below 0xf0 << 56, so every
//!   record sorts before every index entry: ranges over records stop at [`INDEX_START`].
//! - The room index has one entry per (room, record), not per event: the offsets within the
//!   record of that room's events. A single-room commit adds one index insert per record.
//! - Layout 1 (before `log`) had the trees `events`, `stream` and `room_events`; `Store::open`
//!   refuses a directory that holds events in them (see `store`).
//! - Ids and seqs are fixed-width, so the parts of a composite key built from them need no
//!   delimiter.
//! - Strings are UTF-8. `username` is the *lowercased* username: lookups ignore case.
//! - A *user prefix* is the lowercased username's byte length as a u64 BE, then its bytes. It is
//!   self-delimiting whatever bytes the name holds: (user "ab", item "c") and (user "a", item "bc")
//!   are different keys, and a prefix scan for "al" never reaches "alice"'s rows. A 0x00
//!   separator would do the same only as long as no name ever contains NUL; the length needs no
//!   such promise, and 8 bytes per key is cheap.
//! - Record values (`LogRecord`, `Account`, ...) are a format-version byte and postcard: see
//!   `records`.

use crate::Error;

/// The name of every tree, also used in [`Error::Corrupt`].
pub(crate) mod tree {
    pub(crate) const LOG: &str = "log";
    pub(crate) const FLIPS: &str = "flips";
    /// The event trees of layout 1, which this build does not read.
    pub(crate) const LAYOUT_1: [&str; 3] = ["events", "stream", "room_events"];
    pub(crate) const ACCOUNTS: &str = "accounts";
    pub(crate) const PROFILES: &str = "profiles";
    pub(crate) const SETTINGS: &str = "settings";
    pub(crate) const CONTACTS: &str = "contacts";
    pub(crate) const SESSIONS: &str = "sessions";
    pub(crate) const USER_SESSIONS: &str = "user_sessions";
    /// Deleted sessions whose access tokens have not all expired: id → expiry (u64 big-endian).
    pub(crate) const ENDED_SESSIONS: &str = "ended_sessions";
    pub(crate) const INVITES: &str = "invites";
    pub(crate) const INVITE_LINKS: &str = "invite_links";
    pub(crate) const READ_MARKERS: &str = "read_markers";
    pub(crate) const TXNS: &str = "txns";
    pub(crate) const PASSKEYS: &str = "passkeys";
    pub(crate) const USER_PASSKEYS: &str = "user_passkeys";
    pub(crate) const AUTH_POLICIES: &str = "auth_policies";
    /// What this node's moderation decided about received events: event id → mark.
    pub(crate) const MODERATION: &str = "moderation";
    pub(crate) const NOTIFICATIONS: &str = "notifications";
    pub(crate) const META: &str = "meta";
}

/// Keys of the `meta` tree that the store itself writes.
pub(crate) mod meta {
    /// The username of the first account ever created: present once any account exists, so
    /// "is this the first account?" is one read inside the transaction that creates it.
    pub(crate) const FIRST_ACCOUNT: &str = "first_account";
    /// Builds before the `invite_links` tree kept each invite link here, under this prefix and
    /// its code, as JSON; the node moves them (`Store::legacy_invite_links`).
    pub(crate) const LEGACY_INVITE_LINK_PREFIX: &str = "invite_link/";
}

const SEQ_LEN: usize = 8;
const ID_LEN: usize = 32;

/// The first key of `log` that is not a record: every index key sorts at or after it.
pub(crate) const INDEX_START: [u8; 1] = [0xf0];
/// The tag of a room-index key in `log`.
const ROOM_INDEX_TAG: u8 = 0xf1;
/// The tag of an event-id-index key in `log`.
const ID_INDEX_TAG: u8 = 0xf2;

/// The room-index key of the record at `record_seq` for `room_id`.
pub(crate) fn room_index(room_id: &[u8; ID_LEN], record_seq: u64) -> [u8; 1 + ID_LEN + SEQ_LEN] {
    let mut key = [0; 1 + ID_LEN + SEQ_LEN];
    key[0] = ROOM_INDEX_TAG;
    key[1..1 + ID_LEN].copy_from_slice(room_id);
    key[1 + ID_LEN..].copy_from_slice(&seq(record_seq));
    key
}

/// The record seq of a [`room_index`] key.
pub(crate) fn decode_room_index(key: &[u8]) -> Result<u64, Error> {
    match key.split_first() {
        Some((&ROOM_INDEX_TAG, rest)) if rest.len() == ID_LEN + SEQ_LEN => {
            decode_seq(tree::LOG, key, &rest[ID_LEN..])
        }
        _ => Err(Error::corrupt(tree::LOG, key, "not a room-index key")),
    }
}

/// Whether a `log` key is a [`room_index`] key (by its tag and length).
pub(crate) fn is_room_index(key: &[u8]) -> bool {
    key.len() == 1 + ID_LEN + SEQ_LEN && key[0] == ROOM_INDEX_TAG
}

/// Whether a `log` key is an [`id_index`] key (by its tag and length).
pub(crate) fn is_id_index(key: &[u8]) -> bool {
    key.len() == 1 + ID_LEN && key[0] == ID_INDEX_TAG
}

/// The event-id-index key of `event_id`.
pub(crate) fn id_index(event_id: &[u8; ID_LEN]) -> [u8; 1 + ID_LEN] {
    let mut key = [0; 1 + ID_LEN];
    key[0] = ID_INDEX_TAG;
    key[1..].copy_from_slice(event_id);
    key
}

/// The key of an invite link: its code's bytes. Codes are secrets (kept out of errors, like
/// invite tokens); callers pass only base64url codes of at most 64 bytes.
pub(crate) fn invite_link(code: &str) -> &[u8] {
    code.as_bytes()
}

/// The `meta` key under which an older build kept the invite link `code`.
pub(crate) fn legacy_invite_link(code: &str) -> Vec<u8> {
    let mut key = meta::LEGACY_INVITE_LINK_PREFIX.as_bytes().to_vec();
    key.extend_from_slice(code.as_bytes());
    key
}

/// The `notifications` key of the notifier's cursor.
pub(crate) const NOTIFY_CURSOR: [u8; 1] = [0x00];
/// The tag of a notification record's key.
pub(crate) const NOTIFICATION_TAG: u8 = 0x01;
/// The tag of a notification's unread mark.
pub(crate) const UNREAD_TAG: u8 = 0x02;
/// The tag of a user's notification settings.
const NOTIFY_SETTINGS_TAG: u8 = 0x03;
/// The tag of a Web Push subscription.
pub(crate) const PUSH_SUBSCRIPTION_TAG: u8 = 0x04;
/// The tag of a queued push delivery.
pub(crate) const PUSH_QUEUE_TAG: u8 = 0x05;

/// The key of `username`'s push subscription `id`.
pub(crate) fn push_subscription(username: &str, id: &[u8; ID_LEN]) -> Vec<u8> {
    let mut key = notify_prefix(PUSH_SUBSCRIPTION_TAG, username);
    key.extend_from_slice(id);
    key
}

/// The key of a queued push delivery: due first, so a scan walks the queue in due order.
pub(crate) fn push_delivery(due_ms: u64, id: u64) -> [u8; 1 + 2 * SEQ_LEN] {
    let mut key = [0; 1 + 2 * SEQ_LEN];
    key[0] = PUSH_QUEUE_TAG;
    key[1..1 + SEQ_LEN].copy_from_slice(&seq(due_ms));
    key[1 + SEQ_LEN..].copy_from_slice(&seq(id));
    key
}

/// The (due, id) of a [`push_delivery`] key.
pub(crate) fn decode_push_delivery(key: &[u8]) -> Result<(u64, u64), Error> {
    match key.split_first() {
        Some((&PUSH_QUEUE_TAG, rest)) if rest.len() == 2 * SEQ_LEN => Ok((
            decode_seq(tree::NOTIFICATIONS, key, &rest[..SEQ_LEN])?,
            decode_seq(tree::NOTIFICATIONS, key, &rest[SEQ_LEN..])?,
        )),
        _ => Err(Error::corrupt(
            tree::NOTIFICATIONS,
            key,
            "not a push delivery key",
        )),
    }
}

/// The username and subscription id of a [`push_subscription`] key.
pub(crate) fn decode_push_subscription(key: &[u8]) -> Result<(String, [u8; ID_LEN]), Error> {
    let bad = || Error::corrupt(tree::NOTIFICATIONS, key, "not a push subscription key");
    let rest = key
        .strip_prefix(&[PUSH_SUBSCRIPTION_TAG][..])
        .ok_or_else(bad)?;
    let len_bytes: [u8; SEQ_LEN] = rest
        .get(..SEQ_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let len = usize::try_from(u64::from_be_bytes(len_bytes)).map_err(|_| bad())?;
    let name = rest.get(SEQ_LEN..SEQ_LEN + len).ok_or_else(bad)?;
    let id = rest.get(SEQ_LEN + len..).ok_or_else(bad)?;
    let id: [u8; ID_LEN] = id.try_into().map_err(|_| bad())?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| bad())?;
    Ok((name, id))
}

/// The prefix of one user's `notifications` rows under `tag` ([`NOTIFICATION_TAG`] or
/// [`UNREAD_TAG`]).
pub(crate) fn notify_prefix(tag: u8, username: &str) -> Vec<u8> {
    let mut key = vec![tag];
    key.extend_from_slice(&user_prefix(username));
    key
}

/// The key of `username`'s notification of the event at `seq` under `tag`.
pub(crate) fn notification(tag: u8, username: &str, event_seq: u64) -> Vec<u8> {
    let mut key = notify_prefix(tag, username);
    key.extend_from_slice(&seq(event_seq));
    key
}

/// The seq of a [`notification`] key found by a scan over its [`notify_prefix`].
pub(crate) fn decode_notification(prefix: &[u8], key: &[u8]) -> Result<u64, Error> {
    let rest = key
        .strip_prefix(prefix)
        .ok_or_else(|| Error::corrupt(tree::NOTIFICATIONS, key, "key lacks the user prefix"))?;
    decode_seq(tree::NOTIFICATIONS, key, rest)
}

/// The key of `username`'s notification settings.
pub(crate) fn notify_settings(username: &str) -> Vec<u8> {
    let mut key = vec![NOTIFY_SETTINGS_TAG];
    key.extend_from_slice(&self::username(username));
    key
}

/// The username of a [`notify_settings`] key.
pub(crate) fn decode_notify_settings(key: &[u8]) -> Result<String, Error> {
    key.strip_prefix(&[NOTIFY_SETTINGS_TAG])
        .and_then(|rest| std::str::from_utf8(rest).ok())
        .map(str::to_owned)
        .ok_or_else(|| Error::corrupt(tree::NOTIFICATIONS, key, "not a settings key"))
}

/// A seq as a `stream` key or a `read_markers` value.
pub(crate) fn seq(seq: u64) -> [u8; SEQ_LEN] {
    seq.to_be_bytes()
}

/// Decodes a [`seq`] found in `tree` under `key` (the bytes may be the key itself).
pub(crate) fn decode_seq(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<u64, Error> {
    fixed::<SEQ_LEN>(tree, key, bytes, "seq").map(u64::from_be_bytes)
}

/// The key of a record owned by one user: `accounts`, `profiles`, `settings`.
pub(crate) fn username(username: &str) -> Vec<u8> {
    username.to_lowercase().into_bytes()
}

/// The prefix shared by all of one user's rows in `contacts`, `user_sessions`, `read_markers`.
pub(crate) fn user_prefix(username: &str) -> Vec<u8> {
    let username = self::username(username);
    // Lossless: usize is at most 64 bits on every target Rust supports.
    let len = username.len() as u64;
    let mut prefix = Vec::with_capacity(SEQ_LEN + username.len());
    prefix.extend_from_slice(&len.to_be_bytes());
    prefix.extend_from_slice(&username);
    prefix
}

/// A row of one user: the [`user_prefix`], then `item` (a contact, a session id, a room id).
pub(crate) fn user_item(username: &str, item: &[u8]) -> Vec<u8> {
    let mut key = user_prefix(username);
    key.extend_from_slice(item);
    key
}

/// The string item of a key found by a prefix scan over `prefix`: a contact or a session id.
pub(crate) fn decode_user_item(
    tree: &'static str,
    prefix: &[u8],
    key: &[u8],
) -> Result<String, Error> {
    let item = key
        .strip_prefix(prefix)
        .ok_or_else(|| Error::corrupt(tree, key, "key lacks the user prefix"))?;
    String::from_utf8(item.to_vec()).map_err(|_| Error::corrupt(tree, key, "item is not UTF-8"))
}

fn fixed<const N: usize>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
    what: &str,
) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        Error::corrupt(
            tree,
            key,
            format!("{what} is {} bytes, expected {N}", bytes.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_byte_order_is_numeric_order() {
        let ascending = [
            0,
            1,
            255,
            256,
            65_535,
            65_536,
            u64::MAX / 2,
            u64::MAX - 1,
            u64::MAX,
        ];
        for pair in ascending.windows(2) {
            assert!(seq(pair[0]) < seq(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn records_sort_before_index_keys_and_rooms_by_seq() {
        assert!(seq(1 << 56)[..] < INDEX_START[..]);
        assert!(seq((0xf0 << 56) - 1)[..] < INDEX_START[..]);
        assert!(INDEX_START[..] < room_index(&[0; 32], 0)[..]);
        assert!(room_index(&[0xff; 32], u64::MAX)[..] < id_index(&[0; 32])[..]);
        assert!(room_index(&[1; 32], 255) < room_index(&[1; 32], 256));
        assert!(room_index(&[1; 32], u64::MAX) < room_index(&[2; 32], 0));
        assert_eq!(decode_room_index(&room_index(&[7; 32], 300)).unwrap(), 300);
        for bad in [
            &id_index(&[1; 32])[..],
            &seq(3),
            &room_index(&[1; 32], 1)[..40],
        ] {
            assert!(matches!(
                decode_room_index(bad),
                Err(Error::Corrupt { tree: "log", .. })
            ));
        }
    }

    #[test]
    fn seq_round_trips() {
        for n in [0, 1, 256, u64::MAX] {
            assert_eq!(decode_seq(tree::LOG, b"k", &seq(n)).unwrap(), n);
        }
    }

    #[test]
    fn seq_of_wrong_length_is_corrupt() {
        for bytes in [&[][..], &[1; 7], &[1; 9]] {
            assert!(matches!(
                decode_seq(tree::LOG, bytes, bytes),
                Err(Error::Corrupt { tree: "log", .. })
            ));
        }
    }

    #[test]
    fn notification_keys_sort_by_seq_within_a_user() {
        let prefix = notify_prefix(NOTIFICATION_TAG, "al");
        let (a, b) = (
            notification(NOTIFICATION_TAG, "al", 255),
            notification(NOTIFICATION_TAG, "Al", 256),
        );
        assert!(a < b && a.starts_with(&prefix) && b.starts_with(&prefix));
        assert_eq!(decode_notification(&prefix, &b).unwrap(), 256);
        assert!(!notification(UNREAD_TAG, "al", 1).starts_with(&prefix));
        assert!(!notification(NOTIFICATION_TAG, "alice", 1).starts_with(&prefix));
        assert!(decode_notification(&prefix, &prefix).is_err());
        assert_ne!(notify_settings("al")[..], NOTIFY_CURSOR[..]);
        assert!(push_delivery(1, u64::MAX) < push_delivery(2, 0));
        assert_eq!(decode_push_delivery(&push_delivery(7, 9)).unwrap(), (7, 9));
        assert!(decode_push_delivery(&push_subscription("al", &[1; 32])).is_err());
        assert_eq!(
            decode_push_subscription(&push_subscription("Al", &[3; 32])).unwrap(),
            ("al".to_owned(), [3; 32])
        );
        assert!(decode_push_subscription(&push_delivery(1, 1)).is_err());
    }

    #[test]
    fn user_prefix_layout() {
        assert_eq!(user_item("Al", b"x"), b"\0\0\0\0\0\0\0\x02alx");
        assert_eq!(user_prefix(""), [0; 8]);
    }

    #[test]
    fn usernames_ignore_case() {
        assert_eq!(username("Alice"), b"alice");
        assert_eq!(user_prefix("ALICE"), user_prefix("alice"));
        assert_eq!(user_item("Alice", b"c"), user_item("alice", b"c"));
    }

    #[test]
    fn user_items_do_not_collide() {
        // (user, item) pairs whose plain concatenations are equal.
        let cases = [
            (("ab", "c"), ("a", "bc")),
            (("a", ""), ("", "a")),
            (("a\0b", "c"), ("a", "\0bc")),
        ];
        for ((user_1, item_1), (user_2, item_2)) in cases {
            assert_ne!(
                user_item(user_1, item_1.as_bytes()),
                user_item(user_2, item_2.as_bytes()),
                "{user_1:?}+{item_1:?} vs {user_2:?}+{item_2:?}"
            );
        }
    }

    #[test]
    fn user_prefix_matches_only_that_user() {
        let prefix = user_prefix("al");
        assert!(user_item("al", b"ice").starts_with(&prefix));
        assert!(user_item("al", b"").starts_with(&prefix));
        for other in ["alice", "a", "", "alx", "AM"] {
            assert!(
                !user_item(other, b"ice").starts_with(&prefix),
                "{other:?}'s rows match al's prefix"
            );
        }
    }

    #[test]
    fn user_items_of_one_user_sort_by_item() {
        assert!(user_item("al", b"a") < user_item("al", b"b"));
        assert!(user_item("al", b"b") < user_item("al", b"ba"));
    }

    #[test]
    fn user_item_decodes_after_its_prefix() {
        let prefix = user_prefix("al");
        let key = user_item("al", "bob@node".as_bytes());
        assert_eq!(
            decode_user_item(tree::CONTACTS, &prefix, &key).unwrap(),
            "bob@node"
        );
        assert!(matches!(
            decode_user_item(tree::CONTACTS, &prefix, &user_item("al", &[0xff])),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            decode_user_item(tree::CONTACTS, &prefix, b"zz"),
            Err(Error::Corrupt { .. })
        ));
    }
}
