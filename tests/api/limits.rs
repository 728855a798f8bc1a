//! The server's own limits, through the real binary: connections that never
//! finish a handshake or sit idle are closed, a flood of them cannot starve
//! health or calls (with the process's descriptors scarce), and calls are
//! held to the caller's rate, the server's capacity and the message size.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::*;

/// The client's HTTP/2 preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: with the preface, a complete client handshake.
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Reads until the server closes the socket; the time it took.
async fn closed_within(mut socket: TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

async fn serving(app: &TestApp) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "authbroker.v1.AuthBroker".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

/// A socket that sends nothing, one that sends only the preface, and one
/// that completes the handshake but makes no call are each closed at their
/// deadline; a call that outlasts the idle timeout is not cut short.
#[tokio::test]
async fn unfinished_and_idle_connections_are_closed() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: "[server]\nhandshake_timeout_ms = 500\nidle_timeout_secs = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let silent = TcpStream::connect(&app.addr).await.expect("connect");
    let mut preface_only = TcpStream::connect(&app.addr).await.expect("connect");
    preface_only.write_all(PREFACE).await.expect("write");
    let mut idle = TcpStream::connect(&app.addr).await.expect("connect");
    idle.write_all(PREFACE).await.expect("write");
    idle.write_all(&EMPTY_SETTINGS).await.expect("write");
    let (silent, preface_only, idle) = tokio::join!(
        closed_within(silent, Duration::from_secs(5)),
        closed_within(preface_only, Duration::from_secs(5)),
        closed_within(idle, Duration::from_secs(5)),
    );
    for (what, took, at_least) in [
        ("silent", silent, 400),
        ("preface only", preface_only, 400),
        ("idle after its handshake", idle, 900),
    ] {
        let took = took.unwrap_or_else(|| panic!("{what}: still open after 5 s"));
        assert!(
            took >= Duration::from_millis(at_least),
            "{what}: closed after {took:?}, before its deadline"
        );
    }

    // A call that takes 2.5 s on a connection with a 1 s idle timeout.
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "arterra", "u").await;
    app.expire(&conn.id).await;
    app.fakes.arterra.set_delay(Duration::from_millis(2_500));
    token(&mut client, &conn.id, 60)
        .await
        .expect("a long call is not cut by the idle timeout");
}

/// 3,000 connections that never finish a handshake, against a process
/// limited to 512 descriptors: health and a call still answer within a
/// second, and every one of those connections is closed.
#[tokio::test]
async fn a_flood_of_unfinished_connections_cannot_starve_the_service() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: "[server]\nhandshake_timeout_ms = 2000".into(),
            open_files: Some(512),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;

    let mut flood = Vec::new();
    for i in 0..3_000 {
        let mut socket = TcpStream::connect(&app.addr).await.expect("connect");
        if i % 2 == 0 {
            socket.write_all(PREFACE).await.expect("write");
        }
        flood.push(socket);
    }

    let started = Instant::now();
    assert_eq!(serving(&app).await, ServingStatus::Serving);
    let mut fresh = app.billing().await;
    token(&mut fresh, &conn.id, 60)
        .await
        .expect("a call answers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "answered after {took:?}");

    let closes = flood
        .into_iter()
        .map(|socket| tokio::spawn(closed_within(socket, Duration::from_secs(10))));
    let mut open = 0;
    for close in closes {
        if close.await.expect("join").is_none() {
            open += 1;
        }
    }
    assert_eq!(open, 0, "flood connections still open after 10 s");
    // Still serving, and the earlier client's connection too.
    assert_eq!(serving(&app).await, ServingStatus::Serving);
    token(&mut client, &conn.id, 60)
        .await
        .expect("the first client still works");
}

/// A caller over its rate limit gets RESOURCE_EXHAUSTED (RATE_LIMITED) with
/// the wait in RetryInfo; another caller is not affected.
#[tokio::test]
async fn a_caller_over_its_rate_limit_is_told_when_to_retry() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            caller_config: vec![(
                "billing",
                "rate_limit_per_second = 2\nrate_limit_burst = 3".into(),
            )],
            ..Options::default()
        },
    )
    .await;
    let mut billing = app.billing().await;
    let mut search = app.search().await;
    let conn = connect(&app, &mut search, "ares", "u").await;
    let mut refused = None;
    for _ in 0..10 {
        if let Err(status) = token(&mut billing, &conn.id, 60).await
            && status.code() == Code::ResourceExhausted
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("refused within 10 calls");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("info");
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata["caller"], "billing");
    let retry = tonic_types::StatusExt::get_details_retry_info(&status)
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(500),
        "{retry:?}"
    );
    // The other caller is not limited.
    for _ in 0..10 {
        token(&mut search, &conn.id, 60).await.expect("not limited");
    }
    // After the wait, billing passes again (not found: not its connection).
    tokio::time::sleep(retry).await;
    let after = token(&mut billing, &conn.id, 60)
        .await
        .expect_err("not its own");
    assert_eq!(after.code(), Code::NotFound, "{after:?}");
}

/// With one call allowed in flight, a second is shed at once with
/// RESOURCE_EXHAUSTED (OVERLOADED) while health still answers; an oversized
/// request is refused without being read.
#[tokio::test]
async fn calls_beyond_capacity_are_shed_and_big_requests_refused() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            extra_config: "[server]\nmax_in_flight = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "arterra", "u").await;
    app.expire(&conn.id).await;
    app.fakes.arterra.set_delay(Duration::from_millis(1_500));
    let slow = {
        let (mut c, id) = (client.clone(), conn.id.clone());
        tokio::spawn(async move { token(&mut c, &id, 60).await })
    };
    while app.fakes.arterra.token_requests("refresh_token") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let shed = token(&mut client, &conn.id, 60).await.expect_err("shed");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "shed at once"
    );
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&shed).expect("info");
    assert_eq!(info.reason, "OVERLOADED");
    assert_eq!(serving(&app).await, ServingStatus::Serving);
    slow.await
        .expect("join")
        .expect("the admitted call finishes");

    let huge = authbroker::pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        scopes: vec!["s".repeat(1000); 1000],
        sign_up: false,
        ..Default::default()
    };
    let refused = client.begin_auth(huge).await.expect_err("too big");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    token(&mut client, &conn.id, 60)
        .await
        .expect("still serving");
}
