//! Provider faults become clean gRPC errors and the service stays up.

use authbroker::pb;
use tonic::Code;

use crate::{fake::Fault, helpers::*, in_process::InProcessApp};

fn faults() -> Vec<(Fault, &'static str)> {
    vec![
        (Fault::Html, "HTML"),
        (Fault::MalformedJson, "invalid JSON"),
        (Fault::ServerError, "HTTP 503"),
        (Fault::MissingAccessToken, "without access_token"),
        (
            Fault::TooManyRequests {
                retry_after_secs: 7,
            },
            "retry after 7s",
        ),
        (Fault::Hang, "in time"),
    ]
}

async fn code_exchange_faults_are_unavailable(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            http_timeout_ms: 800,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    for (fault, needle) in faults() {
        app.fakes.askara.set_fault(fault.clone());
        let begun = begin(&mut client, "askara", "u").await;
        let params = app
            .fakes
            .askara
            .approve(&begun.authorization_url, USER)
            .await;
        let result = client.complete_auth(callback(params)).await;
        assert_status(result, Code::Unavailable, needle);
    }
    app.fakes.askara.set_fault(Fault::None);
    connect(&app, &mut client, "askara", "u").await;
}

async fn refresh_faults_are_unavailable_and_keep_the_connection(backend: Backend) {
    let app = InProcessApp::spawn(
        backend,
        Options {
            http_timeout_ms: 800,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let request = pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    let conn = connect_via(&mut client, &app.fakes.ares, request, USER).await;
    // The stored token is dead by the time the faults begin: nothing to fall back on.
    app.clock.advance(std::time::Duration::from_secs(3_601));
    // The 429 last: it pauses every later refresh (tested below).
    let mut faults = faults();
    faults.sort_by_key(|(f, _)| matches!(f, Fault::TooManyRequests { .. }));
    for (fault, needle) in faults {
        app.fakes.ares.set_fault(fault.clone());
        let before = app.fakes.ares.token_requests("refresh_token");
        assert_status(
            token(&mut client, &conn.id, 60).await,
            Code::Unavailable,
            needle,
        );
        let attempts = app.fakes.ares.token_requests("refresh_token") - before;
        // Only answers that prove the provider did nothing are retried: a
        // retried refresh must never spend a token the provider rotated.
        let expected = if matches!(fault, Fault::ServerError) {
            3
        } else {
            1
        };
        assert_eq!(attempts, expected, "{fault:?}");
    }
    app.fakes.ares.set_fault(Fault::None);
    let status = fetch(&mut client, &conn.id).await.status();
    assert_eq!(
        status,
        pb::ConnectionStatus::Active,
        "a failing provider is not a revoked grant"
    );
    // The 429 paused refreshes to this provider for its Retry-After: none is
    // sent until then, and the caller learns how long is left.
    let before = app.fakes.ares.token_requests("refresh_token");
    assert_status(
        token(&mut client, &conn.id, 60).await,
        Code::Unavailable,
        "asked to be left alone (429)",
    );
    assert_eq!(app.fakes.ares.token_requests("refresh_token"), before);
    app.clock.advance(std::time::Duration::from_secs(8));
    token(&mut client, &conn.id, 60)
        .await
        .expect("refresh once the provider is back");
    app.stop().await;
}

async fn a_still_valid_token_is_served_through_an_outage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    app.fakes.askara.set_token_lifetime(Some(600));
    let conn = connect(&app, &mut client, "askara", "u").await;
    let stored = token(&mut client, &conn.id, 60).await.expect("token");
    app.fakes.askara.set_fault(Fault::ServerError);
    // The caller wants 15 minutes, the token has 10: the refresh fails, the
    // stored token is still good, so it is served with its true expiry.
    let served = token(&mut client, &conn.id, 900)
        .await
        .expect("served through the outage");
    assert_eq!(served.access_token, stored.access_token);
    assert_eq!(served.expires_at, stored.expires_at);
    // A forced refresh means the caller saw the token fail: no fallback.
    let forced = force_refresh(&mut client, &conn.id).await;
    assert_eq!(forced.expect_err("unavailable").code(), Code::Unavailable);
}

async fn user_endpoint_faults_are_unavailable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    for (fault, code) in [
        (Fault::Html, Code::Unavailable),
        (Fault::ServerError, Code::Unavailable),
        (Fault::MalformedJson, Code::Unavailable),
    ] {
        app.fakes.ares.set_userinfo_fault(fault);
        let result = client
            .get_user_info(pb::GetUserInfoRequest {
                connection_id: conn.id.clone(),
            })
            .await;
        assert_eq!(result.expect_err("fault").code(), code);
    }
    app.fakes.ares.set_userinfo_fault(Fault::None);
    client
        .get_user_info(pb::GetUserInfoRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("user info once the provider is back");
}

async fn an_unreachable_provider_is_unavailable(backend: Backend) {
    let app = TestApp::spawn_with(backend, Options {
        extra_providers: Some(std::sync::Arc::new(|_: &Fakes| {
            format!(
                "[providers.gone]\nkind = \"aries\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"{CALLBACK}\"]\n\
                 authorize_url = \"http://127.0.0.1:9/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\n"
            )
        })),
        ..Options::default()
    })
    .await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "gone", "u").await;
    let state = begun.state.clone();
    let result = client
        .complete_auth(pb::CompleteAuthRequest {
            state,
            code: "some-code".into(),
            ..Default::default()
        })
        .await;
    assert_status(result, Code::Unavailable, "could not be reached");
}

async fn an_oversized_answer_is_refused(backend: Backend) {
    // A token endpoint that streams 4 MiB: more than the 1 MiB cap.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            ([("content-type", "application/json")], "x".repeat(4 << 20))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = TestApp::spawn_with(backend, Options {
        extra_providers: Some(std::sync::Arc::new(move |_: &Fakes| {
            format!(
                "[providers.huge]\nkind = \"aries\"\nclient_id = \"c\"\nclient_secret = \"s\"\nredirect_uris = [\"{CALLBACK}\"]\n\
                 authorize_url = \"http://{addr}/authorize\"\ntoken_url = \"http://{addr}/token\"\n"
            )
        })),
        ..Options::default()
    })
    .await;
    let mut client = app.billing().await;
    let begun = begin(&mut client, "huge", "u").await;
    let result = client
        .complete_auth(pb::CompleteAuthRequest {
            state: begun.state,
            code: "some-code".into(),
            ..Default::default()
        })
        .await;
    assert_status(result, Code::Unavailable, "larger than");
    // Still serving.
    connect(&app, &mut client, "ares", "u").await;
}

on_both!(
    code_exchange_faults_are_unavailable,
    refresh_faults_are_unavailable_and_keep_the_connection,
    a_still_valid_token_is_served_through_an_outage,
    user_endpoint_faults_are_unavailable,
    an_unreachable_provider_is_unavailable,
    an_oversized_answer_is_refused,
);
