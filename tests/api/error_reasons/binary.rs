//! The reasons the binary provokes without moving a clock.

use std::{sync::Arc, time::Duration};

use authbroker::pb::{self, ErrorReason};
use tonic::Code;

use super::expect::*;
use crate::{fake::Fault, helpers::*, proxy::Proxy};

/// The reasons that need no clock: the binary, restarted once without a
/// provider, and (PostgreSQL) reaching its database through a proxy the test
/// cuts at the end.
pub(super) async fn through_the_binary(backend: Backend) -> Cases {
    use ErrorReason as R;
    let mut cases = Cases::default();
    let proxy = match backend {
        Backend::Postgres => Some(Proxy::start("127.0.0.1:5432".parse().expect("addr")).await),
        Backend::Sqlite => None,
    };
    // A second Aries registration the operator later removes from the config.
    let legacy: ExtraProviders = Arc::new(|fakes: &Fakes| {
        let fake = &fakes.aries;
        format!(
            "[providers.legacy]\nkind = \"aries\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
             redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n",
            fake.client_id(),
            fake.client_secret(),
            fake.authorize_url(),
            fake.token_url(),
        )
    });
    let options = Options {
        extra_providers: Some(legacy),
        database_port: proxy.as_ref().map(|p| p.port),
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options.clone()).await;

    // PROVIDER_REMOVED: a connection and an approved flow of `legacy`, then
    // the server restarts without it.
    let mut billing = app.billing().await;
    let legacy_request = begin_request("legacy", "u");
    let legacy_conn =
        connect_via(&mut billing, &app.fakes.aries, legacy_request.clone(), USER).await;
    let begun = billing
        .begin_auth(legacy_request)
        .await
        .expect("BeginAuth")
        .into_inner();
    let legacy_callback = app
        .fakes
        .aries
        .approve(&begun.authorization_url, USER)
        .await;
    let app = app
        .restart_with(Options {
            extra_providers: None,
            ..options
        })
        .await;
    let mut billing = app.billing().await;
    let mut search = app.search().await;
    let removed =
        || Expected::new(R::ProviderRemoved, Code::FailedPrecondition).meta("provider", "legacy");
    cases.push(
        "CompleteAuth of a flow begun for a provider removed since",
        billing.complete_auth(callback(legacy_callback)).await,
        removed(),
    );
    cases.push(
        "forced GetAccessToken of a connection whose provider was removed",
        force_refresh(&mut billing, &legacy_conn.id).await,
        removed(),
    );

    // CALLER_UNAUTHENTICATED: no bearer token, or one no caller has.
    for (what, bearer) in [
        ("ListConnections without a bearer token", None),
        (
            "ListConnections with an unknown bearer token",
            Some("wrong-token-0123456789"),
        ),
    ] {
        let mut client = app.client(bearer).await;
        cases.push(
            what,
            client
                .list_connections(pb::ListConnectionsRequest::default())
                .await,
            Expected::new(R::CallerUnauthenticated, Code::Unauthenticated),
        );
    }

    // INVALID_REQUEST and UNKNOWN_PROVIDER: bad fields.
    cases.push(
        "BeginAuth with an empty subject",
        billing.begin_auth(begin_request("ares", "")).await,
        Expected::new(R::InvalidRequest, Code::InvalidArgument)
            .meta("field", "subject")
            .bad_request("subject"),
    );
    cases.push(
        "GetAccessToken with a connection_id that is no UUID",
        token(&mut billing, "not-a-uuid", 60).await,
        Expected::new(R::InvalidRequest, Code::InvalidArgument)
            .meta("field", "connection_id")
            .bad_request("connection_id"),
    );
    cases.push(
        "BeginAuth for a provider that is not configured",
        billing.begin_auth(begin_request("nope", "u")).await,
        Expected::new(R::UnknownProvider, Code::InvalidArgument)
            .meta("field", "provider")
            .meta("provider", "nope")
            .bad_request("provider"),
    );

    // CONNECTION_NOT_FOUND: an id nobody has, and another caller's connection.
    let ares = connect(&app, &mut billing, "ares", "u").await;
    cases.push(
        "GetConnection of an unknown id",
        billing.get_connection(get_connection(UNKNOWN_ID)).await,
        Expected::new(R::ConnectionNotFound, Code::NotFound).meta("connection_id", UNKNOWN_ID),
    );
    cases.push(
        "GetAccessToken of another caller's connection",
        token(&mut search, &ares.id, 60).await,
        Expected::new(R::ConnectionNotFound, Code::NotFound).meta("connection_id", &ares.id),
    );

    // STATE_INVALID: a forged state, and one begun by another caller.
    let begun = begin(&mut billing, "ares", "u").await;
    let mut params = app.fakes.ares.approve(&begun.authorization_url, USER).await;
    params.insert("state".into(), "forged-state-value".into());
    cases.push(
        "CompleteAuth with a forged state",
        billing.complete_auth(callback(params)).await,
        Expected::new(R::StateInvalid, Code::FailedPrecondition).meta("state", "unknown"),
    );
    let begun = begin(&mut billing, "aries", "u").await;
    let params = app
        .fakes
        .aries
        .approve(&begun.authorization_url, USER)
        .await;
    cases.push(
        "CompleteAuth of a state another caller began",
        search.complete_auth(callback(params)).await,
        // Exactly like an unknown state: nothing tells it the state exists.
        Expected::new(R::StateInvalid, Code::FailedPrecondition).meta("state", "unknown"),
    );

    // PROVIDER_UNAVAILABLE and PROVIDER_INVALID_RESPONSE at the code exchange.
    let askara = &app.fakes.askara;
    for (what, fault, expected) in [
        (
            "CompleteAuth while the token endpoint answers 429 with Retry-After: 7",
            Fault::TooManyRequests {
                retry_after_secs: 7,
            },
            provider_failure(
                R::ProviderUnavailable,
                Code::Unavailable,
                "askara",
                "code_exchange",
                Some(429),
            )
            .retry(Duration::from_secs(7)),
        ),
        (
            "CompleteAuth while the token endpoint answers with an HTML page",
            Fault::Html,
            provider_failure(
                R::ProviderInvalidResponse,
                Code::Unavailable,
                "askara",
                "code_exchange",
                Some(200),
            )
            .retry(Duration::from_secs(1)),
        ),
    ] {
        askara.set_fault(fault);
        let begun = begin(&mut billing, "askara", "u").await;
        let params = askara.approve(&begun.authorization_url, USER).await;
        cases.push(
            what,
            billing.complete_auth(callback(params)).await,
            expected,
        );
    }
    askara.set_fault(Fault::None);

    // PROVIDER_REJECTED: a wrong password; credits the user does not have,
    // then the same key again (the stored refusal).
    cases.push(
        "SignInWithPassword with a wrong password",
        billing
            .sign_in_with_password(pb::SignInWithPasswordRequest {
                provider: "arterra".into(),
                subject: "u".into(),
                username: EMAIL.into(),
                password: "wrong password".into(),
            })
            .await,
        provider_failure(
            R::ProviderRejected,
            Code::FailedPrecondition,
            "arterra",
            "password_grant",
            Some(400),
        )
        .meta("provider_error", "invalid_grant"),
    );
    let too_much = usage(&ares.id, "too-much", (CREDITS + 1) as f64);
    cases.push(
        "RecordUsage of more credits than the user has",
        billing.record_usage(too_much.clone()).await,
        provider_failure(
            R::ProviderRejected,
            Code::FailedPrecondition,
            "ares",
            "usage",
            Some(400),
        ),
    );
    cases.push(
        "RecordUsage repeating a refused key",
        billing.record_usage(too_much).await,
        Expected::new(R::ProviderRejected, Code::FailedPrecondition)
            .meta_present("usage_id")
            .meta("provider", "ares")
            .meta("step", "usage"),
    );

    // USAGE_NOT_FOUND / USAGE_NOT_UNKNOWN: ResolveUsage of nothing, and of
    // a usage whose outcome (refused) is known.
    cases.push(
        "ResolveUsage of an id nobody has",
        billing
            .resolve_usage(pb::ResolveUsageRequest {
                usage_id: UNKNOWN_ID.into(),
                outcome: pb::UsageOutcome::Charged.into(),
            })
            .await,
        Expected::new(R::UsageNotFound, Code::NotFound).meta("usage_id", UNKNOWN_ID),
    );
    let refused = billing
        .record_usage(usage(&ares.id, "too-much", (CREDITS + 1) as f64))
        .await
        .expect_err("refused");
    let refused_id = tonic_types::StatusExt::get_details_error_info(&refused)
        .and_then(|info| info.metadata.get("usage_id").cloned())
        .expect("usage id");
    cases.push(
        "ResolveUsage of a refused usage",
        billing
            .resolve_usage(pb::ResolveUsageRequest {
                usage_id: refused_id.clone(),
                outcome: pb::UsageOutcome::Charged.into(),
            })
            .await,
        Expected::new(R::UsageNotUnknown, Code::FailedPrecondition).meta("usage_id", refused_id),
    );

    // PROVIDER_UNSUPPORTED: no usage endpoint, no password grant, no user endpoint.
    let askara_conn = connect(&app, &mut billing, "askara", "u").await;
    cases.push(
        "RecordUsage on an Askara connection",
        billing.record_usage(usage(&askara_conn.id, "k", 1.0)).await,
        Expected::new(R::ProviderUnsupported, Code::FailedPrecondition).meta("provider", "askara"),
    );
    cases.push(
        "SignInWithPassword at ARES",
        billing
            .sign_in_with_password(pb::SignInWithPasswordRequest {
                provider: "ares".into(),
                subject: "u".into(),
                username: EMAIL.into(),
                password: PASSWORD.into(),
            })
            .await,
        Expected::new(R::ProviderUnsupported, Code::FailedPrecondition).meta("provider", "ares"),
    );
    let aries = connect(&app, &mut billing, "aries", "u").await;
    cases.push(
        "GetUserInfo on an Aries connection",
        billing
            .get_user_info(pb::GetUserInfoRequest {
                connection_id: aries.id.clone(),
            })
            .await,
        Expected::new(R::ProviderUnsupported, Code::FailedPrecondition).meta("provider", "aries"),
    );

    // USAGE_KEY_CONFLICT: one key, two different reports.
    billing
        .record_usage(usage(&ares.id, "order-1", 1.0))
        .await
        .expect("first report");
    cases.push(
        "RecordUsage reusing a key with other credits",
        billing.record_usage(usage(&ares.id, "order-1", 2.0)).await,
        Expected::new(R::UsageKeyConflict, Code::AlreadyExists)
            .meta("field", "idempotency_key")
            .bad_request("idempotency_key"),
    );

    // CONNECTION_NEEDS_REAUTH: the provider refuses the refresh token; the
    // next call fails from the stored status.
    let arterra = connect(&app, &mut billing, "arterra", "u").await;
    app.fakes.arterra.revoke_refresh_tokens();
    let needs_reauth = || {
        Expected::new(R::ConnectionNeedsReauth, Code::FailedPrecondition)
            .meta("connection_id", &arterra.id)
            .meta("provider", "arterra")
    };
    cases.push(
        "GetAccessToken whose refresh meets invalid_grant",
        token(&mut billing, &arterra.id, 86_400).await,
        needs_reauth(),
    );
    cases.push(
        "GetAccessToken of a connection marked NEEDS_REAUTH",
        token(&mut billing, &arterra.id, 60).await,
        needs_reauth(),
    );

    // CONNECTION_REVOKED.
    billing
        .revoke_connection(pb::RevokeConnectionRequest {
            connection_id: ares.id.clone(),
        })
        .await
        .expect("revoke");
    cases.push(
        "GetAccessToken of a revoked connection",
        token(&mut billing, &ares.id, 60).await,
        Expected::new(R::ConnectionRevoked, Code::FailedPrecondition)
            .meta("connection_id", &ares.id)
            .meta("provider", "ares"),
    );

    // INSUFFICIENT_SCOPE: the grant lacks a scope the caller requires.
    let scoped = connect(&app, &mut billing, "ares", "scoped").await;
    cases.push(
        "GetAccessToken requiring a scope the grant lacks",
        billing
            .get_access_token(pb::GetAccessTokenRequest {
                connection_id: scoped.id.clone(),
                required_scopes: vec!["read".into(), "admin".into(), "billing".into()],
                ..Default::default()
            })
            .await,
        Expected::new(R::InsufficientScope, Code::FailedPrecondition)
            .meta("connection_id", &scoped.id)
            .meta("missing", "admin billing"),
    );

    // ACCOUNT_MISMATCH: a reconnect in place signed in to another account.
    app.fakes
        .ares
        .add_user("other-account", "other@example.test", PASSWORD, CREDITS);
    let begun = billing
        .begin_auth(pb::BeginAuthRequest {
            provider: "ares".into(),
            subject: "scoped".into(),
            redirect_uri: CALLBACK.into(),
            connection_id: scoped.id.clone(),
            ..Default::default()
        })
        .await
        .expect("BeginAuth")
        .into_inner();
    let params = app
        .fakes
        .ares
        .approve(&begun.authorization_url, "other-account")
        .await;
    cases.push(
        "CompleteAuth of a reconnect in place signed in to another account",
        billing.complete_auth(callback(params)).await,
        Expected::new(R::AccountMismatch, Code::FailedPrecondition)
            .meta("connection_id", &scoped.id),
    );

    // NO_REFRESH_TOKEN: the code exchange answered without a refresh token.
    app.fakes.aries.set_issue_refresh_tokens(false);
    let no_refresh = connect(&app, &mut billing, "aries", "no-refresh-token").await;
    app.fakes.aries.set_issue_refresh_tokens(true);
    cases.push(
        "forced GetAccessToken of a connection without a refresh token",
        force_refresh(&mut billing, &no_refresh.id).await,
        Expected::new(R::NoRefreshToken, Code::FailedPrecondition)
            .meta("connection_id", &no_refresh.id)
            .meta("provider", "aries"),
    );
    assert_eq!(
        app.fakes.aries.token_requests("refresh_token"),
        0,
        "nothing was sent to refresh"
    );

    // INTERNAL: a stored access token that does not open. The connection was
    // never served, so no cache holds its token.
    let corrupt = connect(&app, &mut billing, "askara", "corrupt").await;
    app.db
        .execute(&format!(
            "UPDATE connections SET access_token = 'v1.k1.AAAA' WHERE id = '{}'",
            corrupt.id
        ))
        .await;
    cases.push(
        "GetAccessToken of a connection whose sealed token is corrupt",
        token(&mut billing, &corrupt.id, 60).await,
        Expected::new(R::Internal, Code::Internal),
    );

    // CONCURRENT_MODIFICATION: a trigger silently skips every revoking
    // UPDATE, so RevokeConnection's compare-and-swap never lands.
    let (create, remove) = match backend {
        Backend::Postgres => (
            "CREATE FUNCTION skip_revoke() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; \
             CREATE TRIGGER skip_revoke BEFORE UPDATE ON connections FOR EACH ROW \
             WHEN (NEW.status = 'REVOKED') EXECUTE FUNCTION skip_revoke();",
            "DROP TRIGGER skip_revoke ON connections; DROP FUNCTION skip_revoke();",
        ),
        Backend::Sqlite => (
            "CREATE TRIGGER skip_revoke BEFORE UPDATE ON connections WHEN NEW.status = 'REVOKED' \
             BEGIN SELECT RAISE(IGNORE); END;",
            "DROP TRIGGER skip_revoke;",
        ),
    };
    app.db.execute(create).await;
    cases.push(
        "RevokeConnection whose update never lands",
        billing
            .revoke_connection(pb::RevokeConnectionRequest {
                connection_id: aries.id.clone(),
            })
            .await,
        Expected::new(R::ConcurrentModification, Code::Aborted).retry(Duration::from_millis(100)),
    );
    app.db.execute(remove).await;

    // STORAGE_UNAVAILABLE (PostgreSQL only, see `Cases::verify`): the
    // database goes away. Last: the server cannot serve anything after.
    if let Some(proxy) = &proxy {
        proxy.down();
        cases.push(
            "GetConnection while the database is unreachable",
            billing.get_connection(get_connection(&aries.id)).await,
            Expected::new(R::StorageUnavailable, Code::Unavailable).retry(Duration::from_secs(1)),
        );
    }
    cases
}
