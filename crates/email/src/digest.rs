//! The digest: when a user who is away gets one, and what it says.
//!
//! [`decide`] is the whole rule, with the time and the facts passed in: a
//! digest goes when there is something in it (unread mentions and direct
//! messages no client has seen, after the last digest's), no client of the
//! user is connected, the user has been away at least the delay, and the
//! period since the last digest has passed. Otherwise it says when to look
//! again, or that there is nothing to send until something new arrives.

use std::fmt::Write as _;

/// What the node knows about one user when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub now_ms: u64,
    /// Items a digest would hold now.
    pub n_pending: usize,
    /// A client of the user is connected now.
    pub present: bool,
    /// When a client of the user was last seen (or the node started).
    pub last_seen_ms: u64,
    /// When the user's last digest was sent, if ever.
    pub last_digest_ms: Option<u64>,
    /// How long the user must have been away.
    pub delay_ms: u64,
    /// At most one digest per this.
    pub period_ms: u64,
}

/// What to do about one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to send: look again when something new arrives.
    Nothing,
    /// Look again at this time (ms).
    Later(u64),
    /// Send a digest now.
    Send,
}

/// The digest rule: see the module docs.
pub fn decide(facts: &Facts) -> Decision {
    if facts.n_pending == 0 {
        return Decision::Nothing;
    }
    // Present: the client shows what is new; look again once they could
    // have been away long enough.
    let away_from = match facts.present {
        true => facts.now_ms,
        false => facts.last_seen_ms,
    };
    let away_enough = away_from.saturating_add(facts.delay_ms);
    let period_over = facts
        .last_digest_ms
        .map_or(0, |last| last.saturating_add(facts.period_ms));
    let at = away_enough.max(period_over);
    match at <= facts.now_ms && !facts.present {
        true => Decision::Send,
        false => Decision::Later(at.max(facts.now_ms.saturating_add(1))),
    }
}

/// One line of a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestItem {
    /// The room's name, or its id when it has none.
    pub room: String,
    pub sender: String,
    /// `direct`, `mention`, `role_mention` or `room` (an `@room`).
    pub reason: String,
    /// The start of the message (already cut short by the notifier).
    pub excerpt: String,
    /// The room in the web client.
    pub link: String,
}

/// A digest's subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestText {
    pub subject: String,
    pub body: String,
}

/// Characters of an excerpt a digest shows.
const EXCERPT_CHARS: usize = 140;

/// The digest of `items` for `username` on the node at `node_url`, with the
/// unsubscribe link `unsubscribe`.
pub fn render_digest(
    username: &str,
    node_url: &str,
    items: &[DigestItem],
    unsubscribe: &str,
) -> DigestText {
    let n = items.len();
    let subject = match n {
        1 => "1 unread message for you on Spaces".to_owned(),
        n => format!("{n} unread messages for you on Spaces"),
    };
    let mut body = format!("Hello {username},\n\nWhile you were away:\n\n");
    for item in items {
        let what = match item.reason.as_str() {
            "direct" => "direct message",
            "room" => "@room",
            _ => "mention",
        };
        let excerpt: String = clean(&item.excerpt).chars().take(EXCERPT_CHARS).collect();
        let _ = write!(
            body,
            "* {} ({what}) in {}:\n  {}\n  {}\n\n",
            clean(&item.sender),
            clean(&item.room),
            excerpt,
            item.link
        );
    }
    let _ = write!(
        body,
        "Open Spaces: {node_url}\n\n--\nYou get this because email digests are on for your account.\nUnsubscribe: {unsubscribe}\n"
    );
    DigestText { subject, body }
}

/// Text from users on one line: control characters (line breaks included,
/// so nobody's message can fake a line of the mail) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn facts() -> Facts {
        Facts {
            now_ms: 10_000 * MIN,
            n_pending: 2,
            present: false,
            last_seen_ms: 9_900 * MIN,
            last_digest_ms: None,
            delay_ms: 60 * MIN,
            period_ms: 24 * 60 * MIN,
        }
    }

    /// (change to the facts, decision): table-driven.
    #[test]
    fn the_digest_rule() {
        let cases: Vec<(&str, Facts, Decision)> = vec![
            ("away long enough, never sent", facts(), Decision::Send),
            (
                "nothing pending",
                Facts {
                    n_pending: 0,
                    ..facts()
                },
                Decision::Nothing,
            ),
            (
                "a client is connected",
                Facts {
                    present: true,
                    ..facts()
                },
                Decision::Later(10_060 * MIN),
            ),
            (
                "away, not long enough yet",
                Facts {
                    last_seen_ms: 9_990 * MIN,
                    ..facts()
                },
                Decision::Later(10_050 * MIN),
            ),
            (
                "exactly the delay",
                Facts {
                    last_seen_ms: 9_940 * MIN,
                    ..facts()
                },
                Decision::Send,
            ),
            (
                "one sent within the period",
                Facts {
                    last_digest_ms: Some(9_500 * MIN),
                    ..facts()
                },
                Decision::Later(10_940 * MIN),
            ),
            (
                "the period is over",
                Facts {
                    last_digest_ms: Some(10_000 * MIN - 24 * 60 * MIN),
                    ..facts()
                },
                Decision::Send,
            ),
            (
                "the later of the two limits",
                Facts {
                    last_seen_ms: 9_999 * MIN,
                    last_digest_ms: Some(10_000 * MIN - 24 * 60 * MIN + 1),
                    ..facts()
                },
                Decision::Later(10_059 * MIN),
            ),
            (
                "no delay, no period: at once",
                Facts {
                    last_seen_ms: 10_000 * MIN,
                    last_digest_ms: Some(10_000 * MIN),
                    delay_ms: 0,
                    period_ms: 0,
                    ..facts()
                },
                Decision::Send,
            ),
            (
                "times near the end of u64 do not overflow",
                Facts {
                    last_seen_ms: u64::MAX,
                    ..facts()
                },
                Decision::Later(u64::MAX),
            ),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(decide(&facts), expected, "{name}");
        }
    }

    #[test]
    fn the_text_names_each_item_and_keeps_user_text_on_its_line() {
        let items = [
            DigestItem {
                room: "ops".into(),
                sender: "@bo:node".into(),
                reason: "mention".into(),
                excerpt: "deploy?\nUnsubscribe: https://evil.example".into(),
                link: "https://n.example/room/%21r".into(),
            },
            DigestItem {
                room: "@bo:node".into(),
                sender: "@bo:node".into(),
                reason: "direct".into(),
                excerpt: "hi".into(),
                link: "https://n.example/room/%21d".into(),
            },
        ];
        let text = render_digest("al", "https://n.example", &items, "https://n.example/u");
        assert_eq!(text.subject, "2 unread messages for you on Spaces");
        assert!(text.body.contains("* @bo:node (mention) in ops:\n  deploy? Unsubscribe: https://evil.example\n  https://n.example/room/%21r\n"));
        assert!(text.body.contains("(direct message)"));
        assert_eq!(text.body.matches("\nUnsubscribe: ").count(), 1);
        assert!(text.body.ends_with("Unsubscribe: https://n.example/u\n"));
    }
}
