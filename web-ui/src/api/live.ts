// The one WebSocket to the node (node/src/api/ws.rs).
//
// The node sends `ready`, then every stored event after our `since` cursor,
// then live events, each with its stream `seq`. We keep the highest seq we
// were handed as the cursor and reconnect with it after any drop, so a gap
// is filled by the node's backlog and nothing arrives twice. A ping sent
// right after `ready` is answered only once the backlog has been sent, so
// its pong tells us we have caught up to ready's seq even if none of the
// events in between were ours.
//
// Drops are detected three ways: the socket closes; our ping gets no pong in
// PONG_TIMEOUT (a half-open TCP connection after a network change); the
// browser says it went offline. Reconnects back off exponentially with
// jitter, and happen at once when the browser comes back online or the tab
// becomes visible.

import { accessToken, refresh } from './client';
import type { EventJson, NotificationJson, Presence, ServerFrame } from './types';

const PING_EVERY_MS = 25_000;
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

const CLOSE_LAGGED = 4000;
const CLOSE_UNAUTHORIZED = 4001;

export type LiveStatus = 'connecting' | 'live' | 'offline';

export interface LiveHandlers {
  event(event: EventJson, seq: number): void;
  /** Resolution changed its mind about earlier events of a room (a ban
   * merged late refuses the messages it raced). */
  acceptance(room: string, refused: string[], accepted: EventJson[]): void;
  /** Someone who shares a room with us is now online, away or offline. */
  presence(user: string, state: Presence): void;
  /** A new connection: presence starts over (the node sends who is
   * around after catching up). */
  presenceReset(): void;
  /** Someone started or stopped typing in one of our rooms. */
  typing(room: string, user: string, typing: boolean): void;
  /** A new notification for us (a mention, a reply, a DM...). */
  notification(notification: NotificationJson): void;
  status(status: LiveStatus): void;
  /** Caught up with the node after (re)connecting. */
  synced(): void;
  /** The node no longer accepts our session. */
  unauthorized(): void;
}

export class Live {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private pinger: ReturnType<typeof setInterval> | undefined;
  private pongDue: ReturnType<typeof setTimeout> | undefined;
  private readySeq = -1;
  /** What this connection last told the node (it starts online). */
  private presence: Presence = 'online';
  private stopped = false;
  /** Between deciding to connect and having a socket (the token may be renewed first). */
  private opening = false;
  private readonly onOnline = () => this.reconnectNow();
  private readonly onVisible = () => {
    if (document.visibilityState === 'visible') this.reconnectNow();
    this.sendPresence();
  };
  private readonly onOffline = () => this.drop();

  constructor(
    private cursor: number,
    private readonly handlers: LiveHandlers,
  ) {
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    void this.connect();
  }

  get seq(): number {
    return this.cursor;
  }

  stop(): void {
    this.stopped = true;
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retry);
    this.teardown();
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.ws || this.opening) return;
    this.handlers.status('connecting');
    this.opening = true;
    let token: string | null;
    try {
      token = await accessToken();
    } finally {
      this.opening = false;
    }
    if (this.stopped || this.ws) return;
    if (!token) {
      this.handlers.unauthorized();
      return;
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    // A handshake that hangs (blackholed network) counts as a drop; the
    // pong timer is reused since both mean "heard nothing in time".
    this.pongDue = setTimeout(() => {
      if (this.ws === ws) this.drop();
    }, PONG_TIMEOUT_MS);
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', token, since: this.cursor }));
    };
    ws.onmessage = (message) => {
      if (this.ws !== ws || typeof message.data !== 'string') return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(message.data) as ServerFrame;
      } catch {
        return;
      }
      this.frame(frame);
    };
    ws.onclose = (close) => {
      if (this.ws !== ws) return;
      this.teardown();
      if (this.stopped) return;
      this.handlers.status('offline');
      if (close.code === CLOSE_UNAUTHORIZED) {
        void refresh().then((alive) => {
          if (alive) this.scheduleRetry();
          else this.handlers.unauthorized();
        });
      } else if (close.code === CLOSE_LAGGED) {
        this.attempt = 0;
        void this.connect();
      } else {
        this.scheduleRetry();
      }
    };
  }

  private frame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'ready':
        this.attempt = 0;
        this.readySeq = frame.seq;
        clearTimeout(this.pongDue);
        this.pongDue = undefined;
        this.handlers.status('live');
        this.handlers.presenceReset();
        this.presence = 'online';
        this.sendPresence();
        this.ping();
        clearInterval(this.pinger);
        this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
        break;
      case 'event':
        if (frame.seq <= this.cursor) return;
        this.cursor = frame.seq;
        this.handlers.event(frame.event, frame.seq);
        break;
      case 'acceptance':
        // It follows its event's frame (when that was ours), same seq.
        if (frame.seq > this.cursor) this.cursor = frame.seq;
        this.handlers.acceptance(frame.room_id, frame.refused, frame.accepted);
        break;
      case 'presence':
        this.handlers.presence(frame.user_id, frame.state);
        break;
      case 'typing':
        this.handlers.typing(frame.room_id, frame.user_id, frame.typing);
        break;
      case 'notification':
        this.handlers.notification(frame.notification);
        break;
      case 'pong':
        clearTimeout(this.pongDue);
        this.pongDue = undefined;
        if (this.readySeq > this.cursor) this.cursor = this.readySeq;
        if (this.readySeq >= 0) {
          this.readySeq = -1;
          this.handlers.synced();
        }
        break;
    }
  }

  /** A connection starts online; a hidden page (another tab, the app in
   * the background) is away until it is shown again. */
  private sendPresence(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const state = document.visibilityState === 'hidden' ? 'away' : 'online';
    if (state === this.presence) return;
    this.presence = state;
    ws.send(JSON.stringify({ type: 'presence', state }));
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send('{"type":"ping"}');
    if (this.pongDue === undefined) {
      this.pongDue = setTimeout(() => {
        if (this.ws === ws) this.drop();
      }, PONG_TIMEOUT_MS);
    }
  }

  /** Treats the connection as lost now and starts reconnecting. */
  private drop(): void {
    if (!this.ws) return;
    this.teardown();
    this.handlers.status('offline');
    this.scheduleRetry();
  }

  private teardown(): void {
    clearInterval(this.pinger);
    clearTimeout(this.pongDue);
    this.pongDue = undefined;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
    }
  }

  private scheduleRetry(): void {
    clearTimeout(this.retry);
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt++;
    const wait = base / 2 + Math.random() * (base / 2);
    this.retry = setTimeout(() => void this.connect(), wait);
  }

  private reconnectNow(): void {
    if (this.stopped || this.ws || this.opening) return;
    clearTimeout(this.retry);
    this.attempt = 0;
    void this.connect();
  }
}
