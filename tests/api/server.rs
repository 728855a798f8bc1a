//! The server around the API: health, reflection, the CLI's subcommands.

use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::*;

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn health_reports_serving_without_authentication(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut health = HealthClient::new(channel(&app).await);
    for service in ["", "authbroker.v1.AuthBroker"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
}

async fn reflection_lists_the_services(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut reflection = ServerReflectionClient::new(channel(&app).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection")
        .into_inner();
    let response = stream.message().await.expect("stream").expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"authbroker.v1.AuthBroker".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

fn authbroker() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_authbroker"));
    command.env_clear();
    command
}

#[test]
fn help_documents_every_subcommand() {
    let out = authbroker().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "migrate", "check-config", "generate-key"] {
        assert!(help.contains(sub), "{sub} missing from --help:\n{help}");
    }
}

#[test]
fn check_config_accepts_good_files_and_names_bad_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[providers.ares]\nkind = \"ares\"\nclient_id = \"c\"\nclient_secret = \"very-secret-value\"\nredirect_uris = [\"https://a.example/cb\"]\n",
    )
    .expect("write");
    let out = authbroker()
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("very-secret-value"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:1\"\ndatabse_url = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let out = authbroker()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("databse_url"));
}

#[test]
fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let out = authbroker()
        .arg("migrate")
        .env(
            "AUTHBROKER_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&db).expect("database file");
    let text = String::from_utf8_lossy(&bytes);
    for table in ["connections", "auth_states", "usage_ledger"] {
        assert!(text.contains(table), "{table} missing");
    }
}

#[test]
fn a_wildcard_listen_without_callers_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = authbroker()
        .arg("serve")
        .env("AUTHBROKER_LISTEN", "0.0.0.0:0")
        .env(
            "AUTHBROKER_DATABASE_URL",
            format!("sqlite://{}/x.db", dir.path().display()),
        )
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("callers"));
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/authbroker.toml");
    let out = authbroker()
        .args(["check-config", "--config", example])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 provider(s), 1 caller(s)"));
}

on_both!(
    health_reports_serving_without_authentication,
    reflection_lists_the_services,
);
