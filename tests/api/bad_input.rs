//! Bad requests get INVALID_ARGUMENT naming the field, and change nothing.

use authbroker::pb;
use tonic::Code;

use crate::helpers::*;

async fn begin_auth_fields_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let base = || pb::BeginAuthRequest {
        provider: "ares".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    let cases: Vec<(pb::BeginAuthRequest, &str)> = vec![
        (
            pb::BeginAuthRequest {
                provider: String::new(),
                ..base()
            },
            "provider: required",
        ),
        (
            pb::BeginAuthRequest {
                provider: "nope".into(),
                ..base()
            },
            "provider: no provider",
        ),
        (
            pb::BeginAuthRequest {
                subject: String::new(),
                ..base()
            },
            "subject: required",
        ),
        (
            pb::BeginAuthRequest {
                subject: "x".repeat(257),
                ..base()
            },
            "subject: at most 256",
        ),
        (
            pb::BeginAuthRequest {
                subject: "a\u{7}b".into(),
                ..base()
            },
            "subject: must not contain control",
        ),
        (
            pb::BeginAuthRequest {
                scopes: vec!["a b".into()],
                ..base()
            },
            "scopes",
        ),
        (
            pb::BeginAuthRequest {
                scopes: vec!["s".into(); 33],
                ..base()
            },
            "scopes: at most 32",
        ),
        (
            pb::BeginAuthRequest {
                redirect_uri: "x".repeat(3000),
                ..base()
            },
            "redirect_uri",
        ),
    ];
    for (request, needle) in cases {
        assert_status(
            client.begin_auth(request).await,
            Code::InvalidArgument,
            needle,
        );
    }
}

async fn other_rpcs_name_their_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    assert_status(
        token(&mut client, "", 60).await,
        Code::InvalidArgument,
        "connection_id: required",
    );
    assert_status(
        token(&mut client, "not-a-uuid", 60).await,
        Code::InvalidArgument,
        "connection_id",
    );
    let unknown = "0195f3c4-0000-7000-8000-000000000000";
    assert_status(
        token(&mut client, unknown, 60).await,
        Code::NotFound,
        "not found",
    );
    assert_status(
        token(&mut client, unknown, 86_401).await,
        Code::InvalidArgument,
        "min_valid_seconds",
    );
    assert_status(
        client
            .complete_auth(pb::CompleteAuthRequest::default())
            .await,
        Code::InvalidArgument,
        "state: required",
    );
    assert_status(
        client
            .complete_auth(pb::CompleteAuthRequest {
                state: "s".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "code",
    );
    assert_status(
        client
            .complete_auth(pb::CompleteAuthRequest {
                state: "s".into(),
                code: "c".repeat(5000),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "code: at most",
    );
    assert_status(
        client
            .sign_in_with_password(pb::SignInWithPasswordRequest {
                provider: "arterra".into(),
                subject: "u".into(),
                username: EMAIL.into(),
                password: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "password: required",
    );
    for credits in [f64::NAN, f64::INFINITY, -0.5] {
        let request = pb::RecordUsageRequest {
            connection_id: unknown.into(),
            usage: "u".into(),
            credits,
            idempotency_key: "k".into(),
        };
        assert_status(
            client.record_usage(request).await,
            Code::InvalidArgument,
            "credits",
        );
    }
    assert_status(
        client
            .list_connections(pb::ListConnectionsRequest {
                subject: "x".repeat(300),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "subject",
    );
    // Nothing above reached a provider, and the server is still serving.
    for provider in ["ares", "aries", "askara", "arterra"] {
        assert!(
            app.fakes.get(provider).requests().is_empty(),
            "{provider} was called"
        );
    }
    connect(&app, &mut client, "ares", "u").await;
}

async fn connections_can_be_listed_and_fetched(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let a = connect(&app, &mut client, "ares", "alice").await;
    let b = connect(&app, &mut client, "askara", "alice").await;
    let c = connect(&app, &mut client, "askara", "bob").await;
    let list = |subject: &str, provider: &str| pb::ListConnectionsRequest {
        subject: subject.into(),
        provider: provider.into(),
        ..Default::default()
    };
    let ids = |r: pb::ListConnectionsResponse| {
        r.connections.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let all = ids(client
        .list_connections(list("", ""))
        .await
        .expect("list")
        .into_inner());
    assert_eq!(
        all,
        vec![c.id.clone(), b.id.clone(), a.id.clone()],
        "newest first"
    );
    let alice = ids(client
        .list_connections(list("alice", ""))
        .await
        .expect("list")
        .into_inner());
    assert_eq!(alice, vec![b.id.clone(), a.id.clone()]);
    let askara = ids(client
        .list_connections(list("", "askara"))
        .await
        .expect("list")
        .into_inner());
    assert_eq!(askara, vec![c.id.clone(), b.id.clone()]);
    let got = fetch(&mut client, &a.id).await;
    assert_eq!(got, a);
    assert_eq!(got.scopes, vec!["read".to_string(), "write".to_string()]);
    assert!(
        got.access_token_expires_at.is_some()
            && got.created_at.is_some()
            && got.updated_at.is_some()
    );
}

on_both!(
    begin_auth_fields_are_validated,
    other_rpcs_name_their_fields,
    connections_can_be_listed_and_fetched,
);
