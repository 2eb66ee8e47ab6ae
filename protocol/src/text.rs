//! Characters that make text lie about itself: controls, bidirectional
//! overrides and isolates that reorder what a reader sees (a display name
//! `alice\u{202E}nimda` shows as `aliceadmin`), and invisible format
//! characters that make two different names look the same.
//!
//! This is a rule on the text a node's *own* users send, not an acceptance
//! rule: [`Content::check_limits`](crate::Content::check_limits) does not
//! call it, and events from other nodes are not refused for it. Events that
//! older nodes signed with such text are valid, and a rule that some nodes
//! enforce on admission and others do not would split replicas (invariant
//! 3). Every node applies it to the events it originates
//! (docs/spec/events.md §Text), and a client still renders every string
//! from another user in bidirectional isolation.
//!
//! Three kinds of text:
//! - names (room and role names, reaction keys, attachment names and MIME
//!   types, and the node's profile display names): no control character and
//!   no [spoofing](is_spoofing) character;
//! - topics: the same, except that line feeds and tabs are allowed;
//! - prose (message and edit bodies, reasons): no control character except
//!   tab, line feed and carriage return. Bidirectional formatting is
//!   allowed there: right-to-left writers need it, and a client shows each
//!   message in its own isolated paragraph.

use crate::content::{Attachment, Content};

/// Format characters refused in names: every bidirectional control, the
/// line and paragraph separators, and the invisible ones that only disguise
/// a name. Format characters that real text needs stay allowed: U+200C and
/// U+200D (zero-width non-joiner and joiner: Persian and Indic scripts,
/// emoji sequences), the tag characters U+E0020–U+E007F (subdivision flag
/// emoji), and the prepended concatenation marks of Arabic, Syriac and
/// Kaithi numbers.
pub fn is_spoofing(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'                      // arabic letter mark
        | '\u{200E}' | '\u{200F}'       // left-to-right and right-to-left marks
        | '\u{202A}'..='\u{202E}'       // embeddings, pop, overrides
        | '\u{2066}'..='\u{2069}'       // isolates, pop
        | '\u{2028}' | '\u{2029}'       // line and paragraph separators
        | '\u{00AD}'                    // soft hyphen
        | '\u{180E}'                    // mongolian vowel separator
        | '\u{200B}'                    // zero-width space
        | '\u{2060}'..='\u{2064}'       // word joiner, invisible operators
        | '\u{206A}'..='\u{206F}'       // deprecated format characters
        | '\u{FEFF}'                    // zero-width no-break space (BOM)
        | '\u{FFF9}'..='\u{FFFB}'       // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}'     // musical formatting
        | '\u{E0001}' // language tag
    )
}

/// What kind of text a field holds; each kind refuses different characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Name,
    Topic,
    Prose,
}

impl TextKind {
    /// Whether `c` is refused in this kind of text.
    pub fn refuses(self, c: char) -> bool {
        match self {
            TextKind::Name => c.is_control() || is_spoofing(c),
            TextKind::Topic => (c.is_control() && c != '\n' && c != '\t') || is_spoofing(c),
            TextKind::Prose => c.is_control() && !matches!(c, '\t' | '\n' | '\r'),
        }
    }

    /// The first refused character of `text`, as an error naming `field`.
    pub fn check(self, field: &'static str, text: &str) -> Result<(), TextError> {
        match text.chars().find(|c| self.refuses(*c)) {
            Some(c) => Err(TextError { field, c }),
            None => Ok(()),
        }
    }
}

/// A refused character and the field it was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} contains U+{:04X}, a control or formatting character not allowed there", u32::from(*c))]
pub struct TextError {
    pub field: &'static str,
    pub c: char,
}

impl Content {
    /// Checks every string of this content against its [`TextKind`]. For
    /// events a node originates; see the module documentation.
    pub fn check_text(&self) -> Result<(), TextError> {
        use TextKind::*;
        fn opt(kind: TextKind, field: &'static str, s: &Option<String>) -> Result<(), TextError> {
            s.as_deref().map_or(Ok(()), |s| kind.check(field, s))
        }
        fn attachment(a: &Attachment) -> Result<(), TextError> {
            Name.check("attachment name", &a.name)?;
            Name.check("attachment MIME type", &a.mime)
        }
        match self {
            Content::Member(m) => opt(Prose, "reason", &m.reason),
            Content::Role(r) => Name.check("role name", &r.name),
            Content::Timeout(t) => opt(Prose, "reason", &t.reason),
            Content::Name(n) => Name.check("room name", n),
            Content::Topic(t) => Topic.check("topic", t),
            Content::Avatar(a) => a.as_ref().map_or(Ok(()), attachment),
            Content::Message(m) => {
                Prose.check("body", &m.body)?;
                m.attachments.iter().try_for_each(attachment)
            }
            Content::Reaction(r) => Name.check("reaction key", &r.key),
            Content::Edit(e) => Prose.check("body", &e.body),
            Content::Redaction(r) => opt(Prose, "reason", &r.reason),
            Content::Create(_)
            | Content::MemberRoles(_)
            | Content::JoinRule(_)
            | Content::HistoryVisibility(_)
            | Content::Slowmode(_)
            | Content::Encryption(_)
            | Content::Pins(_)
            | Content::SpaceChild(_)
            | Content::SpaceParent(_)
            | Content::ModerationPolicy(_)
            | Content::BanLists(_)
            | Content::AutoMod(_) => Ok(()),
            Content::BanEntry(b) => Prose.check("reason", &b.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Message, Reaction};
    use crate::ids::EventId;

    #[test]
    fn names_refuse_controls_and_spoofing_but_keep_real_scripts() {
        let refused = [
            "alice\u{202E}nimda",
            "a\u{2066}b\u{2069}",
            "mark\u{200F}",
            "arabic\u{061C}",
            "nul\0",
            "tab\t",
            "line\nbreak",
            "del\u{7F}",
            "c1\u{85}",
            "zero\u{200B}width",
            "bom\u{FEFF}",
            "sep\u{2028}",
        ];
        for name in refused {
            assert!(TextKind::Name.check("name", name).is_err(), "{name:?}");
        }
        let kept = [
            "Alice",
            "مريم",                   // Arabic
            "שרה",                    // Hebrew
            "می\u{200C}خواهم",        // Persian with ZWNJ
            "👨\u{200D}👩\u{200D}👧", // ZWJ emoji sequence
            // Scotland's flag: tag characters.
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "❤\u{FE0F}",
            "",
        ];
        for name in kept {
            assert!(TextKind::Name.check("name", name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn prose_refuses_nul_and_controls_but_not_line_breaks_or_bidi() {
        for body in ["a\0b", "bell\u{7}", "esc\u{1B}[31m", "c1\u{9B}"] {
            assert!(TextKind::Prose.check("body", body).is_err(), "{body:?}");
        }
        for body in [
            "two\nlines",
            "crlf\r\n",
            "tab\tbed",
            "עברית \u{200F}(1)",
            "\u{2067}x\u{2069}",
        ] {
            assert!(TextKind::Prose.check("body", body).is_ok(), "{body:?}");
        }
        assert!(TextKind::Topic.check("topic", "two\nlines").is_ok());
        assert!(TextKind::Topic.check("topic", "x\u{202E}y").is_err());
        assert!(TextKind::Topic.check("topic", "cr\r").is_err());
    }

    #[test]
    fn content_names_the_field_and_the_character() {
        let message = Content::Message(Message {
            body: "hi\0".into(),
            ..Message::default()
        });
        let error = message.check_text().unwrap_err();
        assert_eq!(
            error,
            TextError {
                field: "body",
                c: '\0'
            }
        );
        assert_eq!(
            error.to_string(),
            "body contains U+0000, a control or formatting character not allowed there"
        );
        let reaction = Content::Reaction(Reaction {
            target: EventId([1; 32]),
            key: "\u{202E}+".into(),
        });
        assert_eq!(reaction.check_text().unwrap_err().field, "reaction key");
        assert!(Content::Name("Lobby".into()).check_text().is_ok());
    }
}
