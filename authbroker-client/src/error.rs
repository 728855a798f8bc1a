//! Errors as data: the gRPC status decoded into the reason, metadata and
//! retry delay the server put in its details, so callers switch on
//! [`pb::ErrorReason`] instead of parsing messages.

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::pb::ErrorReason;

/// A failed call.
#[derive(Debug, Clone)]
pub struct Error {
    /// The gRPC status code.
    pub code: Code,
    /// The reason from `google.rpc.ErrorInfo` (UNSPECIFIED when the answer
    /// had none, e.g. from a proxy).
    pub reason: ErrorReason,
    /// The ErrorInfo metadata (`connection_id`, `provider`, `missing`, …).
    pub metadata: HashMap<String, String>,
    /// How long the server asked to wait before trying again
    /// (`google.rpc.RetryInfo`); `None` where a retry does not help.
    pub retry_after: Option<Duration>,
    /// The fields a bad request named (`google.rpc.BadRequest`).
    pub fields: Vec<String>,
    /// The server's message.
    pub message: String,
}

impl Error {
    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Whether the server advised a retry (it sent a RetryInfo).
    pub fn is_retryable(&self) -> bool {
        self.retry_after.is_some()
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let info = status.get_details_error_info();
        let reason = info
            .as_ref()
            .and_then(|i| ErrorReason::from_str_name(&format!("ERROR_REASON_{}", i.reason)))
            .unwrap_or(ErrorReason::Unspecified);
        // A RetryInfo without a delay still means "retry", soon.
        let retry_after = status
            .get_details_retry_info()
            .map(|r| r.retry_delay.unwrap_or(Duration::from_millis(100)));
        Self {
            code: status.code(),
            reason,
            metadata: info.map(|i| i.metadata).unwrap_or_default(),
            retry_after,
            fields: status
                .get_details_bad_request()
                .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                .unwrap_or_default(),
            message: status.message().to_owned(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} ({}): {}",
            self.code,
            self.reason.as_str_name(),
            self.message
        )
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    #[test]
    fn details_are_decoded() {
        let mut details = ErrorDetails::with_error_info(
            "RATE_LIMITED",
            "authbroker.v1",
            [("caller".to_owned(), "billing".to_owned())],
        );
        details.set_retry_info(Some(Duration::from_millis(1500)));
        let status = Status::with_error_details(Code::ResourceExhausted, "slow down", details);
        let error = Error::from(status);
        assert_eq!(error.reason, ErrorReason::RateLimited);
        assert_eq!(error.meta("caller"), Some("billing"));
        assert_eq!(error.retry_after, Some(Duration::from_millis(1500)));
        assert!(error.is_retryable());

        let plain = Error::from(Status::unavailable("proxy said no"));
        assert_eq!(plain.reason, ErrorReason::Unspecified);
        assert!(!plain.is_retryable());
    }
}
