//! The table of expected error details, and the check of what came back.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Debug,
    time::Duration,
};

use authbroker::{
    clock::TestClock,
    pb::{self, ErrorReason},
};
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;

/// The ErrorInfo domain of every error.
pub(super) const DOMAIN: &str = "authbroker.v1";
/// An id no connection has.
pub(super) const UNKNOWN_ID: &str = "0195f3c4-0000-7000-8000-000000000000";
/// The in-process server's outbound timeout: how long a hanging usage call
/// lasts.
pub(super) const IN_PROCESS_HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// Past the in-process server's `max_wait_secs` (1 s).
pub(super) const PAST_THE_WAIT: Duration = Duration::from_secs(2);

/// An expected ErrorInfo metadata value.
pub(super) enum Meta {
    /// Exactly this value.
    Is(String),
    /// A non-empty value the test cannot know beforehand (a ledger id).
    Present,
}

/// What one error must carry.
pub(super) struct Expected {
    pub(super) reason: ErrorReason,
    pub(super) code: Code,
    /// The complete ErrorInfo metadata: no key missing, none extra.
    pub(super) metadata: BTreeMap<&'static str, Meta>,
    /// The field of the first BadRequest violation; `None`: no BadRequest.
    pub(super) bad_request: Option<&'static str>,
    /// RetryInfo's delay; `None`: no RetryInfo.
    pub(super) retry: Option<Duration>,
}

impl Expected {
    pub(super) fn new(reason: ErrorReason, code: Code) -> Self {
        Self {
            reason,
            code,
            metadata: BTreeMap::new(),
            bad_request: None,
            retry: None,
        }
    }

    pub(super) fn meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.insert(key, Meta::Is(value.into()));
        self
    }

    pub(super) fn meta_present(mut self, key: &'static str) -> Self {
        self.metadata.insert(key, Meta::Present);
        self
    }

    pub(super) fn bad_request(mut self, field: &'static str) -> Self {
        self.bad_request = Some(field);
        self
    }

    pub(super) fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }
}

/// A provider failure's metadata: provider, step and (when it answered)
/// the HTTP status as a number string.
pub(super) fn provider_failure(
    reason: ErrorReason,
    code: Code,
    provider: &str,
    step: &str,
    http_status: Option<u16>,
) -> Expected {
    let expected = Expected::new(reason, code)
        .meta("provider", provider)
        .meta("step", step);
    match http_status {
        Some(status) => expected.meta("http_status", status.to_string()),
        None => expected,
    }
}

/// The reason string: the enum value's name without its prefix.
pub(super) fn reason_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix("ERROR_REASON_").unwrap_or(name)
}

/// Every reason the proto defines except UNSPECIFIED, found by walking the
/// enum's values until one is undefined.
pub(super) fn all_reasons() -> BTreeSet<ErrorReason> {
    (1..).map_while(|n| ErrorReason::try_from(n).ok()).collect()
}

/// One row of the table: what the test did, what the server answered, what
/// the answer must carry.
pub(super) struct Case {
    pub(super) what: &'static str,
    pub(super) outcome: Result<Status, String>,
    pub(super) expected: Expected,
}

/// The table, filled as the cases are provoked and checked at the end.
#[derive(Default)]
pub(super) struct Cases(Vec<Case>);

impl Cases {
    pub(super) fn push<T: Debug>(
        &mut self,
        what: &'static str,
        result: Result<T, Status>,
        expected: Expected,
    ) {
        let outcome = match result {
            Ok(v) => Err(format!("succeeded: {v:?}")),
            Err(status) => Ok(status),
        };
        self.0.push(Case {
            what,
            outcome,
            expected,
        });
    }

    pub(super) fn extend(&mut self, other: Cases) {
        self.0.extend(other.0);
    }

    /// Checks every row, then that every reason was provoked; reports every
    /// mismatch at once.
    pub(super) fn verify(self, backend: Backend) {
        let mut problems = Vec::new();
        let mut provoked = BTreeSet::new();
        for case in &self.0 {
            let found = match &case.outcome {
                Ok(status) => check(status, &case.expected),
                Err(e) => vec![e.clone()],
            };
            let name = reason_name(case.expected.reason);
            if found.is_empty() {
                provoked.insert(case.expected.reason);
                println!("ok   {name:<24} {}", case.what);
            } else {
                problems.push(format!("{name}: {}: {}", case.what, found.join("; ")));
            }
        }
        let mut wanted = all_reasons();
        if backend == Backend::Sqlite {
            // The embedded database cannot be cut off from outside the
            // process; STORAGE_UNAVAILABLE is provoked on PostgreSQL only.
            wanted.remove(&ErrorReason::StorageUnavailable);
        }
        let names = |set: BTreeSet<&ErrorReason>| {
            set.into_iter().map(|r| reason_name(*r)).collect::<Vec<_>>()
        };
        let missing = names(wanted.difference(&provoked).collect());
        if !missing.is_empty() {
            problems.push(format!("reasons not provoked: {missing:?}"));
        }
        let extra = names(provoked.difference(&wanted).collect());
        if !extra.is_empty() {
            problems.push(format!("reasons provoked but not expected: {extra:?}"));
        }
        assert!(
            problems.is_empty(),
            "{} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

/// Everything wrong with `status` against `expected`.
pub(super) fn check(status: &Status, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    if status.code() != expected.code {
        problems.push(format!(
            "code {:?}, expected {:?} (message: {:?})",
            status.code(),
            expected.code,
            status.message()
        ));
    }
    match status.get_details_error_info() {
        None => problems.push(format!("no ErrorInfo (message: {:?})", status.message())),
        Some(info) => {
            if info.domain != DOMAIN {
                problems.push(format!("domain {:?}", info.domain));
            }
            if info.reason != reason_name(expected.reason) {
                problems.push(format!(
                    "reason {:?} (message: {:?})",
                    info.reason,
                    status.message()
                ));
            }
            let keys: BTreeSet<&str> = info.metadata.keys().map(String::as_str).collect();
            let wanted: BTreeSet<&str> = expected.metadata.keys().copied().collect();
            if keys != wanted {
                problems.push(format!(
                    "metadata keys {keys:?}, expected {wanted:?} ({:?})",
                    info.metadata
                ));
            }
            for (key, meta) in &expected.metadata {
                let got = info.metadata.get(*key).map(String::as_str);
                match meta {
                    Meta::Is(value) if got != Some(value.as_str()) => {
                        problems.push(format!("metadata {key} = {got:?}, expected {value:?}"));
                    }
                    Meta::Present if got.is_none_or(str::is_empty) => {
                        problems.push(format!("metadata {key} = {got:?}, expected a value"));
                    }
                    _ => {}
                }
            }
        }
    }
    match (status.get_details_bad_request(), expected.bad_request) {
        (None, None) => {}
        (Some(bad), None) => problems.push(format!("unexpected BadRequest {bad:?}")),
        (None, Some(field)) => problems.push(format!("no BadRequest for {field}")),
        (Some(bad), Some(field)) => match bad.field_violations.first() {
            Some(v) if v.field == field && !v.description.is_empty() => {}
            _ => problems.push(format!("BadRequest {bad:?}, expected field {field}")),
        },
    }
    let retry = status.get_details_retry_info().map(|info| info.retry_delay);
    match (retry, expected.retry) {
        (None, None) => {}
        (Some(delay), None) => problems.push(format!("unexpected RetryInfo {delay:?}")),
        (None, Some(want)) => problems.push(format!("no RetryInfo, expected {want:?}")),
        (Some(delay), Some(want)) if delay != Some(want) => {
            problems.push(format!("RetryInfo {delay:?}, expected {want:?}"));
        }
        _ => {}
    }
    problems
}

/// Moves the server's clock past the wait the call in `task` is in, `step`
/// at a time, until the call returns; at most `steps` times (should the call
/// have begun its wait only after a move).
pub(super) async fn advance_until_done<T>(
    clock: &TestClock,
    mut task: JoinHandle<T>,
    step: Duration,
    steps: u32,
) -> T {
    // Time for the call to reach the server and begin waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..steps {
        clock.advance(step);
        if let Ok(done) = tokio::time::timeout(Duration::from_secs(1), &mut task).await {
            return done.expect("join");
        }
    }
    panic!("the call still waits after the clock moved {steps} × {step:?}");
}

/// The metadata value `key` of an error, if it carries one.
pub(super) fn metadata_of(result: &Result<impl Debug, Status>, key: &str) -> Option<String> {
    let status = result.as_ref().err()?;
    status.get_details_error_info()?.metadata.get(key).cloned()
}

pub(super) fn begin_request(provider: &str, subject: &str) -> pb::BeginAuthRequest {
    pb::BeginAuthRequest {
        provider: provider.into(),
        subject: subject.into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    }
}

pub(super) fn get_connection(id: &str) -> pb::GetConnectionRequest {
    pb::GetConnectionRequest {
        connection_id: id.into(),
    }
}
