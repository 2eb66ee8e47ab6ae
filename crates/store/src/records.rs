//! Values stored as records: one format-version byte, then the struct in postcard.
//!
//! postcard writes fields in declaration order without their names, so reordering, adding or
//! removing a field changes the format. Do that only together with a new `VERSION` for that type
//! and a decoder for the old one; the pinned bytes in the tests fail on any accidental change.
//! A record this build cannot read (unknown version, bad postcard, trailing bytes) decodes to
//! [`Error::Corrupt`], never to a panic.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Id};

/// A type stored as a versioned postcard value.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The first byte of every stored value of this type.
    const VERSION: u8;

    /// Reads a value written in an older format `version` (`body` is what follows the version
    /// byte). Types that never changed format read none.
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, String> {
        let _ = body;
        Err(format!(
            "format version {version}, this build reads {}",
            Self::VERSION
        ))
    }
}

pub(crate) fn encode<R: Record>(tree: &'static str, record: &R) -> Result<Vec<u8>, Error> {
    postcard::to_extend(record, vec![R::VERSION]).map_err(|source| Error::Encode { tree, source })
}

pub(crate) fn decode<R: Record>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<R, Error> {
    decode_inner(bytes).map_err(|reason| Error::corrupt(tree, key, reason))
}

/// [`decode`] for records whose key must not appear in errors or logs.
pub(crate) fn decode_secret_keyed<R: Record>(tree: &'static str, bytes: &[u8]) -> Result<R, Error> {
    decode_inner(bytes).map_err(|reason| Error::Corrupt {
        tree,
        key_hex: None,
        reason,
    })
}

fn decode_inner<R: Record>(bytes: &[u8]) -> Result<R, String> {
    let (&version, body) = bytes.split_first().ok_or("empty value")?;
    if version != R::VERSION {
        return R::upgrade(version, body);
    }
    take_all(body)
}

/// The one postcard value that is all of `body`.
fn take_all<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| format!("postcard: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    Ok(value)
}

/// A `log` value: a run of events with consecutive seqs, the first being the record's key.
///
/// `bytes` borrows when encoding, so appending does not copy each event once more; `Cow<[u8]>`
/// and `Vec<u8>` serialize alike.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogRecord<'a> {
    pub(crate) events: Vec<LogEntry<'a>>,
}

/// One event in a [`LogRecord`].
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogEntry<'a> {
    pub(crate) room_id: Id,
    pub(crate) event_id: Id,
    pub(crate) bytes: Cow<'a, [u8]>,
}

impl Record for LogRecord<'_> {
    const VERSION: u8 = 1;
}

/// A room-index value in `log`: the offsets, within the record its key names, of the room's
/// events there (ascending; a record holds at most 256 events, so an offset is one byte).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoomIndexRecord<'a> {
    pub(crate) offsets: Cow<'a, [u8]>,
}

impl Record for RoomIndexRecord<'_> {
    const VERSION: u8 = 1;
}

/// A `flips` value: the earlier events of a room whose acceptance storing the event at the key's
/// seq changed, with their new value.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlipRecord<'a> {
    pub(crate) room_id: Id,
    pub(crate) flips: Cow<'a, [(Id, bool)]>,
}

impl Record for FlipRecord<'_> {
    const VERSION: u8 = 1;
}

/// A local user. Stored under the lowercased `username`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// As the user chose it; lookups ignore case.
    pub username: String,
    /// A PHC string from the auth crate.
    pub password_hash: String,
    pub created_at_ms: u64,
    pub is_admin: bool,
    pub disabled: bool,
}

impl Record for Account {
    const VERSION: u8 = 1;
}

/// Hashes are kept out of logs: they could be attacked offline.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("is_admin", &self.is_admin)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// What a user shows others. Every field is optional; unset is the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: Option<String>,
    /// A reference to the avatar image (a blob hash or URL), owned by the API layer.
    pub avatar: Option<String>,
    pub bio: Option<String>,
}

impl Record for Profile {
    const VERSION: u8 = 1;
}

/// A refresh-token session of one device.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub username: String,
    /// The hash of the current refresh token; rotated on every refresh.
    pub refresh_hash: [u8; 32],
    /// The client's description of itself, for the user's device list.
    pub device: String,
    pub created_at_ms: u64,
    pub last_used_ms: u64,
    pub expires_at_ms: u64,
    /// Hashes of the refresh tokens this session issued before the current one, newest first, at
    /// most [`Session::MAX_PREVIOUS_HASHES`]: presenting one of them again is reuse (a copy of
    /// the token exists), anything else is merely a wrong token.
    pub previous_hashes: Vec<[u8; 32]>,
    /// The access tokens this session issued that may still be live, newest first, at most
    /// [`Session::MAX_ACCESS_GRANTS`]: each one's hash and expiry.
    pub access: Vec<AccessGrant>,
    /// The account was a node admin when the newest access token was issued.
    pub admin: bool,
}

/// An access token a session issued: only its hash is kept, never the token.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    pub hash: [u8; 32],
    /// The token is refused from this instant on.
    pub expires_at_ms: u64,
}

impl fmt::Debug for AccessGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessGrant")
            .field("hash", &"<redacted>")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl Session {
    /// Earlier refresh tokens remembered per session. A client refreshes about every access
    /// token lifetime (15 minutes by default), so 8 cover two hours of activity: reuse detection
    /// is for a stolen copy racing its owner, which shows within minutes; an older token is
    /// refused all the same, only without ending the session. 8 × 32 bytes per session.
    pub const MAX_PREVIOUS_HASHES: usize = 8;

    /// Access tokens honoured per session: the newest, and the one before it until it
    /// expires, so a request sent just before a refresh (or by another tab that has not yet
    /// seen it) still goes through. 2 × 40 bytes per session.
    pub const MAX_ACCESS_GRANTS: usize = 2;

    /// The grant whose hash is `hash`. Every grant is compared, in constant time, so the time
    /// taken says nothing about which matched or how much of a hash did.
    pub fn access_grant(&self, hash: &[u8; 32]) -> Option<AccessGrant> {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let mut found = subtle::Choice::from(0);
        let mut index = 0u8;
        for (n, grant) in self.access.iter().enumerate() {
            let matches = grant.hash.ct_eq(hash);
            index.conditional_assign(&(n as u8), matches & !found);
            found |= matches;
        }
        bool::from(found).then(|| self.access[usize::from(index)])
    }
}

/// Format 3 added the access grants and the admin flag, format 2 `previous_hashes`; older
/// records read as having none of them (their access tokens were JWTs, no longer honoured:
/// the client refreshes).
impl Record for Session {
    const VERSION: u8 = 3;

    fn upgrade(version: u8, body: &[u8]) -> Result<Session, String> {
        let (v1, previous_hashes) = match version {
            1 => (take_all::<SessionV1>(body)?, Vec::new()),
            2 => {
                let v2: SessionV2 = take_all(body)?;
                (v2.v1, v2.previous_hashes)
            }
            _ => {
                return Err(format!(
                    "format version {version}, this build reads 1 to {}",
                    Self::VERSION
                ));
            }
        };
        Ok(Session {
            id: v1.id,
            username: v1.username,
            refresh_hash: v1.refresh_hash,
            device: v1.device,
            created_at_ms: v1.created_at_ms,
            last_used_ms: v1.last_used_ms,
            expires_at_ms: v1.expires_at_ms,
            previous_hashes,
            access: Vec::new(),
            admin: false,
        })
    }
}

/// [`Session`] as format 2 stored it: format 1's fields, then the earlier hashes (postcard
/// writes a flattened struct's fields in order, so nesting reads the same bytes).
#[derive(Deserialize)]
struct SessionV2 {
    v1: SessionV1,
    previous_hashes: Vec<[u8; 32]>,
}

/// [`Session`] as format 1 stored it.
#[derive(Deserialize)]
struct SessionV1 {
    id: String,
    username: String,
    refresh_hash: [u8; 32],
    device: String,
    created_at_ms: u64,
    last_used_ms: u64,
    expires_at_ms: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("refresh_hash", &"<redacted>")
            .field("device", &self.device)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_used_ms", &self.last_used_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("previous_hashes", &self.previous_hashes.len())
            .field("access", &self.access)
            .field("admin", &self.admin)
            .finish()
    }
}

/// A registration invite. The token is a secret: it is kept out of `Debug` and errors.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteToken {
    pub token: String,
    /// Registrations it still allows; the token is removed when this reaches 0.
    pub uses_left: u32,
    /// Unusable from this instant on; `None` never expires.
    pub expires_at_ms: Option<u64>,
    /// The username of the admin who made it.
    pub created_by: String,
}

impl Record for InviteToken {
    const VERSION: u8 = 1;
}

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteToken")
            .field("token", &"<redacted>")
            .field("uses_left", &self.uses_left)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// A room invite link: a node-local capability to join one room, minted by a member who may
/// invite. Stored under its code, a secret kept out of errors like invite tokens (the record
/// itself holds nothing secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteLink {
    /// The room it opens.
    pub room_id: Id,
    /// The user id of the member who minted it; redeeming it makes them invite the redeemer.
    pub creator: String,
    /// Admissions it still grants; at 0 it is kept (a failed admission gives its use back) but
    /// admits no one.
    pub uses_left: u32,
    /// Unusable from this instant on; `None` never expires.
    pub expires_at_ms: Option<u64>,
}

impl Record for InviteLink {
    const VERSION: u8 = 1;
}

/// A notification of one user about one event: a `notifications` value under the user and the
/// event's stream seq. Whether it is read is its unread mark's absence (see `keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub room_id: Id,
    pub event_id: Id,
    /// The event's sender, in the protocol's text form.
    pub sender: String,
    /// Why: a name the notification rules give (`mention`, `reply`, ...).
    pub reason: String,
    /// The event's own time (Unix ms).
    pub origin_ts: u64,
    /// The start of the message's text, for lists and pushes; empty for an invite.
    pub excerpt: String,
}

impl Record for Notification {
    const VERSION: u8 = 1;
}

/// A user's notification settings. Levels are names the notification rules give (`all`,
/// `mentions`, `nothing`); the store does not interpret them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySettings {
    pub level: String,
    pub keywords: Vec<String>,
    pub rooms: Vec<RoomNotifySetting>,
}

/// One room's notification settings for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNotifySetting {
    pub room_id: Id,
    pub level: Option<String>,
    pub mute_until_ms: Option<u64>,
}

impl Record for NotifySettings {
    const VERSION: u8 = 1;
}

/// A browser's Web Push subscription, kept under its user and an id the node derives from the
/// endpoint. The store holds what the node checked; it calls no endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed.
    pub p256dh: Vec<u8>,
    pub auth: [u8; 16],
    pub created_ms: u64,
}

impl Record for PushSubscription {
    const VERSION: u8 = 1;
}

/// A queued push: a user's notification to send to their subscriptions, under the time it is
/// due. Written in the same batch as the notification, so a crash loses neither.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDelivery {
    pub username: String,
    /// The notification's seq.
    pub seq: u64,
    /// The subscriptions still to reach; empty: every subscription the user has when it is sent.
    pub subscriptions: Vec<Id>,
    /// Attempts so far (for the back-off).
    pub attempts: u32,
}

impl Record for PushDelivery {
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            username: "Al".into(),
            password_hash: "h".into(),
            created_at_ms: 300,
            is_admin: true,
            disabled: false,
        }
    }

    fn session() -> Session {
        Session {
            id: "s1".into(),
            username: "al".into(),
            refresh_hash: [9; 32],
            device: "phone".into(),
            created_at_ms: 1,
            last_used_ms: 2,
            expires_at_ms: 3,
            previous_hashes: vec![[8; 32]],
            access: vec![AccessGrant {
                hash: [7; 32],
                expires_at_ms: 4,
            }],
            admin: true,
        }
    }

    fn invite() -> InviteToken {
        InviteToken {
            token: "secret-token".into(),
            uses_left: 2,
            expires_at_ms: Some(5),
            created_by: "al".into(),
        }
    }

    fn link() -> InviteLink {
        InviteLink {
            room_id: [7; 32],
            creator: "@al:n".into(),
            uses_left: 3,
            expires_at_ms: None,
        }
    }

    fn round_trip<R: Record + PartialEq + fmt::Debug>(record: &R) {
        let bytes = encode("t", record).unwrap();
        assert_eq!(bytes[0], R::VERSION);
        assert_eq!(&decode::<R>("t", b"k", &bytes).unwrap(), record);
    }

    #[test]
    fn records_round_trip() {
        round_trip(&account());
        round_trip(&session());
        round_trip(&invite());
        round_trip(&link());
        round_trip(&Profile::default());
        round_trip(&Profile {
            display_name: Some("Al".into()),
            avatar: None,
            bio: Some("hi".into()),
        });
        round_trip(&LogRecord {
            events: vec![
                LogEntry {
                    room_id: [1; 32],
                    event_id: [2; 32],
                    bytes: Cow::Owned(vec![1, 2, 3]),
                },
                LogEntry {
                    room_id: [3; 32],
                    event_id: [4; 32],
                    bytes: Cow::Owned(Vec::new()),
                },
            ],
        });
    }

    /// Pins the stored format: if this fails, the change needs a new `VERSION` and a migration.
    #[test]
    fn pinned_formats() {
        assert_eq!(
            encode("t", &account()).unwrap(),
            [
                1, // version
                2, b'A', b'l', // username: varint length, bytes
                1, b'h', // password_hash
                0xac, 0x02, // created_at_ms = 300, varint
                1,    // is_admin
                0,    // disabled
            ]
        );
        // version, number of events (varint), then per event: room id, event id, byte length
        // (varint) and bytes.
        let mut log = vec![1, 1];
        log.extend_from_slice(&[1; 32]);
        log.extend_from_slice(&[2; 32]);
        log.extend_from_slice(&[3, 0xa, 0xb, 0xc]);
        let record = LogRecord {
            events: vec![LogEntry {
                room_id: [1; 32],
                event_id: [2; 32],
                bytes: Cow::Borrowed(&[0xa, 0xb, 0xc]),
            }],
        };
        assert_eq!(encode("t", &record).unwrap(), log);
        // version, room id, number of flips (varint), then per flip: event id, new value.
        let mut flips = vec![1];
        flips.extend_from_slice(&[4; 32]);
        flips.push(1);
        flips.extend_from_slice(&[5; 32]);
        flips.push(0);
        let record = FlipRecord {
            room_id: [4; 32],
            flips: Cow::Borrowed(&[([5; 32], false)]),
        };
        assert_eq!(encode("t", &record).unwrap(), flips);
        // version, number of offsets (varint), the offsets.
        let record = RoomIndexRecord {
            offsets: Cow::Borrowed(&[0, 3, 255]),
        };
        assert_eq!(encode("t", &record).unwrap(), [1, 3, 0, 3, 255]);
        assert_eq!(
            encode("t", &invite()).unwrap(),
            [
                1, 12, b's', b'e', b'c', b'r', b'e', b't', b'-', b't', b'o', b'k', b'e',
                b'n', //
                2,    // uses_left
                1, 5, // Some(5)
                2, b'a', b'l',
            ]
        );
    }

    /// Format 3 of a session: format 1's fields, the earlier hashes (format 2), then the
    /// access grants and the admin flag.
    #[test]
    fn pinned_session_format() {
        let mut expected = vec![3, 2, b's', b'1', 2, b'a', b'l'];
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[5, b'p', b'h', b'o', b'n', b'e', 1, 2, 3]);
        expected.push(1); // one earlier hash
        expected.extend_from_slice(&[8; 32]);
        expected.push(1); // one access grant
        expected.extend_from_slice(&[7; 32]);
        expected.push(4); // its expiry
        expected.push(1); // admin
        assert_eq!(encode("t", &session()).unwrap(), expected);
    }

    /// Sessions stored by builds before format 3 stay readable, with no access grants (their
    /// JWTs are not honoured; clients refresh), and before format 2 with no earlier hashes.
    #[test]
    fn format_1_and_2_sessions_upgrade() {
        let mut v1 = vec![1, 2, b's', b'1', 2, b'a', b'l'];
        v1.extend_from_slice(&[9; 32]);
        v1.extend_from_slice(&[5, b'p', b'h', b'o', b'n', b'e', 1, 2, 3]);
        let read: Session = decode("sessions", b"s1", &v1).unwrap();
        let without_grants = Session {
            access: Vec::new(),
            admin: false,
            ..session()
        };
        assert_eq!(
            read,
            Session {
                previous_hashes: Vec::new(),
                ..without_grants.clone()
            }
        );
        let mut v2 = v1.clone();
        v2[0] = 2;
        v2.push(1);
        v2.extend_from_slice(&[8; 32]);
        let read: Session = decode("sessions", b"s1", &v2).unwrap();
        assert_eq!(read, without_grants);
        for old in [v1, v2] {
            let mut trailing = old.clone();
            trailing.push(0);
            assert!(decode::<Session>("sessions", b"s1", &trailing).is_err());
            let mut future = old;
            future[0] = 4;
            assert!(matches!(
                decode::<Session>("sessions", b"s1", &future),
                Err(Error::Corrupt { reason, .. }) if reason.contains("format version 4")
            ));
        }
    }

    /// The grant whose hash matches, whichever position it holds; none for any other hash.
    #[test]
    fn access_grants_are_found_by_hash() {
        let grant = |n: u8| AccessGrant {
            hash: [n; 32],
            expires_at_ms: u64::from(n) * 10,
        };
        let session = Session {
            access: vec![grant(1), grant(2)],
            ..session()
        };
        assert_eq!(session.access_grant(&[1; 32]), Some(grant(1)));
        assert_eq!(session.access_grant(&[2; 32]), Some(grant(2)));
        assert_eq!(session.access_grant(&[3; 32]), None);
        let mut almost = [2; 32];
        almost[31] = 3;
        assert_eq!(session.access_grant(&almost), None);
        let none = Session {
            access: Vec::new(),
            ..session
        };
        assert_eq!(none.access_grant(&[1; 32]), None);
    }

    #[test]
    fn pinned_invite_link_format() {
        let mut bytes = vec![1]; // version
        bytes.extend_from_slice(&[7; 32]); // room id
        bytes.extend_from_slice(&[5, b'@', b'a', b'l', b':', b'n']); // creator
        bytes.push(3); // uses_left
        bytes.push(0); // expires_at_ms: None
        assert_eq!(encode("t", &link()).unwrap(), bytes);
    }

    #[test]
    fn undecodable_values_are_corrupt() {
        let good = encode("t", &account()).unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        let mut future = good.clone();
        future[0] = 2;
        let cases: [(&str, &[u8], &str); 5] = [
            ("empty", &[], "empty value"),
            ("future version", &future, "format version 2"),
            ("truncated", &good[..good.len() - 1], "postcard"),
            ("trailing bytes", &trailing, "1 trailing bytes"),
            ("garbage", &[1, 0xff, 0xff], "postcard"),
        ];
        for (name, bytes, expected) in cases {
            match decode::<Account>("accounts", b"al", bytes) {
                Err(Error::Corrupt {
                    tree: "accounts",
                    key_hex: Some(key_hex),
                    reason,
                }) => {
                    assert_eq!(key_hex, "616c", "{name}");
                    assert!(reason.contains(expected), "{name}: {reason}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn secret_keyed_errors_withhold_the_key() {
        assert!(matches!(
            decode_secret_keyed::<InviteToken>("invites", &[1]),
            Err(Error::Corrupt { key_hex: None, .. })
        ));
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?} {:?} {:?}", account(), session(), invite());
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("secret-token"));
        assert!(!shown.contains("password_hash: \"h\""));
        assert!(!shown.contains("9, 9"));
    }
}
