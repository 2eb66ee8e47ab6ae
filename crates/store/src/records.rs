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
    /// Deactivated by an admin, for good: no sign-in by any method, and no reactivation.
    pub disabled: bool,
    /// A node moderator: may list, suspend and reactivate users who are not admins or
    /// moderators (format 2).
    pub moderator: bool,
    /// Suspended by an admin or moderator until reactivated: no sign-in by any method
    /// (format 2).
    pub suspended: bool,
}

impl Account {
    /// Whether the account may sign in (or refresh) at all.
    pub fn may_sign_in(&self) -> bool {
        !self.disabled && !self.suspended
    }
}

/// Format 2 added `moderator` and `suspended`; format 1 accounts are neither.
impl Record for Account {
    const VERSION: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Result<Account, String> {
        if version != 1 {
            return Err(format!(
                "format version {version}, this build reads 1 to {}",
                Self::VERSION
            ));
        }
        let v1: AccountV1 = take_all(body)?;
        Ok(Account {
            username: v1.username,
            password_hash: v1.password_hash,
            created_at_ms: v1.created_at_ms,
            is_admin: v1.is_admin,
            disabled: v1.disabled,
            moderator: false,
            suspended: false,
        })
    }
}

/// [`Account`] as format 1 stored it.
#[derive(Deserialize)]
struct AccountV1 {
    username: String,
    password_hash: String,
    created_at_ms: u64,
    is_admin: bool,
    disabled: bool,
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
            .field("moderator", &self.moderator)
            .field("suspended", &self.suspended)
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
    /// How the user proved who they were when the session began (format 4).
    pub method: SignInMethod,
    /// The client's `User-Agent` when the session began, shortened (format 4).
    pub user_agent: String,
    /// Set when the session belongs to a third-party OAuth client the user consented to: its
    /// tokens act only within these scopes (format 5). `None`: a first-party session, which may
    /// do everything its user may.
    pub oauth: Option<OAuthGrant>,
}

/// What a session given to an OAuth client may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthGrant {
    /// The client the user consented to; only it may refresh or revoke the session's tokens.
    pub client_id: String,
    /// The scopes granted, as `spaces_oidc::Scopes` bits.
    pub scopes: u8,
}

/// How a session began. Appended to, never reordered: postcard stores the variant's index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInMethod {
    /// Began before format 4 recorded it.
    #[default]
    Unknown,
    /// A sign-up, or a password alone.
    Password,
    /// A passkey alone (a discoverable credential: no username typed).
    Passkey,
    /// A password, then a passkey as the second factor.
    PasswordAndPasskey,
    /// Given to a third-party OAuth client at its user's consent.
    OAuthClient,
}

impl SignInMethod {
    /// The name the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Unknown => "unknown",
            SignInMethod::Password => "password",
            SignInMethod::Passkey => "passkey",
            SignInMethod::PasswordAndPasskey => "password_and_passkey",
            SignInMethod::OAuthClient => "oauth_client",
        }
    }
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

/// Format 5 added the OAuth grant, format 4 how the session began and its user agent, format 3
/// the access grants and the admin flag, format 2 `previous_hashes`; older records read as having
/// none of them (format 1 and 2's access tokens were JWTs, no longer honoured: the client
/// refreshes).
impl Record for Session {
    const VERSION: u8 = 5;

    fn upgrade(version: u8, body: &[u8]) -> Result<Session, String> {
        if version == 4 {
            let v4: SessionV4 = take_all(body)?;
            return Ok(Session {
                id: v4.id,
                username: v4.username,
                refresh_hash: v4.refresh_hash,
                device: v4.device,
                created_at_ms: v4.created_at_ms,
                last_used_ms: v4.last_used_ms,
                expires_at_ms: v4.expires_at_ms,
                previous_hashes: v4.previous_hashes,
                access: v4.access,
                admin: v4.admin,
                method: v4.method,
                user_agent: v4.user_agent,
                oauth: None,
            });
        }
        let v3 = match version {
            1 => SessionV3::from_v1(take_all::<SessionV1>(body)?, Vec::new()),
            2 => {
                let v2: SessionV2 = take_all(body)?;
                SessionV3::from_v1(v2.v1, v2.previous_hashes)
            }
            3 => take_all::<SessionV3>(body)?,
            _ => {
                return Err(format!(
                    "format version {version}, this build reads 1 to {}",
                    Self::VERSION
                ));
            }
        };
        Ok(Session {
            id: v3.id,
            username: v3.username,
            refresh_hash: v3.refresh_hash,
            device: v3.device,
            created_at_ms: v3.created_at_ms,
            last_used_ms: v3.last_used_ms,
            expires_at_ms: v3.expires_at_ms,
            previous_hashes: v3.previous_hashes,
            access: v3.access,
            admin: v3.admin,
            method: SignInMethod::Unknown,
            user_agent: String::new(),
            oauth: None,
        })
    }
}

/// [`Session`] as format 4 stored it.
#[derive(Deserialize)]
struct SessionV4 {
    id: String,
    username: String,
    refresh_hash: [u8; 32],
    device: String,
    created_at_ms: u64,
    last_used_ms: u64,
    expires_at_ms: u64,
    previous_hashes: Vec<[u8; 32]>,
    access: Vec<AccessGrant>,
    admin: bool,
    method: SignInMethod,
    user_agent: String,
}

/// [`Session`] as format 3 stored it.
#[derive(Deserialize)]
struct SessionV3 {
    id: String,
    username: String,
    refresh_hash: [u8; 32],
    device: String,
    created_at_ms: u64,
    last_used_ms: u64,
    expires_at_ms: u64,
    previous_hashes: Vec<[u8; 32]>,
    access: Vec<AccessGrant>,
    admin: bool,
}

impl SessionV3 {
    fn from_v1(v1: SessionV1, previous_hashes: Vec<[u8; 32]>) -> SessionV3 {
        SessionV3 {
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
        }
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
            .field("method", &self.method)
            .field("user_agent", &self.user_agent)
            .field("oauth", &self.oauth)
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

/// A `txns` value: a session's last client transaction ids and the events they made, oldest
/// first (see `txns`).
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentTxns {
    pub(crate) entries: Vec<SentTxn>,
}

/// One entry of [`SentTxns`].
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentTxn {
    pub(crate) txn_id: String,
    pub(crate) room_id: Id,
    pub(crate) event_id: Id,
}

impl Record for SentTxns {
    const VERSION: u8 = 1;
}

/// A passkey: a WebAuthn credential of one user. Stored under its credential id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRecord {
    /// The lowercased username of its owner.
    pub username: String,
    /// The WebAuthn user handle the credential was made for (the same for all of a user's
    /// passkeys); a discoverable sign-in must present it.
    pub user_handle: [u8; 16],
    /// The user's label for it.
    pub name: String,
    /// The credential (public key, counter, flags) as the passkey crate encodes it: opaque here.
    pub credential: Vec<u8>,
    pub created_at_ms: u64,
    pub last_used_ms: Option<u64>,
    /// The authenticator's signature counter at its last use; 0 if it keeps none.
    pub counter: u32,
    /// The credential may be synced to other devices (WebAuthn's BE flag).
    pub backup_eligible: bool,
    /// It is synced now (BS flag).
    pub backup_state: bool,
}

impl Record for PasskeyRecord {
    const VERSION: u8 = 1;
}

/// The public key is not secret, but it is kept out of logs all the same: it is bulky.
impl fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("username", &self.username)
            .field("name", &self.name)
            .field("credential", &self.credential.len())
            .field("created_at_ms", &self.created_at_ms)
            .field("last_used_ms", &self.last_used_ms)
            .field("counter", &self.counter)
            .field("backup_eligible", &self.backup_eligible)
            .field("backup_state", &self.backup_state)
            .finish_non_exhaustive()
    }
}

/// How a user must sign in. Absent: the default (a password or a passkey, each alone).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPolicy {
    /// A password sign-in must be followed by one of the user's passkeys.
    pub passkey_second_factor: bool,
}

impl Record for AuthPolicy {
    const VERSION: u8 = 1;
}

/// This node's moderation decision about a received event: hidden from its
/// users, or flagged for moderators, by the room's policy; a moderator may
/// reveal it. Node-local: never part of the room's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationMark {
    pub room_id: Id,
    /// Hidden (true) or only flagged (false).
    pub hidden: bool,
    /// The labels whose scores reached the policy's thresholds.
    pub labels: Vec<String>,
    pub at_ms: u64,
    /// The user id of the moderator who revealed it, if one did.
    pub revealed_by: Option<String>,
    /// User ids of this node's users who reported it (at most 64 kept).
    pub reported_by: Vec<String>,
}

impl Record for ModerationMark {
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

/// A third-party client registered by the operator (`spaces admin oauth-client add`). Stored
/// under its client id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    /// Shown to users on the consent page.
    pub name: String,
    /// The redirect URIs an authorization request may name: compared byte for byte.
    pub redirect_uris: Vec<String>,
    /// The most it may ask for, as `spaces_oidc::Scopes` bits.
    pub scopes: u8,
    /// SHA-256 of its secret for a confidential client; `None` for a public one (a native or
    /// browser app, which authenticates by PKCE alone).
    pub secret_hash: Option<[u8; 32]>,
    pub created_at_ms: u64,
}

impl Record for OAuthClient {
    const VERSION: u8 = 1;
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .field("confidential", &self.secret_hash.is_some())
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// An authorization code, stored under the SHA-256 of the code (the code itself is a secret
/// and never stored). Taken once by compare-and-swap (`Store::redeem_oauth_code`), after which
/// it names the session it started, so a second use can end that session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthCode {
    pub client_id: String,
    /// The lowercased username of the user who consented.
    pub username: String,
    /// The authorization request's, which the token request must repeat.
    pub redirect_uri: String,
    /// Granted, as `spaces_oidc::Scopes` bits.
    pub scopes: u8,
    pub nonce: Option<String>,
    /// The PKCE `S256` challenge.
    pub code_challenge: String,
    /// When the user consented.
    pub auth_time_ms: u64,
    /// Unusable from this instant on.
    pub expires_at_ms: u64,
    /// Set once redeemed: the session it started.
    pub redeemed_by: Option<String>,
}

impl Record for OAuthCode {
    const VERSION: u8 = 1;
}

/// The registration mode an admin chose at run time (`meta` tree, `registration_mode`), in
/// place of the config's: `open`, `invite` or `closed`; the store does not interpret it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistrationSetting {
    pub(crate) mode: String,
}

impl Record for RegistrationSetting {
    const VERSION: u8 = 1;
}

/// An account's email address: `email` under the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub address: String,
    /// The owner followed the verification link sent to it.
    pub verified: bool,
    /// Digests go to it (once verified); the unsubscribe link turns this off.
    pub digests: bool,
    /// When verification and reset mails were sent to this account (Unix ms, oldest first,
    /// the last few only): their rate limit.
    pub mails_sent_ms: Vec<u64>,
}

impl Record for EmailAddress {
    const VERSION: u8 = 1;
}

/// What a user's digests have covered: `email` under the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestState {
    /// When the last digest was queued (Unix ms): at most one per period.
    pub last_sent_ms: u64,
    /// The highest notification seq a digest held: the next one holds only later ones.
    pub cursor: u64,
}

impl Record for DigestState {
    const VERSION: u8 = 1;
}

/// A queued digest: the notifications it holds, under the time it is due. Written in the same
/// batch as the user's [`DigestState`], so a crash neither loses it nor sends two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDelivery {
    pub username: String,
    /// The notifications' seqs.
    pub seqs: Vec<u64>,
    /// Attempts so far (for the back-off).
    pub attempts: u32,
}

impl Record for EmailDelivery {
    const VERSION: u8 = 1;
}

/// A password-reset token, kept under its SHA-256 only; taken (removed) when used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetToken {
    pub username: String,
    pub expires_ms: u64,
}

impl Record for ResetToken {
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
            moderator: false,
            suspended: true,
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
            method: SignInMethod::Passkey,
            user_agent: "ua".into(),
            oauth: Some(OAuthGrant {
                client_id: "c".into(),
                scopes: 5,
            }),
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
                2, // version
                2, b'A', b'l', // username: varint length, bytes
                1, b'h', // password_hash
                0xac, 0x02, // created_at_ms = 300, varint
                1,    // is_admin
                0,    // disabled
                0,    // moderator
                1,    // suspended
            ]
        );
        // Format 1: the same without the last two fields, read as neither.
        let v1 = [1, 2, b'A', b'l', 1, b'h', 0xac, 0x02, 1, 0];
        assert_eq!(
            decode::<Account>("accounts", b"al", &v1).unwrap(),
            Account {
                suspended: false,
                ..account()
            }
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

    /// Format 5 of a session: format 1's fields, the earlier hashes (format 2), the access
    /// grants and the admin flag (format 3), how it began and its user agent (format 4), then
    /// its OAuth grant.
    #[test]
    fn pinned_session_format() {
        let mut expected = vec![5, 2, b's', b'1', 2, b'a', b'l'];
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[5, b'p', b'h', b'o', b'n', b'e', 1, 2, 3]);
        expected.push(1); // one earlier hash
        expected.extend_from_slice(&[8; 32]);
        expected.push(1); // one access grant
        expected.extend_from_slice(&[7; 32]);
        expected.push(4); // its expiry
        expected.push(1); // admin
        expected.push(2); // method: Passkey
        expected.extend_from_slice(&[2, b'u', b'a']);
        expected.extend_from_slice(&[1, 1, b'c', 5]); // Some(grant): client "c", scopes 5
        assert_eq!(encode("t", &session()).unwrap(), expected);
    }

    /// Format 4 sessions read as first-party ones.
    #[test]
    fn format_4_sessions_upgrade() {
        let mut v4 = encode("t", &session()).unwrap();
        v4[0] = 4;
        v4.truncate(v4.len() - 4);
        let read: Session = decode("sessions", b"s1", &v4).unwrap();
        assert_eq!(
            read,
            Session {
                oauth: None,
                ..session()
            }
        );
    }

    /// Format 3 sessions read with no method or user agent.
    #[test]
    fn format_3_sessions_upgrade() {
        let mut v3 = encode("t", &session()).unwrap();
        v3[0] = 3;
        v3.truncate(v3.len() - 8);
        let read: Session = decode("sessions", b"s1", &v3).unwrap();
        assert_eq!(
            read,
            Session {
                method: SignInMethod::Unknown,
                user_agent: String::new(),
                oauth: None,
                ..session()
            }
        );
    }

    #[test]
    fn passkey_records_round_trip() {
        round_trip(&PasskeyRecord {
            username: "al".into(),
            user_handle: [3; 16],
            name: "phone".into(),
            credential: vec![1, 2],
            created_at_ms: 5,
            last_used_ms: Some(6),
            counter: 7,
            backup_eligible: true,
            backup_state: false,
        });
        round_trip(&AuthPolicy {
            passkey_second_factor: true,
        });
        assert_eq!(
            encode(
                "t",
                &AuthPolicy {
                    passkey_second_factor: true
                }
            )
            .unwrap(),
            [1, 1]
        );
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
            method: SignInMethod::Unknown,
            user_agent: String::new(),
            oauth: None,
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
            future[0] = 6;
            assert!(matches!(
                decode::<Session>("sessions", b"s1", &future),
                Err(Error::Corrupt { reason, .. }) if reason.contains("format version 6")
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
        future[0] = 3;
        let cases: [(&str, &[u8], &str); 5] = [
            ("empty", &[], "empty value"),
            ("future version", &future, "format version 3"),
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
