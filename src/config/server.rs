//! `[server]`: the gRPC server's limits, so that no client (authenticated or
//! not) can exhaust the process: connections, their deadlines, HTTP/2
//! streams, calls in flight, call length and message size.

use std::time::Duration;

use serde::Deserialize;

/// `[server]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    max_connections: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    idle_timeout_secs: Option<u64>,
    keepalive_interval_secs: Option<u64>,
    keepalive_timeout_secs: Option<u64>,
    max_concurrent_streams: Option<u32>,
    max_connection_age_secs: Option<u64>,
    max_connection_age_grace_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_in_flight: Option<usize>,
    max_message_bytes: Option<usize>,
}

/// The server's limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Most open connections (further capped by the file-descriptor limit).
    pub max_connections: usize,
    /// From accept to a complete handshake.
    pub handshake_timeout: Duration,
    /// A connection without a call for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval, to find dead peers.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is dropped.
    pub keepalive_timeout: Duration,
    /// Concurrent calls (HTTP/2 streams) per connection.
    pub max_concurrent_streams: u32,
    /// After this long a connection is asked to go away (GOAWAY), so load
    /// spreads over new replicas.
    pub max_connection_age: Duration,
    /// How long calls in flight may finish after that.
    pub max_connection_age_grace: Duration,
    /// The deadline of a call that brings none (`grpc-timeout`); a shorter
    /// one of the caller's wins.
    pub request_timeout: Duration,
    /// Calls in flight at once in this process; beyond it a call is shed
    /// at once with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Largest request message decoded.
    pub max_message_bytes: usize,
}

impl RawServer {
    pub(super) fn resolve(self) -> Result<ServerLimits, String> {
        let limits = ServerLimits {
            max_connections: self.max_connections.unwrap_or(10_000),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms.unwrap_or(10_000)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.unwrap_or(300)),
            keepalive_interval: Duration::from_secs(self.keepalive_interval_secs.unwrap_or(30)),
            keepalive_timeout: Duration::from_secs(self.keepalive_timeout_secs.unwrap_or(10)),
            max_concurrent_streams: self.max_concurrent_streams.unwrap_or(256),
            max_connection_age: Duration::from_secs(self.max_connection_age_secs.unwrap_or(1_800)),
            max_connection_age_grace: Duration::from_secs(
                self.max_connection_age_grace_secs.unwrap_or(60),
            ),
            request_timeout: Duration::from_secs(self.request_timeout_secs.unwrap_or(60)),
            max_in_flight: self.max_in_flight.unwrap_or(2_048),
            max_message_bytes: self.max_message_bytes.unwrap_or(64 * 1024),
        };
        let checks: [(bool, &str); 9] = [
            (
                (16..=1_000_000).contains(&limits.max_connections),
                "max_connections: between 16 and 1000000",
            ),
            (
                (100..=120_000).contains(&limits.handshake_timeout.as_millis()),
                "handshake_timeout_ms: between 100 and 120000",
            ),
            (
                (1..=86_400).contains(&limits.idle_timeout.as_secs()),
                "idle_timeout_secs: between 1 and 86400",
            ),
            (
                (1..=3_600).contains(&limits.keepalive_interval.as_secs()),
                "keepalive_interval_secs: between 1 and 3600",
            ),
            (
                (1..=600).contains(&limits.keepalive_timeout.as_secs()),
                "keepalive_timeout_secs: between 1 and 600",
            ),
            (
                (1..=10_000).contains(&limits.max_concurrent_streams),
                "max_concurrent_streams: between 1 and 10000",
            ),
            (
                (10..=7 * 86_400).contains(&limits.max_connection_age.as_secs())
                    && limits.max_connection_age_grace.as_secs() <= 3_600,
                "max_connection_age_secs: between 10 and 604800, max_connection_age_grace_secs at most 3600",
            ),
            (
                (1..=3_600).contains(&limits.request_timeout.as_secs()),
                "request_timeout_secs: between 1 and 3600",
            ),
            (
                (1..=1_000_000).contains(&limits.max_in_flight)
                    && (1024..=16 << 20).contains(&limits.max_message_bytes),
                "max_in_flight: between 1 and 1000000, max_message_bytes between 1024 and 16777216",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(format!("server.{why}")),
            None => Ok(limits),
        }
    }
}
