//! What nodes say to each other (docs/spec/federation.md).
//!
//! Two channels: gossipsub messages, whose data is one signed event's bytes
//! exactly as [`spaces_protocol::Event::decode`] reads them, and the
//! request-response protocol [`SYNC_PROTOCOL`], whose frames are a 4-byte
//! big-endian length and a postcard-encoded [`Request`] or [`Response`].
//! Every size is bounded before anything is allocated.

use std::io;

use futures_util::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::gossipsub::IdentTopic;
use serde::{Deserialize, Serialize};
use spaces_protocol::{EventId, RoomId};

/// The request-response protocol of node-to-node sync.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/spaces/sync/1");
/// `/spaces/sync/1` and the blob variants ([`Request::Blob`],
/// [`Response::Blob`]); offered first, so two nodes that both speak it use
/// it, and a node that speaks only `/1` is never sent a blob request.
pub const SYNC_PROTOCOL_2: StreamProtocol = StreamProtocol::new("/spaces/sync/2");
/// `/spaces/sync/2` and verified streaming ([`Request::BlobBao`],
/// [`Response::BlobBao`]); offered before `/2`, so a node that speaks only
/// `/2` is asked for blobs the old way and never sent a `BlobBao`.
pub const SYNC_PROTOCOL_3: StreamProtocol = StreamProtocol::new("/spaces/sync/3");
/// The kademlia protocol, kept apart from the public IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/spaces/kad/1");
/// What identify announces: peers with another value are not Spaces nodes.
pub const IDENTIFY_PROTOCOL: &str = "/spaces/1";

/// Largest request frame: a push of [`MAX_PUSH_EVENTS`] full-size events.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Largest response frame.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Most events one push may carry.
pub const MAX_PUSH_EVENTS: usize = 16;
/// Most events one backfill response carries, whatever the request asks.
pub const MAX_BATCH_EVENTS: u32 = 1_000;
/// A backfill response stops adding events past this many bytes.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Most ids a request may name (heads it knows, events it wants).
pub const MAX_IDS: usize = 256;
/// The pause a busy answer suggests: long enough for a few answers to
/// finish, short enough that a sync does not stall visibly.
pub const BUSY_RETRY_AFTER_MS: u32 = 500;
/// Most bytes of a blob one [`Request::Blob`] answer carries: well inside
/// [`MAX_RESPONSE_BYTES`], and small enough that a chunk in flight per
/// fetch costs little memory (docs/spec/federation.md#blobs).
pub const MAX_BLOB_CHUNK: u32 = 1 << 20;
/// Most 16 KiB chunk groups one [`Request::BlobBao`] names: 1 MiB of data,
/// whose encoding (with the tree's parents) stays well inside
/// [`MAX_RESPONSE_BYTES`].
pub const MAX_BLOB_GROUPS: u32 = 64;
/// Largest gossip message: one event of the largest size, and room to spare.
pub const MAX_GOSSIP_BYTES: usize = spaces_protocol::limits::MAX_EVENT_BYTES + 1024;

/// The gossipsub topic of a public room.
pub fn room_topic(room: &RoomId) -> IdentTopic {
    IdentTopic::new(format!("/spaces/room/{room}"))
}

/// A request from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Events the sender stored, for a room the receiver has a member in:
    /// how events of private rooms travel (never by gossip), and how an
    /// event reaches a node before the gossip mesh has formed.
    Push { events: Vec<Vec<u8>> },
    /// Events of `room` that are not `known` or ancestors of `known` (the
    /// asker's heads), parents before children, at most `limit` of them.
    Backfill {
        room: RoomId,
        known: Vec<EventId>,
        limit: u32,
    },
    /// The events with these ids, those the answerer holds.
    Events { room: RoomId, ids: Vec<EventId> },
    /// Let the asker's user into `room`: with `code`, an invite link's code
    /// minted on the answering node, which then invites the user; without,
    /// the room must be public. The user then joins through its own node.
    Join {
        room: RoomId,
        user: String,
        code: Option<String>,
    },
    /// Bytes `offset..offset + len` (at most [`MAX_BLOB_CHUNK`]) of the blob
    /// `hash`, which `event` of `room` carries as an attachment naming the
    /// answerer as its holder. Served only to a node with a member (joined
    /// or invited) in the room. Appended last, so the indexes of the
    /// variants before it stand.
    Blob {
        room: RoomId,
        event: EventId,
        hash: [u8; 32],
        offset: u64,
        len: u32,
    },
    /// Chunk groups `first .. first + groups` (16 KiB each, at most
    /// [`MAX_BLOB_GROUPS`]) of the blob `hash`, encoded so the asker can
    /// verify each group against the hash as it reads it (BLAKE3 verified
    /// streaming, docs/spec/federation.md#blobs). Served as
    /// [`Request::Blob`] is. `/spaces/sync/3` only.
    BlobBao {
        room: RoomId,
        event: EventId,
        hash: [u8; 32],
        first: u64,
        groups: u32,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A push was taken: how many of its events were new here.
    Pushed { new: u32 },
    /// Events in an order where parents come first; `more`: the answerer
    /// held more than fit.
    Events { events: Vec<Vec<u8>>, more: bool },
    /// The join may go ahead.
    Joined,
    /// Not served: `code` says why (`unknown_room` also for a private room
    /// the asker has no member in, so its existence does not leak).
    Refused { code: String, message: String },
    /// Not looked at: the answerer is already working on as many requests
    /// as it takes at once. Ask again after about `retry_after_ms`, or ask
    /// another node; it says nothing about the request or the asker.
    /// Appended last, so the indexes of the variants before it stand.
    Busy { retry_after_ms: u32 },
    /// Bytes of a blob from the offset asked, and the blob's whole size.
    /// The asker verifies them against the hash before anything is stored.
    Blob { size: u64, bytes: Vec<u8> },
    /// The blob's whole size, and the encoding of the groups asked (from
    /// the root of the blob's BLAKE3 tree: the parents on the way, then
    /// the groups' bytes, in pre-order), clipped to the blob's end.
    BlobBao { size: u64, encoded: Vec<u8> },
}

impl Response {
    /// The busy answer, with the pause the reference node suggests.
    pub fn busy() -> Response {
        Response::Busy {
            retry_after_ms: BUSY_RETRY_AFTER_MS,
        }
    }

    pub fn refused(code: &str, message: impl Into<String>) -> Response {
        Response::Refused {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl Request {
    /// Refuses what no well-behaved node sends, before any work is done.
    pub fn check(&self) -> Result<(), &'static str> {
        match self {
            Request::Push { events } if events.len() > MAX_PUSH_EVENTS => Err("too many events"),
            Request::Push { events } if events.is_empty() => Err("empty push"),
            Request::Backfill { known, .. } if known.len() > MAX_IDS => Err("too many ids"),
            Request::Events { ids, .. } if ids.len() > MAX_IDS => Err("too many ids"),
            Request::Join {
                code: Some(code), ..
            } if code.len() > 64 => Err("code too long"),
            Request::Blob { len, .. } if *len == 0 || *len > MAX_BLOB_CHUNK => {
                Err("bad blob range")
            }
            Request::BlobBao { groups, .. } if *groups == 0 || *groups > MAX_BLOB_GROUPS => {
                Err("bad blob range")
            }
            _ => Ok(()),
        }
    }
}

/// Whether `protocol` carries `request`: the blob variants came with `/2`,
/// verified streaming with `/3`.
pub fn speaks(protocol: &StreamProtocol, request: &Request) -> bool {
    match request {
        Request::Blob { .. } => *protocol != SYNC_PROTOCOL,
        Request::BlobBao { .. } => *protocol == SYNC_PROTOCOL_3,
        _ => true,
    }
}

/// Length-prefixed postcard frames with a size limit per direction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Codec;

/// Reads one frame of at most `max` bytes (length prefix excluded) and
/// decodes it. The prefix is checked before anything is allocated; bytes
/// after the message inside the frame are ignored.
pub async fn read_frame<T, M>(io: &mut T, max: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: for<'de> Deserialize<'de>,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    postcard::from_bytes(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Encodes `message` and writes it as one frame, then closes the writing
/// side; a message that encodes to more than `max` bytes is not written.
pub async fn write_frame<T, M>(io: &mut T, message: &M, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let buf =
        postcard::to_stdvec(message).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if buf.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {} bytes exceeds {max}", buf.len()),
        ));
    }
    io.write_all(&(buf.len() as u32).to_be_bytes()).await?;
    io.write_all(&buf).await?;
    io.close().await
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let request = read_frame(io, MAX_REQUEST_BYTES).await?;
        if !speaks(protocol, &request) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a request {protocol} does not carry"),
            ));
        }
        Ok(request)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // A node that speaks only an older version could not decode it
        // (and would charge us `bad_frame`): the request fails here
        // instead, as `Unsupported`, so the asker can ask the old way.
        if !speaks(protocol, &req) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the node speaks only {protocol}"),
            ));
        }
        write_frame(io, &req, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, MAX_RESPONSE_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::Cursor;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused_before_allocation() {
        let request = Request::Backfill {
            room: RoomId([3; 32]),
            known: vec![EventId([4; 32])],
            limit: 10,
        };
        let mut buf = Cursor::new(Vec::new());
        write_frame(&mut buf, &request, MAX_REQUEST_BYTES)
            .await
            .unwrap();
        let mut read = Cursor::new(buf.into_inner());
        let back: Request = read_frame(&mut read, MAX_REQUEST_BYTES).await.unwrap();
        assert_eq!(back, request);

        // A length prefix of 4 GiB is refused from the prefix alone.
        let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = read_frame::<_, Request>(&mut huge, MAX_REQUEST_BYTES)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        // Garbage of a permitted length does not decode.
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(&[0xff; 5]);
        let err = read_frame::<_, Request>(&mut Cursor::new(junk), MAX_REQUEST_BYTES)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn busy_is_appended_after_the_variants_before_it() {
        // docs/spec/federation.md#messages: index 4, then `retry_after_ms`
        // as a postcard varint (500 = f4 03).
        let bytes = postcard::to_stdvec(&Response::busy()).unwrap();
        assert_eq!(bytes, [0x04, 0xf4, 0x03]);
        let refused = postcard::to_stdvec(&Response::refused("a", "b")).unwrap();
        assert_eq!(refused, [0x03, 0x01, b'a', 0x01, b'b']);
    }

    #[test]
    fn requests_beyond_the_limits_fail_their_check() {
        let push = |n| Request::Push {
            events: vec![vec![1]; n],
        };
        assert!(push(1).check().is_ok());
        assert!(push(0).check().is_err());
        assert!(push(MAX_PUSH_EVENTS + 1).check().is_err());
        let ids = Request::Events {
            room: RoomId([0; 32]),
            ids: vec![EventId([0; 32]); MAX_IDS + 1],
        };
        assert!(ids.check().is_err());
        let blob = |len| Request::Blob {
            room: RoomId([0; 32]),
            event: EventId([0; 32]),
            hash: [0; 32],
            offset: 0,
            len,
        };
        assert!(blob(MAX_BLOB_CHUNK).check().is_ok());
        assert!(blob(0).check().is_err());
        assert!(blob(MAX_BLOB_CHUNK + 1).check().is_err());
    }

    #[test]
    fn verified_streaming_travels_on_the_third_version_only() {
        let bao = Request::BlobBao {
            room: RoomId([1; 32]),
            event: EventId([2; 32]),
            hash: [3; 32],
            first: 64,
            groups: MAX_BLOB_GROUPS,
        };
        assert!(bao.check().is_ok());
        let bad = |groups| Request::BlobBao {
            room: RoomId([1; 32]),
            event: EventId([2; 32]),
            hash: [3; 32],
            first: 0,
            groups,
        };
        assert!(bad(0).check().is_err());
        assert!(bad(MAX_BLOB_GROUPS + 1).check().is_err());
        assert!(speaks(&SYNC_PROTOCOL_3, &bao));
        assert!(!speaks(&SYNC_PROTOCOL_2, &bao));
        assert!(!speaks(&SYNC_PROTOCOL, &bao));
        let old = bad(1);
        let legacy = Request::Blob {
            room: RoomId([1; 32]),
            event: EventId([2; 32]),
            hash: [3; 32],
            offset: 0,
            len: 1,
        };
        assert!(speaks(&SYNC_PROTOCOL_3, &legacy) && speaks(&SYNC_PROTOCOL_2, &legacy));
        assert!(!speaks(&SYNC_PROTOCOL, &legacy));
        assert!(!speaks(&SYNC_PROTOCOL_2, &old));
        // Request index 5, Response index 6: appended after `Blob`.
        let bytes = postcard::to_stdvec(&bao).unwrap();
        assert_eq!(bytes[0], 0x05);
        assert_eq!(&bytes[bytes.len() - 2..], [0x40, 0x40]);
        let response = postcard::to_stdvec(&Response::BlobBao {
            size: 2,
            encoded: vec![7, 8],
        })
        .unwrap();
        assert_eq!(response, [0x06, 0x02, 0x02, 7, 8]);
    }

    #[tokio::test]
    async fn an_older_peer_is_never_sent_a_verified_streaming_request() {
        use libp2p::request_response::Codec as _;
        let bao = Request::BlobBao {
            room: RoomId([1; 32]),
            event: EventId([2; 32]),
            hash: [3; 32],
            first: 0,
            groups: 1,
        };
        let mut out = Cursor::new(Vec::new());
        let err = Codec
            .write_request(&SYNC_PROTOCOL_2, &mut out, bao.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(out.into_inner().is_empty(), "nothing was written");
        // And one received on `/2` is refused as a frame that does not
        // decode there.
        let mut frame = Cursor::new(Vec::new());
        write_frame(&mut frame, &bao, MAX_REQUEST_BYTES)
            .await
            .unwrap();
        let bytes = frame.into_inner();
        let err = Codec
            .read_request(&SYNC_PROTOCOL_2, &mut Cursor::new(bytes.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let back = Codec
            .read_request(&SYNC_PROTOCOL_3, &mut Cursor::new(bytes))
            .await
            .unwrap();
        assert_eq!(back, bao);
    }

    #[test]
    fn blob_variants_are_appended_last() {
        // docs/spec/federation.md#blobs: Request index 4, Response index 5.
        let request = postcard::to_stdvec(&Request::Blob {
            room: RoomId([1; 32]),
            event: EventId([2; 32]),
            hash: [3; 32],
            offset: 300,
            len: 4,
        })
        .unwrap();
        assert_eq!(request[0], 0x04);
        assert_eq!(&request[request.len() - 3..], [0xac, 0x02, 0x04]);
        let response = postcard::to_stdvec(&Response::Blob {
            size: 2,
            bytes: vec![7, 8],
        })
        .unwrap();
        assert_eq!(response, [0x05, 0x02, 0x02, 7, 8]);
    }
}
