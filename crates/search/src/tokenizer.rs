//! How text becomes terms, the same way for messages and for queries.
//!
//! Words are runs of letters and digits in any script (`char::is_alphanumeric`,
//! so Cyrillic, Greek or Arabic words stay whole). Han, kana and Hangul have no
//! spaces between words, so each of their characters is a term of its own: a
//! query of several such characters becomes a phrase of them, which finds the
//! word wherever it stands (a unigram index, as Lucene's CJK analyzers do
//! without a dictionary). Terms are lower-cased and accents folded
//! (`é` → `e`, precomposed by tantivy's ASCII folding, combining marks
//! dropped here); terms longer than [`MAX_TERM_BYTES`] are left out
//! (base64 blobs and the like, never a word anyone searches for).

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the body field's analyzer is registered under.
pub const ANALYZER: &str = "spaces_words";

/// Longer terms are dropped: no language's words come near it, and it keeps
/// the term dictionary from filling with hashes and URLs' opaque parts.
pub const MAX_TERM_BYTES: usize = 40;

/// The analyzer for message bodies and query words.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The terms of `text` as the index holds them, with their byte ranges.
pub fn terms(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut found = Vec::new();
    while stream.advance() {
        let token = stream.token();
        found.push((token.text.clone(), token.offset_from..token.offset_to));
    }
    found
}

/// Han (with its extensions and compatibility block), kana, Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF | 0x3040..=0x30FF | 0x3130..=0x318F | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Combining diacritical marks: part of the word they follow, dropped from its term.
fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF)
}

#[derive(Clone, Debug, Default)]
pub struct WordTokenizer {
    token: Token,
}

#[derive(Debug)]
pub struct WordStream<'a> {
    text: &'a str,
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        let rest = &self.text[self.at..];
        let Some((start, first)) = rest
            .char_indices()
            .find(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| (self.at + i, c))
        else {
            self.at = self.text.len();
            return false;
        };
        self.token.text.clear();
        let mut end = start + first.len_utf8();
        self.token.text.push(first);
        if !is_cjk(first) {
            for c in self.text[end..].chars() {
                if is_combining(c) {
                    end += c.len_utf8();
                } else if c.is_alphanumeric() && !is_cjk(c) {
                    self.token.text.push(c);
                    end += c.len_utf8();
                } else {
                    break;
                }
            }
        }
        self.at = end;
        self.token.offset_from = start;
        self.token.offset_to = end;
        self.token.position = self.token.position.wrapping_add(1);
        self.token.position_length = 1;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        terms(text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn splits_folds_and_keeps_scripts() {
        let cases: &[(&str, &[&str])] = &[
            ("Hello, World!", &["hello", "world"]),
            ("Crème brûlée", &["creme", "brulee"]),
            // A decomposed accent (e + U+0301) folds like a precomposed one.
            ("Cre\u{300}me", &["creme"]),
            ("Привет мир", &["привет", "мир"]),
            ("東京都に行く", &["東", "京", "都", "に", "行", "く"]),
            ("abc東京def", &["abc", "東", "京", "def"]),
            ("안녕 세상", &["안", "녕", "세", "상"]),
            ("v2.1 x_y", &["v2", "1", "x", "y"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{text:?}");
        }
    }

    #[test]
    fn offsets_are_byte_ranges_of_the_source() {
        let text = "Ça va, 東京?";
        let found = terms(text);
        let spans: Vec<&str> = found.iter().map(|(_, r)| &text[r.clone()]).collect();
        assert_eq!(spans, ["Ça", "va", "東", "京"]);
    }

    #[test]
    fn overlong_terms_are_dropped() {
        let long = "a".repeat(MAX_TERM_BYTES + 1);
        assert_eq!(words(&format!("keep {long} this")), ["keep", "this"]);
    }
}
