//! TLS and mTLS on the listener, with a test CA made here: TLS only; a
//! SPIFFE identity mapped to a caller; wrong or missing client certificates
//! refused; certificate files replaced while serving; probes on the
//! plaintext health port.

use std::{path::Path, time::Duration};

use authbroker::pb::{self, auth_broker_client::AuthBrokerClient};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

const WORKLOAD: &str = "spiffe://cluster.local/ns/apps/sa/workload";

/// A certificate authority for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate and its key (PEM) for these names.
    fn leaf(&self, sans: Vec<SanType>) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = sans;
        params.distinguished_name.push(DnType::CommonName, "leaf");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.leaf(vec![
            SanType::DnsName("localhost".try_into().expect("dns")),
            SanType::IpAddress("127.0.0.1".parse().expect("ip")),
        ])
    }

    fn client(&self, spiffe_id: &str) -> Identity {
        let (cert, key) = self.leaf(vec![SanType::URI(spiffe_id.try_into().expect("uri"))]);
        Identity::from_pem(cert, key)
    }
}

/// Writes the server's files into `dir`; the config section naming them.
fn write_tls(dir: &Path, server: &(String, String), client_ca: Option<&Ca>) -> String {
    std::fs::write(dir.join("tls.crt"), &server.0).expect("write");
    std::fs::write(dir.join("tls.key"), &server.1).expect("write");
    let mut section = format!(
        "health_listen = \"127.0.0.1:0\"\n[tls]\ncert_file = \"{0}/tls.crt\"\nkey_file = \"{0}/tls.key\"\nreload_interval_secs = 1\n",
        dir.display()
    );
    if let Some(ca) = client_ca {
        std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write");
        section += &format!("client_ca_file = \"{}/ca.crt\"\n", dir.display());
    }
    section
}

/// A TLS channel to `app` trusting `ca`, presenting `identity`.
async fn tls_channel(
    app: &TestApp,
    ca: &Ca,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let port = app.addr.rsplit(':').next().expect("port");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Channel::from_shared(format!("https://localhost:{port}"))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// A call with `channel` (and a bearer `token`): ListConnections, answered
/// with the caller's connections.
async fn list(channel: Channel, token: Option<&str>) -> Result<usize, tonic::Status> {
    let header = token.map(|t| format!("Bearer {t}"));
    let mut client =
        AuthBrokerClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            if let Some(h) = &header {
                r.metadata_mut()
                    .insert("authorization", h.parse().expect("ascii"));
            }
            Ok(r)
        });
    client
        .list_connections(pb::ListConnectionsRequest::default())
        .await
        .map(|r| r.into_inner().connections.len())
}

/// The plaintext health port, from the "health listening" log line.
async fn health_addr(app: &TestApp) -> String {
    for _ in 0..100 {
        if let Some(addr) = app
            .logs()
            .lines()
            .filter(|l| l.contains("health listening"))
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["addr"].as_str().map(str::to_owned))
        {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no health listener in the logs")
}

fn workload_caller() -> ExtraProviders {
    std::sync::Arc::new(|_: &Fakes| {
        format!("[[callers]]\nname = \"workload\"\nspiffe_ids = [\"{WORKLOAD}\"]\n")
    })
}

#[tokio::test]
async fn tls_only_with_probes_on_the_health_port() {
    let ca = Ca::new("test CA");
    let dir = tempfile::tempdir().expect("dir");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: write_tls(dir.path(), &ca.server(), None),
            ..Options::default()
        },
    )
    .await;
    let channel = tls_channel(&app, &ca, None).await.expect("TLS handshake");
    assert_eq!(list(channel, Some(BILLING_TOKEN)).await.expect("served"), 0);
    // Plaintext to the TLS port gets nothing.
    let plain = Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(plain) = plain {
        assert!(list(plain, Some(BILLING_TOKEN)).await.is_err());
    }
    // Probes: plaintext health on its own port, and nothing else there.
    let health = Channel::from_shared(format!("http://{}", health_addr(&app).await))
        .expect("uri")
        .connect()
        .await
        .expect("health port");
    let status = HealthClient::new(health.clone())
        .check(HealthCheckRequest {
            service: "authbroker.v1.AuthBroker".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
    let elsewhere = list(health, Some(BILLING_TOKEN))
        .await
        .expect_err("health only");
    assert_eq!(elsewhere.code(), Code::Unimplemented, "{elsewhere:?}");
}

#[tokio::test]
async fn mtls_maps_a_spiffe_identity_to_its_caller_and_refuses_the_rest() {
    let ca = Ca::new("cluster CA");
    let dir = tempfile::tempdir().expect("dir");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: write_tls(dir.path(), &ca.server(), Some(&ca)),
            extra_providers: Some(workload_caller()),
            ..Options::default()
        },
    )
    .await;
    // The workload's certificate is the workload: no token needed.
    let workload = tls_channel(&app, &ca, Some(ca.client(WORKLOAD)))
        .await
        .expect("mTLS handshake");
    assert_eq!(list(workload.clone(), None).await.expect("workload"), 0);
    // A token, when sent, decides: billing's token over the workload's certificate.
    assert_eq!(
        list(workload, Some(BILLING_TOKEN)).await.expect("billing"),
        0
    );

    // A certificate naming no caller, and no token: unauthenticated.
    let stranger = tls_channel(
        &app,
        &ca,
        Some(ca.client("spiffe://cluster.local/ns/apps/sa/stranger")),
    )
    .await
    .expect("a valid certificate completes the handshake");
    let refused = list(stranger, None).await.expect_err("no such caller");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // No certificate, or one from another CA: no connection at all.
    let none = match tls_channel(&app, &ca, None).await {
        Ok(channel) => list(channel, Some(BILLING_TOKEN)).await.is_err(),
        Err(_) => true,
    };
    assert!(none, "a client without a certificate is refused");
    let other_ca = Ca::new("another CA");
    let foreign = match tls_channel(&app, &ca, Some(other_ca.client(WORKLOAD))).await {
        Ok(channel) => list(channel, None).await.is_err(),
        Err(_) => true,
    };
    assert!(foreign, "a certificate from another CA is refused");
}

#[tokio::test]
async fn replaced_certificate_files_are_served_to_new_connections() {
    let old_ca = Ca::new("old CA");
    let dir = tempfile::tempdir().expect("dir");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: write_tls(dir.path(), &old_ca.server(), None),
            ..Options::default()
        },
    )
    .await;
    let old = tls_channel(&app, &old_ca, None)
        .await
        .expect("old certificate");
    assert_eq!(
        list(old.clone(), Some(BILLING_TOKEN))
            .await
            .expect("served"),
        0
    );
    let new_ca = Ca::new("new CA");
    assert!(
        tls_channel(&app, &new_ca, None).await.is_err(),
        "the new CA is not trusted for the old certificate"
    );

    // Renewed in place, as cert-manager does: a new key and certificate.
    let (cert, key) = new_ca.server();
    std::fs::write(dir.path().join("tls.key.next"), key).expect("write");
    std::fs::write(dir.path().join("tls.crt.next"), cert).expect("write");
    std::fs::rename(dir.path().join("tls.key.next"), dir.path().join("tls.key")).expect("mv");
    std::fs::rename(dir.path().join("tls.crt.next"), dir.path().join("tls.crt")).expect("mv");
    let mut renewed = None;
    for _ in 0..50 {
        if let Ok(channel) = tls_channel(&app, &new_ca, None).await {
            renewed = Some(channel);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let renewed = renewed.expect("the new certificate is served within 5 s");
    assert_eq!(list(renewed, Some(BILLING_TOKEN)).await.expect("served"), 0);
    // The connection made before keeps working.
    assert_eq!(
        list(old, Some(BILLING_TOKEN)).await.expect("still served"),
        0
    );
    assert!(app.logs().contains("TLS certificate files changed"));
}
