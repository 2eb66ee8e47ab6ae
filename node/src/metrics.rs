//! Prometheus metrics, hand-rolled: a few atomics rendered as text at
//! `/metrics`. No registry crate for a dozen numbers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: Counter,
    pub http_client_errors: Counter,
    pub http_server_errors: Counter,
    pub events_stored: Counter,
    pub commits: Counter,
    pub events_refused: Counter,
    pub ws_clients: Gauge,
    pub ws_dropped_lagging: Counter,
    /// Sign-ins whose password was wrong (or whose username is unknown).
    pub login_failures: Counter,
    /// Sign-ins refused with 429 before their password was checked.
    pub login_throttled: Counter,
    /// 1 while node-wide sign-in failures exceed `login.alarm_failures_per_min`.
    pub login_failure_alarm: Gauge,
    /// Sign-ups refused with 429, by the per-address limit or the node-wide one.
    pub registrations_throttled: Counter,
    /// WebSockets dropped because a write made no progress in time.
    pub ws_dropped_write_timeout: Counter,
    /// WebSockets dropped because the close handshake did not finish in time.
    pub ws_dropped_close_timeout: Counter,
    pub http_connections_open: Gauge,
    pub http_connections_accepted: Counter,
    /// Refused at `http.max_connections`.
    pub http_refused_total_cap: Counter,
    /// Refused at `http.max_connections_per_ip`.
    pub http_refused_per_ip_cap: Counter,
    pub http_closed_header_timeout: Counter,
    pub http_closed_body_timeout: Counter,
    pub http_closed_idle_timeout: Counter,
    /// Every connection, WebSocket or not, whose write made no progress.
    pub http_closed_write_timeout: Counter,
    /// Notifications written by the notifier.
    pub notifications: Counter,
    /// Microseconds the notifier spent deciding and writing batches.
    pub notify_busy_micros: Counter,
    /// The last stream seq the notifier has handled.
    pub notify_seq: Gauge,
}

impl Metrics {
    /// The Prometheus text exposition. `writer_queue` and `rooms` are read
    /// at scrape time from their owners.
    pub fn render(&self, writer_queue: usize, rooms: usize) -> String {
        let mut out = String::new();
        // One family with a sample per label value.
        let mut labeled = |name: &str, help: &str, label: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (value, n) in samples {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
            }
        };
        labeled(
            "spaces_http_connections_refused_total",
            "HTTP connections refused at a connection cap.",
            "limit",
            &[
                ("total", self.http_refused_total_cap.get()),
                ("per_ip", self.http_refused_per_ip_cap.get()),
            ],
        );
        labeled(
            "spaces_http_connections_timed_out_total",
            "HTTP connections closed by a time limit.",
            "timeout",
            &[
                ("header_read", self.http_closed_header_timeout.get()),
                ("body_read", self.http_closed_body_timeout.get()),
                ("idle", self.http_closed_idle_timeout.get()),
                ("write", self.http_closed_write_timeout.get()),
            ],
        );
        labeled(
            "spaces_ws_dropped_timeout_total",
            "WebSocket connections dropped by a time limit.",
            "timeout",
            &[
                ("write", self.ws_dropped_write_timeout.get()),
                ("close", self.ws_dropped_close_timeout.get()),
            ],
        );
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "spaces_http_connections_open",
            "gauge",
            "Open HTTP connections, WebSockets included.",
            self.http_connections_open.get().to_string(),
        );
        metric(
            "spaces_http_connections_accepted_total",
            "counter",
            "HTTP connections accepted (under the caps).",
            self.http_connections_accepted.get().to_string(),
        );
        metric(
            "spaces_http_requests_total",
            "counter",
            "HTTP requests served.",
            self.http_requests.get().to_string(),
        );
        metric(
            "spaces_http_client_errors_total",
            "counter",
            "HTTP responses with a 4xx status.",
            self.http_client_errors.get().to_string(),
        );
        metric(
            "spaces_http_server_errors_total",
            "counter",
            "HTTP responses with a 5xx status.",
            self.http_server_errors.get().to_string(),
        );
        metric(
            "spaces_events_stored_total",
            "counter",
            "Events durably stored.",
            self.events_stored.get().to_string(),
        );
        metric(
            "spaces_store_commits_total",
            "counter",
            "Group commits (one fsync each).",
            self.commits.get().to_string(),
        );
        metric(
            "spaces_events_refused_total",
            "counter",
            "Events refused by the auth rules or checks.",
            self.events_refused.get().to_string(),
        );
        metric(
            "spaces_ws_clients",
            "gauge",
            "Connected WebSocket clients.",
            self.ws_clients.get().to_string(),
        );
        metric(
            "spaces_ws_dropped_lagging_total",
            "counter",
            "WebSocket clients dropped for falling behind.",
            self.ws_dropped_lagging.get().to_string(),
        );
        metric(
            "spaces_login_failures_total",
            "counter",
            "Sign-ins refused for a wrong username or password.",
            self.login_failures.get().to_string(),
        );
        metric(
            "spaces_login_throttled_total",
            "counter",
            "Sign-ins refused with 429 before their password was checked.",
            self.login_throttled.get().to_string(),
        );
        metric(
            "spaces_login_failure_alarm",
            "gauge",
            "1 while failed sign-ins over the last minute exceed login.alarm_failures_per_min.",
            self.login_failure_alarm.get().to_string(),
        );
        metric(
            "spaces_registrations_throttled_total",
            "counter",
            "Sign-ups refused with 429 (per address or node-wide).",
            self.registrations_throttled.get().to_string(),
        );
        metric(
            "spaces_writer_queue_depth",
            "gauge",
            "Write requests waiting for the writer.",
            writer_queue.to_string(),
        );
        metric(
            "spaces_rooms",
            "gauge",
            "Rooms this node holds.",
            rooms.to_string(),
        );
        metric(
            "spaces_notifications_total",
            "counter",
            "Notifications written for this node's users.",
            self.notifications.get().to_string(),
        );
        metric(
            "spaces_notify_busy_microseconds_total",
            "counter",
            "Time the notifier spent deciding and writing notifications.",
            self.notify_busy_micros.get().to_string(),
        );
        metric(
            "spaces_notify_seq",
            "gauge",
            "The last stream seq the notifier has handled.",
            self.notify_seq.get().to_string(),
        );
        out
    }
}

/// The bound on inbound federation requests, read from federation at
/// scrape time (it owns the counters).
pub fn render_federation(stats: &spaces_federation::InboundStats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "spaces_federation_inbound_capacity",
        "gauge",
        "Inbound federation requests the node works on at once (p2p.max_inbound_requests).",
        stats.capacity.to_string(),
    );
    metric(
        "spaces_federation_inbound_in_flight",
        "gauge",
        "Inbound federation requests being worked on or answered.",
        stats.in_flight.to_string(),
    );
    metric(
        "spaces_federation_busy_total",
        "counter",
        "Inbound federation requests answered busy because the bound was reached.",
        stats.busy_sent.to_string(),
    );
    metric(
        "spaces_federation_busy_charged_total",
        "counter",
        "Busy answers charged to a peer holding more than its share of the bound.",
        stats.busy_charged.to_string(),
    );
    metric(
        "spaces_federation_busy_received_total",
        "counter",
        "Busy answers received from other nodes.",
        stats.busy_received.to_string(),
    );
    out
}
