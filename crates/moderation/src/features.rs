//! The text normaliser and hashed n-gram features the toxicity model reads.
//!
//! The reference is `models/toxicity/features.py` (its docstring is the
//! specification, FEATURE_VERSION 1); this is the same algorithm, step for
//! step, and the unit tests compare both on the vectors `train.py` writes
//! (`models/toxicity/data/vectors.tsv`). The folding table is the one file
//! both read (`models/toxicity/fold.tsv`), so they cannot disagree on which
//! character is which letter, whatever Unicode tables each language ships.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The feature scheme the model was trained on (its `feature_version` metadata).
pub const FEATURE_VERSION: u32 = 1;
/// Hashed feature ids are below this (the model's `hash_dim` metadata).
pub const HASH_DIM: u32 = 1 << 15;
/// Longer messages are scored on their first 2000 characters: a slur or a
/// threat is not hidden by 100 KB of padding after it, and the work per
/// message stays bounded.
pub const MAX_CHARS: usize = 2000;

const FOLD_TABLE: &str = include_str!("../../../models/toxicity/fold.tsv");

fn fold_table() -> &'static HashMap<char, &'static str> {
    static TABLE: OnceLock<HashMap<char, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FOLD_TABLE
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| {
                let (code, replacement) = line.split_once('\t')?;
                let c = char::from_u32(u32::from_str_radix(code, 16).ok()?)?;
                Some((c, replacement))
            })
            .collect()
    })
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphabetic())
}

fn is_symbol(c: char) -> bool {
    matches!(c, '@' | '$' | '!' | '|' | '*')
}

fn leet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

/// Runs of three or more of one character become two.
fn collapse(token: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(token.len());
    for c in token.chars() {
        let n = out.len();
        if n >= 2 && out[n - 1] == c && out[n - 2] == c {
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

/// The normalised tokens of `text`, and the joined runs of one-character
/// tokens ("f u c k" → "fuck").
pub fn tokens(text: &str) -> (Vec<String>, Vec<String>) {
    let truncated: String = text.chars().take(MAX_CHARS).collect();
    let table = fold_table();
    let mut folded = String::with_capacity(truncated.len());
    for c in truncated.to_lowercase().chars() {
        match table.get(&c) {
            Some(replacement) => folded.push_str(replacement),
            None => folded.push(c),
        }
    }
    // Raw tokens with the number of separator characters before each.
    let mut raw: Vec<(String, usize)> = Vec::new();
    let mut current = String::new();
    let mut gap = 0;
    for c in folded.chars() {
        if is_word(c) || is_symbol(c) {
            current.push(c);
        } else {
            if !current.is_empty() {
                raw.push((std::mem::take(&mut current), gap));
                gap = 0;
            }
            gap += 1;
        }
    }
    if !current.is_empty() {
        raw.push((current, gap));
    }
    let mut out: Vec<(String, usize)> = Vec::with_capacity(raw.len());
    for (token, gap) in raw {
        let token = token.trim_matches(|c| matches!(c, '!' | '|' | '*'));
        let letters = token.chars().any(char::is_alphabetic);
        let token: String = token
            .chars()
            .map(|c| if letters { leet(c) } else { c })
            .filter(|&c| is_word(c) || c == '*')
            .collect();
        let token = collapse(&token);
        if !token.is_empty() {
            out.push((token, gap));
        }
    }
    let mut joined = Vec::new();
    let single = |t: &str| t.chars().count() == 1;
    let mut i = 0;
    while i < out.len() {
        if single(&out[i].0) {
            let mut j = i + 1;
            while j < out.len() && single(&out[j].0) && out[j].1 <= 2 {
                j += 1;
            }
            if j - i >= 3 {
                let run: String = out[i..j].iter().map(|(t, _)| t.as_str()).collect();
                joined.push(collapse(&run));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    (out.into_iter().map(|(t, _)| t).collect(), joined)
}

/// FNV-1a, 32 bits.
fn fnv1a(parts: &[&str]) -> u32 {
    let mut hash: u32 = 0x811C_9DC5;
    for part in parts {
        for &b in part.as_bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// The model's input for one message: distinct feature ids, sorted, and
/// the weight each carries (binary features, L2-normalised).
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub ids: Vec<i64>,
    pub weight: f32,
}

/// Features of `text`: word unigrams, bigrams and skip-bigrams, and
/// character 3- to 5-grams of each word, hashed into [`HASH_DIM`] ids.
pub fn features(text: &str) -> Features {
    let (toks, joined) = tokens(text);
    let mut ids: Vec<u32> = Vec::with_capacity(64);
    let mut chars: Vec<char> = Vec::new();
    let mut buf = String::new();
    for t in toks.iter().chain(joined.iter()) {
        ids.push(fnv1a(&["w:", t]));
        chars.clear();
        chars.push('<');
        chars.extend(t.chars());
        chars.push('>');
        for n in 3..=5 {
            for window in chars.windows(n) {
                buf.clear();
                buf.extend(window.iter());
                ids.push(fnv1a(&["c:", &buf]));
            }
        }
    }
    for pair in toks.windows(2) {
        ids.push(fnv1a(&["b:", &pair[0], " ", &pair[1]]));
    }
    for triple in toks.windows(3) {
        ids.push(fnv1a(&["s:", &triple[0], " ", &triple[2]]));
    }
    let mut ids: Vec<i64> = ids.into_iter().map(|h| i64::from(h % HASH_DIM)).collect();
    ids.sort_unstable();
    ids.dedup();
    let weight = if ids.is_empty() {
        0.0
    } else {
        (1.0 / (ids.len() as f64).sqrt()) as f32
    };
    Features { ids, weight }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_games_normalise() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("f u c k you", &["f", "u", "c", "k", "you"], &["fuck"]),
            ("you're an 1d1ot", &["you", "re", "an", "idiot"], &[]),
            ("you fück1ng idiöt", &["you", "fucking", "idiot"], &[]),
            ("stfuuuuu you!", &["stfuu", "you"], &[]),
            ("k.y.s", &["k", "y", "s"], &["kys"]),
            ("ｆｕｃｋ", &["fuck"], &[]),
            ("fu\u{200b}ck", &["fuck"], &[]),
            ("Scunthorpe", &["scunthorpe"], &[]),
        ];
        for (text, want_tokens, want_joined) in cases {
            let (toks, joined) = tokens(text);
            assert_eq!(&toks, want_tokens, "{text}");
            assert_eq!(&joined, want_joined, "{text}");
        }
    }

    #[test]
    fn empty_and_symbol_only_text_has_no_features() {
        assert_eq!(
            features("🙂 ... ?"),
            Features {
                ids: vec![],
                weight: 0.0
            }
        );
    }

    #[test]
    fn long_text_is_bounded() {
        let long = "word ".repeat(100_000);
        let f = features(&long);
        assert!(!f.ids.is_empty());
        let (toks, _) = tokens(&long);
        assert_eq!(toks.len(), MAX_CHARS / 5);
    }

    /// The Python reference and this code agree on every vector train.py wrote.
    #[test]
    fn python_vectors_agree() {
        let vectors = include_str!("../../../models/toxicity/data/vectors.tsv");
        let mut n = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line}");
            let text: String = serde_json::from_str(cols[0]).unwrap();
            let (toks, joined) = tokens(&text);
            assert_eq!(toks.join(" "), cols[1], "tokens of {text:?}");
            assert_eq!(joined.join(" "), cols[2], "joined runs of {text:?}");
            let ids: Vec<i64> = if cols[3].is_empty() {
                vec![]
            } else {
                cols[3].split(' ').map(|s| s.parse().unwrap()).collect()
            };
            assert_eq!(features(&text).ids, ids, "ids of {text:?}");
            n += 1;
        }
        assert!(n > 50, "only {n} vectors");
    }
}
