//! `/metrics` on `metrics_listen`: the instruments the OTLP exporter sends,
//! scraped in the Prometheus text format from the real server.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::*;

/// A port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The status line and body of `GET path`.
async fn get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

async fn prometheus_scrapes_the_same_instruments(backend: Backend) {
    let port = free_port();
    let app = TestApp::spawn_with(
        backend,
        Options {
            extra_config: format!("metrics_listen = \"127.0.0.1:{port}\""),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    token(&mut client, &conn.id, 0).await.expect("token");
    force_refresh(&mut client, &conn.id)
        .await
        .expect("refreshed");

    let (status, body) = get(port, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for needle in [
        "# TYPE authbroker_rpc_duration_seconds histogram",
        "rpc_method=\"/authbroker.v1.AuthBroker/GetAccessToken\"",
        "rpc_method=\"/authbroker.v1.AuthBroker/CompleteAuth\"",
        "le=\"0.005\"",
        "# TYPE authbroker_refreshes_total counter",
        "authbroker_refreshes_total{outcome=\"success\"} 1",
        "# TYPE authbroker_provider_duration_seconds histogram",
        "authbroker_connections{status=\"ACTIVE\"}",
    ] {
        assert!(body.contains(needle), "{needle:?} missing from:\n{body}");
    }
    // Every sample line is `name{labels} value`.
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').expect("name and value");
        assert!(
            value == "+Inf" || value.parse::<f64>().is_ok(),
            "bad value in {line:?}"
        );
        let metric = name.split('{').next().unwrap_or_default();
        assert!(
            metric.starts_with("authbroker_")
                && metric
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line:?}"
        );
    }
    // Nothing secret: no token, no client secret.
    let served = token(&mut client, &conn.id, 0).await.expect("token");
    let (_, body) = get(port, "/metrics").await;
    assert!(!body.contains(&served.access_token));
    assert!(!body.contains(&app.fakes.ares.client_secret()));

    let (status, _) = get(port, "/other").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // The counters only grow between scrapes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    force_refresh(&mut client, &conn.id)
        .await
        .expect("refreshed");
    let (_, body) = get(port, "/metrics").await;
    assert!(
        body.contains("authbroker_refreshes_total{outcome=\"success\"} 2"),
        "{body}"
    );
}

on_both!(prometheus_scrapes_the_same_instruments);
