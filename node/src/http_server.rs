//! The HTTP server under the API: it accepts TCP connections, caps how many
//! are open (in total and per client IP), serves HTTP/1.1 on each with
//! hyper, and bounds every phase of a connection in time
//! (docs/spec/api.md, "Connection limits").
//!
//! Who owns what: the accept loop owns the listener and the `Caps`; each
//! connection is one task owning its socket (`Io`), whose `Permit` is
//! given back when the socket is dropped — after a WebSocket upgrade that is
//! when the WebSocket ends, so upgraded connections count too. Per
//! connection, a watchdog closes it when a request's headers take longer
//! than `header_read_timeout_secs` (counted from the connection, or from the
//! first byte of a later request) or when it stays idle between requests
//! longer than `idle_timeout_secs`; a request body gets
//! `body_read_timeout_secs` from the end of its headers (`DeadlineBody`),
//! except an upload (`POST /api/v1/media`), which gets
//! `media.upload_timeout_secs` in all but must still make progress: a gap
//! of `body_read_timeout_secs` without a byte ends it too;
//! any write that makes no progress for `write_timeout_secs` fails and the
//! connection is dropped with a reset, so the kernel frees what it had
//! queued for a client that stopped reading.
//!
//! Handlers see the client's address as `ConnectInfo<SocketAddr>` and the
//! connection as a [`Connection`] extension. On the stop signal the server
//! stops accepting, lets in-flight requests finish and closes idle
//! connections; WebSockets close themselves on the same signal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::config::HttpConfig;
use crate::metrics::Metrics;

/// Refusals being answered at once. Each holds a socket for at most
/// `REFUSAL_TIME`; past this many, a refused connection is reset without
/// an answer rather than hold more descriptors.
const MAX_REFUSALS: usize = 64;
/// How long a refused connection is given to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Bytes of a refused client's request read (and dropped) so that closing
/// the socket sends a FIN after the answer, not a reset that could destroy it.
const REFUSAL_DRAIN: usize = 64 * 1024;
/// The automatic cap's ceiling: past this many connections a node wants an
/// operator's considered number (memory, proxies), not a guess.
const AUTO_CAP_CEILING: usize = 10_000;
/// The open-file limit assumed where the process cannot read its own.
const ASSUMED_FILE_LIMIT: usize = 1024;

/// The time and number limits of the server, from `[http]`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read: Duration,
    pub body_read: Duration,
    /// The whole body of an upload (`POST /api/v1/media`); the gap between
    /// two of its frames stays bounded by `body_read`.
    pub upload: Duration,
    pub idle: Duration,
    pub write: Duration,
    pub max_connections: usize,
    /// 0: no per-address cap.
    pub max_connections_per_ip: usize,
}

impl Limits {
    /// The configured limits; `max_connections` 0 becomes half the
    /// process's open-file limit (at most 10 000), and a configured cap at
    /// or above that limit is lowered below it.
    pub fn from_config(http: &HttpConfig) -> Limits {
        let file_limit = open_file_limit();
        let max_connections = if http.max_connections == 0 {
            (file_limit.unwrap_or(ASSUMED_FILE_LIMIT) / 2).clamp(1, AUTO_CAP_CEILING)
        } else {
            match file_limit {
                // The store, federation and refusals need descriptors too.
                Some(limit) if http.max_connections + MAX_REFUSALS * 2 > limit => {
                    let lowered = (limit / 2).max(1);
                    tracing::warn!(
                        configured = http.max_connections,
                        file_limit = limit,
                        lowered,
                        "http.max_connections is not below the open-file limit; lowered"
                    );
                    lowered
                }
                _ => http.max_connections,
            }
        };
        Limits {
            header_read: Duration::from_secs(http.header_read_timeout_secs),
            body_read: Duration::from_secs(http.body_read_timeout_secs),
            upload: Duration::from_secs(http.body_read_timeout_secs),
            idle: Duration::from_secs(http.idle_timeout_secs),
            write: Duration::from_secs(http.write_timeout_secs),
            max_connections,
            max_connections_per_ip: http.max_connections_per_ip,
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, where it can be read without
/// unsafe code (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .strip_prefix("Max open files")?
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX / 2),
        n => n.parse().ok(),
    }
}

/// Accepts and serves connections until `stop` turns true, then waits for
/// the connections that are not WebSockets to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    tls: Option<crate::tls::Tls>,
) -> io::Result<()> {
    tracing::debug!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        "HTTP connection caps"
    );
    let caps = Arc::new(Caps::new(
        limits.max_connections,
        limits.max_connections_per_ip,
        metrics.clone(),
    ));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let limits = Arc::new(limits);
    // Each connection task holds a receiver; all gone = all finished.
    let (all_closed, close_guard) = watch::channel(());
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // No Nagle: a chat server writes many small frames, and waiting for
        // the peer's delayed ACK added ~40 ms to delivery tails.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY");
        }
        let permit = match caps.acquire(addr.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                refuse(tcp, refusal, &refusals);
                continue;
            }
        };
        metrics.http_connections_accepted.add(1);
        let connection = Connection(Arc::new(Shared::new()));
        let io = Io {
            tcp,
            connection: connection.clone(),
            write_timeout: limits.write,
            stall: None,
            stalled: false,
            metrics: metrics.clone(),
            replacement: None,
            _permit: permit,
        };
        tokio::spawn(serve_connection(
            io,
            addr,
            connection,
            app.clone(),
            limits.clone(),
            metrics.clone(),
            stop.clone(),
            close_guard.clone(),
            tls.clone(),
        ));
    }
    drop(listener);
    drop(close_guard);
    all_closed.closed().await;
    Ok(())
}

/// Resolves once the stop signal is on (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// An accept error is about one connection (it is gone: go on) or about the
/// process (out of descriptors: wait a little rather than spin).
async fn accept_failed(error: io::Error) {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted => {}
        _ => {
            tracing::warn!(%error, "accepting an HTTP connection");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain-HTTP request to the HTTPS port gets before the connection
/// closes.
fn tls_required_answer() -> Vec<u8> {
    let body = serde_json::json!({
        "code": "tls_required",
        "message": "this port speaks HTTPS only; use an https:// (or wss://) URL",
    })
    .to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A connection: over TLS when the listener has it (a client that does not
/// open with a TLS handshake gets a plain `tls_required` answer), else
/// plain HTTP. The handshake has the header-read time.
#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    mut io: Io,
    addr: SocketAddr,
    connection: Connection,
    app: Router,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
    close_guard: watch::Receiver<()>,
    tls: Option<crate::tls::Tls>,
) {
    let Some(tls) = tls else {
        return serve_http(
            io,
            addr,
            connection,
            app,
            limits,
            metrics,
            stop,
            close_guard,
        )
        .await;
    };
    let mut first = [0; 1];
    match tokio::time::timeout(limits.header_read, io.tcp.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => {
            tracing::debug!(%addr, "plain HTTP on the HTTPS port; answered tls_required");
            // Straight to the socket: `Io` would take this for hyper's own
            // error answer and replace it.
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                io.tcp.write_all(&tls_required_answer()).await?;
                io.tcp.shutdown().await?;
                // Drain what the client sent so the close is a FIN after
                // the answer, not a reset that could destroy it.
                let mut sink = [0; 4096];
                let mut n_read = 0;
                while n_read < REFUSAL_DRAIN {
                    match io.tcp.read(&mut sink).await? {
                        0 => break,
                        n => n_read += n,
                    }
                }
                io::Result::Ok(())
            })
            .await;
            return;
        }
        _ => return,
    }
    let stream = match tokio::time::timeout(limits.header_read, tls.acceptor().accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, %addr, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics.http_closed_header_timeout.add(1);
            return;
        }
    };
    serve_http(
        stream,
        addr,
        connection,
        app,
        limits,
        metrics,
        stop,
        close_guard,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn serve_http<I>(
    io: I,
    addr: SocketAddr,
    connection: Connection,
    app: Router,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    _close_guard: watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let connection = connection.clone();
        let metrics = metrics.clone();
        let limits = limits.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            handle(
                request,
                addr,
                connection.clone(),
                app.clone(),
                (limits.body_read, limits.upload),
                metrics.clone(),
            )
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        // The watchdog below bounds header reads: hyper's own timer would
        // also run while a kept-alive connection is idle.
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let watchdog = connection.0.watchdog(limits.header_read, limits.idle);
    let mut watchdog = std::pin::pin!(watchdog);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %addr, "HTTP connection ended");
                }
                return;
            }
            timeout = watchdog.as_mut() => {
                match timeout {
                    Timeout::HeaderRead => metrics.http_closed_header_timeout.add(1),
                    Timeout::Idle => metrics.http_closed_idle_timeout.add(1),
                }
                tracing::debug!(?timeout, %addr, "HTTP connection timed out");
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: the client's address and the connection go in as
/// extensions, the body gets its deadline, and a body that missed it is
/// answered 408 on a connection that then closes.
async fn handle(
    request: Request<Incoming>,
    addr: SocketAddr,
    connection: Connection,
    mut app: Router,
    (body_read, upload): (Duration, Duration),
    metrics: Arc<Metrics>,
) -> Result<Response<FinishBody>, Infallible> {
    connection.0.set_phase(Phase::Busy);
    let (mut parts, incoming) = request.into_parts();
    // An upload may take long on a slow link but may not stall: its gap
    // between frames is what other bodies get in all.
    let (total, stall) = if parts.method == axum::http::Method::POST
        && parts.uri.path() == UPLOAD_PATH
        && upload > body_read
    {
        (upload, Some(body_read))
    } else {
        (body_read, None)
    };
    parts.extensions.insert(ConnectInfo(addr));
    parts.extensions.insert(connection.clone());
    let late = Arc::new(AtomicBool::new(false));
    let body = if hyper::body::Body::is_end_stream(&incoming) {
        Body::new(incoming)
    } else {
        Body::new(DeadlineBody {
            inner: incoming,
            deadline: Instant::now() + total,
            stall,
            timer: None,
            late: late.clone(),
        })
    };
    let response = app.call(Request::from_parts(parts, body)).await?;
    let response = if late.load(Ordering::Relaxed) {
        metrics.http_closed_body_timeout.add(1);
        // The `{code, message}` body of api.md, built here: this layer sits
        // below the API and does not import it.
        let body = serde_json::json!({
            "code": "body_timeout",
            "message": format!(
                "the request body did not arrive within {} s (or stalled for {} s)",
                total.as_secs(),
                body_read.as_secs()
            ),
        });
        let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        response
    };
    Ok(response.map(|body| FinishBody {
        inner: body,
        connection,
    }))
}

/// The connection as handlers see it (an extension of every request).
#[derive(Clone, Debug)]
pub struct Connection(Arc<Shared>);

impl Connection {
    /// Makes the socket close with a reset when it is dropped: whatever the
    /// kernel still holds for the client is discarded at once. For a
    /// client that stopped reading.
    pub fn reset_on_close(&self) {
        self.0.reset_on_close.store(true, Ordering::Relaxed);
    }

    /// A write on this connection made no progress within the write
    /// timeout; the connection is failing.
    pub fn write_timed_out(&self) -> bool {
        self.0.write_timed_out.load(Ordering::Relaxed)
    }
}

/// Where a connection is between requests, for the watchdog.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Reading a request's head since then (the connection was opened, or
    /// the first byte of a later request came).
    Head(Instant),
    /// Waiting for the next request since the last response ended.
    Idle(Instant),
    /// A request is being handled or answered.
    Busy,
}

#[derive(Clone, Copy, Debug)]
enum Timeout {
    HeaderRead,
    Idle,
}

#[derive(Debug)]
struct Shared {
    phase: Mutex<Phase>,
    reset_on_close: AtomicBool,
    write_timed_out: AtomicBool,
    /// Bytes written so far: a response still going out after its body was
    /// handed over is not idleness.
    written: AtomicU64,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            phase: Mutex::new(Phase::Head(Instant::now())),
            reset_on_close: AtomicBool::new(false),
            write_timed_out: AtomicBool::new(false),
            written: AtomicU64::new(0),
        }
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap() = phase;
    }

    /// Bytes came in: between requests, that starts a request's head.
    fn on_read(&self) {
        let mut phase = self.phase.lock().unwrap();
        if matches!(*phase, Phase::Idle(_)) {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// Resolves when the connection overstays its phase.
    ///
    /// It wakes at least every `header_read` and needs no signal from the
    /// request path: a phase that began since its last wake is seen at the
    /// next one, which is no later than that phase's own deadline.
    async fn watchdog(&self, header_read: Duration, idle: Duration) -> Timeout {
        // Idle means neither reading nor writing: hyper may still be
        // writing a large response when its body is done. `written` is
        // the count when the idle clock last (re)started.
        let mut current = None;
        let mut written = 0;
        let mut idle_from = Instant::now();
        loop {
            let phase = *self.phase.lock().unwrap();
            if current != Some(phase) {
                current = Some(phase);
                written = self.written.load(Ordering::Relaxed);
                if let Phase::Idle(since) = phase {
                    idle_from = since;
                }
            }
            let now = Instant::now();
            let wake = match phase {
                Phase::Head(since) => since + header_read,
                Phase::Idle(_) => (idle_from + idle).min(now + header_read),
                Phase::Busy => now + header_read,
            };
            tokio::time::sleep_until(wake).await;
            if *self.phase.lock().unwrap() != phase {
                continue;
            }
            let now = Instant::now();
            match phase {
                Phase::Head(since) if now >= since + header_read => return Timeout::HeaderRead,
                Phase::Idle(_) if now >= idle_from + idle => {
                    let now_written = self.written.load(Ordering::Relaxed);
                    if now_written == written {
                        return Timeout::Idle;
                    }
                    // Still writing: idle from now at the latest.
                    written = now_written;
                    idle_from = now;
                }
                _ => {}
            }
        }
    }
}

/// A response body that marks the connection idle when it is done (sent in
/// full, or dropped on an error).
#[derive(Debug)]
pub struct FinishBody {
    inner: Body,
    connection: Connection,
}

impl Drop for FinishBody {
    fn drop(&mut self) {
        self.connection.0.set_phase(Phase::Idle(Instant::now()));
    }
}

impl hyper::body::Body for FinishBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once its deadline passes before its end.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// The longest gap between two frames, when shorter than the deadline
    /// allows (uploads).
    stall: Option<Duration>,
    /// Armed the first time the body is not ready: most bodies come with
    /// their headers and never need a timer.
    timer: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

/// The route whose body gets `Limits::upload` (docs/spec/api.md, "Media").
const UPLOAD_PATH: &str = "/api/v1/media";

/// The error of a body that missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if self.stall.is_some() {
                // Progress: the next wait gets its own stall timer.
                self.timer = None;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = match self.stall {
            Some(stall) => self.deadline.min(Instant::now() + stall),
            None => self.deadline,
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        self.late.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket: reads tell the watchdog a request started; a
/// write that makes no progress within the write timeout fails. Dropped
/// while a write is stuck (or when asked to), it closes with a reset.
#[derive(Debug)]
struct Io {
    tcp: TcpStream,
    connection: Connection,
    write_timeout: Duration,
    /// Armed while a write is pending; reused across stalls.
    stall: Option<Pin<Box<Sleep>>>,
    /// The last write attempt could not proceed.
    stalled: bool,
    metrics: Arc<Metrics>,
    /// hyper's own answer to a request it could not parse, replaced by one
    /// with a `{code, message}` body: the bytes still to send, and how many
    /// are sent. Once set, whatever else hyper writes is dropped (it closes
    /// the connection after such an answer).
    replacement: Option<(Vec<u8>, usize)>,
    _permit: Permit,
}

/// hyper answers a request line or head it cannot parse (400), a URI too
/// long (414) or headers too large (431) itself, with an empty body, before
/// any request reaches the router. Such an answer is the only thing written
/// while the connection is still reading a request's head; this gives it
/// the `{code, message}` body every other error has (api.md, Errors).
fn replace_hyper_error(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let (status_line, code, message) = match status {
        b"431" => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            "the request's headers are too large",
        ),
        b"414" => (
            "414 URI Too Long",
            "uri_too_long",
            "the request's URI is too long",
        ),
        _ if status.starts_with(b"4") => (
            "400 Bad Request",
            "bad_request",
            "the request line or headers could not be parsed as HTTP/1.1",
        ),
        _ => return None,
    };
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    Some(
        format!(
            "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl Io {
    /// Writes hyper's `buf`, or the replacement of hyper's own error answer
    /// (see [`replace_hyper_error`]) in its place.
    fn poll_write_or_replace(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        if self.replacement.is_none() {
            let reading_head = matches!(*self.connection.0.phase.lock().unwrap(), Phase::Head(_));
            if !reading_head {
                return None;
            }
            self.replacement = Some((replace_hyper_error(buf)?, 0));
        }
        let (bytes, sent) = self.replacement.as_mut()?;
        while *sent < bytes.len() {
            let result = Pin::new(&mut self.tcp).poll_write(cx, &bytes[*sent..]);
            match result {
                Poll::Ready(Ok(n)) => *sent += n,
                other => {
                    let result = other.map_ok(|_| buf.len());
                    return Some(self.write_result(cx, result));
                }
            }
        }
        // hyper's bytes are taken, and dropped.
        Some(Poll::Ready(Ok(buf.len())))
    }

    fn write_result<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(result) = result {
            self.stalled = false;
            return Poll::Ready(result);
        }
        let deadline = Instant::now() + self.write_timeout;
        let stall = match &mut self.stall {
            Some(stall) => {
                if !self.stalled {
                    stall.as_mut().reset(deadline);
                }
                stall
            }
            None => self
                .stall
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.stalled = true;
        ready!(stall.as_mut().poll(cx));
        if !self
            .connection
            .0
            .write_timed_out
            .swap(true, Ordering::Relaxed)
        {
            self.metrics.http_closed_write_timeout.add(1);
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took nothing within the write timeout",
        )))
    }

    fn timed_out(&self) -> bool {
        self.connection.write_timed_out()
    }

    fn count_written(&self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = result {
            self.connection
                .0
                .written
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
    }
}

fn timed_out_error<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the connection's write timed out",
    )))
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.tcp).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.connection.0.on_read();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.timed_out() {
            return timed_out_error();
        }
        // Only a write that starts like a 4xx status line can be hyper's own
        // error answer: every other write skips the phase lock.
        if (self.replacement.is_some() || buf.starts_with(b"HTTP/1.1 4"))
            && let Some(replaced) = self.poll_write_or_replace(cx, buf)
        {
            return replaced;
        }
        let result = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.count_written(&result);
        self.write_result(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.timed_out() {
            return timed_out_error();
        }
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && (self.replacement.is_some() || first.starts_with(b"HTTP/1.1 4"))
        {
            let total = bufs.iter().map(|b| b.len()).sum::<usize>();
            if let Some(replaced) = self.poll_write_or_replace(cx, first) {
                return replaced.map_ok(|_| total);
            }
        }
        let result = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.count_written(&result);
        self.write_result(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.timed_out() {
            return timed_out_error();
        }
        let result = Pin::new(&mut self.tcp).poll_flush(cx);
        self.write_result(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if self.stalled
            || self.timed_out()
            || self.connection.0.reset_on_close.load(Ordering::Relaxed)
        {
            // SO_LINGER 0: close with a reset, dropping what is queued, so
            // the memory of a client that stopped reading is freed now
            // rather than after the kernel's retries.
            let _ = self.tcp.set_zero_linger();
        }
    }
}

/// Which cap refused a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Refusal {
    Total,
    PerIp,
}

/// The open connections, in total and per client address.
#[derive(Debug)]
struct Caps {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Caps {
    fn new(max_total: usize, max_per_ip: usize, metrics: Arc<Metrics>) -> Caps {
        Caps {
            max_total,
            max_per_ip,
            open: Mutex::default(),
            metrics,
        }
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut open = self.open.lock().unwrap();
        if open.total >= self.max_total {
            self.metrics.http_refused_total_cap.add(1);
            return Err(Refusal::Total);
        }
        let from_ip = open.per_ip.entry(ip).or_default();
        if self.max_per_ip != 0 && *from_ip >= self.max_per_ip {
            self.metrics.http_refused_per_ip_cap.add(1);
            return Err(Refusal::PerIp);
        }
        *from_ip += 1;
        open.total += 1;
        self.metrics.http_connections_open.add(1);
        Ok(Permit {
            caps: self.clone(),
            ip,
        })
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
struct Permit {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap();
        open.total -= 1;
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
        self.caps.metrics.http_connections_open.add(-1);
    }
}

/// Answers a refused connection with a small JSON error and closes it,
/// in a task of its own; past `MAX_REFUSALS` at once, resets it.
fn refuse(tcp: TcpStream, refusal: Refusal, refusals: &Arc<Semaphore>) {
    let Ok(slot) = refusals.clone().try_acquire_owned() else {
        let _ = tcp.set_zero_linger();
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let answer = refusal_answer(refusal);
        let mut tcp = tcp;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            tcp.write_all(&answer).await?;
            tcp.shutdown().await?;
            // Take what the client sent until it closes: closing with
            // unread data would reset the connection, and a reset can
            // destroy the answer before the client reads it.
            let mut sink = [0; 4096];
            let mut n_read = 0;
            while n_read < REFUSAL_DRAIN {
                match tcp.read(&mut sink).await? {
                    0 => break,
                    n => n_read += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
    });
}

/// A whole HTTP/1.1 response: the `{code, message}` error of a refusal.
fn refusal_answer(refusal: Refusal) -> Vec<u8> {
    let (status, code, message) = match refusal {
        Refusal::Total => (
            "503 Service Unavailable",
            "too_many_connections",
            "the node has as many open connections as it takes; retry later",
        ),
        Refusal::PerIp => (
            "429 Too Many Requests",
            "too_many_connections_from_address",
            "this address has as many open connections as the node allows one address; close one",
        ),
    };
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[test]
    fn the_open_file_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63420                63420                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        assert_eq!(
            parse_open_file_limit("Max open files unlimited unlimited files"),
            Some(usize::MAX / 2)
        );
        assert_eq!(parse_open_file_limit("nothing here"), None);
    }

    #[test]
    fn caps_count_per_address_and_in_total() {
        let caps = Arc::new(Caps::new(3, 2, Arc::default()));
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = caps.acquire(a).unwrap();
        let _second = caps.acquire(a).unwrap();
        assert_eq!(caps.acquire(a).unwrap_err(), Refusal::PerIp);
        let _third = caps.acquire(b).unwrap();
        assert_eq!(caps.acquire(b).unwrap_err(), Refusal::Total);
        drop(first);
        let _again = caps.acquire(a).unwrap();
        assert_eq!(caps.metrics.http_connections_open.get(), 3);
        assert_eq!(caps.metrics.http_refused_per_ip_cap.get(), 1);
        assert_eq!(caps.metrics.http_refused_total_cap.get(), 1);
    }

    #[test]
    fn refusals_are_complete_http_responses_with_an_error_body() {
        let answer = String::from_utf8(refusal_answer(Refusal::Total)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "too_many_connections");
    }

    /// The watchdog's rules, on paused time: a head gets `header_read` from
    /// the connection or its first byte; idleness gets `idle` from the end
    /// of a response, extended while the response is still being written;
    /// a request being handled is never timed out.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_times_heads_and_idleness() {
        let header_read = Duration::from_secs(10);
        let idle = Duration::from_secs(60);
        let second = Duration::from_secs(1);

        // A connection that sends nothing.
        let shared = Arc::new(Shared::new());
        let started = Instant::now();
        let timeout = shared.watchdog(header_read, idle).await;
        assert!(matches!(timeout, Timeout::HeaderRead));
        assert_eq!(started.elapsed().as_secs(), 10);

        // Busy for 100 s, then idle: 60 s after the response.
        let shared = Arc::new(Shared::new());
        shared.set_phase(Phase::Busy);
        let watchdog = tokio::spawn({
            let shared = shared.clone();
            async move { shared.watchdog(header_read, idle).await }
        });
        tokio::time::sleep(Duration::from_secs(100)).await;
        let idle_since = Instant::now();
        shared.set_phase(Phase::Idle(idle_since));
        // A byte 30 s later starts a head: 10 s for it, not the idle rest.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let first_byte = Instant::now();
        shared.on_read();
        assert!(matches!(watchdog.await.unwrap(), Timeout::HeaderRead));
        assert!(first_byte.elapsed() >= header_read && first_byte.elapsed() < header_read + second);

        // Idle while the response's tail is still written for 90 s.
        let shared = Arc::new(Shared::new());
        shared.set_phase(Phase::Idle(Instant::now()));
        let watchdog = tokio::spawn({
            let shared = shared.clone();
            async move { shared.watchdog(header_read, idle).await }
        });
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            shared.written.fetch_add(1, Ordering::Relaxed);
        }
        let last_write = Instant::now();
        assert!(matches!(watchdog.await.unwrap(), Timeout::Idle));
        // A full idle period after the last write, at most one more until
        // the write was noticed.
        assert!(last_write.elapsed() >= idle && last_write.elapsed() <= idle + idle);
    }

    /// Handlers get the client's address as `ConnectInfo<SocketAddr>`.
    #[tokio::test]
    async fn handlers_see_the_client_address() {
        let app = Router::new().route(
            "/addr",
            get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move { addr.to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let limits = Limits::from_config(&HttpConfig::default());
        let server = tokio::spawn(serve(listener, app, limits, Arc::default(), stopped, None));
        let mut tcp = TcpStream::connect(server_addr).await.unwrap();
        let client_addr = tcp.local_addr().unwrap();
        tcp.write_all(b"GET /addr HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with(&client_addr.to_string()), "{reply}");
        stop.send(true).unwrap();
        server.await.unwrap().unwrap();
    }
}
