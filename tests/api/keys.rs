//! Key rotation end to end: start with k1; add k2 as the active key and
//! restart: every connection still serves; `authbroker reseal`; drop k1:
//! every connection still serves; a ring without a key the data needs fails
//! start-up naming it.

use std::time::Duration;

use crate::helpers::*;

fn ring(keys: &[(&str, &str)], active: &str) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|(id, key)| format!("{{ id = \"{id}\", key = \"{key}\" }}"))
        .collect();
    format!(
        "encryption_keys = [{}]\nactive_encryption_key_id = \"{active}\"",
        entries.join(", ")
    )
}

/// Runs the binary with `args` on the app's config file; (success, stdout + stderr).
async fn run(app: &TestApp, args: &[&str]) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authbroker"));
    command
        .args(args)
        .arg("--config")
        .arg(app.dir.path().join("authbroker.toml"))
        .env_clear()
        .env("AUTHBROKER_LISTEN", "127.0.0.1:0")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("exits in time")
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn keys_rotate_without_losing_a_connection(backend: Backend) {
    let (k1, k2, k3) = (
        authbroker::crypto::SealingKey::generate_base64(),
        authbroker::crypto::SealingKey::generate_base64(),
        authbroker::crypto::SealingKey::generate_base64(),
    );
    let with = |keys: String| Options {
        keys: Some(keys),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, with(ring(&[("k1", &k1)], "k1"))).await;
    let mut client = app.billing().await;
    let mut ids = Vec::new();
    for (provider, subject) in [("ares", "a"), ("askara", "b"), ("arterra", "c")] {
        ids.push(connect(&app, &mut client, provider, subject).await.id);
    }
    let served = async |app: &TestApp| {
        let mut client = app.billing().await;
        for id in &ids {
            token(&mut client, id, 60).await.expect("served");
        }
    };

    // k2 joins the ring as the active key: everything sealed under k1 opens.
    let app = app
        .restart_with(with(ring(&[("k1", &k1), ("k2", &k2)], "k2")))
        .await;
    served(&app).await;
    let under_k1 =
        "SELECT count(*) FROM connections WHERE key_id = 'k1' AND access_token IS NOT NULL";
    assert_eq!(app.db.count(under_k1).await, 3);

    // Re-sealed while the server runs.
    let (ok, out) = run(&app, &["reseal"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("3 of 3 connection(s) re-sealed"), "{out}");
    assert_eq!(app.db.count(under_k1).await, 0);
    served(&app).await;
    for secret in [&k1, &k2] {
        assert!(!out.contains(secret.as_str()), "a key in the output");
    }

    // k1 leaves the ring.
    let app = app.restart_with(with(ring(&[("k2", &k2)], "k2"))).await;
    served(&app).await;

    // A ring without k2 cannot start, and says which key is missing.
    let mut app = app;
    app.stop().await;
    std::fs::write(
        app.dir.path().join("authbroker.toml"),
        config_toml(&app.fakes, &app.db, &with(ring(&[("k3", &k3)], "k3"))),
    )
    .expect("write");
    let (ok, out) = run(&app, &["serve"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("\\\"k2\\\"") || out.contains("\"k2\""),
        "{out}"
    );
    assert!(out.contains("key ring lacks"), "{out}");
    // The same id with other key material is caught too.
    std::fs::write(
        app.dir.path().join("authbroker.toml"),
        config_toml(&app.fakes, &app.db, &with(ring(&[("k2", &k3)], "k2"))),
    )
    .expect("write");
    let (ok, out) = run(&app, &["serve"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not open the tokens stored under that id"),
        "{out}"
    );
}

on_both!(keys_rotate_without_losing_a_connection);

/// The key file the embedded mode generated (mode 0600): if it was later
/// made readable by its group or others, the service refuses to start.
#[cfg(unix)]
#[tokio::test]
async fn a_shared_embedded_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    app.stop().await;
    let key_file = app.dir.path().join("authbroker.key");
    let mode = std::fs::metadata(&key_file)
        .expect("generated")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "generated for its owner only");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let (ok, out) = run(&app, &["serve"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("readable by its group or by others"), "{out}");
}
