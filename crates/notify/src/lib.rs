//! `spaces-notify`: the rules that decide who is notified of what.
//!
//! Pure: no I/O, no clock, no storage. The node gathers, under a room's
//! lock, what the rules need to know about one local user and one event
//! ([`Recipient`]: their roles, whether they wrote the message replied to,
//! whether they follow the thread, their [`Settings`]) and asks
//! [`reason`] whether, and why, that user is notified. Whether the user may
//! read the room and the event at all is the engine's rule
//! (`RoomView::readable`), decided before these rules are asked; whether
//! resolution accepted the event likewise.
//!
//! - `rules`: [`Reason`] and [`reason`], the triggers in priority order.
//! - `settings`: [`Settings`], [`Level`], [`RoomSetting`] and their limits.

mod rules;
mod settings;

pub use rules::{Reason, Recipient, excerpt, reason};
pub use settings::{
    Level, MAX_KEYWORD_BYTES, MAX_KEYWORDS, MAX_ROOM_SETTINGS, RoomSetting, Settings, SettingsError,
};
