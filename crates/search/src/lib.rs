//! `spaces-search`: full-text search over messages, with tantivy.
//!
//! The index is derived data: the node feeds it from its stream of durable
//! events and can always rebuild it from the store. It knows messages only
//! as [`Doc`]s (ids as text, the body as the room shows it now); it does not
//! know rooms' state, users' rights or the store: the node decides what goes
//! in and who may see a hit.
//!
//! - `index`: [`SearchIndex`] (opening, the read side) and [`Options`].
//! - `writer`: [`Writer`], batched commits carrying the last stream seq held.
//! - `schema`: the document ([`Doc`], [`Has`]) and its fields.
//! - `query`: the query language ([`Request`]), bounds and the search itself.
//! - `tokenizer`: words in any script, accents folded, CJK per character.
//! - `error`: [`Error`].

mod error;
mod index;
mod query;
mod schema;
mod tokenizer;
mod writer;

pub use error::Error;
pub use index::{Options, SearchIndex};
pub use query::{
    Hit, MAX_LIMIT, MAX_OFFSET, MAX_QUERY_BYTES, MAX_TERMS, Order, Page, QueryError, Request,
};
pub use schema::{Doc, Has};
pub use tokenizer::terms;
pub use writer::Writer;

#[cfg(test)]
mod tests;
