//! Callers: authentication, and connections visible only to their owner.

use authbroker::pb;
use tonic::Code;

use crate::helpers::*;

async fn missing_or_wrong_tokens_are_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for token in [None, Some("not-a-valid-token-at-all")] {
        let mut client = app.client(token).await;
        let result = client
            .list_connections(pb::ListConnectionsRequest::default())
            .await;
        assert_eq!(result.expect_err("refused").code(), Code::Unauthenticated);
    }
}

async fn another_callers_connection_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut billing = app.billing().await;
    let mut search = app.search().await;
    let conn = connect(&app, &mut billing, "ares", "shared-subject").await;

    let id = || conn.id.clone();
    assert_status(
        search
            .get_connection(pb::GetConnectionRequest {
                connection_id: id(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
    assert_status(
        token(&mut search, &id(), 60).await,
        Code::NotFound,
        "not found",
    );
    assert_status(
        search
            .revoke_connection(pb::RevokeConnectionRequest {
                connection_id: id(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
    assert_status(
        search
            .get_user_info(pb::GetUserInfoRequest {
                connection_id: id(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
    let usage = pb::RecordUsageRequest {
        connection_id: id(),
        usage: "x".into(),
        credits: 1.0,
        idempotency_key: "k".into(),
    };
    assert_status(
        search.record_usage(usage).await,
        Code::NotFound,
        "not found",
    );
    let listed = search
        .list_connections(pb::ListConnectionsRequest {
            subject: "shared-subject".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.connections.is_empty());

    // The same subject under the other caller is a separate connection.
    let theirs = connect(&app, &mut search, "ares", "shared-subject").await;
    assert_ne!(theirs.id, conn.id);
    token(&mut billing, &conn.id, 60)
        .await
        .expect("owner still served");
}

async fn without_callers_loopback_calls_are_accepted_and_logged(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            callers: false,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.client(None).await;
    let conn = connect(&app, &mut client, "askara", "u").await;
    token(&mut client, &conn.id, 60).await.expect("token");
    assert!(
        app.logs().contains("no callers configured"),
        "the open mode is announced"
    );
}

on_both!(
    missing_or_wrong_tokens_are_unauthenticated,
    another_callers_connection_is_not_found,
    without_callers_loopback_calls_are_accepted_and_logged,
);
