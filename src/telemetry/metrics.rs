//! The service's metrics. Instruments are created once, after the meter
//! provider is installed; before that (or without export) they are no-ops.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
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
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

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
        Metrics {
            rpc_duration: meter
                .f64_histogram("authbroker.rpc.duration")
                .with_unit("s")
                .with_description("Duration of served RPCs")
                .build(),
            provider_duration: meter
                .f64_histogram("authbroker.provider.duration")
                .with_unit("s")
                .with_description("Duration of calls to providers")
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
