//! How soon a dead holder's refresh lease or usage claim is taken over, and
//! that a live holder keeps its own: on PostgreSQL a killed replica's
//! process lock is released at once, so another replica takes over within
//! about two seconds instead of a whole lease (10 s).

use std::time::{Duration, Instant};

use authbroker::pb;
use tonic::Code;

use crate::{fake::Fault, helpers::*};

/// Advisory locks held in the test's own database (the replicas' process locks).
const PROCESS_LOCKS: &str = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// A replica killed while its usage report is at the provider: the same key,
/// on another replica (PostgreSQL) or on the restarted process (SQLite),
/// answers USAGE_OUTCOME_UNKNOWN within seconds of the kill and sends nothing
/// again.
async fn a_killed_usage_report_is_settled_within_seconds(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let replica = match backend {
        Backend::Postgres => Some(app.replica().await),
        Backend::Sqlite => None,
    };
    let fake = app.fakes.ares.clone();
    fake.set_usage_fault(Fault::Hang);
    let calls = fake.usage_calls();
    let request = pb::RecordUsageRequest {
        connection_id: conn.id.clone(),
        usage: "test-button".into(),
        credits: 2.0,
        idempotency_key: "killed-mid-report".into(),
    };
    let in_flight = {
        let (mut c, request) = (client.clone(), request.clone());
        tokio::spawn(async move { c.record_usage(request).await })
    };
    while fake.usage_calls() == calls {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.kill().await;
    let killed_at = Instant::now();
    assert!(
        in_flight.await.expect("join").is_err(),
        "died with the process"
    );
    fake.set_usage_fault(Fault::None);

    let (app, started, bound) = match replica {
        Some(replica) => (replica, killed_at, Duration::from_secs(5)),
        None => {
            let app = app.restart().await;
            (app, Instant::now(), Duration::from_secs(2))
        }
    };
    let mut client = app.billing().await;
    let status = client
        .record_usage(request)
        .await
        .expect_err("the outcome is unknown");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(info.reason, "USAGE_OUTCOME_UNKNOWN", "{status:?}");
    assert!(
        took < bound,
        "{backend:?}: answered after {took:?}, bound {bound:?}"
    );
    assert_eq!(fake.usage_calls(), calls + 1, "not sent again");
}

/// A holder whose process lock is lost while it works (its session closed by
/// the server, as a proxy or an operator might) still renews its lease: the
/// other replica keeps waiting, the provider sees one refresh, and the lock
/// is taken again.
async fn a_live_holder_that_lost_its_lock_keeps_its_lease(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 10_000,
            extra_config: "refresh_lease_secs = 3\nmax_wait_secs = 20".into(),
            ..Options::default()
        },
    )
    .await;
    let replica = app.replica().await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "arterra", "u").await;
    app.expire(&conn.id).await;
    let fake = app.fakes.arterra.clone();
    fake.set_delay(Duration::from_secs(6));
    let first = {
        let (mut c, id) = (client.clone(), conn.id.clone());
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while fake.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if backend == Backend::Postgres {
        assert_eq!(
            app.db.count(PROCESS_LOCKS).await,
            2,
            "each replica holds its lock"
        );
        // Remember which sessions hold them: the replicas take their lock
        // again within a ping, so "none held" is a moment that can be missed.
        app.db
            .execute(
                "CREATE TABLE IF NOT EXISTS terminated_lock_sessions AS SELECT pid FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .await;
        app.db
            .execute("SELECT pg_terminate_backend(pid) FROM terminated_lock_sessions")
            .await;
        // pg_terminate_backend signals; the sessions end a moment later.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let held_by_old = app
                .db
                .count(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND pid IN (SELECT pid FROM terminated_lock_sessions)",
                )
                .await;
            if held_by_old == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the terminated sessions still hold {held_by_old} lock(s)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut other = replica.billing().await;
    let second = token(&mut other, &conn.id, 60)
        .await
        .expect("served once the holder stored the new token");
    let first = first.await.expect("join").expect("the holder's refresh");
    assert_eq!(first.access_token, second.access_token);
    assert_eq!(fake.token_requests("refresh_token"), 1, "one refresh");
    if backend == Backend::Postgres {
        // Retaken within a ping or two (the refresh took 6 s).
        assert_eq!(
            app.db.count(PROCESS_LOCKS).await,
            2,
            "both locks taken again"
        );
        assert!(app.logs().contains("process lock taken"), "{}", app.logs());
    }
}

on_both!(
    a_killed_usage_report_is_settled_within_seconds,
    a_live_holder_that_lost_its_lock_keeps_its_lease,
);
