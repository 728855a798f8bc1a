//! Connection status: the error a connection that serves no tokens answers
//! with, and the one log line (and metric) of every status change.

use crate::{
    domain::{Connection, ConnectionId, ConnectionStatus, ProviderId},
    error::Error,
};

/// The error for a connection in a status that serves no tokens.
pub(crate) fn unusable(
    id: ConnectionId,
    provider: &ProviderId,
    status: ConnectionStatus,
    reason: Option<&str>,
) -> Error {
    match status {
        ConnectionStatus::NeedsReauth => Error::NeedsReauth {
            id,
            provider: provider.clone(),
            reason: reason
                .unwrap_or("the provider refused its tokens")
                .to_owned(),
        },
        _ => Error::Revoked {
            id,
            provider: provider.clone(),
        },
    }
}

/// The connection if it can serve tokens, or the error saying why not.
pub(crate) fn usable(connection: Connection) -> Result<Connection, Error> {
    if connection.status == ConnectionStatus::Active {
        return Ok(connection);
    }
    Err(unusable(
        connection.id,
        &connection.provider,
        connection.status,
        connection.status_reason.as_deref(),
    ))
}

/// Logs a status change in one shape, for alerting.
pub(crate) fn log_change(connection: &Connection, to: ConnectionStatus, reason: &str) {
    crate::telemetry::metrics::metrics()
        .status_changes
        .add(1, &[opentelemetry::KeyValue::new("to", to.as_str())]);
    tracing::warn!(
        connection_id = %connection.id,
        provider = %connection.provider,
        from = connection.status.as_str(),
        to = to.as_str(),
        reason,
        "connection status changed"
    );
}
