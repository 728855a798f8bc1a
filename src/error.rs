//! The one place where domain errors become gRPC statuses. Callers get a
//! clear code and message; the cause chain of internal errors goes to the log
//! only.

use tonic::{Code, Status};

use crate::flow::ProviderFailure;

/// Every failure an RPC can end in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing, too long or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The proto field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No such connection for this caller (or another caller's).
    #[error("{0}")]
    NotFound(String),
    /// The operation cannot run in the current state (used state, revoked
    /// connection, provider rejection, feature not offered).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Same idempotency key, different request.
    #[error("{0}")]
    AlreadyExists(String),
    /// Missing or wrong caller token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The provider or the database is unreachable or failing; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A concurrent or earlier attempt left an outcome this call cannot decide.
    #[error("{0}")]
    Aborted(String),
    /// A bug or an unexpected failure; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Shorthand for handlers and the broker.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A field-level validation failure.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// A copy for every caller that shared one operation (an internal cause
    /// is kept as its text).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field,
                reason: reason.clone(),
            },
            Self::NotFound(m) => Self::NotFound(m.clone()),
            Self::FailedPrecondition(m) => Self::FailedPrecondition(m.clone()),
            Self::AlreadyExists(m) => Self::AlreadyExists(m.clone()),
            Self::Unauthenticated(m) => Self::Unauthenticated(m.clone()),
            Self::Unavailable(m) => Self::Unavailable(m.clone()),
            Self::Aborted(m) => Self::Aborted(m.clone()),
            Self::Internal(cause) => Self::Internal(anyhow::anyhow!("{cause:#}")),
        }
    }

    /// Maps a provider failure met while doing `what` (e.g. "code exchange").
    pub fn provider(provider: &str, what: &str, failure: ProviderFailure) -> Self {
        match failure {
            ProviderFailure::Rejected { error, description } => {
                Self::FailedPrecondition(match description {
                    Some(d) => format!(
                        "provider {provider} rejected the {what}: {} ({d})",
                        error.as_str()
                    ),
                    None => format!(
                        "provider {provider} rejected the {what}: {}",
                        error.as_str()
                    ),
                })
            }
            ProviderFailure::Unavailable {
                reason,
                retry_after,
                ..
            } => Self::Unavailable(match retry_after {
                Some(secs) => format!(
                    "provider {provider} unavailable during {what}: {reason}; retry after {secs}s"
                ),
                None => format!("provider {provider} unavailable during {what}: {reason}"),
            }),
            ProviderFailure::Malformed { reason } => Self::Unavailable(format!(
                "provider {provider} gave an invalid answer to the {what}: {reason}"
            )),
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        if database_unreachable(&e) {
            tracing::error!(error = %e, "database unavailable");
            return Self::Unavailable("database unavailable".into());
        }
        Self::Internal(e.into())
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
        let code = match &e {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Aborted(_) => Code::Aborted,
            Error::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                Code::Internal
            }
        };
        Status::new(code, e.to_string())
    }
}
