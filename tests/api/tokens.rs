//! GetAccessToken beyond the happy path: single-flight refresh, forced
//! refresh, invalid_grant, missing expires_in.

use authbroker::pb::{self, ConnectionStatus};
use tonic::Code;

use crate::helpers::*;

async fn concurrent_callers_cause_one_refresh_and_get_the_same_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    // The stored token lives 30 s and callers need 60: it must be refreshed.
    // The refreshed one lives an hour, so a caller that reads the row only
    // after the refresh was stored is served without another.
    app.fakes.askara.set_token_lifetime(Some(30));
    let conn = connect(&app, &mut client, "askara", "u").await;
    app.fakes.askara.set_token_lifetime(Some(3600));
    app.fakes
        .askara
        .set_delay(std::time::Duration::from_millis(300));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut c = client.clone();
        let id = conn.id.clone();
        tasks.push(tokio::spawn(async move { token(&mut c, &id, 60).await }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.expect("join").expect("token").access_token);
    }
    tokens.dedup();
    assert_eq!(app.fakes.askara.refreshes_accepted(), 1);
    assert_eq!(tokens.len(), 1, "every caller got the same token");
    assert_eq!(
        Some(tokens[0].clone()),
        app.fakes.askara.last_access_token()
    );
}

async fn force_refresh_refreshes_when_no_cooldown_applies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let before = token(&mut client, &conn.id, 60).await.expect("token");
    let forced = client
        .get_access_token(pb::GetAccessTokenRequest {
            connection_id: conn.id.clone(),
            min_valid_seconds: 0,
            force_refresh: true,
            ..Default::default()
        })
        .await
        .expect("forced")
        .into_inner();
    assert_ne!(forced.access_token, before.access_token);
    assert_eq!(app.fakes.ares.refreshes_accepted(), 1);
}

async fn invalid_grant_marks_the_connection_needs_reauth(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "arterra", "u").await;
    app.fakes.arterra.revoke_refresh_tokens();
    assert_status(
        token(&mut client, &conn.id, 86_400).await,
        Code::FailedPrecondition,
        "invalid_grant",
    );
    let stored = fetch(&mut client, &conn.id).await;
    assert_eq!(stored.status(), ConnectionStatus::NeedsReauth);
    // Further calls fail fast without calling the provider again.
    let refreshes = app.fakes.arterra.token_requests("refresh_token");
    assert_status(
        token(&mut client, &conn.id, 1).await,
        Code::FailedPrecondition,
        "re-authorization",
    );
    assert_eq!(app.fakes.arterra.token_requests("refresh_token"), refreshes);
    // Connecting again re-activates the same connection.
    let again = connect(&app, &mut client, "arterra", "u").await;
    assert_eq!(again.id, conn.id);
    assert_eq!(again.status(), ConnectionStatus::Active);
    assert!(
        app.logs().contains("connection status changed"),
        "status change is logged"
    );
}

async fn a_missing_expires_in_uses_the_profile_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    app.fakes.aries.set_token_lifetime(None);
    let conn = connect(&app, &mut client, "aries", "u").await;
    let served = token(&mut client, &conn.id, 60).await.expect("token");
    let expires = served.expires_at.expect("expires_at").seconds;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    // Aries: "typically 1 hour".
    assert!(
        (expires - now - 3600).abs() <= 5,
        "expires in {}s",
        expires - now
    );
    // And it is refreshed when a caller needs more than that.
    token(&mut client, &conn.id, 7200).await.expect("refresh");
    assert_eq!(app.fakes.aries.refreshes_accepted(), 1);
}

async fn revoked_connections_serve_no_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    let conn = connect(&app, &mut client, "ares", "u").await;
    let revoked = client
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("revoke")
        .into_inner()
        .connection
        .expect("connection");
    assert_eq!(revoked.status(), ConnectionStatus::Revoked);
    assert!(revoked.access_token_expires_at.is_none());
    assert_status(
        token(&mut client, &conn.id, 1).await,
        Code::FailedPrecondition,
        "revoked",
    );
    // Revoking again is harmless.
    client
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: conn.id.clone(),
        })
        .await
        .expect("revoke again");
}

/// A caller cannot make the connection rotate on every call: within the
/// cooldown after a refresh, `force_refresh` and a `min_valid_seconds` beyond
/// any token's life return the token just issued; past it, one refresh.
async fn a_just_issued_token_is_not_rotated_again(backend: Backend) {
    let app = crate::in_process::InProcessApp::spawn(
        backend,
        Options {
            refresh_cooldown_secs: 5,
            ..Options::default()
        },
    )
    .await;
    let mut client = app.billing().await;
    let request = pb::BeginAuthRequest {
        provider: "arterra".into(),
        subject: "u".into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    };
    let conn = connect_via(&mut client, &app.fakes.arterra, request, USER).await;
    let stored = token(&mut client, &conn.id, 60).await.expect("token");
    let forced = force_refresh(&mut client, &conn.id).await.expect("forced");
    assert_eq!(forced.access_token, stored.access_token);
    let longer = token(&mut client, &conn.id, 86_400).await.expect("served");
    assert_eq!(longer.access_token, stored.access_token);
    assert_eq!(longer.expires_at, stored.expires_at, "its real expiry");
    assert_eq!(app.fakes.arterra.token_requests("refresh_token"), 0);

    app.clock.advance(std::time::Duration::from_secs(6));
    let forced = force_refresh(&mut client, &conn.id).await.expect("forced");
    assert_ne!(forced.access_token, stored.access_token);
    assert_eq!(
        Some(forced.access_token.clone()),
        app.fakes.arterra.last_access_token()
    );
    // ...and the new token is again the freshest there is.
    let again = force_refresh(&mut client, &conn.id).await.expect("forced");
    assert_eq!(again.access_token, forced.access_token);
    assert_eq!(app.fakes.arterra.token_requests("refresh_token"), 1);
    app.stop().await;
}

/// A refresh that cannot finish before the caller's deadline: a stored
/// token that is still valid is served (with its true expiry) rather than
/// an error; a forced refresh gets REFRESH_IN_PROGRESS, in time.
async fn a_still_valid_token_beats_a_refresh_past_the_deadline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    app.fakes.askara.set_token_lifetime(Some(600));
    let conn = connect(&app, &mut client, "askara", "u").await;
    let stored = token(&mut client, &conn.id, 60).await.expect("token");
    app.fakes
        .askara
        .set_delay(std::time::Duration::from_secs(3));
    let within = |force_refresh| {
        let mut request = tonic::Request::new(pb::GetAccessTokenRequest {
            connection_id: conn.id.clone(),
            // More than the stored token has left: it needs a refresh.
            min_valid_seconds: 900,
            force_refresh,
            ..Default::default()
        });
        request.set_timeout(std::time::Duration::from_millis(800));
        request
    };
    let started = std::time::Instant::now();
    let served = client
        .get_access_token(within(false))
        .await
        .expect("the still-valid token")
        .into_inner();
    assert!(started.elapsed() < std::time::Duration::from_millis(800));
    assert_eq!(served.access_token, stored.access_token);
    assert_eq!(served.expires_at, stored.expires_at, "its true expiry");

    let started = std::time::Instant::now();
    let status = client
        .get_access_token(within(true))
        .await
        .expect_err("a new token was demanded");
    assert!(started.elapsed() < std::time::Duration::from_millis(800));
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    assert_eq!(info.reason, "REFRESH_IN_PROGRESS");
}

async fn required_scopes_are_checked_against_the_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut client = app.billing().await;
    // ARES grants its default "read write".
    let conn = connect(&app, &mut client, "ares", "u").await;
    let ask = |scopes: &[&str]| pb::GetAccessTokenRequest {
        connection_id: conn.id.clone(),
        required_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let served = client
        .get_access_token(ask(&["write", "read"]))
        .await
        .expect("granted")
        .into_inner();
    assert!(!served.access_token.is_empty());
    let refused = client
        .get_access_token(ask(&["read", "admin"]))
        .await
        .expect_err("admin was never granted");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("admin"), "{}", refused.message());
    assert!(!refused.message().contains(&served.access_token));
    // Also when the token is served from another replica's fresh read.
    let replica = app.replica().await;
    let mut other = replica.billing().await;
    let refused = other
        .get_access_token(ask(&["admin"]))
        .await
        .expect_err("same answer everywhere");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_status(
        client.get_access_token(ask(&["has space"])).await,
        Code::InvalidArgument,
        "required_scopes",
    );
}

on_both!(
    required_scopes_are_checked_against_the_grant,
    a_still_valid_token_beats_a_refresh_past_the_deadline,
    concurrent_callers_cause_one_refresh_and_get_the_same_token,
    force_refresh_refreshes_when_no_cooldown_applies,
    invalid_grant_marks_the_connection_needs_reauth,
    a_missing_expires_in_uses_the_profile_default,
    revoked_connections_serve_no_tokens,
    a_just_issued_token_is_not_rotated_again,
);
