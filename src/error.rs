//! Every failure the service can end in, and the one place where it becomes
//! a gRPC status. Each status carries `google.rpc.ErrorInfo` with a stable
//! reason from the proto's `ErrorReason`, `BadRequest` for invalid arguments
//! and `RetryInfo` where a retry is the right move. The log gets the cause
//! chain of internal errors; the caller never does.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{ConnectionId, ProviderId},
    flow::{ProviderFailure, StateProblem},
    pb::ErrorReason,
};

/// The `ErrorInfo.domain` of every error.
pub(crate) const DOMAIN: &str = "authbroker.v1";

/// What an operation that talked to a provider was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Exchanging an authorization code.
    CodeExchange,
    /// The resource owner password grant.
    PasswordGrant,
    /// Refreshing an access token.
    Refresh,
    /// Reading the user endpoint.
    UserInfo,
    /// Reporting usage.
    Usage,
    /// Reading an OpenID issuer's discovery document.
    Discovery,
    /// Checking an OpenID `id_token`.
    IdToken,
}

impl Step {
    /// The metadata value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CodeExchange => "code_exchange",
            Self::PasswordGrant => "password_grant",
            Self::Refresh => "refresh",
            Self::UserInfo => "user_info",
            Self::Usage => "usage",
            Self::Discovery => "discovery",
            Self::IdToken => "id_token",
        }
    }

    /// How messages name it.
    fn describe(self) -> &'static str {
        match self {
            Self::CodeExchange => "code exchange",
            Self::PasswordGrant => "password grant",
            Self::Refresh => "refresh",
            Self::UserInfo => "user info request",
            Self::Usage => "usage report",
            Self::Discovery => "discovery",
            Self::IdToken => "id_token check",
        }
    }
}

/// Every failure an RPC can end in. Cloning is cheap: one refresh's outcome
/// is shared by every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Error {
    /// A request field is missing, too long or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The proto field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The request names a provider that is not configured.
    #[error("provider: no provider {provider:?} is configured")]
    UnknownProvider {
        /// As requested.
        provider: String,
    },
    /// A stored connection's or state's provider is gone from the config.
    #[error("provider {provider:?} is no longer configured")]
    ProviderRemoved {
        /// The stored provider id.
        provider: ProviderId,
    },
    /// Missing or wrong caller credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// No such connection for this caller (or another caller's).
    #[error("connection {id} not found")]
    ConnectionNotFound {
        /// As requested.
        id: ConnectionId,
    },
    /// The end user must authorize again.
    #[error("connection {id} needs re-authorization: {reason}")]
    NeedsReauth {
        /// The connection.
        id: ConnectionId,
        /// Its provider.
        provider: ProviderId,
        /// The stored reason.
        reason: String,
    },
    /// Revoked on request.
    #[error("connection {id} is revoked")]
    Revoked {
        /// The connection.
        id: ConnectionId,
        /// Its provider.
        provider: ProviderId,
    },
    /// A new token was demanded but the provider issued no refresh token.
    #[error("connection {id} cannot be refreshed: the provider issued no refresh token")]
    NoRefreshToken {
        /// The connection.
        id: ConnectionId,
        /// Its provider.
        provider: ProviderId,
    },
    /// The CompleteAuth state cannot be used.
    #[error("state: {0}")]
    StateInvalid(StateProblem),
    /// A provider call failed.
    #[error("{}", provider_message(provider, *step, failure))]
    Provider {
        /// Which provider.
        provider: ProviderId,
        /// What it was asked.
        step: Step,
        /// How it failed.
        failure: ProviderFailure,
    },
    /// The provider does not offer what was asked.
    #[error("provider {provider:?} {what}")]
    ProviderUnsupported {
        /// Which provider.
        provider: ProviderId,
        /// What it lacks, as a predicate ("has no usage endpoint").
        what: &'static str,
    },
    /// A refresh of the connection (this call's, or another replica's) did
    /// not finish within what the call may wait.
    #[error("{}", refresh_in_progress_message(*id, holder.as_deref()))]
    RefreshInProgress {
        /// The connection.
        id: ConnectionId,
        /// The lease holder, when another one holds it.
        holder: Option<String>,
    },
    /// Same idempotency key, different request.
    #[error("idempotency_key: already used with a different connection, usage or credits")]
    UsageKeyConflict,
    /// An attempt with this key is still running.
    #[error("usage {usage_id}: an attempt with this key is still in progress")]
    UsageInProgress {
        /// The ledger id.
        usage_id: String,
    },
    /// The provider may or may not have recorded an earlier attempt.
    #[error(
        "usage {usage_id}: an earlier attempt ended without a definite answer ({detail}); the provider may have recorded it: \
         check with the provider before reporting it under a new key"
    )]
    UsageOutcomeUnknown {
        /// The ledger id.
        usage_id: String,
        /// What the earlier attempt met.
        detail: String,
    },
    /// The caller has no usage record with this id.
    #[error("usage {usage_id} not found")]
    UsageNotFound {
        /// As requested.
        usage_id: String,
    },
    /// ResolveUsage on a usage whose outcome is known.
    #[error(
        "usage {usage_id}: its outcome is known ({status}); only an unknown outcome can be resolved"
    )]
    UsageNotUnknown {
        /// The ledger id.
        usage_id: String,
        /// Where it stands.
        status: &'static str,
    },
    /// An earlier attempt with this key was refused by the provider.
    #[error("{message}")]
    UsageRejected {
        /// The ledger id.
        usage_id: String,
        /// Its provider.
        provider: ProviderId,
        /// The stored refusal.
        message: String,
    },
    /// The caller went over its rate limit.
    #[error("caller {caller:?} is over its rate limit; retry after {retry_after:?}")]
    RateLimited {
        /// The caller.
        caller: String,
        /// When its next call would be admitted.
        retry_after: Duration,
    },
    /// A reconnect in place answered for another provider account.
    #[error(
        "connection {id}: the provider signed in another account than the connection's; nothing was changed"
    )]
    AccountMismatch {
        /// The connection.
        id: ConnectionId,
    },
    /// The stored grant lacks scopes the caller needs.
    #[error("connection {id} lacks the scopes {}: reconnect it with them", missing.join(" "))]
    InsufficientScope {
        /// The connection.
        id: ConnectionId,
        /// The required scopes it was not granted.
        missing: Vec<String>,
    },
    /// The caller's policy does not allow this.
    #[error("not allowed by the policy of caller {caller:?}: {detail} (rule `{rule}`)")]
    PolicyDenied {
        /// The caller.
        caller: String,
        /// The config key of the rule.
        rule: &'static str,
        /// What was refused.
        detail: String,
    },
    /// Too many calls in flight on this replica: shed before any work.
    #[error("server overloaded; retry shortly")]
    Overloaded,
    /// The row changed under us more often than a retry loop allows.
    #[error("{0}; retry")]
    Conflict(&'static str),
    /// The database cannot be reached.
    #[error("database unavailable")]
    StorageUnavailable,
    /// A bug or an unexpected failure; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] Arc<anyhow::Error>),
}

/// Shorthand for the service.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A refusal by `caller`'s policy.
    pub(crate) fn denied(caller: &crate::domain::Caller, denied: crate::domain::Denied) -> Self {
        Self::PolicyDenied {
            caller: caller.as_str().to_owned(),
            rule: denied.rule,
            detail: denied.detail,
        }
    }

    /// A field-level validation failure.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// An unexpected failure, kept for the log.
    pub(crate) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(cause.into()))
    }

    /// A provider failure during `step`.
    pub(crate) fn provider(provider: &ProviderId, step: Step, failure: ProviderFailure) -> Self {
        Self::Provider {
            provider: provider.clone(),
            step,
            failure,
        }
    }

    /// The reason clients switch on.
    pub(crate) fn reason(&self) -> ErrorReason {
        match self {
            Self::InvalidArgument { .. } => ErrorReason::InvalidRequest,
            Self::UnknownProvider { .. } => ErrorReason::UnknownProvider,
            Self::ProviderRemoved { .. } => ErrorReason::ProviderRemoved,
            Self::Unauthenticated(_) => ErrorReason::CallerUnauthenticated,
            Self::ConnectionNotFound { .. } => ErrorReason::ConnectionNotFound,
            Self::NeedsReauth { .. } => ErrorReason::ConnectionNeedsReauth,
            Self::Revoked { .. } => ErrorReason::ConnectionRevoked,
            Self::NoRefreshToken { .. } => ErrorReason::NoRefreshToken,
            Self::StateInvalid(_) => ErrorReason::StateInvalid,
            Self::Provider { failure, .. } => match failure {
                ProviderFailure::Rejected { .. } => ErrorReason::ProviderRejected,
                ProviderFailure::Unavailable { .. } => ErrorReason::ProviderUnavailable,
                ProviderFailure::Malformed { .. } => ErrorReason::ProviderInvalidResponse,
            },
            Self::ProviderUnsupported { .. } => ErrorReason::ProviderUnsupported,
            Self::RefreshInProgress { .. } => ErrorReason::RefreshInProgress,
            Self::UsageKeyConflict => ErrorReason::UsageKeyConflict,
            Self::UsageInProgress { .. } => ErrorReason::UsageInProgress,
            Self::UsageOutcomeUnknown { .. } => ErrorReason::UsageOutcomeUnknown,
            Self::UsageRejected { .. } => ErrorReason::ProviderRejected,
            Self::UsageNotFound { .. } => ErrorReason::UsageNotFound,
            Self::UsageNotUnknown { .. } => ErrorReason::UsageNotUnknown,
            Self::RateLimited { .. } => ErrorReason::RateLimited,
            Self::PolicyDenied { .. } => ErrorReason::PolicyDenied,
            Self::InsufficientScope { .. } => ErrorReason::InsufficientScope,
            Self::AccountMismatch { .. } => ErrorReason::AccountMismatch,
            Self::Overloaded => ErrorReason::Overloaded,
            Self::Conflict(_) => ErrorReason::ConcurrentModification,
            Self::StorageUnavailable => ErrorReason::StorageUnavailable,
            Self::Internal(_) => ErrorReason::Internal,
        }
    }

    fn code(&self) -> Code {
        match self.reason() {
            ErrorReason::InvalidRequest | ErrorReason::UnknownProvider => Code::InvalidArgument,
            ErrorReason::CallerUnauthenticated => Code::Unauthenticated,
            ErrorReason::ConnectionNotFound | ErrorReason::UsageNotFound => Code::NotFound,
            ErrorReason::ProviderRemoved
            | ErrorReason::ConnectionNeedsReauth
            | ErrorReason::ConnectionRevoked
            | ErrorReason::NoRefreshToken
            | ErrorReason::StateInvalid
            | ErrorReason::ProviderRejected
            | ErrorReason::ProviderUnsupported
            | ErrorReason::UsageNotUnknown
            | ErrorReason::InsufficientScope
            | ErrorReason::AccountMismatch => Code::FailedPrecondition,
            ErrorReason::ProviderUnavailable
            | ErrorReason::ProviderInvalidResponse
            | ErrorReason::RefreshInProgress
            | ErrorReason::StorageUnavailable => Code::Unavailable,
            ErrorReason::UsageInProgress
            | ErrorReason::UsageOutcomeUnknown
            | ErrorReason::ConcurrentModification => Code::Aborted,
            ErrorReason::UsageKeyConflict => Code::AlreadyExists,
            ErrorReason::RateLimited | ErrorReason::Overloaded => Code::ResourceExhausted,
            ErrorReason::PolicyDenied => Code::PermissionDenied,
            ErrorReason::Internal | ErrorReason::Unspecified => Code::Internal,
        }
    }

    /// How long the caller should wait before retrying, for errors a retry can cure.
    fn retry_delay(&self) -> Option<Duration> {
        match self {
            Self::Provider {
                failure: ProviderFailure::Unavailable { retry_after, .. },
                ..
            } => Some(Duration::from_secs(retry_after.unwrap_or(1).max(1))),
            Self::Provider {
                failure: ProviderFailure::Malformed { .. },
                ..
            }
            | Self::RefreshInProgress { .. }
            | Self::UsageInProgress { .. }
            | Self::StorageUnavailable => Some(Duration::from_secs(1)),
            Self::Conflict(_) => Some(Duration::from_millis(100)),
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Overloaded => Some(Duration::from_millis(200)),
            _ => None,
        }
    }

    /// The request field at fault and why, for the errors a caller causes
    /// with a bad field: the BadRequest violation and the `field` metadata.
    fn field_violation(&self) -> Option<(&'static str, String)> {
        match self {
            Self::InvalidArgument { field, reason } => Some((field, reason.clone())),
            Self::UnknownProvider { .. } => {
                Some(("provider", "no such provider is configured".into()))
            }
            Self::UsageKeyConflict => Some((
                "idempotency_key",
                "already used with a different request".into(),
            )),
            _ => None,
        }
    }

    /// ErrorInfo metadata: the ids and facts a client may act on.
    fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        if let Some((field, _)) = self.field_violation() {
            put("field", field.to_owned());
        }
        match self {
            Self::UnknownProvider { provider } => put("provider", provider.clone()),
            Self::ProviderRemoved { provider } | Self::ProviderUnsupported { provider, .. } => {
                put("provider", provider.to_string())
            }
            Self::ConnectionNotFound { id }
            | Self::RefreshInProgress { id, .. }
            | Self::AccountMismatch { id } => put("connection_id", id.to_string()),
            Self::NeedsReauth { id, provider, .. }
            | Self::Revoked { id, provider }
            | Self::NoRefreshToken { id, provider } => {
                put("connection_id", id.to_string());
                put("provider", provider.to_string());
            }
            Self::StateInvalid(problem) => put("state", problem.as_str().to_owned()),
            Self::InsufficientScope { id, missing } => {
                put("connection_id", id.to_string());
                put("missing", missing.join(" "));
            }
            Self::RateLimited { caller, .. } => put("caller", caller.clone()),
            Self::PolicyDenied { caller, rule, .. } => {
                put("caller", caller.clone());
                put("rule", (*rule).to_owned());
            }
            Self::Provider {
                provider,
                step,
                failure,
            } => {
                put("provider", provider.to_string());
                put("step", step.as_str().to_owned());
                if let Some(status) = failure.http_status() {
                    put("http_status", status.to_string());
                }
                if let ProviderFailure::Rejected { error, .. } = failure
                    && !error.as_str().is_empty()
                {
                    put("provider_error", error.as_str().to_owned());
                }
            }
            Self::UsageInProgress { usage_id }
            | Self::UsageOutcomeUnknown { usage_id, .. }
            | Self::UsageNotFound { usage_id }
            | Self::UsageNotUnknown { usage_id, .. } => put("usage_id", usage_id.clone()),
            Self::UsageRejected {
                usage_id, provider, ..
            } => {
                put("usage_id", usage_id.clone());
                put("provider", provider.to_string());
                put("step", Step::Usage.as_str().to_owned());
            }
            Self::InvalidArgument { .. }
            | Self::Unauthenticated(_)
            | Self::UsageKeyConflict
            | Self::Conflict(_)
            | Self::Overloaded
            | Self::StorageUnavailable
            | Self::Internal(_) => {}
        }
        m
    }
}

/// The reason string: the proto enum value's name without its prefix.
pub(crate) fn reason_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix("ERROR_REASON_").unwrap_or(name)
}

fn refresh_in_progress_message(id: ConnectionId, holder: Option<&str>) -> String {
    match holder {
        Some(holder) => {
            format!("connection {id} is being refreshed by {holder} and it has not finished; retry")
        }
        None => format!(
            "connection {id} is being refreshed and it did not finish within the call's deadline; retry"
        ),
    }
}

fn provider_message(provider: &ProviderId, step: Step, failure: &ProviderFailure) -> String {
    let what = step.describe();
    match failure {
        ProviderFailure::Rejected {
            error, description, ..
        } => {
            let code = match error.as_str() {
                "" => failure
                    .http_status()
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_default(),
                code => code.to_owned(),
            };
            match description {
                Some(d) => format!("provider {provider} rejected the {what}: {code} ({d})"),
                None => format!("provider {provider} rejected the {what}: {code}"),
            }
        }
        ProviderFailure::Unavailable {
            reason,
            retry_after,
            ..
        } => match retry_after {
            Some(secs) => format!(
                "provider {provider} unavailable during {what}: {reason}; retry after {secs}s"
            ),
            None => format!("provider {provider} unavailable during {what}: {reason}"),
        },
        ProviderFailure::Malformed { reason, .. } => {
            format!("provider {provider} gave an invalid answer to the {what}: {reason}")
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        if database_unreachable(&e) {
            tracing::error!(error = %e, "database unavailable");
            return Self::StorageUnavailable;
        }
        Self::internal(e)
    }
}

/// Whether a database error means "cannot reach the database" (retry later)
/// rather than a bug: no connection could be had, or the one used broke.
fn database_unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx::Error as Sqlx};
    match e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(inner)) | DbErr::Exec(RuntimeErr::SqlxError(inner)) => {
            matches!(
                inner.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
                    | Sqlx::Protocol(_)
            )
        }
        _ => false,
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        if let Error::Internal(cause) = &e {
            tracing::error!(error = ?cause, "internal error");
        }
        let reason = e.reason();
        let mut details = ErrorDetails::with_error_info(reason_name(reason), DOMAIN, e.metadata());
        if let Some((field, why)) = e.field_violation() {
            details.add_bad_request_violation(field, why);
        }
        if let Some(delay) = e.retry_delay() {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(e.code(), e.to_string(), details)
    }
}

impl fmt::Display for StateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateProblem::Unknown => "unknown or already used",
            StateProblem::Expired => "expired",
            StateProblem::IssuerMismatch => "answered by another issuer than the provider's (iss)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_carries_error_info() {
        let status: Status = Error::invalid("subject", "required").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_REQUEST");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(info.metadata["field"], "subject");
        let bad = status.get_details_bad_request().expect("bad request");
        assert_eq!(bad.field_violations[0].field, "subject");
        assert!(status.get_details_retry_info().is_none());

        let status: Status = Error::StorageUnavailable.into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.get_details_retry_info().is_some());
    }

    #[test]
    fn provider_failures_keep_the_status_number() {
        let e = Error::provider(
            &ProviderId::trusted("ares"),
            Step::Usage,
            ProviderFailure::Rejected {
                http_status: 402,
                error: crate::flow::token_response::OAuthError::Unspecified,
                description: Some("Insufficient credits".into()),
            },
        );
        assert_eq!(
            e.to_string(),
            "provider ares rejected the usage report: HTTP 402 (Insufficient credits)"
        );
        let status: Status = e.into();
        let info = status.get_details_error_info().expect("info");
        assert_eq!(info.reason, "PROVIDER_REJECTED");
        assert_eq!(info.metadata["http_status"], "402");
        assert_eq!(info.metadata["step"], "usage");
    }

    #[test]
    fn reason_names_drop_the_prefix() {
        assert_eq!(
            reason_name(ErrorReason::UsageOutcomeUnknown),
            "USAGE_OUTCOME_UNKNOWN"
        );
    }
}
