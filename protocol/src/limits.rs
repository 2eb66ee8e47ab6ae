//! Hard limits. An event outside any of them is rejected by every node with
//! a reason naming the limit (see docs/spec/encoding.md §Limits). They bound
//! the memory and time one event can cost a node that did not ask for it.

/// Whole encoded event, signature included. 64 KiB keeps a gossip frame
/// small while leaving room for a long message with mentions and attachments.
pub const MAX_EVENT_BYTES: usize = 65_536;
/// Parents per event. A node merges at most this many heads at once; more
/// would let one event make every later state computation walk a wide fan-in.
pub const MAX_PARENTS: usize = 20;
/// A message body, in bytes (UTF-8). Long enough for a page of text.
pub const MAX_BODY_BYTES: usize = 16_384;
/// Short strings: names, role names, reaction keys, MIME types, reasons.
pub const MAX_NAME_BYTES: usize = 256;
/// A room topic.
pub const MAX_TOPIC_BYTES: usize = 1_024;
/// User localpart.
pub const MAX_LOCALPART_LEN: usize = 32;
/// Mentions, attachments, pins, `via` lists, roles per member: any list in content.
pub const MAX_LIST_LEN: usize = 64;
/// Roles defined in one room. Discord allows 250; ranks make more than that unwieldy.
pub const MAX_ROLES: usize = 250;
/// A reaction key: one emoji sequence or a short shortcode.
pub const MAX_REACTION_BYTES: usize = 64;
