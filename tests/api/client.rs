//! The Rust client crate against the real server: its token source caches,
//! its errors are typed from ErrorInfo, its retries wait what RetryInfo
//! says, and its example program runs.

use std::time::{Duration, Instant};

use authbroker_client::{RetryPolicy, TokenSource, pb::ErrorReason};

use crate::helpers::*;

async fn connect_client(app: &TestApp) -> authbroker_client::Client {
    authbroker_client::connect(&format!("http://{}", app.addr), Some(BILLING_TOKEN))
        .await
        .expect("connects")
}

async fn the_token_source_caches_and_types_its_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut billing = app.billing().await;
    let conn = connect(&app, &mut billing, "ares", "u").await;
    let tokens = TokenSource::new(connect_client(&app).await, conn.id.clone());
    let first = tokens.token().await.expect("a token");
    assert_eq!(
        first,
        token(&mut billing, &conn.id, 0)
            .await
            .expect("token")
            .access_token
    );

    // Revoked on the server: the cached token is still handed out (no
    // call is made while it lives), until the cache is dropped.
    revoke(&mut billing, &conn.id).await;
    assert_eq!(tokens.token().await.expect("cached"), first);
    tokens.invalidate().await;
    let error = tokens.token().await.expect_err("revoked");
    assert_eq!(error.reason, ErrorReason::ConnectionRevoked);
    assert_eq!(error.meta("connection_id"), Some(conn.id.as_str()));
    assert!(!error.is_retryable());

    // Required scopes: the missing ones, typed.
    let other = connect(&app, &mut billing, "ares", "v").await;
    let scoped = TokenSource::new(connect_client(&app).await, other.id.clone())
        .with_required_scopes(["admin".to_owned()]);
    let error = scoped.token().await.expect_err("not granted");
    assert_eq!(error.reason, ErrorReason::InsufficientScope);
    assert_eq!(error.meta("missing"), Some("admin"));
}

async fn retries_wait_what_retry_info_says(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            caller_config: vec![(
                "billing",
                "rate_limit_per_second = 1\nrate_limit_burst = 1".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    let client = connect_client(&app).await;
    let list = || {
        let mut client = client.clone();
        async move {
            client
                .list_connections(authbroker_client::pb::ListConnectionsRequest::default())
                .await
        }
    };
    RetryPolicy::none().run(list).await.expect("first call");
    let refused = RetryPolicy::none()
        .run(list)
        .await
        .expect_err("rate limited");
    assert_eq!(refused.reason, ErrorReason::RateLimited);
    let delay = refused.retry_after.expect("RetryInfo");
    assert!(delay > Duration::from_millis(500), "{delay:?}");

    // The default policy waits the delay and gets through.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    RetryPolicy::none().run(list).await.expect("a fresh second");
    let started = Instant::now();
    RetryPolicy::default()
        .run(list)
        .await
        .expect("retried after the delay");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

async fn the_example_runs(backend: Backend) {
    // Built next to this test binary by `cargo test` / nextest (examples
    // are test targets' companions); CI builds it explicitly too.
    let example = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples/token")))
        .filter(|path| path.exists());
    let Some(example) = example else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("the client example is not built: cargo build -p authbroker-client --examples");
        }
        eprintln!("SKIPPED client::the_example_runs: the example is not built");
        return;
    };
    let app = TestApp::spawn(backend).await;
    let mut billing = app.billing().await;
    let conn = connect(&app, &mut billing, "ares", "u").await;
    let output = tokio::process::Command::new(example)
        .arg(&conn.id)
        .env("AUTHBROKER_ADDR", format!("http://{}", app.addr))
        .env("AUTHBROKER_TOKEN", BILLING_TOKEN)
        .output()
        .await
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("served again from the cache"), "{stdout}");
    let served = token(&mut billing, &conn.id, 0).await.expect("token");
    assert!(
        !stdout.contains(&served.access_token),
        "the example never prints the token"
    );
}

on_both!(
    the_token_source_caches_and_types_its_errors,
    retries_wait_what_retry_info_says,
    the_example_runs,
);
