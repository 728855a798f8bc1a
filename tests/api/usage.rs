//! RecordUsage: reported once per idempotency key, concurrent duplicates
//! included; provider rejections are returned and replayed.

use authbroker::pb;
use prost_types::value::Kind as V;
use tonic::Code;

use crate::{fake::Fault, helpers::*};

async fn usage_is_reported_once_and_replayed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;

    let first = client
        .record_usage(usage(&conn.id, "order-1", 3.0))
        .await
        .expect("usage")
        .into_inner();
    assert!(!first.replayed);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 3);
    assert_eq!(app.fakes.ares.usage_calls(), 1);
    let response = first.provider_response.clone().expect("provider response");
    assert!(
        !response.fields.is_empty(),
        "the provider's confirmation is returned"
    );

    let again = client
        .record_usage(usage(&conn.id, "order-1", 3.0))
        .await
        .expect("replay")
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.usage_id, first.usage_id);
    assert_eq!(again.provider_response, first.provider_response);
    assert_eq!(app.fakes.ares.usage_calls(), 1, "no second provider call");
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 3);

    let body: serde_json::Value = serde_json::from_str(
        &app.fakes
            .ares
            .requests()
            .iter()
            .rev()
            .find(|r| r.path.ends_with("/usage"))
            .expect("usage request")
            .body,
    )
    .expect("json");
    assert_eq!(
        body,
        serde_json::json!({"client_id": app.fakes.ares.client_id(), "usage": "test-button", "credits": 3})
    );
}

async fn same_key_different_payload_is_already_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    client
        .record_usage(usage(&conn.id, "k", 1.0))
        .await
        .expect("usage");
    assert_status(
        client.record_usage(usage(&conn.id, "k", 2.0)).await,
        Code::AlreadyExists,
        "idempotency_key",
    );
    assert_eq!(app.fakes.ares.usage_calls(), 1);
}

async fn concurrent_duplicates_reach_the_provider_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut c = client.clone();
        let request = usage(&conn.id, "burst", 2.0);
        tasks.push(tokio::spawn(async move { c.record_usage(request).await }));
    }
    let mut ids = Vec::new();
    let mut fresh = 0;
    for task in tasks {
        let r = task.await.expect("join").expect("usage").into_inner();
        fresh += usize::from(!r.replayed);
        ids.push(r.usage_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1, "exactly one call was not a replay");
    assert_eq!(app.fakes.ares.usage_calls(), 1);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 2);
}

async fn a_provider_rejection_returns_its_message_and_is_final(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let too_much = client
        .record_usage(usage(&conn.id, "big", (CREDITS + 1) as f64))
        .await;
    assert_status(too_much, Code::FailedPrecondition, "Insufficient credits");
    let replay = client
        .record_usage(usage(&conn.id, "big", (CREDITS + 1) as f64))
        .await;
    assert_status(replay, Code::FailedPrecondition, "Insufficient credits");
    assert_eq!(app.fakes.ares.usage_calls(), 1);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS);
}

async fn usage_needs_a_provider_with_a_usage_endpoint_and_valid_credits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "askara", "u").await;
    assert_status(
        client.record_usage(usage(&conn.id, "k", 1.0)).await,
        Code::FailedPrecondition,
        "usage endpoint",
    );
    let ares = connect(&app, &mut client, "ares", "u").await;
    assert_status(
        client.record_usage(usage(&ares.id, "k", -1.0)).await,
        Code::InvalidArgument,
        "credits",
    );
    assert_status(
        client.record_usage(usage(&ares.id, "", 1.0)).await,
        Code::InvalidArgument,
        "idempotency_key",
    );
    let mut no_usage = usage(&ares.id, "k2", 1.0);
    no_usage.usage.clear();
    assert_status(
        client.record_usage(no_usage).await,
        Code::InvalidArgument,
        "usage",
    );
    assert_eq!(app.fakes.ares.usage_calls(), 0);
}

async fn an_expired_token_is_refreshed_before_reporting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    // The provider now rejects the stored token: one 401, one refresh, one retry.
    app.fakes.ares.expire_access_tokens();
    let r = client
        .record_usage(usage(&conn.id, "after-expiry", 1.0))
        .await
        .expect("usage")
        .into_inner();
    assert!(!r.replayed);
    assert_eq!(app.fakes.ares.refreshes_accepted(), 1);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 1);
}

async fn a_provider_outage_leaves_the_key_retryable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    // The token endpoint is down and the stored token is too short: nothing is sent.
    app.fakes.ares.set_fault(Fault::ServerError);
    app.fakes.ares.expire_access_tokens();
    let down = client.record_usage(usage(&conn.id, "retry-me", 1.0)).await;
    assert_eq!(down.expect_err("unavailable").code(), Code::Unavailable);
    app.fakes.ares.set_fault(Fault::None);
    let ok = client
        .record_usage(usage(&conn.id, "retry-me", 1.0))
        .await
        .expect("retry")
        .into_inner();
    assert!(!ok.replayed);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 1);
    let info = client
        .get_user_info(pb::GetUserInfoRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("user info")
        .into_inner()
        .profile
        .expect("profile");
    assert_eq!(
        info.fields["credits"].kind,
        Some(V::NumberValue((CREDITS - 1) as f64))
    );
}

/// A usage whose answer never came is unknown until someone who checked
/// with the provider settles it: NOT_CHARGED lets the same key report again,
/// CHARGED replays it as succeeded; only the caller's own unknown usages can
/// be settled.
async fn an_unknown_outcome_is_settled_with_resolve_usage(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 500,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let fake = &app.fakes.ares;

    // The provider never answers: the outcome is unknown, and says so.
    let unknown = |client: &mut Client, key: &'static str| {
        let mut client = client.clone();
        let id = conn.id.clone();
        async move {
            fake.set_usage_fault(Fault::Hang);
            let first = client.record_usage(usage(&id, key, 2.0)).await;
            assert_eq!(first.expect_err("timed out").code(), Code::Unavailable);
            let status = client
                .record_usage(usage(&id, key, 2.0))
                .await
                .expect_err("outcome unknown");
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
            assert!(
                status.message().contains("in time"),
                "names what happened: {status:?}"
            );
            let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
            assert_eq!(info.reason, "USAGE_OUTCOME_UNKNOWN");
            fake.set_usage_fault(Fault::None);
            info.metadata["usage_id"].clone()
        }
    };
    let resolve = |usage_id: &str, outcome: pb::UsageOutcome| pb::ResolveUsageRequest {
        usage_id: usage_id.into(),
        outcome: outcome.into(),
    };

    // Not charged: the same key reports again, once.
    let calls = fake.usage_calls();
    let usage_id = unknown(&mut client, "hung-1").await;
    // Another caller cannot settle it, nor learn that it exists.
    let mut search = app.search().await;
    assert_status(
        search
            .resolve_usage(resolve(&usage_id, pb::UsageOutcome::NotCharged))
            .await,
        Code::NotFound,
        "not found",
    );
    assert_status(
        client
            .resolve_usage(resolve(&usage_id, pb::UsageOutcome::Unspecified))
            .await,
        Code::InvalidArgument,
        "outcome",
    );
    let settled = client
        .resolve_usage(resolve(&usage_id, pb::UsageOutcome::NotCharged))
        .await
        .expect("resolved")
        .into_inner();
    assert_eq!(settled.usage_id, usage_id);
    let reported = client
        .record_usage(usage(&conn.id, "hung-1", 2.0))
        .await
        .expect("reported again")
        .into_inner();
    assert!(!reported.replayed);
    assert_eq!(reported.usage_id, usage_id, "the same ledger record");
    assert_eq!(
        fake.usage_calls(),
        calls + 2,
        "the hung call and the report"
    );
    // A settled usage cannot be settled again.
    let status = client
        .resolve_usage(resolve(&usage_id, pb::UsageOutcome::Charged))
        .await
        .expect_err("outcome known");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(info.reason, "USAGE_NOT_UNKNOWN");

    // Charged: the key replays as succeeded and the provider hears nothing more.
    let usage_id = unknown(&mut client, "hung-2").await;
    client
        .resolve_usage(resolve(&usage_id, pb::UsageOutcome::Charged))
        .await
        .expect("resolved");
    let calls = fake.usage_calls();
    let replay = client
        .record_usage(usage(&conn.id, "hung-2", 2.0))
        .await
        .expect("replayed")
        .into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.usage_id, usage_id);
    assert_eq!(fake.usage_calls(), calls);
    assert!(
        app.logs()
            .lines()
            .any(|l| l.contains("usage outcome resolved") && l.contains("billing")),
        "each resolution is logged with who made it"
    );
}

/// A claim whose holder died is recognised within a claim lease, not
/// minutes: if it died before its request left, the same key simply reports;
/// if after, the outcome is unknown at once.
async fn a_dead_claim_is_reported_again_or_unknown_at_once(backend: Backend) {
    use sha2::{Digest, Sha256};

    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let hash: String = Sha256::digest(format!("{}\ntest-button\n2", conn.id).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stage = |id: &str, key: &str, sent_at: &str| {
        format!(
            "INSERT INTO usage_ledger (id, caller, connection_id, idempotency_key, request_hash, usage, credits, \
             status, attempts, created_at, updated_at, claim_owner, claim_until, sent_at) VALUES \
             ('{id}', 'billing', '{}', '{key}', '{hash}', 'test-button', 2, 'pending', 1, 1, 1, 'gone/1/abc', 1, {sent_at})",
            conn.id
        )
    };
    let calls = app.fakes.ares.usage_calls();

    // Died before sending: reported now, under the same usage id.
    let unsent = "0195f3c4-0000-7000-8000-0000000000a1";
    app.db.execute(&stage(unsent, "died-early", "NULL")).await;
    let started = std::time::Instant::now();
    let reported = client
        .record_usage(usage(&conn.id, "died-early", 2.0))
        .await
        .expect("reported")
        .into_inner();
    assert!(!reported.replayed);
    assert_eq!(reported.usage_id, unsent);
    assert_eq!(app.fakes.ares.usage_calls(), calls + 1);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 2);

    // Died after sending: unknown, without waiting for an age limit.
    let sent = "0195f3c4-0000-7000-8000-0000000000a2";
    app.db.execute(&stage(sent, "died-late", "1")).await;
    let status = client
        .record_usage(usage(&conn.id, "died-late", 2.0))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(info.reason, "USAGE_OUTCOME_UNKNOWN");
    assert_eq!(info.metadata["usage_id"], sent);
    assert!(status.message().contains("after sending"), "{status:?}");
    assert_eq!(app.fakes.ares.usage_calls(), calls + 1, "not sent again");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A caller's deadline bounds RecordUsage: with the provider answering in
/// 1.5 s, a call with a 600 ms deadline answers USAGE_IN_PROGRESS (with the
/// usage id) before it; the report goes on and a retry with the same key
/// replays it, charged once.
async fn a_deadline_is_answered_while_the_report_goes_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    app.fakes.ares.set_chaos(crate::fake::Chaos {
        server_error: 0.0,
        slow: 1.0,
        slow_by: std::time::Duration::from_millis(1_500)..std::time::Duration::from_millis(1_600),
    });
    let mut request = tonic::Request::new(usage(&conn.id, "slow-1", 2.0));
    request.set_timeout(std::time::Duration::from_millis(600));
    let started = std::time::Instant::now();
    let status = client.record_usage(request).await.expect_err("not in time");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(600),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    assert_eq!(info.reason, "USAGE_IN_PROGRESS");
    let usage_id = info.metadata["usage_id"].clone();
    assert!(!usage_id.is_empty());
    assert!(tonic_types::StatusExt::get_details_retry_info(&status).is_some());

    app.fakes.ares.set_chaos(crate::fake::Chaos::default());
    let replayed = loop {
        match client.record_usage(usage(&conn.id, "slow-1", 2.0)).await {
            Ok(done) => break done.into_inner(),
            Err(s) if s.code() == Code::Aborted => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "{s:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    assert!(replayed.replayed, "the first attempt reported it");
    assert_eq!(replayed.usage_id, usage_id);
    assert_eq!(app.fakes.ares.usage_calls(), 1);
    assert_eq!(app.fakes.ares.credits_of(USER), CREDITS - 2);
}

on_both!(
    a_deadline_is_answered_while_the_report_goes_on,
    usage_is_reported_once_and_replayed,
    same_key_different_payload_is_already_exists,
    concurrent_duplicates_reach_the_provider_once,
    a_provider_rejection_returns_its_message_and_is_final,
    usage_needs_a_provider_with_a_usage_endpoint_and_valid_credits,
    an_expired_token_is_refreshed_before_reporting,
    a_provider_outage_leaves_the_key_retryable,
    an_unknown_outcome_is_settled_with_resolve_usage,
    a_dead_claim_is_reported_again_or_unknown_at_once,
);
