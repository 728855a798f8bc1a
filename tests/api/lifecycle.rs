//! Process lifecycle: SIGTERM drains in-flight calls and exits 0; start-up
//! fails fast and clearly on a bad config, an unreachable database or a
//! missing key.

use std::time::{Duration, Instant};

use crate::helpers::*;

async fn sigterm_lets_in_flight_calls_finish(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "askara", "u").await;
    app.expire(&conn.id).await;
    let fake = app.fakes.askara.clone();
    fake.set_delay(Duration::from_millis(1_500));
    let in_flight = {
        let mut c = client.clone();
        let id = conn.id.clone();
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while fake.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New calls are refused while the refresh is still waiting on the provider.
    let fresh = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert!(
        fresh.is_err(),
        "a new connection was accepted during the drain"
    );

    let served = in_flight
        .await
        .expect("join")
        .expect("the in-flight refresh completes");
    assert_eq!(Some(served.access_token), fake.last_access_token());
    let status = app.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
    let logs = app.logs();
    assert!(logs.contains("shutdown signal received") && logs.contains("authbroker stopped"));
}

on_both!(sigterm_lets_in_flight_calls_finish);

fn serve_with(env: &[(&str, &str)], config: Option<&str>) -> (bool, String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_authbroker"));
    command.arg("serve").env_clear().envs(env.iter().copied());
    if let Some(text) = config {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        command.arg("--config").arg(path);
    }
    command.env("AUTHBROKER_LISTEN", "127.0.0.1:0");
    let started = Instant::now();
    let out = command.output().expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn an_unreachable_database_fails_start_up_fast() {
    let key = authbroker::crypto::SealingKey::generate_base64();
    let (ok, stderr, took) = serve_with(
        &[
            (
                "AUTHBROKER_DATABASE_URL",
                "postgres://app:hunter2pw@127.0.0.1:1/authbroker",
            ),
            ("AUTHBROKER_ENCRYPTION_KEY", &key),
        ],
        None,
    );
    assert!(!ok);
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(!stderr.contains("hunter2pw"), "the password is not printed");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_missing_key_fails_start_up() {
    let (ok, stderr, _) = serve_with(
        &[("AUTHBROKER_DATABASE_URL", "postgres://127.0.0.1:5432/x")],
        None,
    );
    assert!(!ok);
    assert!(stderr.contains("encryption_key: required"), "{stderr}");
    let (ok, stderr, _) = serve_with(
        &[
            ("AUTHBROKER_DATABASE_URL", "postgres://127.0.0.1:5432/x"),
            ("AUTHBROKER_ENCRYPTION_KEY", "dG9vIHNob3J0"),
        ],
        None,
    );
    assert!(!ok);
    // A key that is there but malformed, not the missing-key error above.
    assert!(
        stderr.contains("encryption_key: ")
            && stderr.contains("expected base64 of 32 random bytes")
            && !stderr.contains("required"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_fails_start_up_naming_the_key() {
    let (ok, stderr, _) = serve_with(
        &[],
        Some("listen = \"127.0.0.1:0\"\n[providers.a]\nkind = \"ares\"\nclientid = \"x\"\n"),
    );
    assert!(!ok);
    assert!(stderr.contains("clientid"), "{stderr}");
}
