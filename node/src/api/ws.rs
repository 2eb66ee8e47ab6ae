//! The WebSocket: one connection per client carries every event of every
//! room its user is in, in the node's stream order.
//!
//! Protocol (docs/spec/api.md §WebSocket): the client's first message is
//! `{"type":"auth","token":"<access token>","since":<seq>}`. The server
//! subscribes to the live stream *before* reading the backlog after `since`
//! from the store, sends the backlog, then `{"type":"caught_up","seq":N}`,
//! then live events with a higher seq —
//! so a reconnecting client gets no gap and no duplicate. Each event frame
//! carries its `seq`; the client keeps the last one as its cursor.
//!
//! Bounded everywhere: a client that falls more than `ws_lag_events` behind
//! the live stream is closed with code 4000 "lagged" (it reconnects and
//! resumes); one that answers no ping for 60 s is closed; one whose session
//! ends is closed at once (`Accounts::subscribe_ended`; the heartbeat checks
//! the session too, for an end this connection missed). A close handshake gets
//! `http.ws_close_timeout_secs`, and any write `http.write_timeout_secs`
//! (the HTTP server's socket enforces it); past either, the TCP connection
//! is dropped with a reset, so a client that stopped reading does not keep
//! megabytes queued in the kernel.

use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde::Deserialize;
use spaces_protocol::{Event, EventId, Presence, RoomId};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{ApiError, AppState, Authed, render, session};
use crate::engine::StreamItem;
use crate::http_server::Connection;

/// How long a new connection may take to authenticate.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Server pings this often; proxies commonly cut idle connections at 60 s.
const HEARTBEAT: Duration = Duration::from_secs(20);
/// A client silent for this long (no pong, no message) is gone.
const DEAD_AFTER: Duration = Duration::from_secs(60);
/// Backlog events read from the store per page.
const BACKLOG_PAGE: usize = 512;
/// Frames written before one flush when a client has a queue to catch up
/// on: enough to cut syscalls, few enough that one client cannot hog a
/// worker thread.
const MAX_FRAMES_PER_FLUSH: usize = 64;
/// Largest client frame: clients send small control messages only.
const MAX_CLIENT_FRAME: usize = 16 * 1024;
/// Read buffer of a connection: one largest client frame.
const READ_BUFFER: usize = MAX_CLIENT_FRAME;

pub const CLOSE_LAGGED: u16 = 4000;
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_PROTOCOL: u16 = 4002;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Auth {
        token: String,
        #[serde(default)]
        since: u64,
    },
    Ping,
    /// The client is in use (`online`) or idle (`away`); it cannot
    /// claim `offline`.
    Presence {
        state: Presence,
    },
}

pub async fn upgrade(
    State(state): State<AppState>,
    // Absent only when the router is served by something else (tests).
    connection: Option<Extension<Connection>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let connection = connection.map(|Extension(connection)| connection);
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    ws.max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        // tungstenite zero-fills its read buffer up to this size on reads;
        // at the default 128 KiB that was ~5% of the node's CPU with 100
        // clients connected. Clients send small frames.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(state, socket, connection))
}

async fn serve(state: AppState, mut socket: WebSocket, connection: Option<Connection>) {
    let Some((authed, since)) = authenticate(&state, &mut socket).await else {
        return;
    };
    state.metrics.ws_clients.add(1);
    let span = tracing::debug_span!("ws", user = %authed.user);
    let reason =
        tracing::Instrument::instrument(run(&state, &mut socket, &authed, since), span).await;
    state.metrics.ws_clients.add(-1);
    let metrics = state.metrics.clone();
    let close_timeout = Duration::from_secs(state.config.http.ws_close_timeout_secs);
    // The engine's handles go now: the node's stop waits for them, not for
    // clients' close handshakes.
    drop(state);
    let closed_in_time = match reason {
        Some((code, reason)) => close(&mut socket, code, reason, close_timeout).await,
        None => true,
    };
    if connection.as_ref().is_some_and(Connection::write_timed_out) {
        metrics.ws_dropped_write_timeout.add(1);
    } else if !closed_in_time {
        metrics.ws_dropped_close_timeout.add(1);
        if let Some(connection) = &connection {
            connection.reset_on_close();
        }
    }
}

/// The server's side of a close handshake: sends the close frame, then
/// waits for the client's (dropping anything before it). False when that
/// took longer than `within`.
async fn close(socket: &mut WebSocket, code: u16, reason: &'static str, within: Duration) -> bool {
    let handshake = async {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        if socket.send(frame).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    };
    tokio::time::timeout(within, handshake).await.is_ok()
}

async fn authenticate(state: &AppState, socket: &mut WebSocket) -> Option<(Authed, u64)> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let close = |reason: &'static str, code| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let text = match first {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => return None,
        Err(_) => {
            let _ = socket
                .send(close("authenticate within 10 s", CLOSE_UNAUTHORIZED))
                .await;
            return None;
        }
    };
    let Ok(ClientMessage::Auth { token, since }) = serde_json::from_str(&text) else {
        let _ = socket
            .send(close(
                "first message must be {\"type\":\"auth\",...}",
                CLOSE_PROTOCOL,
            ))
            .await;
        return None;
    };
    match session::authenticate(state, &token) {
        // A third-party client's token reads events with `read` only.
        Ok(authed)
            if authed
                .scopes
                .is_some_and(|scopes| !scopes.has(spaces_oidc::Scope::Read)) =>
        {
            let _ = socket
                .send(close("insufficient_scope", CLOSE_UNAUTHORIZED))
                .await;
            None
        }
        Ok(authed) => Some((authed, since)),
        Err(error) => {
            let _ = socket.send(close(error.code, CLOSE_UNAUTHORIZED)).await;
            None
        }
    }
}

/// Serves an authenticated client until it leaves or must be closed.
async fn run(
    state: &AppState,
    socket: &mut WebSocket,
    authed: &Authed,
    since: u64,
) -> Option<(u16, &'static str)> {
    // Subscribe first: anything stored from now on is in `live`, and the
    // end of this session in `ended`.
    let mut ended = state.accounts.subscribe_ended();
    let mut live = state.engine.subscribe();
    let last_seq = state.store.last_seq();
    if since > last_seq {
        // A cursor from the future (another node's, or a wiped store) would
        // silently hide every event up to it.
        return Some((CLOSE_PROTOCOL, "since is ahead of this node's stream"));
    }
    // The user is online while this connection lasts (and it says so),
    // unless a third-party client without `send` holds it: presence is
    // something the user says to others.
    let may_send = authed
        .scopes
        .is_none_or(|scopes| scopes.has(spaces_oidc::Scope::Send));
    let mut presence = if may_send {
        state.engine.client_connected(&authed.user)
    } else {
        None
    };
    socket
        .send(Message::Text(
            render::ready_frame(&authed.user, last_seq).into(),
        ))
        .await
        .ok()?;
    let mut cursor = since;
    loop {
        let page = match state.store.stream_after(cursor, BACKLOG_PAGE) {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "reading the stream backlog");
                return Some((1011, "internal error"));
            }
        };
        let done = page.len() < BACKLOG_PAGE;
        let page_after = cursor;
        if let Some(last) = page.last() {
            cursor = last.seq;
        }
        // What events of the page changed about earlier ones: told with
        // today's verdicts, right after the event that changed them.
        let flips = match state.store.flips_after(page_after, cursor) {
            Ok(flips) => flips,
            Err(error) => {
                tracing::error!(%error, "reading the stream's flip records");
                return Some((1011, "internal error"));
            }
        };
        let mut flips = flips.into_iter().peekable();
        let items: Vec<StreamItem> = page
            .into_iter()
            .filter_map(|stored| {
                Some(StreamItem::from_store(
                    stored.seq,
                    Event::decode_trusted(&stored.bytes).ok()?,
                ))
            })
            .collect();
        let verdicts = state.engine.backlog_filter(&authed.user, &items).await;
        for (item, deliver) in items.iter().zip(verdicts) {
            // Hidden by this node's moderation: never on a WebSocket.
            if deliver && !state.moderation.hides(&item.event) {
                socket
                    .feed(Message::Text(render::event_frame(item).to_owned().into()))
                    .await
                    .ok()?;
            }
            while let Some(record) = flips.next_if(|f| f.seq <= item.seq) {
                let room_id = RoomId(record.room_id);
                let flipped = record.flips.iter().map(|(id, _)| EventId(*id)).collect();
                if let Some((refused, accepted)) = state
                    .engine
                    .acceptance_for(&authed.user, &room_id, flipped)
                    .await
                {
                    let text = render::acceptance_frame(record.seq, room_id, &refused, &accepted);
                    socket.feed(Message::Text(text.into())).await.ok()?;
                }
            }
        }
        socket.flush().await.ok()?;
        if done {
            break;
        }
    }
    // The backlog is sent: from here on, live events. Clients that must
    // not act before they have caught up (and tests) wait for this frame.
    socket
        .send(Message::Text(render::caught_up_frame(cursor).into()))
        .await
        .ok()?;
    // Presence: who shares a room with the user and is around. Subscribed
    // first, so a change after the snapshot is not missed.
    let mut ephemeral = state.engine.subscribe_ephemeral();
    let mut notifications = state.notify.subscribe();
    for item in state.engine.presence_snapshot(&authed.user) {
        socket
            .feed(Message::Text(render::ephemeral(&item).to_owned().into()))
            .await
            .ok()?;
    }
    socket.flush().await.ok()?;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let mut stopped = state.stopped.clone();
    loop {
        tokio::select! {
            _ = stopped.changed() => return Some((1001, "node shutting down")),
            session_id = ended.recv() => match session_id {
                Ok(session_id) if session_id == authed.session_id => {
                    return Some((CLOSE_UNAUTHORIZED, "session_revoked"));
                }
                Ok(_) => {}
                // Missed some: look the session up.
                Err(RecvError::Lagged(_)) => {
                    if !matches!(state.store.session(&authed.session_id), Ok(Some(_))) {
                        return Some((CLOSE_UNAUTHORIZED, "session_revoked"));
                    }
                }
                Err(RecvError::Closed) => return Some((1001, "node shutting down")),
            },
            item = live.recv() => {
                // Take what is already queued too (bounded), and write it
                // with one flush: a client that fell behind catches up in
                // few syscalls instead of one per event.
                let mut item = item;
                let mut n_fed = 0;
                loop {
                    match item {
                        Ok(item) if item.seq > cursor => {
                            cursor = item.seq;
                            if state.engine.delivers_to(&authed.user, &item)
                                && !state.moderation.hides(&item.event)
                            {
                                let text = render::event_frame(&item).to_owned();
                                socket.feed(Message::Text(text.into())).await.ok()?;
                                n_fed += 1;
                            }
                            // Rare: most items change nothing about others.
                            let flipped: Vec<_> = item.flips.iter().map(|(id, _)| *id).collect();
                            if !flipped.is_empty()
                                && let Some((refused, accepted)) = state
                                    .engine
                                    .acceptance_for(&authed.user, &item.room_id, flipped)
                                    .await
                            {
                                let text = render::acceptance_frame(
                                    item.seq,
                                    item.room_id,
                                    &refused,
                                    &accepted,
                                );
                                socket.feed(Message::Text(text.into())).await.ok()?;
                                n_fed += 1;
                            }
                        }
                        Ok(_) => {} // already sent from the backlog
                        Err(RecvError::Lagged(_)) => {
                            state.metrics.ws_dropped_lagging.add(1);
                            return Some((CLOSE_LAGGED, "lagged: reconnect with your last seq"));
                        }
                        Err(RecvError::Closed) => return Some((1001, "node shutting down")),
                    }
                    if n_fed >= MAX_FRAMES_PER_FLUSH {
                        break;
                    }
                    match live.try_recv() {
                        Ok(next) => item = Ok(next),
                        Err(TryRecvError::Lagged(n)) => item = Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                if n_fed > 0 {
                    socket.flush().await.ok()?;
                }
            },
            item = ephemeral.recv() => match item {
                Ok(item) => {
                    // Typing, receipts and presence of others, in rooms the
                    // user is in.
                    if state.engine.ephemeral_for(&authed.user, &item) {
                        socket.send(Message::Text(render::ephemeral(&item).to_owned().into())).await.ok()?;
                    }
                }
                // Lossy by design: missed notices are simply skipped.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Some((1001, "node shutting down")),
            },
            note = notifications.recv() => match note {
                Ok(note) => {
                    if note.user == authed.user {
                        let text = render::notification_frame(&note.at);
                        socket.send(Message::Text(text.into())).await.ok()?;
                    }
                }
                // The list and the unread count stay right; a frame or two
                // is skipped.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Some((1001, "node shutting down")),
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Ping) => {
                            socket.send(Message::Text(render::PONG_FRAME.into())).await.ok()?;
                        }
                        Ok(ClientMessage::Presence { state: reported }) if reported != Presence::Offline => {
                            // Counted against the send budget, so flapping
                            // costs the client, not the federation; over it,
                            // the report is dropped.
                            if let Some(presence) = &mut presence
                                && super::rooms::rate(state, authed).is_ok()
                            {
                                presence.set(reported);
                            }
                        }
                        _ => return Some((CLOSE_PROTOCOL, "unknown message")),
                    }
                }
                Some(Ok(Message::Pong(_) | Message::Ping(_))) => last_heard = Instant::now(),
                Some(Ok(Message::Binary(_))) => return Some((CLOSE_PROTOCOL, "text frames only")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    return Some((1001, "no pong"));
                }
                if !matches!(state.store.session(&authed.session_id), Ok(Some(_))) {
                    return Some((CLOSE_UNAUTHORIZED, "session_revoked"));
                }
                socket.send(Message::Ping(Default::default())).await.ok()?;
            }
        }
    }
}
