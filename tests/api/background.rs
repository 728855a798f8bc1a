//! The background refresher at work: replicas share the due connections
//! without overlap and keep them fresh, the idle keep-alive renews long-lived
//! tokens, the per-provider rate limit spaces requests, and a 429 pauses the
//! provider as a whole.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authbroker::pb;

use crate::{
    fake::{FakeProvider, Fault},
    helpers::*,
    in_process::InProcessApp,
};

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

async fn connect_many(
    client: &mut Client,
    fake: &FakeProvider,
    provider: &str,
    n: usize,
) -> Vec<pb::Connection> {
    let mut connections = Vec::with_capacity(n);
    for i in 0..n {
        let request = pb::BeginAuthRequest {
            provider: provider.into(),
            subject: format!("user-{i}"),
            redirect_uri: CALLBACK.into(),
            ..Default::default()
        };
        connections.push(connect_via(client, fake, request, USER).await);
    }
    connections
}

/// How many "token refreshed" lines a replica logged.
fn refreshes_logged(app: &TestApp) -> usize {
    app.logs().matches("\"token refreshed\"").count()
}

/// 120 connections with 12 s rotating tokens, renewed at half their life:
/// for 16 s no refresh token is presented twice (the fake rejects a rotated
/// one), every connection is renewed, and at the end every stored token has
/// time left, so no caller had to wait. On PostgreSQL three replicas share
/// the work.
async fn replicas_keep_connections_fresh_without_overlap(backend: Backend) {
    let options = Options {
        background_refresh_secs: 1,
        extra_config: "refresh_window_secs = 10".into(),
        ..Options::default()
    };
    let first = TestApp::spawn_with(backend, options).await;
    let mut replicas = vec![];
    if backend == Backend::Postgres {
        replicas.push(first.replica().await);
        replicas.push(first.replica().await);
    }
    let fake = &first.fakes.askara;
    fake.set_token_lifetime(Some(12));
    let mut client = first.billing().await;
    let connections = connect_many(&mut client, fake, "askara", 120).await;
    tokio::time::sleep(Duration::from_secs(16)).await;

    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let renewed = fake.refreshes_accepted();
    // Each lives 12 s and is renewed after 5-6 s: two or three rounds each.
    assert!(renewed >= 2 * 120, "only {renewed} background refreshes");
    let now = unix_now();
    for connection in &connections {
        let stored = fetch(&mut client, &connection.id).await;
        assert_eq!(stored.status(), pb::ConnectionStatus::Active);
        let expires = stored.access_token_expires_at.expect("expiry").seconds;
        assert!(
            expires - now >= 3,
            "{} has {} s left: the refresher fell behind",
            connection.id,
            expires - now
        );
    }
    if backend == Backend::Postgres {
        let per_replica: Vec<usize> = std::iter::once(&first)
            .chain(&replicas)
            .map(refreshes_logged)
            .collect();
        // Read after the logs: refreshes go on meanwhile, and one still in
        // flight is accepted before it is logged.
        let accepted = fake.refreshes_accepted();
        let logged = per_replica.iter().sum::<usize>();
        assert!(logged <= accepted, "{per_replica:?} of {accepted}");
        assert!(
            per_replica.iter().filter(|n| **n > 0).count() >= 2,
            "the replicas did not share the work: {per_replica:?}"
        );
    }
}

/// A provider that expires refresh tokens left unused gets every connection
/// renewed at least every `refresh_token_max_idle_secs`, even with a
/// month-long access token; another provider's connection is left alone.
async fn idle_keep_alive_renews_long_lived_tokens(backend: Backend) {
    let options = Options {
        background_refresh_secs: 1,
        provider_config: vec![("askara", "refresh_token_max_idle_secs = 86400".into())],
        ..Options::default()
    };
    let app = InProcessApp::spawn(backend, options).await;
    let mut client = app.billing().await;
    let month = 30 * 86_400;
    let (kept, other) = (&app.fakes.askara, &app.fakes.ares);
    kept.set_token_lifetime(Some(month));
    other.set_token_lifetime(Some(month));
    let kept_alive = connect_many(&mut client, kept, "askara", 1).await;
    connect_many(&mut client, other, "ares", 1).await;

    app.clock.advance(Duration::from_secs(86_400 - 60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        kept.refreshes_accepted(),
        0,
        "renewed before a day of idling"
    );

    app.clock.advance(Duration::from_secs(61));
    let started = Instant::now();
    while kept.refreshes_accepted() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no keep-alive refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = token(&mut client, &kept_alive[0].id, 60)
        .await
        .expect("token");
    assert_eq!(Some(served.access_token), kept.last_access_token());
    assert_eq!(
        other.refreshes_accepted(),
        0,
        "no keep-alive was configured there"
    );
    // The renewed connection is not due again for another day.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kept.refreshes_accepted(), 1);
    app.stop().await;
}

/// 30 connections come due together under a limit of 10 refreshes/s: the
/// provider sees them spaced at least 100 ms apart on average.
async fn the_rate_limit_spaces_background_refreshes(backend: Backend) {
    let options = Options {
        background_refresh_secs: 1,
        provider_config: vec![("askara", "refresh_rate_per_sec = 10".into())],
        ..Options::default()
    };
    let app = InProcessApp::spawn(backend, options).await;
    let mut client = app.billing().await;
    let fake = &app.fakes.askara;
    fake.set_token_lifetime(Some(3_600));
    connect_many(&mut client, fake, "askara", 30).await;

    // Everything is due now.
    app.clock.advance(Duration::from_secs(3_600 - 60));
    let mut first_seen = None;
    let started = Instant::now();
    while fake.refreshes_accepted() < 30 {
        if first_seen.is_none() && fake.refreshes_accepted() > 0 {
            first_seen = Some(Instant::now());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not all renewed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spread = first_seen.expect("a first refresh").elapsed();
    // 29 gaps of 100 ms after the first request.
    assert!(
        spread >= Duration::from_millis(2_700),
        "30 refreshes within {spread:?} break a limit of 10/s"
    );
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    app.stop().await;
}

/// Callers' refreshes take their slots from the same limit: at 1/s, two
/// forced refreshes of two connections reach the provider a second apart.
async fn callers_refreshes_share_the_rate_limit(backend: Backend) {
    let options = Options {
        provider_config: vec![("askara", "refresh_rate_per_sec = 1".into())],
        ..Options::default()
    };
    let app = InProcessApp::spawn(backend, options).await;
    let mut client = app.billing().await;
    let fake = &app.fakes.askara;
    let connections = connect_many(&mut client, fake, "askara", 2).await;
    force_refresh(&mut client, &connections[0].id)
        .await
        .expect("first refresh");
    let started = Instant::now();
    force_refresh(&mut client, &connections[1].id)
        .await
        .expect("second refresh, after waiting for its slot");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the second refresh went out {:?} after the first",
        started.elapsed()
    );
    assert_eq!(fake.refreshes_accepted(), 2);
    app.stop().await;
}

/// A 429 with Retry-After pauses every refresh to that provider for that
/// long, background and on demand; then they resume. One background refresh
/// at a time, so the first 429 comes before any other request.
async fn a_429_pauses_the_whole_provider(backend: Backend) {
    let options = Options {
        background_refresh_secs: 1,
        provider_config: vec![("askara", "refresh_concurrency = 1".into())],
        ..Options::default()
    };
    let app = InProcessApp::spawn(backend, options).await;
    let mut client = app.billing().await;
    let fake = &app.fakes.askara;
    fake.set_token_lifetime(Some(3_600));
    let connections = connect_many(&mut client, fake, "askara", 10).await;
    fake.set_fault(Fault::TooManyRequests {
        retry_after_secs: 4,
    });
    app.clock.advance(Duration::from_secs(3_600 - 60));

    let started = Instant::now();
    while fake.token_requests("refresh_token") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no refresh attempted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused_at = Instant::now();
    fake.set_fault(Fault::None);
    // Paused: a caller's refresh is not sent either; the still-valid token serves.
    let served = force_refresh(&mut client, &connections[0].id).await;
    assert_eq!(
        fake.token_requests("refresh_token"),
        1,
        "a request went out during the pause: {served:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.token_requests("refresh_token"),
        1,
        "sent during the pause"
    );

    while fake.refreshes_accepted() < 10 {
        assert!(
            refused_at.elapsed() < Duration::from_secs(20),
            "refreshes did not resume after the pause"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused_at.elapsed() >= Duration::from_secs(3));
    app.stop().await;
}

on_both!(
    replicas_keep_connections_fresh_without_overlap,
    idle_keep_alive_renews_long_lived_tokens,
    the_rate_limit_spaces_background_refreshes,
    callers_refreshes_share_the_rate_limit,
    a_429_pauses_the_whole_provider,
);
