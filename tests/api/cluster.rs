//! Several replicas over one database: exactly one refresh, crash safety,
//! revocation seen everywhere within the cache bound, health that follows
//! the database, background refresh.

use std::time::{Duration, Instant};

use authbroker::pb::{self, ConnectionStatus};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{fake::Fault, helpers::*, in_process::InProcessApp, proxy::Proxy};

async fn three_replicas_refresh_once_for_600_callers(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.replica().await;
    let third = first.replica().await;
    let mut client = first.billing().await;
    let conn = connect(&first, &mut client, "askara", "u").await;
    first.expire(&conn.id).await;
    // Askara rotates refresh tokens: a second refresh with the old one would
    // fail. The provider answers slowly, so the callers pile up.
    let fake = &first.fakes.askara;
    fake.set_delay(Duration::from_millis(500));

    let clients = [
        first.billing().await,
        second.billing().await,
        third.billing().await,
    ];
    let mut tasks = Vec::new();
    for i in 0..600 {
        let mut c = clients[i % 3].clone();
        let id = conn.id.clone();
        tasks.push(tokio::spawn(async move { token(&mut c, &id, 60).await }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(
            task.await
                .expect("join")
                .expect("every call succeeds")
                .access_token,
        );
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(
        fake.token_requests("refresh_token"),
        1,
        "exactly one refresh reached the provider"
    );
    assert_eq!(
        tokens,
        vec![fake.last_access_token().expect("issued")],
        "all 600 got the same new token"
    );
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}

/// SIGKILL while a refresh is in flight; the connection is then either
/// usable or explicitly NEEDS_REAUTH with a logged reason, and soon: on
/// PostgreSQL another replica takes over within 5 s of the kill (the killed
/// process's lock is gone and its renewals stopped; the lease is 10 s), on
/// SQLite the restarted process within 2 s of its start.
/// `then`: a fault the first resumed refresh meets before the provider
/// answers again.
async fn killed_mid_refresh(backend: Backend, provider_already_rotated: bool, then: Option<Fault>) {
    let mut app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 1_000,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "arterra", "u").await;
    app.expire(&conn.id).await;
    // On PostgreSQL a second replica is up all along and takes over.
    let replica = match backend {
        Backend::Postgres => Some(app.replica().await),
        Backend::Sqlite => None,
    };
    let fake = app.fakes.arterra.clone();
    if provider_already_rotated {
        // The provider rotates, then answers slowly: the answer dies with the process.
        fake.set_answer_delay(Duration::from_secs(30));
    } else {
        fake.set_delay(Duration::from_secs(30));
    }
    let in_flight = {
        let mut c = client.clone();
        let id = conn.id.clone();
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while fake.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.kill().await;
    let killed_at = Instant::now();
    assert!(
        in_flight.await.expect("join").is_err(),
        "the in-flight call died with the process"
    );
    fake.set_delay(Duration::ZERO);
    fake.set_answer_delay(Duration::ZERO);

    let (app, started, bound) = match replica {
        Some(replica) => (replica, killed_at, Duration::from_secs(5)),
        None => {
            let app = app.restart().await;
            (app, Instant::now(), Duration::from_secs(2))
        }
    };
    let mut client = app.billing().await;
    if let Some(fault) = then.clone() {
        // The resumed attempt fails for its own reasons: the interruption
        // must survive it.
        fake.set_fault(fault);
        let failed = token_retrying(&mut client, &conn.id).await;
        assert_eq!(
            failed.expect_err("provider failing").code(),
            Code::Unavailable
        );
        fake.set_fault(Fault::None);
    }
    let result = token_retrying(&mut client, &conn.id).await;
    let took = started.elapsed();
    assert!(
        then.is_some() || took < bound,
        "{backend:?}: answered after {took:?}, bound {bound:?}"
    );
    if provider_already_rotated {
        assert_status(result, Code::FailedPrecondition, "interrupted");
        assert_eq!(
            fetch(&mut client, &conn.id).await.status(),
            ConnectionStatus::NeedsReauth
        );
        let logs = app.logs();
        assert!(
            logs.lines()
                .any(|l| l.contains("connection status changed") && l.contains("interrupted")),
            "the reason is logged"
        );
    } else {
        let served = result.expect("still usable");
        assert_eq!(Some(served.access_token), fake.last_access_token());
        assert_eq!(
            fetch(&mut client, &conn.id).await.status(),
            ConnectionStatus::Active
        );
    }
}

async fn killed_before_the_provider_answered(backend: Backend) {
    killed_mid_refresh(backend, false, None).await;
}

async fn killed_after_the_provider_rotated(backend: Backend) {
    killed_mid_refresh(backend, true, None).await;
}

async fn a_lost_rotation_is_remembered_through_later_failures(backend: Backend) {
    killed_mid_refresh(backend, true, Some(Fault::ServerError)).await;
}

/// A holder that died before its request left is resumed as a clean retry:
/// if the provider then refuses the token, that is the provider's doing and
/// the stored reason says so, without blaming an interruption; one that died
/// after sending is named.
async fn a_holder_that_died_before_sending_left_nothing_to_blame(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    for (sent_at, blamed) in [("NULL", false), ("5", true)] {
        let conn = connect(&app, &mut client, "arterra", &format!("u-{blamed}")).await;
        app.db
            .execute(&format!(
                "UPDATE connections SET access_token_expires_at = 0, refresh_lease_owner = 'gone/1/abc', \
                 refresh_lease_until = 1, refresh_started_at = 4, refresh_sent_at = {sent_at} WHERE id = '{}'",
                conn.id
            ))
            .await;
        app.fakes.arterra.revoke_refresh_tokens();
        let status = token(&mut client, &conn.id, 60)
            .await
            .expect_err("the provider refuses the token");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("invalid_grant"), "{status:?}");
        assert_eq!(
            status.message().contains("sent at 5 was interrupted"),
            blamed,
            "{status:?}"
        );
    }
}

/// A holder whose provider call outlasts its lease renews it: another
/// replica keeps waiting instead of taking over, and the provider sees one
/// refresh.
async fn a_slow_refresh_keeps_its_lease_alive(backend: Backend) {
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
    // Twice the lease: without renewals the replica would take over midway.
    fake.set_delay(Duration::from_secs(6));
    let first = {
        let (mut c, id) = (client.clone(), conn.id.clone());
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while fake.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut other = replica.billing().await;
    let second = token(&mut other, &conn.id, 60)
        .await
        .expect("served once the holder stored the new token");
    let first = first.await.expect("join").expect("the holder's refresh");
    assert_eq!(first.access_token, second.access_token);
    assert_eq!(fake.token_requests("refresh_token"), 1, "one refresh");
}

/// GetAccessToken, retried while it answers REFRESH_IN_PROGRESS (for at most
/// a minute), as a client following the error's RetryInfo would.
async fn token_retrying(
    client: &mut Client,
    id: &str,
) -> Result<pb::GetAccessTokenResponse, tonic::Status> {
    let started = Instant::now();
    loop {
        let result = token(client, id, 60).await;
        let in_progress = result.as_ref().err().is_some_and(|s| {
            tonic_types::StatusExt::get_details_error_info(s)
                .is_some_and(|info| info.reason == "REFRESH_IN_PROGRESS")
        });
        if !in_progress || started.elapsed() > Duration::from_secs(60) {
            return result;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn revocation_reaches_other_replicas_within_the_cache_bound(backend: Backend) {
    let options = Options {
        extra_config: "token_cache_ttl_ms = 500".into(),
        ..Options::default()
    };
    let first = TestApp::spawn_with(backend, options).await;
    let second = first.replica().await;
    let mut on_first = first.billing().await;
    let mut on_second = second.billing().await;
    let conn = connect(&first, &mut on_first, "ares", "u").await;
    token(&mut on_first, &conn.id, 60)
        .await
        .expect("cached on the first replica");

    on_second
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("revoke on the second replica");
    let revoked_at = Instant::now();
    loop {
        match token(&mut on_first, &conn.id, 60).await {
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition);
                assert!(status.message().contains("revoked"));
                break;
            }
            Ok(_) => assert!(
                revoked_at.elapsed() < Duration::from_millis(900),
                "served past the staleness bound"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lock_contention_is_its_own_error(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 500,
            extra_config: "max_wait_secs = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "aries", "u").await;
    // Another replica holds the lease for an hour (as a misconfigured peer
    // would), and the stored token is dead: no way to serve, no refresh.
    app.db
        .execute(&format!(
            "UPDATE connections SET access_token_expires_at = 0, refresh_lease_owner = 'other-replica', \
             refresh_lease_until = 9999999999, refresh_started_at = 1 WHERE id = '{}'",
            conn.id
        ))
        .await;
    // Without a deadline the call waits `max_wait_secs`, then says who
    // holds the refresh.
    let started = Instant::now();
    assert_status(
        token(&mut client, &conn.id, 60).await,
        Code::Unavailable,
        "being refreshed by other-replica",
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "waited {waited:?} for a 1 s bound"
    );
    // With a deadline shorter than that, the answer comes before the deadline.
    let mut request = tonic::Request::new(pb::GetAccessTokenRequest {
        connection_id: conn.id.clone(),
        min_valid_seconds: 60,
        force_refresh: false,
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let answer = client.get_access_token(request).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(400),
        "answered after {waited:?}"
    );
    let status = answer.expect_err("no token to serve");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    assert_eq!(info.reason, "REFRESH_IN_PROGRESS");
    assert!(tonic_types::StatusExt::get_details_retry_info(&status).is_some());
    assert_eq!(app.fakes.aries.token_requests("refresh_token"), 0);
}

async fn the_background_refresher_renews_tokens_before_callers_ask(backend: Backend) {
    let options = Options {
        extra_config: "refresh_window_secs = 300".into(),
        background_refresh_secs: 1,
        ..Options::default()
    };
    let app = InProcessApp::spawn(backend, options).await;
    let mut client = app.billing().await;
    let fake = &app.fakes.askara;
    let request = pb::BeginAuthRequest {
        provider: "askara".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    let conn = connect_via(&mut client, fake, request, USER).await;
    // 200 s before Askara's one-day token expires: inside the 300 s window,
    // past half its life.
    app.clock.advance(Duration::from_secs(86_400 - 200));
    let started = Instant::now();
    while fake.refreshes_accepted() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no background refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = token(&mut client, &conn.id, 600).await.expect("token");
    assert_eq!(Some(served.access_token), fake.last_access_token());
    assert_eq!(
        fake.refreshes_accepted(),
        1,
        "the caller did not wait for a refresh"
    );
    app.stop().await;
}

on_both!(
    three_replicas_refresh_once_for_600_callers,
    killed_before_the_provider_answered,
    killed_after_the_provider_rotated,
    a_lost_rotation_is_remembered_through_later_failures,
    a_holder_that_died_before_sending_left_nothing_to_blame,
    a_slow_refresh_keeps_its_lease_alive,
    revocation_reaches_other_replicas_within_the_cache_bound,
    lock_contention_is_its_own_error,
    the_background_refresher_renews_tokens_before_callers_ask,
);

#[tokio::test]
async fn health_follows_the_database() {
    if !crate::db::postgres_available("health_follows_the_database") {
        return;
    }
    let proxy = Proxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let app = TestApp::spawn_with(
        Backend::Postgres,
        Options {
            database_port: Some(proxy.port),
            extra_config: "health_check_interval_ms = 200".into(),
            ..Options::default()
        },
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let mut probe = HealthClient::new(channel);
    let mut wait_for = async |wanted: ServingStatus| {
        let started = Instant::now();
        loop {
            let status = health
                .check(HealthCheckRequest {
                    service: "authbroker.v1.AuthBroker".into(),
                })
                .await
                .expect("health answers")
                .into_inner()
                .status();
            if status == wanted {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "still {status:?}, wanted {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_for(ServingStatus::Serving).await;
    proxy.down();
    wait_for(ServingStatus::NotServing).await;
    let liveness = probe
        .check(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status();
    assert_eq!(
        liveness,
        ServingStatus::Serving,
        "liveness does not follow the database"
    );
    let mut client = app.billing().await;
    let during = client
        .list_connections(pb::ListConnectionsRequest::default())
        .await;
    assert_eq!(during.expect_err("database down").code(), Code::Unavailable);
    proxy.up();
    wait_for(ServingStatus::Serving).await;
    // A pooled connection the outage killed fails once when next used (it is
    // then discarded), as after any database failover: a caller's retry of
    // UNAVAILABLE succeeds.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client
            .list_connections(pb::ListConnectionsRequest::default())
            .await
        {
            Ok(_) => break,
            Err(status) if status.code() == Code::Unavailable && attempts < 5 => {}
            Err(status) => panic!("not served again without a restart: {status:?}"),
        }
    }
}
