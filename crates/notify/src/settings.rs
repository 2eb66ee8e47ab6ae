//! A user's notification settings: a default level, per-room overrides
//! (level, mute until a time) and keywords. Bounded ([`Settings::check`])
//! so that a user cannot make every event cost the node more than a few
//! string searches.

use std::collections::BTreeMap;

use spaces_protocol::RoomId;

/// Keywords a user may watch for: each is a case-insensitive search in
/// every message body of their rooms, so a few dozen at most.
pub const MAX_KEYWORDS: usize = 32;
/// Longest keyword, in bytes: a word or short phrase.
pub const MAX_KEYWORD_BYTES: usize = 64;
/// Rooms with settings of their own: more than a person is in with care.
pub const MAX_ROOM_SETTINGS: usize = 1_000;

/// How much of a room's traffic notifies a user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Level {
    /// Every message, besides everything `Mentions` notifies.
    All,
    /// Mentions (of the user, a role they hold, `@room`), replies to
    /// them, threads they follow, direct messages, invites, keywords.
    #[default]
    Mentions,
    /// Nothing at all.
    Nothing,
}

impl Level {
    /// The name the API and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::Mentions => "mentions",
            Level::Nothing => "nothing",
        }
    }

    /// The level named `text`, if any.
    pub fn parse(text: &str) -> Option<Level> {
        [Level::All, Level::Mentions, Level::Nothing]
            .into_iter()
            .find(|level| level.as_str() == text)
    }
}

/// One room's settings for one user; `None` fields follow the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomSetting {
    /// The level in this room instead of the user's default.
    pub level: Option<Level>,
    /// Nothing from this room notifies before this instant (Unix ms).
    pub mute_until_ms: Option<u64>,
}

/// A user's notification settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The level of rooms without one of their own.
    pub level: Level,
    /// Words or phrases that notify wherever they appear in a message of
    /// a room whose level is not `Nothing`, matched case-insensitively on
    /// word boundaries.
    pub keywords: Vec<String>,
    /// Rooms with settings of their own.
    pub rooms: BTreeMap<RoomId, RoomSetting>,
}

/// Why settings were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    TooManyKeywords,
    BadKeyword,
    TooManyRooms,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::TooManyKeywords => write!(f, "at most {MAX_KEYWORDS} keywords"),
            SettingsError::BadKeyword => write!(
                f,
                "a keyword must have a letter or digit and at most {MAX_KEYWORD_BYTES} bytes, without control characters"
            ),
            SettingsError::TooManyRooms => {
                write!(
                    f,
                    "at most {MAX_ROOM_SETTINGS} rooms with settings of their own"
                )
            }
        }
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Refuses settings past the limits; keywords are kept as given
    /// (matching folds case itself).
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.keywords.len() > MAX_KEYWORDS {
            return Err(SettingsError::TooManyKeywords);
        }
        for keyword in &self.keywords {
            let ok = !keyword.is_empty()
                && keyword.len() <= MAX_KEYWORD_BYTES
                && keyword.chars().any(char::is_alphanumeric)
                && !keyword.chars().any(char::is_control);
            if !ok {
                return Err(SettingsError::BadKeyword);
            }
        }
        if self.rooms.len() > MAX_ROOM_SETTINGS {
            return Err(SettingsError::TooManyRooms);
        }
        Ok(())
    }

    /// The level in `room_id` at `now_ms`: a muted room's is `Nothing`.
    pub fn level_in(&self, room_id: &RoomId, now_ms: u64) -> Level {
        match self.rooms.get(room_id) {
            Some(room) if room.mute_until_ms.is_some_and(|until| now_ms < until) => Level::Nothing,
            Some(RoomSetting {
                level: Some(level), ..
            }) => *level,
            _ => self.level,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_round_trip() {
        for level in [Level::All, Level::Mentions, Level::Nothing] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("ALL"), None);
    }

    #[test]
    fn room_level_mute_and_default() {
        let (a, b, c) = (RoomId([1; 32]), RoomId([2; 32]), RoomId([3; 32]));
        let mut settings = Settings::default();
        settings.rooms.insert(
            a,
            RoomSetting {
                level: Some(Level::All),
                mute_until_ms: None,
            },
        );
        settings.rooms.insert(
            b,
            RoomSetting {
                level: Some(Level::All),
                mute_until_ms: Some(100),
            },
        );
        assert_eq!(settings.level_in(&a, 50), Level::All);
        assert_eq!(settings.level_in(&b, 99), Level::Nothing);
        assert_eq!(settings.level_in(&b, 100), Level::All, "mute ends");
        assert_eq!(settings.level_in(&c, 0), Level::Mentions);
    }

    #[test]
    fn limits() {
        let mut settings = Settings {
            keywords: vec!["deploy".into(), "on call".into()],
            ..Default::default()
        };
        assert_eq!(settings.check(), Ok(()));
        for bad in ["", "  ", "a\nb", &"x".repeat(MAX_KEYWORD_BYTES + 1)] {
            settings.keywords = vec![bad.to_owned()];
            assert_eq!(settings.check(), Err(SettingsError::BadKeyword), "{bad:?}");
        }
        settings.keywords = vec!["k".into(); MAX_KEYWORDS + 1];
        assert_eq!(settings.check(), Err(SettingsError::TooManyKeywords));
    }
}
