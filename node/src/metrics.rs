//! Prometheus metrics, hand-rolled: a few atomics rendered as text at
//! `/metrics`. No registry crate for a few dozen numbers and one histogram.
//! `packaging/grafana/spaces.json` is a dashboard of them; a test checks
//! that every metric it plots is one this module renders.

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

/// One sample of a family without labels, with its help and type lines.
fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Upper bounds (seconds) of the store commit histogram's buckets: an
/// fsync on an idle SSD takes well under a millisecond, a loaded disk tens.
const COMMIT_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// A Prometheus histogram of durations over [`COMMIT_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; COMMIT_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let i = COMMIT_BUCKETS.partition_point(|&bound| bound < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            count += bucket.load(Ordering::Relaxed);
            match COMMIT_BUCKETS.get(i) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
                }
            }
        }
        // For display only: nanoseconds to seconds.
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: Counter,
    pub http_client_errors: Counter,
    pub http_server_errors: Counter,
    pub events_stored: Counter,
    pub commits: Counter,
    /// How long each group commit of the writer took, fsync included.
    pub commit_seconds: Histogram,
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
    /// Digests queued by the mailer.
    pub email_digests_queued: Counter,
    /// Times the mailer looked at a user with something for a digest and
    /// decided to wait (present, not away long enough, or within the period).
    pub email_digests_deferred: Counter,
    /// Mails the SMTP relay accepted, and mails it did not.
    pub email_sent: Counter,
    pub email_failed: Counter,
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
        let mut metric = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
            sample(&mut out, name, kind, help, value);
        };
        metric(
            "spaces_http_connections_open",
            "gauge",
            "Open HTTP connections, WebSockets included.",
            &self.http_connections_open.get(),
        );
        metric(
            "spaces_http_connections_accepted_total",
            "counter",
            "HTTP connections accepted (under the caps).",
            &self.http_connections_accepted.get(),
        );
        metric(
            "spaces_http_requests_total",
            "counter",
            "HTTP requests served.",
            &self.http_requests.get(),
        );
        metric(
            "spaces_http_client_errors_total",
            "counter",
            "HTTP responses with a 4xx status.",
            &self.http_client_errors.get(),
        );
        metric(
            "spaces_http_server_errors_total",
            "counter",
            "HTTP responses with a 5xx status.",
            &self.http_server_errors.get(),
        );
        metric(
            "spaces_events_stored_total",
            "counter",
            "Events durably stored.",
            &self.events_stored.get(),
        );
        metric(
            "spaces_store_commits_total",
            "counter",
            "Group commits (one fsync each).",
            &self.commits.get(),
        );
        metric(
            "spaces_events_refused_total",
            "counter",
            "Events refused by the auth rules or checks.",
            &self.events_refused.get(),
        );
        metric(
            "spaces_ws_clients",
            "gauge",
            "Connected WebSocket clients.",
            &self.ws_clients.get(),
        );
        metric(
            "spaces_ws_dropped_lagging_total",
            "counter",
            "WebSocket clients dropped for falling behind.",
            &self.ws_dropped_lagging.get(),
        );
        metric(
            "spaces_login_failures_total",
            "counter",
            "Sign-ins refused for a wrong username or password.",
            &self.login_failures.get(),
        );
        metric(
            "spaces_login_throttled_total",
            "counter",
            "Sign-ins refused with 429 before their password was checked.",
            &self.login_throttled.get(),
        );
        metric(
            "spaces_login_failure_alarm",
            "gauge",
            "1 while failed sign-ins over the last minute exceed login.alarm_failures_per_min.",
            &self.login_failure_alarm.get(),
        );
        metric(
            "spaces_registrations_throttled_total",
            "counter",
            "Sign-ups refused with 429 (per address or node-wide).",
            &self.registrations_throttled.get(),
        );
        metric(
            "spaces_writer_queue_depth",
            "gauge",
            "Write requests waiting for the writer.",
            &writer_queue,
        );
        metric("spaces_rooms", "gauge", "Rooms this node holds.", &rooms);
        metric(
            "spaces_notifications_total",
            "counter",
            "Notifications written for this node's users.",
            &self.notifications.get(),
        );
        metric(
            "spaces_notify_busy_microseconds_total",
            "counter",
            "Time the notifier spent deciding and writing notifications.",
            &self.notify_busy_micros.get(),
        );
        metric(
            "spaces_notify_seq",
            "gauge",
            "The last stream seq the notifier has handled.",
            &self.notify_seq.get(),
        );
        metric(
            "spaces_email_digests_queued_total",
            "counter",
            "Email digests queued.",
            &self.email_digests_queued.get(),
        );
        metric(
            "spaces_email_digests_deferred_total",
            "counter",
            "Times a user's digest was put off (present, not away long enough, or within the period).",
            &self.email_digests_deferred.get(),
        );
        metric(
            "spaces_email_sent_total",
            "counter",
            "Mails the SMTP relay accepted.",
            &self.email_sent.get(),
        );
        metric(
            "spaces_email_failed_total",
            "counter",
            "Mails not sent (the relay refused them or did not answer).",
            &self.email_failed.get(),
        );
        self.commit_seconds.render(
            &mut out,
            "spaces_store_commit_seconds",
            "Time of each group commit of the writer (events and indexes written, fsync included).",
        );
        out
    }
}

/// The largest rooms, by events held, with the other nodes each reaches:
/// one sample per room, labelled with its id. Bounded by the caller
/// ([`MAX_ROOM_SAMPLES`]) so a node with many rooms stays cheap to scrape.
pub fn render_rooms(rooms: &[(spaces_protocol::RoomId, usize, usize)]) -> String {
    let mut out = String::new();
    for (name, help, column) in [
        (
            "spaces_room_events",
            "Events this node holds of the room (its largest rooms only).",
            0,
        ),
        (
            "spaces_room_nodes",
            "Other nodes with a member in the room (its largest rooms only).",
            1,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (room, events, nodes) in rooms {
            let value = if column == 0 { events } else { nodes };
            let _ = writeln!(out, "{name}{{room=\"{room}\"}} {value}");
        }
    }
    out
}

/// Rooms in the per-room metrics: the largest by events.
pub const MAX_ROOM_SAMPLES: usize = 20;

/// What has crossed federation (read from federation at scrape time).
pub fn render_traffic(stats: &spaces_federation::TrafficStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP spaces_federation_gossip_received_total Gossip messages received, by validation outcome.\n\
         # TYPE spaces_federation_gossip_received_total counter"
    );
    for (outcome, n) in [
        ("accepted", stats.gossip_accepted),
        ("rejected", stats.gossip_rejected),
        ("ignored", stats.gossip_ignored),
    ] {
        let _ = writeln!(
            out,
            "spaces_federation_gossip_received_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    let mut metric = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
        sample(&mut out, name, kind, help, value);
    };
    metric(
        "spaces_federation_peers",
        "gauge",
        "Peers with an open federation connection.",
        &stats.peers_connected,
    );
    metric(
        "spaces_federation_gossip_published_total",
        "counter",
        "This node's events published on room topics.",
        &stats.gossip_published,
    );
    metric(
        "spaces_federation_gossip_publish_failed_total",
        "counter",
        "Publishes with no subscribed peer yet (the event went by push).",
        &stats.gossip_publish_failed,
    );
    metric(
        "spaces_federation_pushes_total",
        "counter",
        "Events pushed to nodes gossip does not reach.",
        &stats.pushes_sent,
    );
    metric(
        "spaces_federation_requests_sent_total",
        "counter",
        "Federation requests sent (pushes, backfill, events, joins, invites).",
        &stats.requests_sent,
    );
    metric(
        "spaces_federation_requests_received_total",
        "counter",
        "Federation requests received.",
        &stats.requests_received,
    );
    metric(
        "spaces_federation_syncs_total",
        "counter",
        "Syncs (backfill from one node) started.",
        &stats.syncs,
    );
    metric(
        "spaces_federation_syncs_running",
        "gauge",
        "Syncs running now.",
        &stats.syncs_running,
    );
    metric(
        "spaces_federation_sync_events_total",
        "counter",
        "Events syncs brought that gossip and push had not: the catch-up volume.",
        &stats.sync_events,
    );
    out
}

/// The bound on inbound federation requests, read from federation at
/// scrape time (it owns the counters).
pub fn render_federation(stats: &spaces_federation::InboundStats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: &dyn std::fmt::Display| {
        sample(&mut out, name, kind, help, value);
    };
    metric(
        "spaces_federation_inbound_capacity",
        "gauge",
        "Inbound federation requests the node works on at once (p2p.max_inbound_requests).",
        &stats.capacity,
    );
    metric(
        "spaces_federation_inbound_in_flight",
        "gauge",
        "Inbound federation requests being worked on or answered.",
        &stats.in_flight,
    );
    metric(
        "spaces_federation_busy_total",
        "counter",
        "Inbound federation requests answered busy because the bound was reached.",
        &stats.busy_sent,
    );
    metric(
        "spaces_federation_busy_charged_total",
        "counter",
        "Busy answers charged to a peer holding more than its share of the bound.",
        &stats.busy_charged,
    );
    metric(
        "spaces_federation_busy_received_total",
        "counter",
        "Busy answers received from other nodes.",
        &stats.busy_received,
    );
    out
}
