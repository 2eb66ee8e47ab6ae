//! AutoMod: a room's keyword, regex, link and mention rules
//! (`Content::AutoMod`, room state; docs/spec/api.md §AutoMod), compiled
//! once per version of the rules and checked against a message's text.
//! Pure: [`Moderation`](super::moderation::Moderation) keeps the compiled
//! rules per room and applies the verdict (a local send refused, a received
//! event hidden).
//!
//! Regular expressions are Rust `regex` ones: no backtracking, so matching
//! is linear in the text; each compiled program is bounded
//! ([`REGEX_SIZE_LIMIT`]), and one the node cannot compile (bad syntax,
//! over the bound) is skipped and logged, never fatal.

use std::sync::Arc;

use spaces_protocol::content::AutoMod;

/// The most memory one compiled regex may take: a few hundred bytes of
/// pattern need far less; this stops `a{1000}{1000}`-style blow-ups.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// One version of a room's rules, compiled.
#[derive(Debug)]
pub struct Compiled {
    /// The version compiled (compared by pointer).
    pub rules: Arc<AutoMod>,
    keywords: Vec<String>,
    regexes: Vec<(usize, regex::Regex)>,
}

/// Compiles one regex within the bounds; the error says why not.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

impl Compiled {
    pub fn compile(rules: Arc<AutoMod>) -> Compiled {
        let keywords = rules
            .keywords
            .iter()
            .map(|k| k.trim().to_lowercase())
            .collect();
        let regexes = rules
            .regexes
            .iter()
            .enumerate()
            .filter_map(|(i, pattern)| match compile_regex(pattern) {
                Ok(regex) => Some((i, regex)),
                Err(error) => {
                    tracing::warn!(%error, index = i, "automod: a regex that does not compile is skipped");
                    None
                }
            })
            .collect();
        Compiled {
            rules,
            keywords,
            regexes,
        }
    }

    /// The first rule `text` (with `n_mentions` mentions) breaks, named for
    /// the sender: `None` when it passes.
    pub fn check(&self, text: &str, n_mentions: usize) -> Option<String> {
        let lower = text.to_lowercase();
        if let Some(keyword) = self.keywords.iter().find(|k| has_word(&lower, k)) {
            return Some(format!("keyword \"{keyword}\""));
        }
        if let Some((i, _)) = self.regexes.iter().find(|(_, r)| r.is_match(text)) {
            return Some(format!("regex {}", i + 1));
        }
        let max_links = usize::from(self.rules.max_links);
        let n_links = lower.matches("http://").count() + lower.matches("https://").count();
        if max_links > 0 && n_links > max_links {
            return Some(format!("{n_links} links, at most {max_links}"));
        }
        let max_mentions = usize::from(self.rules.max_mentions);
        if max_mentions > 0 && n_mentions > max_mentions {
            return Some(format!("{n_mentions} mentions, at most {max_mentions}"));
        }
        None
    }
}

/// Whether `word` (lowercase; several words allowed) appears in `text`
/// (lowercase) with no letter or digit right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let alnum_at_end = |s: &str| s.chars().next_back().is_some_and(char::is_alphanumeric);
    let alnum_at_start = |s: &str| s.chars().next().is_some_and(char::is_alphanumeric);
    text.match_indices(word)
        .any(|(at, _)| !alnum_at_end(&text[..at]) && !alnum_at_start(&text[at + word.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_what_a_message_breaks() {
        let compiled = Compiled::compile(Arc::new(AutoMod {
            keywords: vec!["Cheap Watches".into(), "scam".into()],
            regexes: vec!["(".into(), r"(?i)free\s+crypto".into()],
            max_links: 1,
            max_mentions: 2,
        }));
        let cases: &[(&str, usize, Option<&str>)] = &[
            (
                "buy CHEAP watches now",
                0,
                Some("keyword \"cheap watches\""),
            ),
            ("a scam!", 0, Some("keyword \"scam\"")),
            ("scampi for dinner", 0, None),
            ("get FREE   crypto", 0, Some("regex 2")),
            (
                "see https://a.example and http://b.example",
                0,
                Some("2 links, at most 1"),
            ),
            ("see https://a.example", 0, None),
            ("hi all", 3, Some("3 mentions, at most 2")),
            ("hi all", 2, None),
        ];
        for (text, mentions, want) in cases {
            assert_eq!(compiled.check(text, *mentions).as_deref(), *want, "{text}");
        }
    }

    #[test]
    fn a_regex_over_the_bound_does_not_compile() {
        assert!(compile_regex("a{1000}{1000}").is_err());
        assert!(compile_regex(r"\bfree\b").is_ok());
    }
}
