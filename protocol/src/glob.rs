//! Glob patterns of ban lists (docs/spec/events.md §Ban lists): `*` stands
//! for any run of characters (none included), `?` for exactly one, every
//! other character for itself. A pattern is matched against the whole text
//! form of a user id (`@localpart:~node`), so every node that enforces a
//! list bans the same users.
//!
//! Matching never backtracks further than the last `*`: a pattern is split
//! at its stars into segments, and each segment is found at its leftmost
//! place after the previous one (leftmost placement is always right for
//! globs), so a match costs at most the text's length times the pattern's.
//! Both are bounded: [`MAX_PATTERN_BYTES`] and the user id's length.

/// The longest pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 128;

/// A checked, compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    /// The segments between stars, as characters (`None` is `?`).
    segments: Vec<Vec<Option<char>>>,
    /// Whether the pattern starts or ends with `*`.
    open_start: bool,
    open_end: bool,
}

impl Glob {
    /// Checks and compiles `pattern`: 1 to [`MAX_PATTERN_BYTES`] bytes,
    /// no control characters.
    pub fn parse(pattern: &str) -> Result<Glob, &'static str> {
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_BYTES {
            return Err("ban pattern empty or too long");
        }
        if pattern.chars().any(char::is_control) {
            return Err("ban pattern has control characters");
        }
        let parts: Vec<&str> = pattern.split('*').collect();
        let open_start = parts.len() > 1 && parts[0].is_empty();
        let open_end = parts.len() > 1 && parts[parts.len() - 1].is_empty();
        let segments = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.chars().map(|c| (c != '?').then_some(c)).collect())
            .collect();
        Ok(Glob {
            segments,
            open_start,
            open_end,
        })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let fits = |segment: &[Option<char>], at: usize| {
            at + segment.len() <= text.len()
                && segment
                    .iter()
                    .zip(&text[at..])
                    .all(|(p, c)| p.is_none_or(|p| p == *c))
        };
        let n = self.segments.len();
        if n == 0 {
            // Only stars (anything), or nothing at all (never parsed).
            return self.open_start || text.is_empty();
        }
        if !self.open_start && !self.open_end && n == 1 {
            return text.len() == self.segments[0].len() && fits(&self.segments[0], 0);
        }
        let mut at = 0;
        let mut first = 0;
        if !self.open_start {
            if !fits(&self.segments[0], 0) {
                return false;
            }
            at = self.segments[0].len();
            first = 1;
        }
        // The last segment is pinned to the end unless the pattern ends with
        // a star; the middle ones go leftmost.
        let last = if self.open_end { n } else { n - 1 };
        for segment in &self.segments[first.min(last)..last] {
            match (at..=text.len().saturating_sub(segment.len())).find(|&i| fits(segment, i)) {
                Some(i) => at = i + segment.len(),
                None => return false,
            }
        }
        if self.open_end {
            return true;
        }
        let tail = &self.segments[n - 1];
        text.len() >= at + tail.len() && fits(tail, text.len() - tail.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_ids() {
        let cases: &[(&str, &str, bool)] = &[
            ("@spam:~node", "@spam:~node", true),
            ("@spam:~node", "@spam:~nodes", false),
            ("@spam*", "@spam:~node", true),
            ("@spam*", "@spa", false),
            ("*:~node", "@anyone:~node", true),
            ("*:~node", "@anyone:~other", false),
            ("@spam?:*", "@spam1:~n", true),
            ("@spam?:*", "@spam:~n", false),
            ("@spam?:*", "@spam12:~n", false),
            ("*", "", true),
            ("**", "@x:~y", true),
            ("@*bot*:*", "@the-bot-9:~n", true),
            ("@*bot*:*", "@the-bo-t:~n", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("a*b*c", "abbbc", true),
            ("a*b*c", "acb", false),
            ("*ab", "aab", true),
            ("?", "é", true),
            ("?", "", false),
            ("x", "", false),
        ];
        for (pattern, text, want) in cases {
            let glob = Glob::parse(pattern).unwrap();
            assert_eq!(glob.matches(text), *want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Glob::parse("").is_err());
        assert!(Glob::parse(&"a".repeat(129)).is_err());
        assert!(Glob::parse("a\nb").is_err());
        assert!(Glob::parse(&"*".repeat(128)).is_ok());
    }

    /// The leftmost placement agrees with a plain backtracking matcher.
    #[test]
    fn agrees_with_backtracking() {
        fn slow(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| slow(rest, &t[i..])),
                Some((c, rest)) => {
                    !t.is_empty() && (*c == '?' || *c == t[0]) && slow(rest, &t[1..])
                }
            }
        }
        let alphabet = ['a', 'b', '*', '?'];
        let texts = ["", "a", "b", "ab", "ba", "aab", "abab", "bbaa", "aaaa"];
        // Every pattern of up to 4 symbols.
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = patterns
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            patterns.extend(longer);
        }
        patterns.sort();
        patterns.dedup();
        for pattern in patterns.iter().filter(|p| !p.is_empty()) {
            let glob = Glob::parse(pattern).unwrap();
            let p: Vec<char> = pattern.chars().collect();
            for text in texts {
                let t: Vec<char> = text.chars().collect();
                assert_eq!(glob.matches(text), slow(&p, &t), "{pattern} ~ {text}");
            }
        }
    }
}
