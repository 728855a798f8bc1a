//! The soak's side of gRPC: a client with the caller's bearer token, every call made with a
//! deadline and timed, and what its ending means. authbroker puts an `ErrorInfo` on every error it
//! answers, so an error without one did not come from authbroker's handlers: either the deadline
//! cut the call (tonic's "Timeout expired", on the client or the server side) or the transport
//! failed.

use std::{
    collections::HashMap,
    future::Future,
    time::{Duration, Instant},
};

use authbroker::pb::auth_broker_client::AuthBrokerClient;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use crate::server::channel;

/// The error domain of authbroker's `ErrorInfo`.
const DOMAIN: &str = "authbroker.v1";
/// How long past its deadline the soak waits for a call before giving up on it; only a call that
/// neither side's deadline stopped can get here, and it counts as an overrun.
const HANG_GUARD: Duration = Duration::from_secs(10);

pub use crate::server::{Bearer, Client};

/// A client of the replica at `addr` (one HTTP/2 connection, shared by every worker).
pub async fn connect(addr: &str) -> Client {
    AuthBrokerClient::with_interceptor(channel(addr).await, Bearer::caller())
}

/// An error authbroker answered, as a client reads it.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub code: Code,
    /// `ErrorInfo.reason`, e.g. `REFRESH_IN_PROGRESS`.
    pub reason: String,
    /// `ErrorInfo.metadata`: `http_status`, `step`, `usage_id`, ...
    pub metadata: HashMap<String, String>,
    /// authbroker's message (never carries a secret, README "Status codes").
    pub message: String,
    /// `RetryInfo`, when the error is worth retrying.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// The provider's HTTP status named in the metadata, if any.
    pub fn http_status(&self) -> Option<u16> {
        self.metadata.get("http_status")?.parse().ok()
    }
}

/// How a call ended.
#[derive(Clone, Debug)]
pub enum Ending {
    Ok,
    /// authbroker answered an error.
    Refused(Refusal),
    /// The deadline ended the call before authbroker answered.
    DeadlineCut,
    /// No answer: the connection failed (refused, reset, closed).
    Transport(String),
}

impl Ending {
    pub fn of<T>(result: &Result<T, Status>) -> Ending {
        let status = match result {
            Ok(_) => return Ending::Ok,
            Err(status) => status,
        };
        if let Some(info) = status.get_details_error_info()
            && info.domain == DOMAIN
        {
            return Ending::Refused(Refusal {
                code: status.code(),
                reason: info.reason,
                metadata: info.metadata,
                message: status.message().to_owned(),
                retry_after: status.get_details_retry_info().and_then(|r| r.retry_delay),
            });
        }
        let cut = status.code() == Code::DeadlineExceeded
            || (status.code() == Code::Cancelled && status.message().contains("Timeout expired"));
        if cut {
            Ending::DeadlineCut
        } else {
            Ending::Transport(format!("{:?}: {}", status.code(), status.message()))
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Ending::Refused(r) => Some(&r.reason),
            _ => None,
        }
    }

    /// A short label for tables: `OK`, the reason, `deadline`, `transport`.
    pub fn label(&self) -> String {
        match self {
            Ending::Ok => "OK".into(),
            Ending::Refused(r) => r.reason.clone(),
            Ending::DeadlineCut => "deadline cut".into(),
            Ending::Transport(_) => "transport".into(),
        }
    }
}

/// A call's answer, when it started and when it ended.
pub struct Timed<T> {
    pub result: Result<T, Status>,
    pub started: Instant,
    pub ended: Instant,
}

/// Sends `request` with `deadline` (the `grpc-timeout` header) through `send`.
pub async fn timed<Req, T, F, Fut>(deadline: Duration, request: Req, send: F) -> Timed<T>
where
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let mut request = Request::new(request);
    request.set_timeout(deadline);
    let started = Instant::now();
    let result = match tokio::time::timeout(deadline + HANG_GUARD, send(request)).await {
        Ok(answer) => answer.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("the soak gave up on a hung call")),
    };
    Timed {
        result,
        started,
        ended: Instant::now(),
    }
}
