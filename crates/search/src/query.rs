//! The query language and the search itself.
//!
//! A query is words, `"exact phrases"` and filters, all of which must match:
//! `from:USER`, `in:ROOM`, `mentions:USER`, `has:file|image|link|reply|thread`,
//! `before:YYYY-MM-DD`, `after:YYYY-MM-DD` (UTC days; both exclude the day
//! named, as people read them). Words go through the same analyzer as
//! message bodies, so a word that splits into several terms (CJK text,
//! `e-mail`) is searched as a phrase of them. A word with an unknown
//! `key:` (a URL, `12:30`) is plain text.
//!
//! Every query is bounded before the index sees it: its length, its number
//! of terms, the page size and how deep a cursor may page; the caller
//! narrows it to the rooms the user may read.

use std::collections::HashSet;
use std::ops::Bound;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, TantivyDocument, Value};
use tantivy::{DocAddress, Searcher, Term};

use crate::schema::Has;
use crate::{Error, SearchIndex, tokenizer};

/// Longest query text, in bytes: a few sentences.
pub const MAX_QUERY_BYTES: usize = 512;
/// Most terms (words, and the terms of phrases) in one query: each is a
/// posting list to intersect.
pub const MAX_TERMS: usize = 16;
/// Most hits in one page.
pub const MAX_LIMIT: usize = 50;
/// How deep paging may go: nobody reads past the thousandth hit, and each
/// page costs the whole prefix.
pub const MAX_OFFSET: usize = 1000;
/// Most rooms one search covers (the rooms a user is in).
pub const MAX_ROOMS: usize = 10_000;

/// A query the node does not run; every variant is the client's to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is longer than {MAX_QUERY_BYTES} bytes")]
    TooLong,
    #[error("the query has more than {MAX_TERMS} terms")]
    TooManyTerms,
    #[error("the query has no words and no filter")]
    Empty,
    #[error("{0}")]
    BadFilter(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Best match first (BM25); newest first when the query has no words.
    #[default]
    Relevance,
    /// Newest first (the node's arrival order).
    Recent,
}

/// A parsed query: what must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Each entry a term (one element) or a phrase (several), analyzed.
    pub words: Vec<Vec<String>>,
    pub from: Option<String>,
    /// `in:` rooms; a message in any of them matches.
    pub rooms: Vec<String>,
    pub has: Vec<Has>,
    /// Users the message must mention (all of them).
    pub mentions: Vec<String>,
    /// Only messages sent after this (exclusive), Unix ms.
    pub after_ms: Option<u64>,
    /// Only messages sent before this (exclusive), Unix ms.
    pub before_ms: Option<u64>,
}

/// One hit: the message as indexed, and where the query's terms are in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub event_id: String,
    pub room_id: String,
    pub sender: String,
    pub origin_ts: u64,
    pub seq: u64,
    pub body: String,
    /// `[start, end)` ranges of the body in Unicode scalar values (chars).
    pub highlights: Vec<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// How many messages in the searched rooms match.
    pub total: usize,
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Unix ms at which the UTC day `YYYY-MM-DD` starts.
fn day_start_ms(text: &str) -> Result<u64, QueryError> {
    let bad = || QueryError::BadFilter(format!("{text:?} is not a date (YYYY-MM-DD)"));
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days_in_month || y < 1970 {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) as u64 * DAY_MS)
}

/// Splits query text at whitespace, keeping `"quoted phrases"` (and a
/// filter's quoted value, `in:"x y"`) whole; an unclosed quote runs to the end.
fn pieces(text: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    found.push((std::mem::take(&mut current), was_quoted));
                }
                was_quoted = false;
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        found.push((current, was_quoted));
    }
    found
}

impl Request {
    /// Parses query text, checking its length and number of terms; a
    /// request with nothing to match is refused by [`Request::check`] (the
    /// caller may add filters first) and by the search itself.
    pub fn parse(text: &str) -> Result<Request, QueryError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong);
        }
        let mut request = Request::default();
        for (piece, quoted) in pieces(text) {
            let filter = piece
                .split_once(':')
                .filter(|(key, value)| !value.is_empty() && !key.is_empty());
            match filter {
                Some(("from", user)) => request.from = Some(user.to_owned()),
                Some(("in", room)) => request.rooms.push(room.to_owned()),
                Some(("mentions", user)) => request.mentions.push(user.to_owned()),
                Some(("has", has)) => request.has.push(Has::parse(has).ok_or_else(|| {
                    QueryError::BadFilter(format!(
                        "has:{has} is not one of file, image, link, reply, thread"
                    ))
                })?),
                Some(("after", day)) => {
                    request.after_ms = Some(day_start_ms(day)? + DAY_MS - 1);
                }
                Some(("before", day)) => request.before_ms = Some(day_start_ms(day)?),
                _ => {
                    let terms: Vec<String> = tokenizer::terms(&piece)
                        .into_iter()
                        .map(|(t, _)| t)
                        .collect();
                    if terms.is_empty() {
                        continue;
                    }
                    if quoted || terms.len() > 1 {
                        request.words.push(terms);
                    } else {
                        request.words.extend(terms.into_iter().map(|t| vec![t]));
                    }
                }
            }
        }
        match request.check() {
            Err(QueryError::Empty) | Ok(()) => Ok(request),
            Err(error) => Err(error),
        }
    }

    /// Every bound, and that there is something to match.
    pub fn check(&self) -> Result<(), QueryError> {
        let n_terms: usize = self.words.iter().map(Vec::len).sum();
        if n_terms > MAX_TERMS {
            return Err(QueryError::TooManyTerms);
        }
        let filtered = self.from.is_some()
            || !self.rooms.is_empty()
            || !self.has.is_empty()
            || !self.mentions.is_empty()
            || self.after_ms.is_some()
            || self.before_ms.is_some();
        if n_terms == 0 && !filtered {
            return Err(QueryError::Empty);
        }
        Ok(())
    }

    /// Every term the query looks for, for highlighting.
    fn terms(&self) -> HashSet<&str> {
        self.words.iter().flatten().map(String::as_str).collect()
    }
}

impl SearchIndex {
    /// The page of hits at `offset` for `request`, within `scope` (the rooms
    /// the caller may search, further narrowed by `in:`). Blocking: run it
    /// off the async threads.
    pub fn search(
        &self,
        request: &Request,
        scope: &[String],
        order: Order,
        offset: usize,
        limit: usize,
    ) -> Result<Page, Error> {
        request.check()?;
        let limit = limit.clamp(1, MAX_LIMIT);
        if offset > MAX_OFFSET {
            return Err(
                QueryError::BadFilter(format!("cannot page past {MAX_OFFSET} hits")).into(),
            );
        }
        let rooms: Vec<&String> = if request.rooms.is_empty() {
            scope.iter().take(MAX_ROOMS).collect()
        } else {
            request.rooms.iter().filter(|r| scope.contains(r)).collect()
        };
        if rooms.is_empty() {
            return Ok(Page {
                hits: Vec::new(),
                total: 0,
            });
        }
        let query = self.build(request, &rooms);
        let searcher = self.reader.searcher();
        let page = TopDocs::with_limit(limit).and_offset(offset);
        let (addresses, total): (Vec<DocAddress>, usize) =
            if order == Order::Relevance && !request.words.is_empty() {
                let (top, total) = searcher.search(&query, &(page.order_by_score(), Count))?;
                (top.into_iter().map(|(_, a)| a).collect(), total)
            } else {
                let by_seq = page.order_by_fast_field::<u64>("seq", tantivy::Order::Desc);
                let (top, total) = searcher.search(&query, &(by_seq, Count))?;
                (top.into_iter().map(|(_, a)| a).collect(), total)
            };
        let terms = request.terms();
        let hits = addresses
            .into_iter()
            .map(|address| self.hit(&searcher, address, &terms))
            .collect::<Result<_, _>>()?;
        Ok(Page { hits, total })
    }

    fn build(&self, request: &Request, rooms: &[&String]) -> Box<dyn Query> {
        let f = self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text_term = |field, text: &str| Term::from_field_text(field, text);
        must.push((
            Occur::Must,
            Box::new(TermSetQuery::new(
                rooms.iter().map(|room| text_term(f.room_id, room)),
            )),
        ));
        for word in &request.words {
            let query: Box<dyn Query> = if let [term] = word.as_slice() {
                Box::new(TermQuery::new(
                    text_term(f.body, term),
                    IndexRecordOption::WithFreqs,
                ))
            } else {
                Box::new(PhraseQuery::new(
                    word.iter().map(|t| text_term(f.body, t)).collect(),
                ))
            };
            must.push((Occur::Must, query));
        }
        if let Some(from) = &request.from {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    text_term(f.sender, from),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        for has in &request.has {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    text_term(f.has, has.as_str()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        for user in &request.mentions {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    text_term(f.mentions, user),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if request.after_ms.is_some() || request.before_ms.is_some() {
            let bound = |ms: Option<u64>| match ms {
                Some(ms) => Bound::Excluded(Term::from_field_u64(f.origin_ts, ms)),
                None => Bound::Unbounded,
            };
            must.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(request.after_ms),
                    bound(request.before_ms),
                )),
            ));
        }
        if must.is_empty() {
            return Box::new(AllQuery);
        }
        Box::new(BooleanQuery::new(must))
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        terms: &HashSet<&str>,
    ) -> Result<Hit, Error> {
        let f = self.fields;
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let number = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let body = text(f.body);
        let highlights = highlights(&body, terms);
        Ok(Hit {
            event_id: text(f.event_id),
            room_id: text(f.room_id),
            sender: text(f.sender),
            origin_ts: number(f.origin_ts),
            seq: number(f.seq),
            body,
            highlights,
        })
    }
}

/// The char ranges of `body`'s terms that are among `terms`.
pub fn highlights(body: &str, terms: &HashSet<&str>) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut chars_before = 0;
    let mut bytes_seen = 0;
    for (term, range) in tokenizer::terms(body) {
        if !terms.contains(term.as_str()) {
            continue;
        }
        chars_before += body[bytes_seen..range.start].chars().count();
        let len = body[range.clone()].chars().count();
        found.push((chars_before, chars_before + len));
        chars_before += len;
        bytes_seen = range.end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_phrases_and_filters() {
        let request = Request::parse(
            r#"Hello "big  World" from:alice@n in:r1 mentions:me has:file after:2024-01-31 before:2024-03-01 東京 https://x.org"#,
        )
        .unwrap();
        assert_eq!(
            request.words,
            [
                vec!["hello".to_owned()],
                vec!["big".to_owned(), "world".to_owned()],
                vec!["東".to_owned(), "京".to_owned()],
                vec!["https".to_owned(), "x".to_owned(), "org".to_owned()],
            ]
        );
        assert_eq!(request.from.as_deref(), Some("alice@n"));
        assert_eq!(request.rooms, ["r1"]);
        assert_eq!(request.mentions, ["me"]);
        assert_eq!(request.has, [Has::File]);
        // 2024-02-01T00:00:00Z is 1706745600000.
        assert_eq!(request.after_ms, Some(1_706_745_600_000 - 1));
        assert_eq!(request.before_ms, Some(1_709_251_200_000));
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let cases: &[(&str, QueryError)] = &[
            ("", QueryError::Empty),
            ("  !!  ", QueryError::Empty),
            (&"a ".repeat(MAX_TERMS + 1), QueryError::TooManyTerms),
            (&"a".repeat(MAX_QUERY_BYTES + 1), QueryError::TooLong),
        ];
        for (text, want) in cases {
            let checked = Request::parse(text).and_then(|r| r.check());
            assert_eq!(checked.unwrap_err(), *want, "{text:?}");
        }
        for text in [
            "has:nothing",
            "before:2024-02-30",
            "after:yesterday",
            "before:1969-12-31",
        ] {
            assert!(
                matches!(Request::parse(text), Err(QueryError::BadFilter(_))),
                "{text:?}"
            );
        }
        // Filters alone are a query.
        assert!(Request::parse("from:bob@n").is_ok());
    }

    #[test]
    fn highlights_are_char_ranges() {
        let terms = HashSet::from(["cafe", "東"]);
        let body = "Ünï café and CAFE, 東京";
        let ranges = highlights(body, &terms);
        let chars: Vec<char> = body.chars().collect();
        let shown: Vec<String> = ranges
            .iter()
            .map(|&(a, b)| chars[a..b].iter().collect())
            .collect();
        assert_eq!(shown, ["café", "CAFE", "東"]);
    }
}
