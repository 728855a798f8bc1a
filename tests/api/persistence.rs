//! Restarts keep connections; neither the database nor the logs hold any
//! token or secret in plain text.

use authbroker::pb;

use crate::helpers::*;

async fn connections_survive_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "askara", "u").await;
    let before = token(&mut client, &conn.id, 60).await.expect("token");
    let begun = begin(&mut client, "ares", "later").await;

    let app = app.restart().await;
    let mut client = app.billing().await;
    let after = token(&mut client, &conn.id, 60)
        .await
        .expect("token after restart");
    assert_eq!(after.access_token, before.access_token);
    assert_eq!(
        app.fakes.askara.refreshes_accepted(),
        0,
        "served from storage"
    );
    // Refresh still works with the stored (sealed) refresh token.
    let refreshed = force_refresh(&mut client, &conn.id)
        .await
        .expect("refresh after restart");
    assert_eq!(
        Some(refreshed.access_token),
        app.fakes.askara.last_access_token()
    );
    // A flow begun before the restart completes after it.
    let params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    complete(&mut client, params).await;
}

async fn no_secret_in_the_database_or_the_logs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let mut ids = Vec::new();
    for provider in ["ares", "aries", "askara", "arterra"] {
        let conn = connect(&app, &mut client, provider, "u").await;
        force_refresh(&mut client, &conn.id).await.expect("refresh");
        ids.push(conn.id);
    }
    client
        .sign_in_with_password(pb::SignInWithPasswordRequest {
            provider: "arterra".into(),
            subject: "pw".into(),
            username: EMAIL.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("password grant");
    client
        .record_usage(pb::RecordUsageRequest {
            connection_id: ids[0].clone(),
            usage: "x".into(),
            credits: 1.0,
            idempotency_key: "k".into(),
        })
        .await
        .expect("usage");
    // A pending state with its value known to the caller only.
    let begun = begin(&mut client, "ares", "pending").await;

    let mut app = app;
    app.stop().await;
    let db = app.database_contents().await;
    let logs = app.logs();
    assert!(
        db.contains("v1.") && logs.lines().count() > 10,
        "sealed values and logs were written"
    );
    let mut secrets = app.fakes.all_secrets();
    secrets.push(begun.state.clone());
    assert!(secrets.len() > 20, "collected {} secrets", secrets.len());
    for secret in &secrets {
        assert!(
            !db.contains(secret.as_str()),
            "database holds a secret in plain text: {}...",
            &secret[..6]
        );
        assert!(
            !logs.contains(secret.as_str()),
            "logs hold a secret: {}...",
            &secret[..6]
        );
    }
}

#[tokio::test]
async fn the_generated_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let key = app.dir.path().join("authbroker.key");
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(app.logs().contains("generated one beside the database"));
}

#[tokio::test]
async fn a_lost_key_file_is_refused_rather_than_replaced() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut client = app.billing().await;
    connect(&app, &mut client, "aries", "u").await;
    let mut app = app;
    app.stop().await;
    std::fs::remove_file(app.dir.path().join("authbroker.key")).expect("remove key");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authbroker"))
        .args(["serve", "--config"])
        .arg(app.dir.path().join("authbroker.toml"))
        .env_clear()
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !app.dir.path().join("authbroker.key").exists(),
        "no new key was generated"
    );
}

on_both!(
    connections_survive_a_restart,
    no_secret_in_the_database_or_the_logs,
);
