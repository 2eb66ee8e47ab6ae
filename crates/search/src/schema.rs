//! The index's one document type: a message as it reads now.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use crate::tokenizer::ANALYZER;

/// Bumped when the schema or the meaning of a field changes: an index
/// written under another version is rebuilt from the store at open.
pub const SCHEMA_VERSION: u32 = 1;

/// What a message has besides its text, as `has:` filters name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Has {
    File,
    Image,
    Link,
    /// A reply to another message.
    Reply,
    /// A message in a thread (not the root).
    Thread,
}

impl Has {
    pub const ALL: [Has; 5] = [Has::File, Has::Image, Has::Link, Has::Reply, Has::Thread];

    pub fn as_str(self) -> &'static str {
        match self {
            Has::File => "file",
            Has::Image => "image",
            Has::Link => "link",
            Has::Reply => "reply",
            Has::Thread => "thread",
        }
    }

    pub fn parse(text: &str) -> Option<Has> {
        Has::ALL.into_iter().find(|has| has.as_str() == text)
    }
}

/// A message to index: ids in their text form, the body as the room shows it
/// now (the latest accepted edit's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub event_id: String,
    pub room_id: String,
    pub sender: String,
    pub origin_ts: u64,
    /// The node-local stream seq of the message (not of its latest edit):
    /// "recent" order, and a tie-break that is the same on every page.
    pub seq: u64,
    pub body: String,
    pub has: Vec<Has>,
    /// Users the message mentions by id (`mentions:` filters).
    pub mentions: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub event_id: Field,
    pub room_id: Field,
    pub sender: Field,
    pub origin_ts: Field,
    pub seq: Field,
    pub has: Field,
    pub mentions: Field,
    pub body: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Exact-match keys: STRING is indexed untokenized.
    let event_id = builder.add_text_field("event_id", STRING | STORED);
    let room_id = builder.add_text_field("room_id", STRING | STORED);
    let sender = builder.add_text_field("sender", STRING | STORED);
    let origin_ts = builder.add_u64_field("origin_ts", INDEXED | FAST | STORED);
    let seq = builder.add_u64_field("seq", FAST | STORED);
    let has = builder.add_text_field("has", STRING);
    let mentions = builder.add_text_field("mentions", STRING);
    // Positions for phrases; the text is stored to render hits and highlights.
    let body_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let body = builder.add_text_field("body", body_options);
    let fields = Fields {
        event_id,
        room_id,
        sender,
        origin_ts,
        seq,
        has,
        mentions,
        body,
    };
    (builder.build(), fields)
}
