//! The service's metrics. Instruments are created once, after the meter
//! provider is installed; before that (or without export) they are no-ops.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram},
};

/// Every instrument authbroker records.
pub struct Metrics {
    /// `authbroker.rpc.duration` (s), by `rpc.method` and `rpc.grpc.status_code`.
    pub rpc_duration: Histogram<f64>,
    /// `authbroker.provider.duration` (s), by `provider`, `endpoint`, `outcome`.
    pub provider_duration: Histogram<f64>,
    /// `authbroker.refreshes`, by `outcome`.
    pub refreshes: Counter<u64>,
    /// `authbroker.token_cache.lookups`, by `result` (hit, miss).
    pub cache_lookups: Counter<u64>,
    /// `authbroker.connection.status_changes`, by `to`.
    pub status_changes: Counter<u64>,
    /// `authbroker.refresh.background`, by `provider` and `outcome` (renewed,
    /// busy, failed, needs_reauth, gone, rescheduled).
    pub background_refreshes: Counter<u64>,
    /// `authbroker.refresh.lateness` (s), by `provider`: how long after its
    /// due instant a connection was claimed for a background refresh.
    pub refresh_lateness: Histogram<f64>,
    /// `authbroker.listener.shed`, by `listener` and `reason` (evicted: an
    /// idle or unfinished connection closed to make room; refused: a new one
    /// closed because every open connection carried a call).
    pub connections_shed: Counter<u64>,
    /// `authbroker.audit.dropped`: audit events that reached the log but not
    /// the table (queue full, or the database failing).
    pub audit_dropped: Counter<u64>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Bucket bounds of the durations, in seconds: the SDK's default bounds
/// (0 to 10,000) are made for milliseconds and would put every call of
/// this service in one bucket.
const SECONDS: [f64; 16] = [
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];
/// Bucket bounds of the background refresh lateness, in seconds.
const LATENESS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Connections due for a background refresh, by provider, as last counted;
/// read by an observable gauge.
static DUE: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Connections by status, as last counted; read by an observable gauge.
static CONNECTIONS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
const STATUSES: [&str; 3] = ["ACTIVE", "NEEDS_REAUTH", "REVOKED"];

/// Creates the instruments against the installed meter provider.
pub fn init() {
    let _ = metrics();
}

/// The instruments.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let meter = global::meter("authbroker");
        meter
            .u64_observable_gauge("authbroker.connections")
            .with_description("Stored connections by status")
            .with_callback(|observer| {
                for (i, status) in STATUSES.iter().enumerate() {
                    observer.observe(
                        CONNECTIONS[i].load(Ordering::Relaxed),
                        &[KeyValue::new("status", *status)],
                    );
                }
            })
            .build();
        meter
            .u64_observable_gauge("authbroker.refresh.due")
            .with_description("Connections due for a background refresh, by provider")
            .with_callback(|observer| {
                let due = DUE.lock().unwrap_or_else(|e| e.into_inner());
                for (provider, n) in due.iter() {
                    observer.observe(*n, &[KeyValue::new("provider", provider.clone())]);
                }
            })
            .build();
        Metrics {
            rpc_duration: meter
                .f64_histogram("authbroker.rpc.duration")
                .with_unit("s")
                .with_description("Duration of served RPCs")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            provider_duration: meter
                .f64_histogram("authbroker.provider.duration")
                .with_unit("s")
                .with_description("Duration of calls to providers")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            refreshes: meter
                .u64_counter("authbroker.refreshes")
                .with_description("Token refreshes by outcome")
                .build(),
            cache_lookups: meter
                .u64_counter("authbroker.token_cache.lookups")
                .with_description("Token cache lookups by result")
                .build(),
            status_changes: meter
                .u64_counter("authbroker.connection.status_changes")
                .with_description("Connection status changes by new status")
                .build(),
            background_refreshes: meter
                .u64_counter("authbroker.refresh.background")
                .with_description("Background refreshes by provider and outcome")
                .build(),
            refresh_lateness: meter
                .f64_histogram("authbroker.refresh.lateness")
                .with_unit("s")
                .with_description("How late after its due instant a background refresh was claimed")
                .with_boundaries(LATENESS.to_vec())
                .build(),
            connections_shed: meter
                .u64_counter("authbroker.listener.shed")
                .with_description("Connections closed by a full listener, by listener and reason")
                .build(),
            audit_dropped: meter
                .u64_counter("authbroker.audit.dropped")
                .with_description("Audit events not stored in the audit table")
                .build(),
        }
    })
}

/// Records the latest count of connections in `status`.
pub fn set_connection_count(status: &str, count: u64) {
    if let Some(i) = STATUSES.iter().position(|s| *s == status) {
        CONNECTIONS[i].store(count, Ordering::Relaxed);
    }
}

/// Counts one refresh outcome.
pub fn refresh(outcome: &'static str) {
    metrics()
        .refreshes
        .add(1, &[KeyValue::new("outcome", outcome)]);
}

/// Counts one background refresh outcome for `provider`.
pub fn proactive(provider: &str, outcome: &'static str) {
    metrics().background_refreshes.add(
        1,
        &[
            KeyValue::new("provider", provider.to_owned()),
            KeyValue::new("outcome", outcome),
        ],
    );
}

/// Records how late (s) a background refresh of `provider` was claimed.
pub fn refresh_lateness(provider: &str, late_secs: i64) {
    metrics().refresh_lateness.record(
        late_secs as f64,
        &[KeyValue::new("provider", provider.to_owned())],
    );
}

/// Counts one connection a full `listener` closed, for `reason`.
pub fn connection_shed(listener: &'static str, reason: &'static str) {
    metrics().connections_shed.add(
        1,
        &[
            KeyValue::new("listener", listener),
            KeyValue::new("reason", reason),
        ],
    );
}

/// Counts audit events that were not stored.
pub fn audit_dropped(n: u64) {
    metrics().audit_dropped.add(n, &[]);
}

/// Replaces the due-queue depths (providers not listed have none due).
pub fn set_due_depth(rows: Vec<(String, u64)>) {
    let mut due = DUE.lock().unwrap_or_else(|e| e.into_inner());
    for n in due.values_mut() {
        *n = 0;
    }
    due.extend(rows);
}
