//! Scopes: what a token given to a third-party client may do.
//!
//! - `openid`: an ID token, and `userinfo`.
//! - `profile`: the user's name and display name in the ID token and `userinfo`,
//!   and `GET /api/v1/me` and `/api/v1/profile`.
//! - `read`: every `GET` of the API and the WebSocket's events.
//! - `send`: every other method of the API (messages, reactions, joins,
//!   profile and settings changes) and presence on the WebSocket.
//!
//! A set is one byte, so a session record keeps it for one byte. Bits are
//! appended, never reused: a stored set keeps its meaning.

use std::fmt;

/// One scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Openid,
    Profile,
    Read,
    Send,
}

impl Scope {
    /// Every scope, in the order sets are written.
    pub const ALL: [Scope; 4] = [Scope::Openid, Scope::Profile, Scope::Read, Scope::Send];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Openid => "openid",
            Scope::Profile => "profile",
            Scope::Read => "read",
            Scope::Send => "send",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Openid => 1,
            Scope::Profile => 2,
            Scope::Read => 4,
            Scope::Send => 8,
        }
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

/// A scope name this provider does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl Scopes {
    /// Every scope.
    pub const ALL: Scopes = Scopes(0b1111);
    /// No scope.
    pub const NONE: Scopes = Scopes(0);

    /// Parses a space-separated list (RFC 6749 §3.3). Repeats are fine; an
    /// unknown name is refused, so a client never believes it holds
    /// something it does not.
    pub fn parse(text: &str) -> Result<Scopes, UnknownScope> {
        let mut scopes = Scopes::NONE;
        for name in text.split(' ').filter(|name| !name.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|scope| scope.as_str() == name)
                .ok_or_else(|| UnknownScope(name.chars().take(64).collect()))?;
            scopes.0 |= scope.bit();
        }
        Ok(scopes)
    }

    /// The set as stored; bits this build does not know are dropped.
    pub fn from_bits(bits: u8) -> Scopes {
        Scopes(bits & Scopes::ALL.0)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in this set.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes of both sets.
    pub fn intersect(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// The scopes, in [`Scope::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.has(*scope))
    }
}

/// Space-separated, in [`Scope::ALL`]'s order: the `scope` of a token response.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, scope) in self.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let cases = [
            ("openid", "openid", 1),
            ("send  read openid", "openid read send", 13),
            (
                "openid profile read send profile",
                "openid profile read send",
                15,
            ),
            ("", "", 0),
        ];
        for (text, shown, bits) in cases {
            let scopes = Scopes::parse(text).unwrap();
            assert_eq!(scopes.to_string(), shown, "{text:?}");
            assert_eq!(scopes.bits(), bits, "{text:?}");
            assert_eq!(Scopes::from_bits(bits), scopes);
        }
        assert_eq!(
            Scopes::parse("openid email"),
            Err(UnknownScope("email".into()))
        );
        assert_eq!(Scopes::parse("OPENID"), Err(UnknownScope("OPENID".into())));
    }

    #[test]
    fn covers_and_unknown_bits() {
        let all = Scopes::ALL;
        let read = Scopes::parse("openid read").unwrap();
        assert!(all.covers(read));
        assert!(!read.covers(all));
        assert!(read.has(Scope::Read) && !read.has(Scope::Send));
        assert_eq!(Scopes::from_bits(0xff), Scopes::ALL);
        assert_eq!(all.intersect(read), read);
    }
}
