//! The audit trail through the real server: each audited action lands in the
//! table (read back with `authbroker audit`) and in the log, and neither
//! holds a secret.

use std::time::Duration;

use authbroker::pb;
use tonic::Code;

use crate::{fake::Fault, helpers::*};

/// `authbroker audit` with `args` on the app's config: the events' JSON.
async fn audit_cli(app: &TestApp, args: &[&str]) -> Vec<serde_json::Value> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authbroker"))
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(app.dir.path().join("authbroker.toml"))
        .env_clear()
        .output()
        .await
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

async fn every_audited_action_is_stored_and_logged_without_secrets(backend: Backend) {
    let mut app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 1_000,
            caller_config: vec![("billing", "max_credits_per_call = 5".into())],
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    token(&mut client, &conn.id, 60).await.expect("token");
    client
        .record_usage(usage(&conn.id, "charged", 2.0))
        .await
        .expect("charged");
    // An attempt whose outcome is unknown, settled by the caller.
    app.fakes.ares.set_usage_fault(Fault::Hang);
    let timed_out = client
        .record_usage(usage(&conn.id, "unknown", 1.0))
        .await
        .expect_err("timed out");
    assert_eq!(timed_out.code(), Code::Unavailable, "{timed_out:?}");
    app.fakes.ares.set_usage_fault(Fault::None);
    let unknown = client
        .record_usage(usage(&conn.id, "unknown", 1.0))
        .await
        .expect_err("outcome unknown");
    let usage_id = tonic_types::StatusExt::get_details_error_info(&unknown)
        .expect("info")
        .metadata["usage_id"]
        .clone();
    client
        .resolve_usage(pb::ResolveUsageRequest {
            usage_id: usage_id.clone(),
            outcome: pb::UsageOutcome::NotCharged.into(),
        })
        .await
        .expect("resolved");
    let denied = client
        .record_usage(usage(&conn.id, "too-big", 6.0))
        .await
        .expect_err("over the per-call limit");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // The same account again: re-authorized.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let again = connect(&app, &mut client, "ares", "u").await;
    assert_eq!(again.id, conn.id);
    client
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("revoked");
    let mut intruder = app.client(Some("not-a-caller-token-000000")).await;
    let refused = intruder
        .list_connections(pb::ListConnectionsRequest::default())
        .await
        .expect_err("unauthenticated");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let secrets = [
        BILLING_TOKEN.to_owned(),
        "not-a-caller-token-000000".to_owned(),
        app.fakes.ares.client_secret(),
        app.fakes.ares.last_access_token().expect("issued"),
    ];
    // SIGTERM: the queued events are stored before the process exits.
    app.stop().await;

    let events = audit_cli(&app, &["--connection", &conn.id]).await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for wanted in [
        "connection_created",
        "token_served",
        "usage_charged",
        "policy_denied",
        "connection_reauthorized",
        "connection_revoked",
    ] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    assert!(events.iter().all(|e| e["caller"] == "billing"));
    let denial = events
        .iter()
        .find(|e| e["action"] == "policy_denied")
        .expect("denial");
    assert_eq!(denial["outcome"], "POLICY_DENIED");
    assert!(
        denial["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_credits_per_call")),
        "{denial}"
    );
    let by_caller = audit_cli(&app, &["--caller", "billing", "--since", "1h"]).await;
    assert!(
        by_caller.iter().any(|e| e["action"] == "usage_resolved"
            && e["detail"].as_str().is_some_and(|d| d.contains(&usage_id))),
        "{by_caller:?}"
    );
    let intruders = audit_cli(&app, &["--caller", "-"]).await;
    assert!(
        intruders
            .iter()
            .any(|e| e["action"] == "caller_unauthenticated"),
        "{intruders:?}"
    );
    assert!(audit_cli(&app, &["--since", "0"]).await.len() >= events.len());

    let logs = app.logs();
    for wanted in ["token_served", "usage_resolved", "caller_unauthenticated"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("audit event") && l.contains(wanted)),
            "{wanted} not logged"
        );
    }
    let table = match backend {
        Backend::Postgres => app.db.dump().await,
        // The whole database file and its write-ahead log, byte for byte.
        Backend::Sqlite => ["authbroker.db", "authbroker.db-wal"]
            .iter()
            .filter_map(|f| std::fs::read(app.dir.path().join(f)).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect(),
    };
    assert!(
        table.contains("token_served"),
        "the events are in the database"
    );
    for secret in &secrets {
        assert!(!table.contains(secret.as_str()), "a secret in the tables");
        assert!(!logs.contains(secret.as_str()), "a secret in the logs");
    }
}

on_both!(every_audited_action_is_stored_and_logged_without_secrets);
