//! The reasons that end a wait, provoked in process on a moved clock.

use std::time::Duration;

use authbroker::pb::ErrorReason;
use tonic::Code;

use super::expect::*;
use crate::{fake::Fault, helpers::*, in_process::InProcessApp};

/// The reasons that end a wait: the server in this process, on a clock the
/// test moves past the wait instead of sleeping through it.
pub(super) async fn in_process(backend: Backend) -> Cases {
    use ErrorReason as R;
    let mut cases = Cases::default();
    let app = InProcessApp::spawn(
        backend,
        Options {
            http_timeout_ms: IN_PROCESS_HTTP_TIMEOUT.as_millis() as u64,
            // Waits end after a second of the server's clock.
            extra_config: "max_wait_secs = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let ares = connect_via(
        &mut client,
        &app.fakes.ares,
        begin_request("ares", "u"),
        USER,
    )
    .await;

    // USAGE_IN_PROGRESS: the first report hangs at the provider, renewing its
    // claim; a duplicate waits `max_wait_secs` for it, then gives up.
    app.fakes.ares.set_usage_fault(Fault::Hang);
    let report = usage(&ares.id, "slow", 1.0);
    let first = {
        let (mut c, r) = (client.clone(), report.clone());
        tokio::spawn(async move { c.record_usage(r).await })
    };
    while app.fakes.ares.usage_calls() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let duplicate = {
        let (mut c, r) = (client.clone(), report.clone());
        tokio::spawn(async move { c.record_usage(r).await })
    };
    let duplicate = tokio::time::timeout(Duration::from_secs(5), duplicate)
        .await
        .expect("the duplicate gives up in time")
        .expect("join");
    let usage_id = metadata_of(&duplicate, "usage_id").unwrap_or_default();
    cases.push(
        "RecordUsage while an attempt with the same key is running",
        duplicate,
        Expected::new(R::UsageInProgress, Code::Aborted)
            .meta_present("usage_id")
            .retry(Duration::from_secs(1)),
    );

    // The first attempt times out: PROVIDER_UNAVAILABLE without an HTTP
    // status, and a timeout may have been recorded, so the same key again is
    // USAGE_OUTCOME_UNKNOWN.
    let first = tokio::time::timeout(IN_PROCESS_HTTP_TIMEOUT * 3, first)
        .await
        .expect("the hanging attempt times out")
        .expect("join");
    cases.push(
        "RecordUsage whose provider call times out",
        first,
        provider_failure(
            R::ProviderUnavailable,
            Code::Unavailable,
            "ares",
            "usage",
            None,
        )
        .retry(Duration::from_secs(1)),
    );
    app.fakes.ares.set_usage_fault(Fault::None);
    cases.push(
        "RecordUsage repeating a key whose attempt timed out",
        client.record_usage(report).await,
        Expected::new(R::UsageOutcomeUnknown, Code::Aborted).meta("usage_id", usage_id),
    );
    assert_eq!(
        app.fakes.ares.usage_calls(),
        1,
        "the provider was called once"
    );

    // REFRESH_IN_PROGRESS: another replica holds the lease of a dead token;
    // the caller waits `max_wait_secs` (here 1 s) of the server's clock.
    let aries = connect_via(
        &mut client,
        &app.fakes.aries,
        begin_request("aries", "u"),
        USER,
    )
    .await;
    app.db()
        .execute(&format!(
            "UPDATE connections SET access_token_expires_at = 0, refresh_lease_owner = 'other-replica', \
             refresh_lease_until = 9999999999, refresh_started_at = 1 WHERE id = '{}'",
            aries.id
        ))
        .await;
    let waiting = {
        let (mut c, id) = (client.clone(), aries.id.clone());
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    let waited = advance_until_done(&app.clock, waiting, PAST_THE_WAIT, 3).await;
    cases.push(
        "GetAccessToken while another replica holds the refresh lease",
        waited,
        Expected::new(R::RefreshInProgress, Code::Unavailable)
            .meta("connection_id", &aries.id)
            .retry(Duration::from_secs(1)),
    );
    assert_eq!(app.fakes.aries.token_requests("refresh_token"), 0);
    app.stop().await;
    cases
}
