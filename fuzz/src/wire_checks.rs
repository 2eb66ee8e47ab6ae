//! Properties of the federation sync frames (`spaces_federation::wire`,
//! docs/spec/federation.md#frames) on arbitrary bytes. Shared by the `wire`
//! fuzz target and by `crates/federation/tests/wire_fuzz_smoke.rs` (which
//! includes this file by path), so a stable `cargo test` checks what the
//! fuzzer does.
//!
//! A failed property panics: under libFuzzer that is a crash with the input
//! saved; under `cargo test` it is a failing test.

use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use futures_util::io::{AsyncRead, Cursor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use spaces_federation::wire::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response, read_frame, write_frame,
};

/// A stream over bytes in memory that counts what was read from it.
pub struct Counted<'a> {
    data: &'a [u8],
    pub read: usize,
}

impl<'a> Counted<'a> {
    pub fn new(data: &'a [u8]) -> Counted<'a> {
        Counted { data, read: 0 }
    }
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.data.len() - self.read);
        let at = self.read;
        buf[..n].copy_from_slice(&self.data[at..at + n]);
        self.read += n;
        Poll::Ready(Ok(n))
    }
}

/// Runs a future that never waits (its I/O is in memory) to its end.
pub fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("I/O in memory never waits"),
    }
}

/// Any bytes: the first byte picks the direction (even: a request frame,
/// odd: a response frame), the rest is what the peer sent on the stream.
pub fn check_wire(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => {
            if let Some(request) = check_frame::<Request>(rest, MAX_REQUEST_BYTES) {
                // The limits check takes any decoded request.
                let _ = request.check();
            }
        }
        Some((_, rest)) => {
            check_frame::<Response>(rest, MAX_RESPONSE_BYTES);
        }
        None => {}
    }
}

/// Reads `stream` as one frame of at most `max` bytes: never panics; a
/// length prefix beyond `max` is refused after reading the prefix alone
/// (nothing is allocated for it); a short stream is an early end; a
/// decoded message encodes again to a frame no longer than the one read,
/// which decodes to the same message.
pub fn check_frame<M>(stream: &[u8], max: usize) -> Option<M>
where
    M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut reader = Counted::new(stream);
    let result: io::Result<M> = now(read_frame(&mut reader, max));
    let Some(prefix) = stream.first_chunk::<4>() else {
        let err = result.expect_err("no frame without a length prefix");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        return None;
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > max {
        let err = result.expect_err("an oversized frame is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(reader.read, 4, "refused from the prefix alone");
        return None;
    }
    if stream.len() < 4 + len {
        let err = result.expect_err("a frame cut short does not decode");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        return None;
    }
    assert_eq!(reader.read, 4 + len, "nothing read past the frame");
    let message = match result {
        Ok(message) => message,
        Err(err) => {
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            return None;
        }
    };
    let mut written = Cursor::new(Vec::new());
    now(write_frame(&mut written, &message, max)).expect("a decoded message is written again");
    let written = written.into_inner();
    // Canonical varints are the shortest, and trailing bytes are dropped.
    assert!(written.len() <= 4 + len, "re-encoding grew the frame");
    let again: M = now(read_frame(&mut Counted::new(&written), max)).expect("it reads back");
    assert_eq!(again, message, "a frame round-trips");
    Some(message)
}
